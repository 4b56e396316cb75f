/** The `attnscore score` command: read users and contents, score, write results atomically. */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { constants } from 'node:os';
import { extname, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { backendChoices, defaultChoice, type BackendChoice } from '../backends/index.js';
import { canonicalPath } from '../io/paths.js';
import {
  formatJsonlLine,
  outputFormatByExtension,
  STDOUT_PATH,
  openMatrixWriter,
  openResultWriter,
  type ColumnOptions,
  type MatrixWriter,
  type OutputFormat,
  type ParquetCompression,
  type ResultFormat,
  type ResultWriter,
  type TableLayout,
} from '../io/index.js';
import type { VectorFormat } from '../io/read.js';
import { defaultParams } from '../scoring/params.js';
import { DEFAULT_BLOCK_USERS, prepareRun, type PreparedRun, type RowRange } from '../score.js';
import { AttnScoreError, isInputError } from '../scoring/errors.js';
import type { UserResult } from '../scoring/types.js';
import {
  buildRunIdentity,
  partsFolder,
  PartsRun,
  resolveShard,
  scoringParameters,
  shardOutputPath,
  shardRange,
  type Shard,
} from '../run/index.js';
import { CliExit, EXIT_USAGE } from './exit.js';
import { compact, createProgress } from './progress.js';

interface ScoreCommandOptions {
  users: string;
  contents: string;
  weights?: string;
  userIds?: string;
  contentIds?: string;
  usersFormat?: VectorFormat;
  contentsFormat?: VectorFormat;
  idColumn?: string;
  vectorColumn?: string;
  vectorColumns?: string;
  weightColumn?: string;
  layout: TableLayout;
  compression?: ParquetCompression;
  k: number;
  alpha: number;
  beta: number;
  gamma: number;
  minScore?: number;
  normalizeWeights: boolean;
  backend: string;
  out: string;
  format?: OutputFormat;
  matrix?: string;
  blockUsers: number;
  threads?: number;
  show: number;
  progress: boolean;
  quiet: boolean;
  shard?: string;
  shardCount?: string;
  resume: boolean;
  partUsers?: number;
}

const inputFormats = ['npy', 'jsonl', 'csv', 'parquet', 'arrow'];
const outputFormats = ['jsonl', 'csv', 'parquet', 'arrow', 'arrows'];

/** Adds `score` to the program. */
export function registerScoreCommand(program: Command): void {
  program
    .command('score')
    .description(
      'Score every user against every content. For each user, writes CX = sum_c w_c * exp(alpha * a(u, c)), ' +
        'loyalty = 1 / (1 + exp(-(beta * CX + gamma))) and the k contents with the highest cosine a(u, c).',
    )
    .requiredOption('--users <file>', 'user vectors: .npy (float32/float64, U x D), .jsonl, .csv, .parquet (a file or a folder of part files) or Arrow IPC (.arrow, .arrows, .feather)')
    .requiredOption('--contents <file>', 'content vectors (C x D), in the same formats as --users')
    .option('--weights <file>', 'content weights: .npy or text with one number per line (default: 1 each, or the "weight" field of JSONL contents)')
    .option('--user-ids <file>', 'text file with one user id per line, for .npy users (default: row numbers from 0)')
    .option('--content-ids <file>', 'text file with one content id per line, for .npy contents (default: row numbers from 0)')
    .addOption(new Option('--users-format <format>', 'users file format (default: from the extension)').choices(inputFormats))
    .addOption(new Option('--contents-format <format>', 'contents file format (default: from the extension)').choices(inputFormats))
    .option('--id-column <name>', 'Parquet/Arrow input: the id column of users and contents (default: the only string or integer column, else row numbers)')
    .option('--vector-column <name>', 'Parquet/Arrow input: the vector column, a list or fixed-size list of numbers (default: the only such column)')
    .option('--vector-columns <names>', 'Parquet/Arrow input: one numeric column per dimension, as a comma-separated list or a prefix ending in * such as "emb_*" (default: columns named PREFIX0, PREFIX1, ... when there is no list column)')
    .option('--weight-column <name>', 'Parquet/Arrow contents: the weight column (default: a column named "weight"; --weights overrides it)')
    .option('--k <n>', 'contents kept per user, best first (a positive integer)', parseNumber('k'), defaultParams.k)
    .option('--alpha <x>', 'exponent scale of CX, |alpha| <= 80', parseNumber('alpha'), defaultParams.alpha)
    .option('--beta <x>', 'slope of the loyalty sigmoid', parseNumber('beta'), defaultParams.beta)
    .option('--gamma <x>', 'offset of the loyalty sigmoid', parseNumber('gamma'), defaultParams.gamma)
    .option('--min-score <x>', 'leave contents with cosine below x out of the top-k list (not out of CX), in [-1, 1] (default: none)', parseNumber('min-score'))
    .option('--normalize-weights', 'divide the weights by their sum, making CX a weighted mean of exp(alpha * a)', false)
    .addOption(
      new Option('--backend <name>', 'scoring engine; auto picks webgpu on a hardware GPU for large jobs, else wasm')
        .choices([...backendChoices])
        .default(defaultChoice),
    )
    .option('--out <file>', 'output file, written to a temporary file and renamed when complete; - for stdout', '-')
    .addOption(new Option('--format <format>', 'output format (default: from the --out extension: .csv, .parquet, .arrow or .feather (Arrow IPC file), .arrows (Arrow IPC stream), else jsonl)').choices(outputFormats))
    .addOption(new Option('--layout <layout>', 'Parquet/Arrow output: "user" writes one row per user with a list of {content_id, score}; "long" writes one row per user and rank').choices(['user', 'long']).default('user'))
    .addOption(new Option('--compression <codec>', 'Parquet output codec (default: zstd)').choices(['zstd', 'snappy', 'none']))
    .option('--matrix <file>', 'also write the U x C float32 cosine matrix to this .npy file (U x C x 4 bytes: small jobs only)')
    .option('--block-users <n>', 'users scored per backend call', parseNumber('block-users'), DEFAULT_BLOCK_USERS)
    .option('--threads <n>', 'threads that score with the wasm backend; 1 scores on the main thread (default: the number of available cores, or 1 for jobs under 4 GFLOP = 2 x U x C x D)', parseNumber('threads'))
    .option('--shard <i/n>', 'score only shard i of n (0 <= i < n): a contiguous range of users, written to OUT.shard-0000i-of-0000n.EXT with a manifest for `attnscore merge`')
    .option('--shard-count <n>', 'score shard i of n, with i from JOB_COMPLETION_INDEX (Kubernetes), AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch) or SLURM_ARRAY_TASK_ID (Slurm)')
    .option('--resume', 'continue a stopped run from the parts saved in OUT.parts; inputs and parameters must be the same', false)
    .option('--part-users <n>', 'users per part file of a resumable run (default: a new part every 60 s)', parseCount('part-users'))
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

/** API parameter names and the options that set them, for messages about parameters. */
const OPTION_NAMES: Readonly<Record<string, string>> = {
  k: '--k',
  alpha: '--alpha',
  beta: '--beta',
  gamma: '--gamma',
  minScore: '--min-score',
  normalizeWeights: '--normalize-weights',
  blockUsers: '--block-users',
  threads: '--threads',
  partUsers: '--part-users',
};

/**
 * Awaits `promise`, renaming a parameter at the start of an invalid-parameter
 * message to its option, so that `minScore must be ...` reads
 * `--min-score must be ...`.
 */
async function withOptionNames<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    if (error instanceof AttnScoreError && error.code === 'INVALID_PARAMETER') {
      const match = /^(\w+) /.exec(error.message);
      const option = match ? OPTION_NAMES[match[1]!] : undefined;
      if (option !== undefined) {
        throw new AttnScoreError(error.code, option + error.message.slice(match![1]!.length), {
          cause: error,
        });
      }
    }
    throw error;
  }
}

