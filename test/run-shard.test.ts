/** Shards: ranges, `--shard I/N` parsing, and the index taken from batch schedulers' variables. */
import { describe, expect, it } from 'vitest';

import {
  parseShard,
  resolveShard,
  shardOutputPath,
  shardRange,
  type Shard,
} from '../src/run/shard.js';
import { AttnScoreError } from '../src/scoring/errors.js';

function thrown(action: () => unknown): AttnScoreError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(AttnScoreError);
    return error as AttnScoreError;
  }
  throw new Error('expected an error');
}

describe('shardRange', () => {
  it('covers every row exactly once', () => {
    for (let count = 1; count <= 7; count++) {
      for (let rows = 0; rows <= 50; rows++) {
        const hits = new Array<number>(rows).fill(0);
        let next = 0;
        for (let index = 0; index < count; index++) {
          const { start, end } = shardRange(index, count, rows);
          expect(start).toBe(next);
          expect(end).toBeGreaterThanOrEqual(start);
          expect(end - start).toBeGreaterThanOrEqual(Math.floor(rows / count));
          expect(end - start).toBeLessThanOrEqual(Math.ceil(rows / count));
          for (let row = start; row < end; row++) hits[row]++;
          next = end;
        }
        expect(next).toBe(rows);
        expect(hits.every((hit) => hit === 1)).toBe(true);
      }
    }
  });

  it('follows the floor formula', () => {
    expect(shardRange(0, 3, 10)).toEqual({ start: 0, end: 3 });
    expect(shardRange(1, 3, 10)).toEqual({ start: 3, end: 6 });
    expect(shardRange(2, 3, 10)).toEqual({ start: 6, end: 10 });
  });

  it('rejects an index outside the shards', () => {
    expect(thrown(() => shardRange(3, 3, 10)).code).toBe('INVALID_PARAMETER');
    expect(thrown(() => shardRange(-1, 3, 10)).code).toBe('INVALID_PARAMETER');
    expect(thrown(() => shardRange(0, 0, 10)).code).toBe('INVALID_PARAMETER');
    expect(thrown(() => shardRange(0, 2, -1)).code).toBe('INVALID_PARAMETER');
  });
});

describe('parseShard', () => {
  it('reads I/N', () => {
    expect(parseShard('0/1')).toEqual({ index: 0, count: 1 });
    expect(parseShard('6/7')).toEqual({ index: 6, count: 7 });
    expect(parseShard(' 2 / 8 ')).toEqual({ index: 2, count: 8 });
  });

  const bad: [string, string][] = [
    ['3', '--shard must look like I/N, such as 0/4, with 0 <= I < N (got "3")'],
    ['1/2/3', '--shard must look like I/N, such as 0/4, with 0 <= I < N (got "1/2/3")'],
    ['-1/4', '--shard must look like I/N, such as 0/4, with 0 <= I < N (got "-1/4")'],
    ['a/4', '--shard must look like I/N, such as 0/4, with 0 <= I < N (got "a/4")'],
    ['4/4', 'shard index 4 (from --shard) is outside 0..3 for 4 shards'],
    ['0/0', 'shard count must be a positive integer (got 0)'],
  ];
  for (const [text, message] of bad) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      const error = thrown(() => parseShard(text));
      expect(error.code).toBe('INVALID_PARAMETER');
      expect(error.message).toBe(message);
    });
  }
});

