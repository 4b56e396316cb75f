import { describe, expect, it } from 'vitest';
import { formatFloat32, writeFloat32 } from '../src/io/decimal.js';
import { random } from './helpers/data.js';

/** Returns the shortest of 6 to 9 significant digits that reads back, found with toPrecision. */
function expected(value: number): string {
  const single = Math.fround(value);
  let best = Number(single.toPrecision(9));
  for (let count = 8; count >= 6; count--) {
    const shorter = Number(single.toPrecision(count));
    if (Math.fround(shorter) !== single) break;
    best = shorter;
  }
  return String(best);
}

function written(value: number): string {
  const bytes = new Uint8Array(32);
  const end = writeFloat32(bytes, 3, value);
  return Buffer.from(bytes.subarray(3, end)).toString('latin1');
}

function check(values: Iterable<number>): void {
  for (const value of values) {
    const want = expected(value);
    if (formatFloat32(value) !== want || written(value) !== want) {
      expect({ value, text: formatFloat32(value), bytes: written(value) }).toEqual({ value, text: want, bytes: want });
    }
  }
}

function* randomFloat32Bits(count: number, seed: number): Generator<number> {
  const next = random(seed);
  const view = new DataView(new ArrayBuffer(4));
  for (let index = 0; index < count; index++) {
    view.setUint32(0, Math.floor(next() * 2 ** 32));
    const value = view.getFloat32(0);
    if (Number.isFinite(value)) yield value;
  }
}

describe('shortest float32 decimals', () => {
  it('matches toPrecision on random bits', () => {
    check(randomFloat32Bits(200_000, 11));
  });

  it('matches toPrecision on cosines', () => {
    const next = random(12);
    check(Array.from({ length: 200_000 }, () => next() * 2 - 1));
  });

  it('matches toPrecision near powers of ten', () => {
    const values: number[] = [];
    for (let exponent = -40; exponent <= 38; exponent++) {
      const power = Math.fround(10 ** exponent);
      let below = power;
      let above = power;
      for (let step = 0; step < 50; step++) {
        values.push(below, above, -below);
        below = nextFloat32(below, -1);
        above = nextFloat32(above, 1);
      }
    }
    check(values);
  });

  it('matches toPrecision on short decimals', () => {
    const values = [0, -0, 1, -1, 0.5, 0.1, 0.25, 1e-4, 1e6, 123456, 999999, 0.3, 2 ** -149, 3.4028234663852886e38];
    for (let whole = 1; whole < 3000; whole += 7) values.push(whole, whole / 1000, -whole / 7);
    check(values);
    expect(formatFloat32(-0)).toBe('0');
    expect(formatFloat32(0.1)).toBe('0.1');
    expect(formatFloat32(1 / 3)).toBe('0.33333334');
  });
});

/** Returns the float32 next to positive `value` towards `direction` (+1 or -1). */
function nextFloat32(value: number, direction: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, value);
  view.setUint32(0, view.getUint32(0) + direction);
  return view.getFloat32(0);
}
