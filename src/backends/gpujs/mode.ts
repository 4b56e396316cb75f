/**
 * Chooses where gpu.js runs: headless WebGL through the optional `gl`
 * package when it loads and gets a context, gpu.js's CPU mode otherwise.
 */
import { createRequire } from 'node:module';
import { AttnScoreError } from '../../scoring/errors.js';

const require = createRequire(import.meta.url);

/** The gpu.js mode in use and why, for `Backend.variant`. */
export interface GpujsMode {
  /** The gpu.js mode name: 'headlessgl' or 'cpu'. */
  readonly mode: 'headlessgl' | 'cpu';
  /** The GL renderer string in 'headlessgl' mode. */
  readonly renderer?: string;
  /** Reason headless WebGL is not in use, when 'auto' fell back to 'cpu'. */
  readonly fallbackReason?: string;
}

interface HeadlessContext {
  readonly RENDERER: number;
  getParameter(name: number): unknown;
  getExtension(name: string): { destroy(): void } | null;
}

type CreateHeadlessContext = (width: number, height: number) => HeadlessContext | null;

/**
 * Returns why headless WebGL cannot run here, or the renderer name when it
 * can. Opens and destroys a 1 x 1 context to find out.
 */
export function probeHeadlessGl(): { renderer: string } | { reason: string } {
  let createContext: CreateHeadlessContext;
  try {
    createContext = require('gl') as CreateHeadlessContext;
  } catch (error) {
    const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { reason: `the optional package "gl" failed to load: ${detail}` };
  }
  const context = createContext(1, 1);
  if (context === null) {
    const display = process.env.DISPLAY;
    const hint = display ? `on DISPLAY ${display}` : 'because DISPLAY is not set; run under xvfb-run';
    return { reason: `the package "gl" got no OpenGL context ${hint}` };
  }
  const renderer = String(context.getParameter(context.RENDERER));
  context.getExtension('STACKGL_destroy_context')?.destroy();
  return { renderer };
}

/**
 * Resolves the requested mode: 'webgl' throws when headless WebGL is
 * unavailable, 'auto' falls back to 'cpu' and records why.
 */
export function resolveMode(requested: 'auto' | 'webgl' | 'cpu'): GpujsMode {
  if (requested === 'cpu') return { mode: 'cpu' };
  const probe = probeHeadlessGl();
  if ('renderer' in probe) return { mode: 'headlessgl', renderer: probe.renderer };
  if (requested === 'webgl') {
    throw new AttnScoreError(
      'INVALID_PARAMETER',
      `gpu.js headless WebGL is unavailable: ${probe.reason}; use mode: 'auto' or 'cpu'`,
    );
  }
  return { mode: 'cpu', fallbackReason: probe.reason };
}
