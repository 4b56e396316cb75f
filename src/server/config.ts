/**
 * Server settings: command-line options first, then ATTNSCORE_* environment
 * variables, then defaults. Every value is validated here, so a bad setting
 * stops the server before it binds.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { AttnScoreError } from '../scoring/errors.js';

/** Settings of a running server. */
export interface ServerConfig {
  readonly host: string;
  /** TCP port; 0 picks a free one. */
  readonly port: number;
  /** Largest request body in bytes, for JSON and binary bodies alike. */
  readonly bodyLimit: number;
  /** Accepted bearer keys; empty when access is open. */
  readonly apiKeys: readonly string[];
  /** Serve without keys on a host other than loopback. */
  readonly allowUnauthenticated: boolean;
  /** Folder where catalogs are saved and reloaded on start; undefined keeps them in memory only. */
  readonly dataDir: string | undefined;
  /**
   * Scoring engine: `wasm`, the worker pool of `threads` threads, or
   * `webgpu`, the process's one WebGPU device, which queues the work of
   * every request in submission order.
   */
  readonly backend: 'wasm' | 'webgpu';
  /** Worker threads of the scoring pool (the `wasm` backend only). */
  readonly threads: number;
  /** Scoring requests that run at once. */
  readonly concurrency: number;
  /** Scoring requests that may wait for a free place; more get 429. */
  readonly queueLimit: number;
  /** Time a scoring request may take, waiting included, before it gets 503. */
  readonly timeoutMs: number;
  /** Users per backend call. */
  readonly blockUsers: number;
}

/** Settings given on the command line; each overrides its environment variable. */
export interface ServerConfigInput {
  readonly host?: string;
  readonly port?: number;
  readonly bodyLimit?: number;
  readonly apiKeys?: readonly string[];
  readonly apiKeyFile?: string;
  readonly allowUnauthenticated?: boolean;
  readonly dataDir?: string;
  readonly backend?: string;
  readonly threads?: number;
  readonly concurrency?: number;
  readonly queueLimit?: number;
  readonly timeoutMs?: number;
  readonly blockUsers?: number;
}

/** Default body limit: a 10000 x 256 catalogue as JSON takes about 30 MiB. */
export const DEFAULT_BODY_LIMIT = 64 * 1024 * 1024;

/**
 * Resolves the settings from `input`, then `env`, then defaults. Throws an
 * `INVALID_PARAMETER` {@link AttnScoreError} naming the first bad setting,
 * including a non-loopback host without keys or `allowUnauthenticated`.
 */
export function resolveServerConfig(
  input: ServerConfigInput = {},
  env: NodeJS.ProcessEnv = process.env,
): ServerConfig {
  const threads = input.threads ?? integerFromEnv(env, 'ATTNSCORE_THREADS', 0) ?? availableParallelism();
  const config: ServerConfig = {
    host: input.host ?? nonEmpty(env.ATTNSCORE_HOST) ?? '127.0.0.1',
    port: input.port ?? integerFromEnv(env, 'ATTNSCORE_PORT', 0) ?? 8080,
    bodyLimit: input.bodyLimit ?? integerFromEnv(env, 'ATTNSCORE_BODY_LIMIT', 1) ?? DEFAULT_BODY_LIMIT,
    apiKeys: resolveKeys(input, env),
    allowUnauthenticated:
      input.allowUnauthenticated ?? booleanFromEnv(env, 'ATTNSCORE_ALLOW_UNAUTHENTICATED'),
    dataDir: input.dataDir ?? nonEmpty(env.ATTNSCORE_DATA_DIR),
    backend: serverBackend(input.backend ?? nonEmpty(env.ATTNSCORE_BACKEND) ?? 'wasm'),
    threads,
    concurrency: input.concurrency ?? integerFromEnv(env, 'ATTNSCORE_CONCURRENCY', 1) ?? threads,
    queueLimit: input.queueLimit ?? integerFromEnv(env, 'ATTNSCORE_QUEUE_LIMIT', 0) ?? 256,
    timeoutMs: input.timeoutMs ?? integerFromEnv(env, 'ATTNSCORE_TIMEOUT_MS', 1) ?? 30_000,
    blockUsers: input.blockUsers ?? integerFromEnv(env, 'ATTNSCORE_BLOCK_USERS', 1) ?? 512,
  };
  checkInteger('port', config.port, 0, 65535);
  checkInteger('body limit', config.bodyLimit, 1);
  checkInteger('threads', config.threads, 1);
  checkInteger('concurrency', config.concurrency, 1);
  checkInteger('queue limit', config.queueLimit, 0);
  checkInteger('timeout', config.timeoutMs, 1);
  checkInteger('block users', config.blockUsers, 1);
  if (config.apiKeys.length === 0 && !config.allowUnauthenticated && !isLoopback(config.host)) {
    throw invalid(
      `refusing to serve ${config.host} without API keys; set ATTNSCORE_API_KEYS or ` +
        `ATTNSCORE_API_KEY_FILE, bind a loopback host, or pass --allow-unauthenticated`,
    );
  }
  return Object.freeze(config);
}

/** Returns true for `localhost` and the loopback addresses 127.0.0.0/8 and ::1. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  const bare = host.replace(/^\[|\]$/g, '');
  return bare === '::1' || bare.startsWith('::ffff:127.');
}

/** Collects keys from the options or ATTNSCORE_API_KEYS, plus one per line of the key file. */
function resolveKeys(input: ServerConfigInput, env: NodeJS.ProcessEnv): string[] {
  const keys = [...(input.apiKeys ?? splitKeys(env.ATTNSCORE_API_KEYS ?? ''))];
  const file = input.apiKeyFile ?? nonEmpty(env.ATTNSCORE_API_KEY_FILE);
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      const reason = error instanceof Error && 'code' in error ? String(error.code) : 'unreadable';
      throw invalid(`cannot read the API key file ${file}: ${reason}`);
    }
    const fromFile = text.split(/\r?\n/).map((line) => line.trim());
    keys.push(...fromFile.filter((line) => line !== '' && !line.startsWith('#')));
  }
  return keys;
}

function serverBackend(name: string): ServerConfig['backend'] {
  if (name === 'wasm' || name === 'webgpu') return name;
  throw invalid(`backend must be wasm or webgpu (got ${JSON.stringify(name)})`);
}

function splitKeys(text: string): string[] {
  return text
    .split(',')
    .map((key) => key.trim())
    .filter((key) => key !== '');
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function integerFromEnv(env: NodeJS.ProcessEnv, name: string, min: number): number | undefined {
  const text = nonEmpty(env[name]);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min) {
    throw invalid(`${name} must be an integer >= ${min} (got ${JSON.stringify(text)})`);
  }
  return value;
}

function booleanFromEnv(env: NodeJS.ProcessEnv, name: string): boolean {
  const text = nonEmpty(env[name])?.toLowerCase();
  if (text === undefined || text === '0' || text === 'false') return false;
  if (text === '1' || text === 'true') return true;
  throw invalid(`${name} must be 1, 0, true or false (got ${JSON.stringify(text)})`);
}

function checkInteger(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be an integer from ${min} to ${max} (got ${String(value)})`);
  }
}

function invalid(message: string): AttnScoreError {
  return new AttnScoreError('INVALID_PARAMETER', message);
}