/**
 * The maximum thread count of a run. Each worker costs tens of MB and an instance of the
 * kernel, and far more threads than cores only slow the run down.
 */
const MAX_THREADS = 256;

/** Signals that stop a run: Ctrl-C, a polite kill, and a closed terminal. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Rejects an output that is also an input, or the --matrix file under another name, which
 * the final rename would replace.
 */
function checkOutputPaths(options: ScoreCommandOptions, out: string): void {
  if (out === STDOUT_PATH) return;
  const target = canonicalPath(out);
  const inputs = [options.users, options.contents, options.weights, options.userIds, options.contentIds];
  for (const input of inputs) {
    if (input !== undefined && canonicalPath(input) === target) {
      throw new CliExit(EXIT_USAGE, `--out ${JSON.stringify(out)} is also an input (${JSON.stringify(input)}); write the results elsewhere`);
    }
  }
  if (options.matrix !== undefined && canonicalPath(options.matrix) === target) {
    throw new CliExit(EXIT_USAGE, `--matrix and --out name the same file (${JSON.stringify(out)}); give them different names`);
  }
  if (options.matrix !== undefined && inputs.some((input) => input !== undefined && canonicalPath(input) === canonicalPath(options.matrix!))) {
    throw new CliExit(EXIT_USAGE, `--matrix ${JSON.stringify(options.matrix)} is also an input; write the matrix elsewhere`);
  }
}

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
  const format = options.format ?? outputFormatByExtension[extname(options.out).toLowerCase()] ?? 'jsonl';
  checkMatrixPath(options.matrix, options.out);
  const tableOutput = format === 'parquet' || format === 'arrow' || format === 'arrows';
  if (options.compression !== undefined && format !== 'parquet') {
    throw new CliExit(EXIT_USAGE, `--compression applies to Parquet output only; ${format} output is written uncompressed`);
  }
  if (tableOutput && (options.shard !== undefined || options.shardCount !== undefined || options.resume || options.partUsers !== undefined)) {
    throw new CliExit(EXIT_USAGE, `--shard, --shard-count, --resume and --part-users write text parts; use --format jsonl or csv with them (got ${format})`);
  }
  const shard = resolveShard({ shard: options.shard, shardCount: options.shardCount }, process.env);
  if (options.resume && options.out === STDOUT_PATH) {
    throw new CliExit(EXIT_USAGE, '--resume needs --out FILE; results on stdout cannot be resumed');
  }
  if (options.matrix !== undefined && (shard !== undefined || options.resume)) {
    throw new CliExit(EXIT_USAGE, '--matrix cannot be combined with --shard, --shard-count or --resume');
  }
  const out = shard ? shardOutputPath(options.out, shard) : options.out;
  checkOutputPaths(options, out);
  if (options.threads !== undefined && options.threads > MAX_THREADS) {
    throw new CliExit(EXIT_USAGE, `--threads must be at most ${MAX_THREADS} (got ${options.threads})`);
  }
  const run = await withOptionNames(prepareRun({
    users: options.users,
    contents: options.contents,
    usersFormat: options.usersFormat,
    contentsFormat: options.contentsFormat,
    weights: options.weights,
    userIds: options.userIds,
    contentIds: options.contentIds,
    usersColumns: columnOptions(options, false),
    contentsColumns: columnOptions(options, true),
    k: options.k,
    alpha: options.alpha,
    beta: options.beta,
    gamma: options.gamma,
    minScore: options.minScore,
    normalizeWeights: options.normalizeWeights,
    backend: options.backend as BackendChoice,
    matrix: options.matrix !== undefined,
    blockUsers: options.blockUsers,
    threads: options.threads,
  }));
  let output: RunOutput | undefined;
  const abortController = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => abortController.abort(signal);
  for (const signal of STOP_SIGNALS) process.once(signal, onSignal);
  const preview: UserResult[] = [];
  let progress = createProgress(0, false);
  let scoredUsers = 0;
  try {
    const range = shard
      ? shardRange(shard.index, shard.count, run.users.rows)
      : { start: 0, end: run.users.rows };
    output = await withOptionNames(openRunOutput(run, options, format, out, range, shard));
    const todo = output.pending.reduce((sum, part) => sum + part.end - part.start, 0);
    progress = createProgress(todo * run.contents.rows, options.progress);
    for (const pending of output.pending) {
      for await (const block of run.blocks(pending)) {
        abortController.signal.throwIfAborted();
        await output.write(block.start, block.results, block.matrix);
        scoredUsers += block.results.length;
        if (preview.length < options.show) preview.push(...block.results.slice(0, options.show - preview.length));
        progress.update(scoredUsers * run.contents.rows);
      }
    }
    abortController.signal.throwIfAborted();
    // A signal from here on lets the commit finish: the output is complete, and stopping
    // between the two renames would leave one file new and the other old.
    await output.finish();
  } catch (error) {
    await output?.abort(error);
    if (abortController.signal.aborted) {
      const signal = String(abortController.signal.reason) as NodeJS.Signals;
      throw new CliExit(128 + (constants.signals[signal] ?? 2), `stopped by ${signal}; ${output?.kept() ?? `${out} was not written`}`);
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
    const pairs = scoredUsers * run.contents.rows;
    const where = out === STDOUT_PATH ? 'stdout' : out;
    const matrixNote = options.matrix ? ` and the cosine matrix to ${options.matrix}` : '';
    const resumed = output.resumedUsers > 0 ? `, ${output.resumedUsers} users from earlier parts` : '';
    process.stderr.write(
      `scored ${compact(pairs)} pairs (${scoredUsers} users x ${run.contents.rows} contents, ` +
        `${run.contents.dim} dims${resumed}) in ${seconds.toFixed(2)} s, ${compact(pairs / seconds)} pairs/s, ` +
        `backend ${run.backend.name} (${run.backend.variant})` +
        (run.backendReason !== undefined ? `, chosen by ${run.backendReason}` : '') +
        `; wrote ${format} to ${where}${matrixNote}\n`,
    );
  }
  if (preview.length > 0 && out !== STDOUT_PATH) {
    process.stdout.write(`first ${preview.length} results:\n`);
    for (const result of preview) process.stdout.write(formatJsonlLine(result));
  }
}

