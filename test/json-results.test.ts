import { describe, expect, it } from 'vitest';
import { formatFloat32 } from '../src/io/decimal.js';
import { JsonResultEncoder } from '../src/io/json-results.js';
import type { UserResult } from '../src/scoring/types.js';

const awkwardIds = ['plain', 'with "quotes"', 'back\\slash', 'tab\there', 'line\nbreak', 'ünïcödé', '表情😀', '', 0, 7, -3, 2.5, 1e21];

function resultFor(user: string | number, index: number): UserResult {
  return {
    user,
    cx: 1234.5678 * (index + 1),
    loyalty: 1 / (index + 2),
    top: awkwardIds.map((content, rank) => ({ content, score: Math.fround(0.9 - rank * 0.0713) })),
  };
}

describe('JsonResultEncoder', () => {
  it('round-trips awkward ids and values', () => {
    // A 16-byte start makes the buffer grow many times in the middle of values.
    const encoder = new JsonResultEncoder(16);
    const results = awkwardIds.map(resultFor);
    encoder.ascii('[');
    results.forEach((result, index) => {
      if (index > 0) encoder.ascii(',');
      encoder.result(result);
    });
    const parsed = JSON.parse(encoder.ascii(']').view().toString('utf8')) as UserResult[];
    expect(parsed).toEqual(
      results.map((result) => ({
        ...result,
        top: result.top.map((match) => ({ content: match.content, score: Number(formatFloat32(match.score)) })),
      })),
    );
    for (const [index, result] of parsed.entries()) {
      for (const [rank, match] of result.top.entries()) expect(Math.fround(match.score)).toBe(results[index]!.top[rank]!.score);
    }
  });

  it('resets and keeps key order', () => {
    const encoder = new JsonResultEncoder();
    encoder.result(resultFor('first', 0));
    const text = encoder.reset().result({ user: 'u', cx: 2.5, loyalty: 0.75, top: [{ content: 'c', score: 0.5 }] }).view().toString();
    expect(text).toBe('{"user":"u","cx":2.5,"loyalty":0.75,"top":[{"content":"c","score":0.5}]}');
  });

  it('rejects non-finite numbers', () => {
    const encoder = new JsonResultEncoder();
    expect(() => encoder.result({ user: 'u1', cx: NaN, loyalty: 0.5, top: [] })).toThrow(/u1.*cx/);
    expect(() => encoder.result({ user: 'u2', cx: 1, loyalty: Infinity, top: [] })).toThrow(/u2.*loyalty/);
    expect(() => encoder.result({ user: 'u3', cx: 1, loyalty: 0.5, top: [{ content: 1, score: NaN }] })).toThrow(/u3.*score/);
  });
});
