/** The `attnscore score` command: read users and contents, score, write results atomically. */
import { constants } from 'node:os';
import { extname, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { backendNames, defaultBackend } from '../backends/index.js';
import {
  formatJsonlLine,
  STDOUT_PATH,
  openMatrixWriter,
  openResultWriter,
  type MatrixWriter,
  type ResultWriter,
} from '../io/index.js';
import { defaultParams } from '../scoring/params.js';
import { DEFAULT_BLOCK_USERS, prepareRun } from '../score.js';
import type { UserResult } from '../scoring/types.js';
import { CliExit, EXIT_USAGE } from './exit.js';
import { compact, createProgress } from './progress.js';

interface ScoreCommandOptions {
  users: string;
  contents: string;
  weights?: string;
  userIds?: string;
  contentIds?: string;
  usersFormat?: 'npy' | 'jsonl' | 'csv';
  contentsFormat?: 'npy' | 'jsonl' | 'csv';
  k: number;
  alpha: number;
  beta: number;
  gamma: number;
  minScore?: number;
  normalizeWeights: boolean;
  backend: string;
  out: string;
  format?: 'jsonl' | 'csv';
  matrix?: string;
  blockUsers: number;
  threads?: number;
  show: number;
  progress: boolean;
  quiet: boolean;
}

const inputFormats = ['npy', 'jsonl', 'csv'];

/** Adds `score` to the program. */
export function registerScoreCommand(program: Command): void {
  program
    .command('score')
    .description(
      'Score every user against every content. For each user, writes CX = sum_c w_c * exp(alpha * a(u, c)), ' +
        'loyalty = 1 / (1 + exp(-(beta * CX + gamma))) and the k contents with the highest cosine a(u, c).',
    )
    .requiredOption('--users <file>', 'user vectors: .npy (float32/float64, U x D), .jsonl or .csv')
    .requiredOption('--contents <file>', 'content vectors: .npy, .jsonl or .csv (C x D)')
    .option('--weights <file>', 'content weights: .npy or text with one number per line (default: 1 each, or the "weight" field of JSONL contents)')
    .option('--user-ids <file>', 'text file with one user id per line, for .npy users (default: row numbers from 0)')
    .option('--content-ids <file>', 'text file with one content id per line, for .npy contents (default: row numbers from 0)')
    .addOption(new Option('--users-format <format>', 'users file format (default: from the extension)').choices(inputFormats))
    .addOption(new Option('--contents-format <format>', 'contents file format (default: from the extension)').choices(inputFormats))
    .option('--k <n>', 'contents kept per user, best first (a positive integer)', parseNumber('k'), defaultParams.k)
    .option('--alpha <x>', 'exponent scale of CX, |alpha| <= 80', parseNumber('alpha'), defaultParams.alpha)
    .option('--beta <x>', 'slope of the loyalty sigmoid', parseNumber('beta'), defaultParams.beta)
    .option('--gamma <x>', 'offset of the loyalty sigmoid', parseNumber('gamma'), defaultParams.gamma)
    .option('--min-score <x>', 'leave contents with cosine below x out of the top-k list (not out of CX), in [-1, 1] (default: none)', parseNumber('min-score'))
    .option('--normalize-weights', 'divide the weights by their sum, making CX a weighted mean of exp(alpha * a)', false)
    .addOption(new Option('--backend <name>', 'scoring engine').choices([...backendNames]).default(defaultBackend))
    .option('--out <file>', 'output file, written to a temporary file and renamed when complete; - for stdout', '-')
    .addOption(new Option('--format <format>', 'output format (default: csv for a .csv --out, else jsonl)').choices(['jsonl', 'csv']))
    .option('--matrix <file>', 'also write the U x C float32 cosine matrix to this .npy file (U x C x 4 bytes: small jobs only)')
    .option('--block-users <n>', 'users scored per backend call', parseNumber('block-users'), DEFAULT_BLOCK_USERS)
    .option('--threads <n>', 'threads that score with the wasm backend; 1 scores on the main thread (default: the number of available cores)', parseNumber('threads'))
    .option('--show <n>', 'after writing, print the first n result lines to stdout', parseCount('show'), 0)
    .option('--no-progress', 'do not draw the progress bar (drawn only when stderr is a terminal)')
    .option('--quiet', 'do not print the summary line', false)
    .action(async (options: ScoreCommandOptions) => runScore(options));
}

/** A decimal number as people type it, or one of the names that validation then rejects. */
const NUMBER_PATTERN = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$|^[+-]?(Infinity|NaN)$/i;

function parseNumber(name: string) {
  return (raw: string): number => {
    if (!NUMBER_PATTERN.test(raw)) {
      throw new InvalidArgumentError(`${name} must be a number (got ${JSON.stringify(raw)})`);
    }
    return Number(raw.replace(/infinity/i, 'Infinity').replace(/nan/i, 'NaN'));
  };
}

function parseCount(name: string) {
  return (raw: string): number => {
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value)) {
      throw new InvalidArgumentError(`${name} must be a whole number (got ${JSON.stringify(raw)})`);
    }
    return value;
  };
}