/** Returns the column options for one input. They apply to both inputs, but only contents take weights. */
function columnOptions(options: ScoreCommandOptions, contents: boolean): ColumnOptions {
  return {
    idColumn: options.idColumn,
    vectorColumn: options.vectorColumn,
    vectorColumns: options.vectorColumns,
    weightColumn: contents ? options.weightColumn : undefined,
  };
}

/** The destination of a run's results: one atomic file (or stdout), or resumable parts. */
interface RunOutput {
  /** Ranges of users still to score, in order. */
  readonly pending: readonly RowRange[];
  /** Users whose results earlier tries saved. */
  readonly resumedUsers: number;
  write(start: number, results: readonly UserResult[], matrix?: Float32Array): Promise<void>;
  finish(): Promise<void>;
  /** Discards unfinished output; parts already saved stay unless `error` is bad input. */
  abort(error: unknown): Promise<void>;
  /** Says what a stopped run kept, for the message. */
  kept(): string;
}

/**
 * Opens the output of a run. A file gets resumable parts in OUT.parts,
 * assembled into OUT at the end; stdout and --matrix runs write one stream.
 */
async function openRunOutput(
  run: PreparedRun,
  options: ScoreCommandOptions,
  format: OutputFormat,
  out: string,
  range: RowRange,
  shard: Shard | undefined,
): Promise<RunOutput> {
  if (out === STDOUT_PATH || options.matrix !== undefined || !isTextFormat(format)) {
    return openStreamOutput(run, options, format, out, range);
  }
  const folder = partsFolder(out);
  if (!options.resume && existsSync(folder)) {
    throw new CliExit(
      EXIT_USAGE,
      `${folder} holds the parts of an earlier run; add --resume to continue it, ` +
        'or delete the folder to start over',
    );
  }
  const identity = await buildRunIdentity({
    inputs: {
      users: options.users,
      contents: options.contents,
      weights: options.weights,
      userIds: options.userIds,
      contentIds: options.contentIds,
    },
    parameters: scoringParameters(run.params, {
      backend: options.backend,
      usersFormat: options.usersFormat ?? null,
      contentsFormat: options.contentsFormat ?? null,
    }),
    outputFormat: format,
    shard,
    totalUsers: run.users.rows,
  });
  const parts = await PartsRun.open(out, identity, {
    blockUsers: options.blockUsers,
    ...(options.partUsers !== undefined ? { partUsers: options.partUsers } : {}),
  });
  const pending = parts.pending();
  const resumedUsers = range.end - range.start - parts.pendingUsers();
  return {
    pending,
    resumedUsers,
    write: (start, results) => parts.append(start, results),
    async finish() {
      await parts.assemble({ outputManifest: shard !== undefined });
    },
    async abort(error) {
      await parts.abort();
      // Parts of bad input are useless (a fixed input no longer matches them), and a folder
      // without parts would only block the next run.
      const badInput = isInputError(error) && error.code !== 'WRITE_FAILED';
      const nothingSaved = parts.manifest.parts.length === 0;
      if (!parts.resumed && (badInput || nothingSaved)) {
        await rm(folder, { recursive: true, force: true });
      }
    },
    kept() {
      const saved = range.end - range.start - parts.pendingUsers();
      if (saved === 0 && !parts.resumed) return `${out} was not written`;
      return (
        `${saved} of ${range.end - range.start} users are saved in ${folder}; ` +
        'run the same command with --resume to continue'
      );
    },
  };
}

