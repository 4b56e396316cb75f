/**
 * The `attnscore` command end to end, as a separate process: exit codes,
 * messages, and output files that are complete or absent.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNpy, loadNpy } from './helpers/npy.js';
import { randomMatrix } from './helpers/data.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin', 'attnscore.js');
const sample = join(root, 'sample');
let dir: string;

function attnscore(...args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: dir });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const sampleArgs = [
  '--users', join(sample, 'users.npy'),
  '--user-ids', join(sample, 'user_ids.txt'),
  '--contents', join(sample, 'contents.npy'),
  '--content-ids', join(sample, 'content_ids.txt'),
  '--weights', join(sample, 'content_weights.npy'),
  '--alpha', '1.5', '--beta', '0.001', '--gamma', '-8',
];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'attnscore-cli-'));
  writeFileSync(join(dir, 'users.npy'), encodeNpy(randomMatrix(5, 4, 1), [5, 4]));
  writeFileSync(join(dir, 'contents.npy'), encodeNpy(randomMatrix(9, 4, 2), [9, 4]));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('attnscore score', () => {
  it('scores the sample into JSONL that matches numpy', () => {
    const out = join(dir, 'sample.jsonl');
    const run = attnscore('score', ...sampleArgs, '--k', '10', '--out', out);
    expect(run.stderr).toMatch(/^scored 1\.00M pairs \(500 users x 2000 contents, 100 dims\) in .* backend wasm/);
    expect(run.status).toBe(0);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line));
    expect(lines).toHaveLength(500);
    const fixture = join(root, 'test/fixtures/fashion-sample');
    const cx = loadNpy(join(fixture, 'expected_cx.npy')).data;
    const loyalty = loadNpy(join(fixture, 'expected_loyalty.npy')).data;
    const contentIds = readFileSync(join(sample, 'content_ids.txt'), 'utf8').split('\n');
    const topIndex = loadNpy(join(fixture, 'expected_topk_index.npy')).data;
    lines.forEach((line, u) => {
      expect(Math.abs(line.cx - cx[u]!) / cx[u]!).toBeLessThan(1e-5);
      expect(Math.abs(line.loyalty - loyalty[u]!)).toBeLessThan(1e-6);
      expect(line.top).toHaveLength(10);
    });
    expect(lines[0].user).toBe('user-000000');
    expect(lines[0].top[0].content).toBe(contentIds[topIndex[0]!]);
    expect(lines[13].top.every((m: { score: number }) => m.score === 0)).toBe(true);
    expect(readdirSync(dir).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });

  it('writes CSV with one row per user and rank', () => {
    const out = join(dir, 'sample.csv');
    const run = attnscore('score', ...sampleArgs, '--k', '3', '--out', out);
    expect(run.status).toBe(0);
    const rows = readFileSync(out, 'utf8').trimEnd().split('\n');
    expect(rows[0]).toBe('user,rank,content,score,cx,loyalty');
    expect(rows).toHaveLength(1 + 500 * 3);
    expect(rows[1]).toMatch(/^user-000000,1,t10k-\d{5}-[a-z-]+,0\.\d+,\d/);
  });

  it('writes JSONL to stdout without --out', () => {
    const run = attnscore('score', '--users', 'users.npy', '--contents', 'contents.npy', '--k', '2', '--quiet');
    expect(run.status).toBe(0);
    expect(run.stderr).toBe('');
    const lines = run.stdout.trimEnd().split('\n').map((line) => JSON.parse(line));
    expect(lines.map((line) => line.user)).toEqual([0, 1, 2, 3, 4]);
    expect(lines[0].top).toHaveLength(2);
  });

  it('writes the cosine matrix as .npy', () => {
    const out = join(dir, 'matrix.npy');
    const run = attnscore('score', '--users', 'users.npy', '--contents', 'contents.npy', '--out', join(dir, 'm.jsonl'), '--matrix', out);
    expect(run.status).toBe(0);
    const matrix = loadNpy(out);
    expect(matrix.shape).toEqual([5, 9]);
    for (const value of matrix.data) expect(Math.abs(value)).toBeLessThanOrEqual(1 + 1e-6);
  });

  it('prints help with defaults and units', () => {
    const run = attnscore('score', '--help');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('|alpha| <= 80');
    expect(run.stdout).toMatch(/--k <n>.*\(default: 10\)/s);
    const backendHelp =
      '--backend <name> scoring engine; auto picks webgpu on a hardware GPU for large jobs, else wasm ' +
      '(choices: "auto", "wasm", "js", "webgpu", "gpujs", default: "auto")';
    expect(run.stdout.replace(/\s+/g, ' ')).toContain(backendHelp);
    expect(run.stdout).not.toContain('null');
  });
});

describe('attnscore score output targets', () => {
  const small = ['score', '--users', 'users.npy', '--contents', 'contents.npy', '--quiet'];

  it('follows a symbolic link and keeps permission bits', () => {
    writeFileSync(join(dir, 'private.jsonl'), 'old\n');
    chmodSync(join(dir, 'private.jsonl'), 0o600);
    symlinkSync('private.jsonl', join(dir, 'link.jsonl'));
    const run = attnscore(...small, '--out', 'link.jsonl');
    expect(run.status).toBe(0);
    expect(lstatSync(join(dir, 'link.jsonl')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, 'link.jsonl'))).toBe('private.jsonl');
    expect(statSync(join(dir, 'private.jsonl')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'private.jsonl'), 'utf8').split('\n')).toHaveLength(6);
  });

  it('rejects an output that is an input', () => {
    symlinkSync('contents.npy', join(dir, 'alias.npy'));
    const before = readFileSync(join(dir, 'contents.npy'));
    const run = attnscore(...small, '--out', 'alias.npy');
    expect(run.stderr).toMatch(/--out "alias\.npy" is also an input \("contents\.npy"\)/);
    expect(run.status).toBe(2);
    expect(readFileSync(join(dir, 'contents.npy'))).toEqual(before);
  });

  it('writes into a FIFO instead of replacing it', async () => {
    const fifo = join(dir, 'results.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const reader = spawn('cat', [fifo]);
    const chunks: Buffer[] = [];
    reader.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    const closed = new Promise((resolve) => reader.on('close', resolve));
    const run = attnscore(...small, '--out', fifo);
    await closed;
    expect(run.status).toBe(0);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(Buffer.concat(chunks).toString('utf8').trimEnd().split('\n')).toHaveLength(5);
  });

  it.each([
    ['-', /--matrix needs a file name ending in \.npy, not - \(stdout\)/],
    ['m.txt', /--matrix writes a \.npy file; name it with \.npy \(got "m\.txt"\)/],
    ['same.npy', /--matrix and --out name the same file \("same\.npy"\)/],
  ])('rejects --matrix %s', (matrix, message) => {
    const run = attnscore(...small, '--out', 'same.npy', '--matrix', matrix);
    expect(run.stderr).toMatch(message);
    expect(run.status).toBe(2);
    expect(existsSync(join(dir, 'same.npy'))).toBe(false);
  });

  it('stops quietly when stdout closes early', () => {
    const pipeline = spawnSync(
      'bash',
      ['-c', `"${process.execPath}" "${bin}" score --users users.npy --contents contents.npy --block-users 1 | head -c 10 >/dev/null; echo "\${PIPESTATUS[0]}"`],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(pipeline.stderr).not.toMatch(/EPIPE|error/);
    expect(pipeline.stdout.trim()).toBe('0');
  });

  it('resumes after SIGTERM to the same bytes', async () => {
    writeFileSync(join(dir, 'big-users.npy'), encodeNpy(randomMatrix(6000, 32, 5), [6000, 32]));
    writeFileSync(join(dir, 'big-contents.npy'), encodeNpy(randomMatrix(5000, 32, 6), [5000, 32]));
    const job = ['score', '--users', 'big-users.npy', '--contents', 'big-contents.npy', '--backend', 'js'];
    const parts = ['--block-users', '16', '--part-users', '64'];
    expect(attnscore(...job, '--out', 'full.jsonl', '--quiet').status).toBe(0);

    const child = spawn(process.execPath, [bin, ...job, ...parts, '--out', 'stopped.jsonl'], { cwd: dir });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const status = new Promise<number | null>((resolve) => child.on('close', resolve));
    // Stop once the second part exists, so the first is saved however slowly the process starts.
    const secondPart = join(dir, 'stopped.jsonl.parts', 'part-000001.jsonl');
    for (let waited = 0; waited < 60_000 && !existsSync(secondPart); waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill('SIGTERM');
    expect(await status).toBe(143);
    const saved = /stopped by SIGTERM; (\d+) of 6000 users are saved in stopped\.jsonl\.parts; run the same command with --resume to continue/.exec(stderr);
    expect(saved).not.toBeNull();
    expect(Number(saved![1])).toBeGreaterThan(0);
    expect(Number(saved![1])).toBeLessThan(6000);
    expect(existsSync(join(dir, 'stopped.jsonl'))).toBe(false);

    const again = attnscore(...job, ...parts, '--out', 'stopped.jsonl');
    expect(again.stderr).toMatch(/stopped\.jsonl\.parts holds the parts of an earlier run; add --resume/);
    expect(again.status).toBe(2);

    const changed = attnscore(...job, ...parts, '--out', 'stopped.jsonl', '--resume', '--k', '5');
    expect(changed.stderr).toMatch(/stopped\.jsonl\.parts.*k/);
    expect(changed.status).toBe(2);

    const resumed = attnscore(...job, ...parts, '--out', 'stopped.jsonl', '--resume');
    expect(resumed.stderr).toMatch(new RegExp(`${saved![1]} users from earlier parts`));
    expect(resumed.status).toBe(0);
    expect(readFileSync(join(dir, 'stopped.jsonl'))).toEqual(readFileSync(join(dir, 'full.jsonl')));
    expect(existsSync(join(dir, 'stopped.jsonl.parts'))).toBe(false);
    expect(readdirSync(dir).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });

  it('merges three shards into the bytes of one run', () => {
    const job = ['score', '--users', 'users.npy', '--contents', 'contents.npy', '--k', '4', '--quiet'];
    expect(attnscore(...job, '--out', 'one.csv').status).toBe(0);
    for (let index = 0; index < 3; index++) {
      const env = { JOB_COMPLETION_INDEX: String(index) };
      const run = spawnSync(process.execPath, [bin, ...job, '--out', 'sharded.csv', '--shard-count', '3'], { cwd: dir, env: { ...process.env, ...env }, encoding: 'utf8' });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
    }
    const shards = [0, 1, 2].map((index) => `sharded.shard-0000${index}-of-00003.csv`);
    symlinkSync(shards[0]!, join(dir, 'shard-link.csv'));
    const onto = attnscore('merge', '--out', 'shard-link.csv', ...shards);
    expect(onto.status).toBe(2);
    expect(readFileSync(join(dir, shards[0]!), 'utf8').startsWith('user,rank')).toBe(true);
    const merge = attnscore('merge', '--out', 'merged.csv', ...shards);
    expect(merge.status).toBe(0);
    expect(readFileSync(join(dir, 'merged.csv'))).toEqual(readFileSync(join(dir, 'one.csv')));
    const other = attnscore('score', '--users', 'contents.npy', '--contents', 'contents.npy', '--k', '4', '--quiet', '--out', 'other.csv', '--shard', '1/3');
    expect(other.status).toBe(0);
    const mixed = attnscore('merge', '--out', 'mixed.csv', shards[0]!, 'other.shard-00001-of-00003.csv', shards[2]!);
    expect(mixed.status).toBe(2);
    expect(mixed.stderr).toMatch(/users/);
    expect(existsSync(join(dir, 'mixed.csv'))).toBe(false);
  });
});

describe('attnscore score on bad input', () => {
  const badCases: [string, () => string[], RegExp][] = [
    ['NaN in users', () => [...npy('nan-users.npy', 3, 4, (data) => (data[1 * 4 + 2] = NaN)), '--contents', 'contents.npy'], /nan-users\.npy.*row 1.*column 2.*NaN/],
    ['Infinity in contents', () => ['--users', 'users.npy', ...npy('inf-contents.npy', 9, 4, (data) => (data[8 * 4 + 3] = -Infinity), '--contents')], /inf-contents\.npy.*row 8.*column 3.*-Infinity/],
    ['NaN in a later block of users', () => [...npy('nan-late.npy', 2000, 4, (data) => (data[1500 * 4 + 1] = NaN)), '--contents', 'contents.npy', '--block-users', '256'], /nan-late\.npy: row 1500, column 1 is NaN/],
    ['too many threads', () => ['--users', 'users.npy', '--contents', 'contents.npy', '--threads', '100000'], /--threads must be at most 256 \(got 100000\)/],
    ['dimension mismatch', () => [...npy('dim3.npy', 2, 3), '--contents', 'contents.npy'], /users have 3 dims but contents have 4/],
    ['ragged JSONL', () => [...text('ragged.jsonl', '{"id":"a","vector":[1,2,3,4]}\n{"id":"b","vector":[1,2,3]}\n'), '--contents', 'contents.npy'], /ragged\.jsonl.*line 2/],
    ['ragged CSV', () => [...text('ragged.csv', 'a,1,2,3,4\nb,1,2,3\n'), '--contents', 'contents.npy'], /ragged\.csv.*line 2/],
    ['empty file', () => [...text('empty.jsonl', ''), '--contents', 'contents.npy'], /empty\.jsonl/],
    ['weights of the wrong length', () => ['--users', 'users.npy', '--contents', 'contents.npy', '--weights', write('w.txt', '1\n2\n3\n')], /w\.txt has 3 weights but there are 9 contents/],
    ['NaN weight', () => ['--users', 'users.npy', '--contents', 'contents.npy', '--weights', write('wn.txt', '1\n2\n3\n4\n5\n6\nNaN\n8\n9\n')], /wn\.txt.*row 6/],
    ['k = 0', () => ['--users', 'users.npy', '--contents', 'contents.npy', '--k', '0'], /--k must be a positive integer \(got 0\)/],
    ['min-score above 1', () => ['--users', 'users.npy', '--contents', 'contents.npy', '--min-score', '2'], /--min-score must be a number in \[-1, 1\] or -Infinity \(got 2\)/],
    ['zero weights normalised', () => ['--users', 'users.npy', '--contents', 'contents.npy', '--normalize-weights', '--weights', write('w0.txt', '0\n'.repeat(9))], /--normalize-weights needs weights with a positive sum/],
    ['k = 2.5', () => ['--users', 'users.npy', '--contents', 'contents.npy', '--k', '2.5'], /k must be a positive integer \(got 2\.5\)/],
    ['k not a number', () => ['--users', 'users.npy', '--contents', 'contents.npy', '--k', 'ten'], /k must be a number \(got "ten"\)/],
    ['k in hexadecimal', () => ['--users', 'users.npy', '--contents', 'contents.npy', '--k', '0x10'], /k must be a number \(got "0x10"\)/],
    ['weight beyond float32', () => ['--users', 'users.npy', '--contents', 'contents.npy', '--weights', write('wbig.txt', '1\n1e308\n3\n4\n5\n6\n7\n8\n9\n')], /wbig\.txt line 2 \(row 1\) is 1e\+308; every weight must be a finite number that fits in float32/],
    ['|alpha| > 80', () => ['--users', 'users.npy', '--contents', 'contents.npy', '--alpha', '-80.5'], /\|alpha\| <= 80.*got -80\.5/],
    ['infinite beta', () => ['--users', 'users.npy', '--contents', 'contents.npy', '--beta', 'Infinity'], /beta must be a finite number \(got Infinity\)/],
    ['NaN gamma', () => ['--users', 'users.npy', '--contents', 'contents.npy', '--gamma', 'NaN'], /gamma must be a finite number \(got NaN\)/],
    ['missing file', () => ['--users', 'nope.npy', '--contents', 'contents.npy'], /cannot read nope\.npy/],
    ['truncated .npy', () => ['--users', truncated(), '--contents', 'contents.npy'], /truncated\.npy.*truncated/],
    ['unknown backend', () => ['--users', 'users.npy', '--contents', 'contents.npy', '--backend', 'cuda'], /cuda/],
  ];

  it.each(badCases)('%s exits 2 with one clear line and writes nothing', (_, args, message) => {
    const out = join(dir, 'kept.jsonl');
    writeFileSync(out, 'earlier output\n');
    const fresh = join(dir, 'fresh.jsonl');
    const run = attnscore('score', ...args(), '--out', out);
    expect(run.stderr).toMatch(message);
    expect(run.status).toBe(2);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(readFileSync(out, 'utf8')).toBe('earlier output\n');
    const again = attnscore('score', ...args(), '--out', fresh);
    expect(again.status).toBe(2);
    expect(existsSync(fresh)).toBe(false);
    expect(readdirSync(dir).filter((name) => name.includes('.tmp-'))).toEqual([]);
    expect(readdirSync(dir).filter((name) => name.includes('.parts'))).toEqual([]);
  });
});

function write(name: string, content: string | Buffer): string {
  writeFileSync(join(dir, name), content);
  return name;
}

function text(name: string, content: string): string[] {
  return ['--users', write(name, content)];
}

function npy(name: string, rows: number, dim: number, edit?: (data: Float32Array) => void, flag = '--users'): string[] {
  const data = randomMatrix(rows, dim, rows * 7 + dim);
  edit?.(data);
  return [flag, write(name, encodeNpy(data, [rows, dim]))];
}

function truncated(): string {
  const full = encodeNpy(randomMatrix(5, 4, 9), [5, 4]);
  return write('truncated.npy', full.subarray(0, full.length - 10));
}