/** Signals that stop a run: Ctrl-C, a polite kill, and a closed terminal. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Rejects a --matrix path that would collide with --out or is not a .npy file name. */
function checkMatrixPath(matrix: string | undefined, out: string): void {
  if (matrix === undefined) return;
  if (matrix === STDOUT_PATH) {
    throw new CliExit(EXIT_USAGE, '--matrix needs a file name ending in .npy, not - (stdout)');
  }
  if (extname(matrix).toLowerCase() !== '.npy') {
    throw new CliExit(EXIT_USAGE, `--matrix writes a .npy file; name it with .npy (got ${JSON.stringify(matrix)})`);
  }
  if (out !== STDOUT_PATH && resolve(matrix) === resolve(out)) {
    throw new CliExit(EXIT_USAGE, `--matrix and --out name the same file (${JSON.stringify(out)}); give them different names`);
  }
}

/** Returns true when `error` is a write to a pipe whose reader has gone, as with `| head`. */
function isClosedPipe(error: unknown): boolean {
  const cause = error instanceof Error ? (error.cause as { code?: string } | undefined) : undefined;
  return cause?.code === 'EPIPE';
}

async function runScore(options: ScoreCommandOptions): Promise<void> {
  const started = performance.now();
  const format = options.format ?? (extname(options.out).toLowerCase() === '.csv' ? 'csv' : 'jsonl');
  checkMatrixPath(options.matrix, options.out);
  const run = await prepareRun({
    users: options.users,
    contents: options.contents,
    usersFormat: options.usersFormat,
    contentsFormat: options.contentsFormat,
    weights: options.weights,
    userIds: options.userIds,
    contentIds: options.contentIds,
    k: options.k,
    alpha: options.alpha,
    beta: options.beta,
    gamma: options.gamma,
    minScore: options.minScore,
    normalizeWeights: options.normalizeWeights,
    backend: options.backend as (typeof backendNames)[number],
    matrix: options.matrix !== undefined,
    blockUsers: options.blockUsers,
    threads: options.threads,
  });

  let writer: ResultWriter | undefined;
  let matrixWriter: MatrixWriter | undefined;
  const progress = createProgress(run.pairs, options.progress);
  const preview: UserResult[] = [];
  const abortController = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => abortController.abort(signal);
  for (const signal of STOP_SIGNALS) process.once(signal, onSignal);
  try {
    writer = await openResultWriter(options.out, format);
    if (options.matrix !== undefined) {
      matrixWriter = await openMatrixWriter(options.matrix, run.users.rows, run.contents.rows);
    }
    for await (const block of run.blocks()) {
      abortController.signal.throwIfAborted();
      await writer.writeBatch(block.results);
      if (matrixWriter && block.matrix) await matrixWriter.writeRows(block.matrix);
      if (preview.length < options.show) preview.push(...block.results.slice(0, options.show - preview.length));
      progress.update((block.start + block.results.length) * run.contents.rows);
    }
    abortController.signal.throwIfAborted();
    // A signal from here on lets the commit finish: the output is complete, and stopping
    // between the two renames would leave one file new and the other old.
    await matrixWriter?.finish();
    await writer.finish();
  } catch (error) {
    await Promise.allSettled([writer?.abort(), matrixWriter?.abort()]);
    if (abortController.signal.aborted) {
      const signal = String(abortController.signal.reason) as NodeJS.Signals;
      const kept =
        options.out === STDOUT_PATH
          ? 'the results on stdout are incomplete'
          : `${options.out} was not written`;
      throw new CliExit(128 + (constants.signals[signal] ?? 2), `stopped by ${signal}; ${kept}`);
    }
    if (options.out === STDOUT_PATH && isClosedPipe(error)) return;
    throw error;
  } finally {
    progress.stop();
    await run.dispose();
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
  }

  const seconds = (performance.now() - started) / 1000;
  if (!options.quiet) {
    const where = options.out === '-' ? 'stdout' : options.out;
    const matrixNote = options.matrix ? ` and the cosine matrix to ${options.matrix}` : '';
    process.stderr.write(
      `scored ${compact(run.pairs)} pairs (${run.users.rows} users x ${run.contents.rows} contents, ` +
        `${run.contents.dim} dims) in ${seconds.toFixed(2)} s, ${compact(run.pairs / seconds)} pairs/s, ` +
        `backend ${run.backend.name} (${run.backend.variant}); wrote ${format} to ${where}${matrixNote}\n`,
    );
  }
  if (preview.length > 0 && options.out !== STDOUT_PATH) {
    process.stdout.write(`first ${preview.length} of ${run.users.rows} results:\n`);
    for (const result of preview) process.stdout.write(formatJsonlLine(result));
  }
}
