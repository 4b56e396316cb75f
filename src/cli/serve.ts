/** The `attnscore serve` command: run the HTTP scoring API until SIGTERM or SIGINT. */
import { Command, InvalidArgumentError } from 'commander';
import { resolveServerConfig, startServer } from '../server/index.js';

interface ServeCommandOptions {
  host?: string;
  port?: number;
  allowUnauthenticated?: boolean;
  threads?: number;
  backend?: string;
  dataDir?: string;
}

/** Adds `attnscore serve` to `program`. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description(
      'Serve the batch scoring HTTP API. Settings not given here come from ATTNSCORE_* ' +
        'environment variables; see docs/http-api.md.',
    )
    .option('--host <host>', 'address to bind (env ATTNSCORE_HOST; default 127.0.0.1)')
    .option('--port <port>', 'TCP port, 0 for any free one (env ATTNSCORE_PORT; default 8080)', integer)
    .option(
      '--allow-unauthenticated',
      'serve a non-loopback host without API keys (env ATTNSCORE_ALLOW_UNAUTHENTICATED=1)',
    )
    .option('--backend <name>', 'scoring engine: wasm (worker pool) or webgpu (env ATTNSCORE_BACKEND; default wasm)')
    .option('--threads <n>', 'scoring worker threads of the wasm backend (env ATTNSCORE_THREADS; default: every core)', integer)
    .option('--data-dir <dir>', 'folder where catalogs are saved and reloaded (env ATTNSCORE_DATA_DIR)')
    .action(async (options: ServeCommandOptions) => {
      const config = resolveServerConfig({
        ...(options.host !== undefined ? { host: options.host } : {}),
        ...(options.port !== undefined ? { port: options.port } : {}),
        ...(options.allowUnauthenticated ? { allowUnauthenticated: true } : {}),
        ...(options.threads !== undefined ? { threads: options.threads } : {}),
        ...(options.backend !== undefined ? { backend: options.backend } : {}),
        ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
      });
      const server = await startServer({ config });
      // The command returns, and the process exits 0, once the server has drained.
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals): void => {
          server.logger.info({ signal }, 'signal received; shutting down');
          server.close().then(resolve, (error: unknown) => {
            server.logger.error({ err: error }, 'shutdown failed');
            resolve();
          });
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });
}

function integer(value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed)) {
    throw new InvalidArgumentError(`expected a non-negative integer (got ${JSON.stringify(value)})`);
  }
  return parsed;
}
