/**
 * The `attnscore bench` command: time the whole scoring job through score()
 * on seeded synthetic data of a chosen shape, so that a nightly job can be
 * sized on the machine that will run it.
 */
import { availableParallelism, cpus } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { backendNames, defaultBackend, type BackendName } from '../backends/index.js';
import { POOL_MIN_FLOP, score } from '../score.js';
import { resolveParams } from '../scoring/params.js';
import { syntheticMatrix } from '../synthetic.js';
import { CliExit, EXIT_USAGE } from './exit.js';

interface BenchCommandOptions {
  users: number;
  contents: number;
  dim: number;
  k: number;
  backend: BackendName;
  threads?: number;
  runs: number;
  seed: number;
  json: boolean;
}

/** The figures of one benchmark, as printed with --json. */
export interface BenchReport {
  readonly users: number;
  readonly contents: number;
  readonly dim: number;
  readonly k: number;
  readonly backend: string;
  readonly threads: number;
  readonly runs: number;
  readonly medianSeconds: number;
  readonly minSeconds: number;
  readonly maxSeconds: number;
  readonly pairsPerSecond: number;
  /** Effective rate of the dot products: 2 x U x C x D / median seconds / 1e9. */
  readonly gflops: number;
  /** Peak resident set size of the process, worker threads included. */
  readonly peakRssBytes: number;
  readonly machine: { readonly cpu: string; readonly cores: number; readonly node: string };
}

/**
 * The largest users x dims or contents x dims a run may allocate: 2^28
 * float32 values (1 GiB) per side.
 */
const MAX_VALUES = 2 ** 28;

/** Adds `bench` to the program. */
export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description(
      'Time the whole scoring job (cosine, top-k, CX, loyalty) on seeded synthetic data of the given ' +
        'shape and print pairs per second, effective GFLOP/s, the median time and peak RSS.',
    )
    .option('--users <n>', 'users U', positiveInteger('users'), 4096)
    .option('--contents <n>', 'contents C', positiveInteger('contents'), 16384)
    .option('--dim <n>', 'dimensions D of each vector', positiveInteger('dim'), 256)
    .option('--k <n>', 'contents kept per user', positiveInteger('k'), 10)
    .addOption(new Option('--backend <name>', 'scoring engine').choices([...backendNames]).default(defaultBackend))
    .option(
      '--threads <n>',
      'threads of the wasm backend (default: as `score` picks them: every core, or 1 under 4 GFLOP)',
      positiveInteger('threads'),
    )
    .option('--runs <n>', 'timed runs after one warm-up run; the median is reported', positiveInteger('runs'), 5)
    .option('--seed <n>', 'seed of the synthetic data', positiveInteger('seed'), 1)
    .option('--json', 'print the figures as one JSON object', false)
    .action(async (options: BenchCommandOptions) => {
      const report = await runBench(options);
      process.stdout.write(options.json ? `${JSON.stringify(report)}\n` : formatReport(report));
    });
}

async function runBench(options: BenchCommandOptions): Promise<BenchReport> {
  const { users, contents, dim, k, backend, runs } = options;
  for (const [name, rows] of [['users', users], ['contents', contents]] as const) {
    if (rows * dim > MAX_VALUES) {
      throw new CliExit(
        EXIT_USAGE,
        `--${name} ${rows} x --dim ${dim} is ${rows * dim} values; at most ${MAX_VALUES} (1 GiB of float32) fit in one run`,
      );
    }
  }
  resolveParams({ k });
  const flop = 2 * users * contents * dim;
  const threads = backend !== 'wasm' ? 1 : (options.threads ?? (flop < POOL_MIN_FLOP ? 1 : availableParallelism()));
  const userVectors = { data: syntheticMatrix(users, dim, options.seed), rows: users, dim };
  const contentVectors = { data: syntheticMatrix(contents, dim, options.seed + 1), rows: contents, dim };

  // Loaded here rather than at the top, so that other commands do not pay for the import at start.
  const { Bench } = await import('tinybench');
  const bench = new Bench({ iterations: runs, time: 0, warmup: true, warmupIterations: 1, warmupTime: 0, throws: true });
  bench.add('score', async () => {
    await score({ users: userVectors, contents: contentVectors, k, backend, threads });
  });
  await bench.run();
  const result = bench.tasks[0]!.result;
  if (result.state !== 'completed') throw new Error(`the benchmark ended in state ${result.state}`);
  const medianSeconds = result.latency.p50 / 1000;
  return {
    users,
    contents,
    dim,
    k,
    backend,
    threads,
    runs: result.latency.samplesCount,
    medianSeconds,
    minSeconds: result.latency.min / 1000,
    maxSeconds: result.latency.max / 1000,
    pairsPerSecond: (users * contents) / medianSeconds,
    gflops: flop / medianSeconds / 1e9,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    machine: { cpu: cpus()[0]?.model ?? 'unknown CPU', cores: availableParallelism(), node: process.version },
  };
}

/** Formats a report as the lines the command prints without --json. */
export function formatReport(report: BenchReport): string {
  const { machine } = report;
  return [
    `job: ${report.users} users x ${report.contents} contents x ${report.dim} dims, k = ${report.k}, ` +
      `CX and loyalty, backend ${report.backend}, ${report.threads} thread${report.threads === 1 ? '' : 's'}`,
    `machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}`,
    `median: ${report.medianSeconds.toFixed(4)} s over ${report.runs} runs after 1 warm-up ` +
      `(min ${report.minSeconds.toFixed(4)} s, max ${report.maxSeconds.toFixed(4)} s)`,
    `pairs/s: ${(report.pairsPerSecond / 1e6).toFixed(2)} M`,
    `GFLOP/s: ${report.gflops.toFixed(2)} (2 x U x C x D / median)`,
    `peak RSS: ${(report.peakRssBytes / 2 ** 20).toFixed(0)} MiB`,
    '',
  ].join('\n');
}


function positiveInteger(name: string) {
  return (raw: string): number => {
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < 1) {
      throw new InvalidArgumentError(`${name} must be a positive integer (got ${JSON.stringify(raw)})`);
    }
    return value;
  };
}
