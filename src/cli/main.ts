/**
 * The `attnscore` command line: parses arguments, runs a command and maps
 * failures to exit codes (0 success, 2 bad input or usage, 1 internal failure).
 */
import { Command, CommanderError } from 'commander';
import { isInputError } from '../scoring/errors.js';
import { registerBenchCommand } from './bench.js';
import { CliExit, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE } from './exit.js';
import { registerMergeCommand } from './merge.js';
import { registerScoreCommand } from './score.js';
import { registerServeCommand } from './serve.js';

/** Runs the command line with `argv` (without the node and script paths) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('attnscore')
    .description(
      'Score users against contents: cosine attention weights, top-k matching, ' +
        'experience score CX and loyalty.',
    )
    .version(await packageVersion())
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
  registerScoreCommand(program);
  registerMergeCommand(program);
  registerServeCommand(program);
  registerBenchCommand(program);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT_OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed the message; help and version exit 0.
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (error instanceof CliExit) {
      process.stderr.write(`attnscore: ${error.message}\n`);
      return error.exitCode;
    }
    if (isInputError(error)) {
      process.stderr.write(`attnscore: ${error.message}\n`);
      return EXIT_USAGE;
    }
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.stderr.write(`attnscore: internal error: ${detail}\n`);
    return EXIT_INTERNAL;
  }
}

async function packageVersion(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}
