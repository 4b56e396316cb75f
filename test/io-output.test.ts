import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';

import fc from 'fast-check';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AtomicFile } from '../src/io/atomic.js';
import {
  createCsvWriter,
  createJsonlWriter,
  formatScore,
  openResultWriter,
} from '../src/io/writers.js';
import type { UserResult } from '../src/scoring/types.js';
import { rejection } from './helpers/errors.js';

let root: string;
let folderCount = 0;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'attnscore-output-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Creates an empty folder per test, so that leftover temporary files are easy to spot. */
async function folder(): Promise<string> {
  const dir = path.join(root, `case${folderCount++}`);
  await mkdir(dir);
  return dir;
}

/** Collects what is written to a fake standard output. */
function captureStream(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('AtomicFile', () => {
  it('replaces the target on commit', async () => {
    const dir = await folder();
    const target = path.join(dir, 'out.jsonl');
    await writeFile(target, 'old\n');
    const file = await AtomicFile.open(target);
    await file.write('new ');
    await file.write(Buffer.from('data\n'));
    expect(await readFile(target, 'utf8')).toBe('old\n');
    await file.commit();
    expect(await readFile(target, 'utf8')).toBe('new data\n');
    expect(await readdir(dir)).toEqual(['out.jsonl']);
  });

  it('leaves the target untouched on abort', async () => {
    const dir = await folder();
    const target = path.join(dir, 'out.csv');
    await writeFile(target, 'old\n');
    const file = await AtomicFile.open(target);
    expect(path.basename(file.tempPath ?? '')).toMatch(/^\.out\.csv\.tmp-\d+-[0-9a-f]{8}$/);
    expect(path.dirname(file.tempPath ?? '')).toBe(dir);
    await file.write('partial');
    await file.abort();
    await file.abort();
    expect(await readFile(target, 'utf8')).toBe('old\n');
    expect(await readdir(dir)).toEqual(['out.csv']);
  });

  it('creates a new target', async () => {
    const dir = await folder();
    const target = path.join(dir, 'fresh.jsonl');
    const file = await AtomicFile.open(target);
    await file.commit();
    expect(await readFile(target, 'utf8')).toBe('');
    await file.abort();
    expect(await readdir(dir)).toEqual(['fresh.jsonl']);
  });

  it('writes chunks larger than its buffer in order', async () => {
    const dir = await folder();
    const target = path.join(dir, 'large.bin');
    const file = await AtomicFile.open(target);
    const small = Buffer.alloc(1000, 1);
    const large = Buffer.alloc(3 << 20, 2);
    await file.write(small);
    await file.write(large);
    await file.write(small);
    await file.commit();
    const written = await readFile(target);
    expect(written.length).toBe(2000 + (3 << 20));
    expect(written.subarray(0, 1000).equals(small)).toBe(true);
    expect(written.subarray(1000, 1000 + large.length).equals(large)).toBe(true);
    expect(written.subarray(1000 + large.length).equals(small)).toBe(true);
  });

  it('rejects writes after commit', async () => {
    const dir = await folder();
    const target = path.join(dir, 'done.txt');
    const file = await AtomicFile.open(target);
    await file.commit();
    const error = await rejection(file.write('late'));
    expect(error.code).toBe('INTERNAL');
    expect(error.message).toBe(`${target} was already committed`);
  });

  it('rejects a missing folder', async () => {
    const dir = await folder();
    const target = path.join(dir, 'no-such-folder', 'out.jsonl');
    const error = await rejection(AtomicFile.open(target));
    expect(error.code).toBe('WRITE_FAILED');
    expect(error.message).toBe(`cannot write ${target}: no such file or directory`);
  });

  it('rejects a folder as target', async () => {
    const dir = await folder();
    const error = await rejection(AtomicFile.open(dir));
    expect(error.message).toBe(`cannot write ${dir}: is a directory`);
  });

  it('writes - to the given stdout', async () => {
    const { stream, text } = captureStream();
    const file = await AtomicFile.open('-', { stdout: stream });
    expect(file.tempPath).toBeUndefined();
    await file.write('line\n');
    await file.commit();
    expect(text()).toBe('line\n');
  });

  it('waits for a slow stdout to drain', async () => {
    const received: string[] = [];
    const slow = new Writable({
      highWaterMark: 4,
      write(chunk: Buffer, _encoding, callback) {
        received.push(chunk.toString());
        setTimeout(callback, 5);
      },
    });
    const file = await AtomicFile.open('-', { stdout: slow });
    for (let i = 0; i < 5; i++) await file.write(`chunk${i};`);
    await file.commit();
    expect(slow.writableLength).toBe(0);
    expect(received.join('')).toBe('chunk0;chunk1;chunk2;chunk3;chunk4;');
  });

  it('reports a failing stdout', async () => {
    const broken = new Writable({
      highWaterMark: 1,
      write(_chunk, _encoding, callback) {
        callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    broken.on('error', () => undefined);
    const file = await AtomicFile.open('-', { stdout: broken });
    const error = await rejection(file.write('x'));
    expect(error.message).toBe('cannot write -: write EPIPE');
    await file.abort();
  });
});

const results: UserResult[] = [
  {
    user: 'u1',
    cx: 2.5,
    loyalty: 0.75,
    top: [
      { content: 'c,1', score: Math.fround(0.1) },
      { content: 7, score: Math.fround(-0.333333) },
    ],
  },
  { user: 42, cx: 1e-7, loyalty: 0.1 + 0.2, top: [] },
  { user: 'say "hi"', cx: 3, loyalty: 1, top: [{ content: 'line\nbreak', score: 1 }] },
];

describe('JSONL results writer', () => {
  it('writes one object per user', async () => {
    const dir = await folder();
    const target = path.join(dir, 'scores.jsonl');
    const writer = await openResultWriter(target, 'jsonl');
    await writer.writeBatch(results.slice(0, 2));
    await writer.writeBatch(results.slice(2));
    await writer.finish();
    const lines = (await readFile(target, 'utf8')).split('\n');
    expect(lines).toEqual([
      '{"user":"u1","cx":2.5,"loyalty":0.75,"top":[{"content":"c,1","score":0.1},' +
        '{"content":7,"score":-0.333333}]}',
      '{"user":42,"cx":1e-7,"loyalty":0.30000000000000004,"top":[]}',
      '{"user":"say \\"hi\\"","cx":3,"loyalty":1,"top":[{"content":"line\\nbreak","score":1}]}',
      '',
    ]);
    expect(JSON.parse(lines[1])).toEqual({ user: 42, cx: 1e-7, loyalty: 0.1 + 0.2, top: [] });
    expect(await readdir(dir)).toEqual(['scores.jsonl']);
  });

  it('rejects a non-finite cx and keeps the old file', async () => {
    const dir = await folder();
    const target = path.join(dir, 'scores.jsonl');
    await writeFile(target, 'old\n');
    const writer = await openResultWriter(target, 'jsonl');
    const bad: UserResult = { user: 'u9', cx: Infinity, loyalty: 1, top: [] };
    const error = await rejection(writer.writeBatch([bad]));
    expect(error.code).toBe('INTERNAL');
    expect(error.message).toBe(
      'result for user "u9" has cx Infinity, which the output cannot hold; ' +
        'scores, cx and loyalty must be finite',
    );
    await writer.abort();
    expect(await readFile(target, 'utf8')).toBe('old\n');
    expect(await readdir(dir)).toEqual(['scores.jsonl']);
  });

  it('writes to stdout', async () => {
    const { stream, text } = captureStream();
    const writer = createJsonlWriter(await AtomicFile.open('-', { stdout: stream }));
    await writer.writeBatch([results[1]]);
    await writer.finish();
    expect(text()).toBe('{"user":42,"cx":1e-7,"loyalty":0.30000000000000004,"top":[]}\n');
  });
});

describe('CSV results writer', () => {
  it('writes one record per user and rank', async () => {
    const dir = await folder();
    const target = path.join(dir, 'scores.csv');
    const writer = await openResultWriter(target, 'csv');
    await writer.writeBatch(results);
    await writer.finish();
    const text = await readFile(target, 'utf8');
    expect(text).toBe(
      'user,rank,content,score,cx,loyalty\n' +
        'u1,1,"c,1",0.1,2.5,0.75\n' +
        'u1,2,7,-0.333333,2.5,0.75\n' +
        '42,,,,1e-7,0.30000000000000004\n' +
        '"say ""hi""",1,"line\nbreak",1,3,1\n',
    );
    const records = parse(text, { columns: true }) as Record<string, string>[];
    expect(records.map((record) => record.user)).toEqual(['u1', 'u1', '42', 'say "hi"']);
    expect(records[3].content).toBe('line\nbreak');
  });

  it('writes the header for no users', async () => {
    const { stream, text } = captureStream();
    const writer = createCsvWriter(await AtomicFile.open('-', { stdout: stream }));
    await writer.finish();
    expect(text()).toBe('user,rank,content,score,cx,loyalty\n');
  });

  it('leaves the old file on abort', async () => {
    const dir = await folder();
    const target = path.join(dir, 'scores.csv');
    await writeFile(target, 'old\n');
    const writer = await openResultWriter(target, 'csv');
    await writer.writeBatch(results);
    await writer.abort();
    await writer.abort();
    expect(await readFile(target, 'utf8')).toBe('old\n');
    expect(await readdir(dir)).toEqual(['scores.csv']);
  });
});

describe('formatScore', () => {
  it('prints short decimals', () => {
    expect(formatScore(Math.fround(0.1))).toBe('0.1');
    expect(formatScore(0.5)).toBe('0.5');
    expect(formatScore(1)).toBe('1');
    expect(formatScore(-0)).toBe('0');
    expect(formatScore(Math.fround(1e-7))).toBe('1e-7');
    expect(formatScore(Math.fround(0.123456789))).toBe('0.12345679');
    expect(formatScore(Math.fround(1 / 3))).toBe('0.33333334');
  });

  it('rounds float64 to float32', () => {
    expect(formatScore(0.1 + 0.2)).toBe('0.3');
  });

  it('rejects non-finite scores', () => {
    expect(() => formatScore(NaN)).toThrow('cannot format score NaN');
  });

  it('reads back every float32', () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true, noDefaultInfinity: true }), (value) => {
        const text = formatScore(value);
        expect(Math.fround(Number(text))).toBe(value === 0 ? 0 : value);
        const mantissa = Math.abs(Number(text)).toExponential().split('e')[0];
        expect(mantissa.replace('.', '').length).toBeLessThanOrEqual(9);
        // With one digit fewer the text must no longer read back, unless 6 digits already do.
        const digits = mantissa.replace('.', '').length;
        if (digits > 6) {
          expect(Math.fround(Number(value.toPrecision(digits - 1)))).not.toBe(value);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