function isTextFormat(format: OutputFormat): format is ResultFormat {
  return format === 'jsonl' || format === 'csv';
}

/** Opens one atomic results file (or stdout) and the optional matrix file. */
async function openStreamOutput(
  run: PreparedRun,
  options: ScoreCommandOptions,
  format: OutputFormat,
  out: string,
  range: RowRange,
): Promise<RunOutput> {
  const writer: ResultWriter = await openResultWriter(out, format, {
    layout: options.layout,
    compression: options.compression,
    contentIds: run.contents.ids,
  });
  let matrixWriter: MatrixWriter | undefined;
  try {
    if (options.matrix !== undefined) {
      matrixWriter = await openMatrixWriter(options.matrix, run.users.rows, run.contents.rows);
    }
  } catch (error) {
    await writer.abort();
    throw error;
  }
  return {
    pending: [range],
    resumedUsers: 0,
    async write(_start, results, matrix) {
      await writer.writeBatch(results);
      if (matrixWriter && matrix) await matrixWriter.writeRows(matrix);
    },
    async finish() {
      await matrixWriter?.finish();
      await writer.finish();
    },
    async abort() {
      await Promise.allSettled([writer.abort(), matrixWriter?.abort()]);
    },
    kept: () => (out === STDOUT_PATH ? 'the results on stdout are incomplete' : `${out} was not written`),
  };
}