describe('resolveShard', () => {
  it('returns undefined without shard options', () => {
    expect(resolveShard({}, { JOB_COMPLETION_INDEX: '2' })).toBeUndefined();
  });

  it('takes --shard over the environment', () => {
    expect(resolveShard({ shard: '1/4' }, { JOB_COMPLETION_INDEX: '2' })).toEqual({
      index: 1,
      count: 4,
    });
  });

  const engines: [string, Record<string, string>, Shard][] = [
    ['a Kubernetes Indexed Job', { JOB_COMPLETION_INDEX: '3' }, { index: 3, count: 5 }],
    ['an AWS Batch array job', { AWS_BATCH_JOB_ARRAY_INDEX: '0' }, { index: 0, count: 5 }],
    ['a Slurm array from 0', { SLURM_ARRAY_TASK_ID: '4' }, { index: 4, count: 5 }],
    [
      'a Slurm array from 1',
      { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '1' },
      { index: 4, count: 5 },
    ],
    [
      'a Slurm array from 10',
      { SLURM_ARRAY_TASK_ID: '10', SLURM_ARRAY_TASK_MIN: '10' },
      { index: 0, count: 5 },
    ],
  ];
  for (const [name, env, shard] of engines) {
    it(`reads the index of ${name}`, () => {
      expect(resolveShard({ shardCount: 5 }, env)).toEqual(shard);
      expect(resolveShard({ shardCount: '5' }, env)).toEqual(shard);
    });
  }

  it('reads the variables in a fixed order', () => {
    const env = { SLURM_ARRAY_TASK_ID: '1', JOB_COMPLETION_INDEX: '2' };
    expect(resolveShard({ shardCount: 4 }, env)).toEqual({ index: 2, count: 4 });
  });

  it('skips empty variables', () => {
    const env = { JOB_COMPLETION_INDEX: '', AWS_BATCH_JOB_ARRAY_INDEX: '1' };
    expect(resolveShard({ shardCount: 4 }, env)).toEqual({ index: 1, count: 4 });
  });

  it('rejects --shard with --shard-count', () => {
    const error = thrown(() => resolveShard({ shard: '0/2', shardCount: 2 }, {}));
    expect(error.code).toBe('INVALID_PARAMETER');
    expect(error.message).toMatch(/^--shard and --shard-count were both given/);
  });

  it('rejects --shard-count without an index variable', () => {
    const error = thrown(() => resolveShard({ shardCount: 3 }, {}));
    expect(error.message).toBe(
      '--shard-count 3 takes the shard index from JOB_COMPLETION_INDEX, ' +
        'AWS_BATCH_JOB_ARRAY_INDEX, SLURM_ARRAY_TASK_ID, but none of them is set; ' +
        'give --shard I/N instead',
    );
  });

  it('rejects an index beyond the count', () => {
    const error = thrown(() => resolveShard({ shardCount: 3 }, { JOB_COMPLETION_INDEX: '3' }));
    expect(error.message).toBe(
      'shard index 3 (from JOB_COMPLETION_INDEX=3) is outside 0..2 for 3 shards',
    );
  });

  it('names SLURM_ARRAY_TASK_MIN in a range error', () => {
    const env = { SLURM_ARRAY_TASK_ID: '9', SLURM_ARRAY_TASK_MIN: '1' };
    const error = thrown(() => resolveShard({ shardCount: 8 }, env));
    expect(error.message).toBe(
      'shard index 8 (from SLURM_ARRAY_TASK_ID=9 minus SLURM_ARRAY_TASK_MIN=1) ' +
        'is outside 0..7 for 8 shards',
    );
  });

  it('rejects a variable that is not a whole number', () => {
    const error = thrown(() => resolveShard({ shardCount: 3 }, { AWS_BATCH_JOB_ARRAY_INDEX: 'x' }));
    expect(error.message).toBe('AWS_BATCH_JOB_ARRAY_INDEX is "x"; expected a whole number >= 0');
  });

  it('rejects a bad shard count', () => {
    for (const shardCount of [0, '0', 'four', 2.5]) {
      const error = thrown(() => resolveShard({ shardCount }, { JOB_COMPLETION_INDEX: '0' }));
      expect(error.code).toBe('INVALID_PARAMETER');
      expect(error.message).toMatch(/^--shard-count must be a positive integer/);
    }
  });
});

describe('shardOutputPath', () => {
  it('inserts the shard before the extension', () => {
    const shard = { index: 2, count: 8 };
    expect(shardOutputPath('/data/out/scores.jsonl', shard)).toBe(
      '/data/out/scores.shard-00002-of-00008.jsonl',
    );
    expect(shardOutputPath('scores', shard)).toBe('scores.shard-00002-of-00008');
    expect(shardOutputPath('-', shard)).toBe('-');
  });
});
