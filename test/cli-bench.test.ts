/**
 * The `attnscore bench` command as a separate process: figures that agree
 * with each other and with the shape, and exit code 2 for invalid options.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin', 'attnscore.js');

function attnscore(...args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const tinyShape = ['--users', '40', '--contents', '300', '--dim', '24', '--k', '5', '--runs', '3'];

describe('attnscore bench', () => {
  it('reports figures consistent with the shape', () => {
    const run = attnscore('bench', ...tinyShape, '--json');
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({ users: 40, contents: 300, dim: 24, k: 5, backend: 'wasm', runs: 3 });
    // Under 4 GFLOP the default is one thread, as for `attnscore score`.
    expect(report.threads).toBe(1);
    expect(report.medianSeconds).toBeGreaterThan(0);
    expect(report.minSeconds).toBeLessThanOrEqual(report.medianSeconds);
    expect(report.maxSeconds).toBeGreaterThanOrEqual(report.medianSeconds);
    expect(report.pairsPerSecond).toBeCloseTo((40 * 300) / report.medianSeconds, 3);
    expect(report.gflops).toBeCloseTo((2 * 40 * 300 * 24) / report.medianSeconds / 1e9, 6);
    // A Node process with the wasm kernel loaded takes tens of MB; more than 2 GiB here is wrong.
    expect(report.peakRssBytes).toBeGreaterThan(10 * 2 ** 20);
    expect(report.peakRssBytes).toBeLessThan(2 * 2 ** 30);
    expect(report.machine.cores).toBeGreaterThan(0);
  });

  it('prints readable lines with threads and backend', () => {
    const run = attnscore('bench', ...tinyShape, '--backend', 'js');
    expect(run.status).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('job: 40 users x 300 contents x 24 dims, k = 5, CX and loyalty, backend js, 1 thread');
    expect(lines[1]).toMatch(/^machine: .+, \d+ cores, Node v\d+/);
    const median = Number(/^median: ([\d.]+) s over 3 runs after 1 warm-up/.exec(lines[2]!)?.[1]);
    expect(median).toBeGreaterThan(0);
    const pairs = Number(/^pairs\/s: ([\d.]+) M$/.exec(lines[3]!)?.[1]) * 1e6;
    // The printed median is rounded to 0.1 ms, so allow for that in the ratio.
    expect(Math.abs(pairs * median - 40 * 300)).toBeLessThan(40 * 300 * (0.0001 / median + 0.01));
    expect(lines[4]).toMatch(/^GFLOP\/s: [\d.]+ \(2 x U x C x D \/ median\)$/);
    expect(lines[5]).toMatch(/^peak RSS: \d+ MiB$/);
  });

  it('runs the worker pool when threads are given', () => {
    const run = attnscore('bench', ...tinyShape, '--threads', '2', '--json');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout).threads).toBe(2);
  });

  it('rejects invalid options with exit code 2', () => {
    const zero = attnscore('bench', '--users', '0');
    expect(zero.status).toBe(2);
    expect(zero.stderr).toContain('users must be a positive integer (got "0")');
    const huge = attnscore('bench', '--contents', '2000000', '--dim', '1024');
    expect(huge.status).toBe(2);
    expect(huge.stderr).toContain('--contents 2000000 x --dim 1024 is 2048000000 values');
  });
});
