import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  npyHeaderBytes,
  NpyWriter,
  openMatrixWriter,
  openNpy,
  readNpy,
} from '../src/io/npy.js';
import { rejection } from './helpers/errors.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'attnscore-npy-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface NpyFixture {
  descr: string;
  shape: number[];
  values?: number[];
  fortran?: boolean;
  version?: 1 | 2 | 3;
  /** Bytes of data to drop from the end, to build truncated files. */
  dropBytes?: number;
}

/** Builds .npy bytes by hand from the format description, independently of src/io. */
function buildNpy(fixture: NpyFixture): Buffer {
  const { descr, shape, values = [], fortran = false, version = 1, dropBytes = 0 } = fixture;
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const fortranText = fortran ? 'True' : 'False';
  let dict = `{'descr': '${descr}', 'fortran_order': ${fortranText}, 'shape': ${shapeText}, }`;
  const lengthBytes = version === 1 ? 2 : 4;
  while ((10 + lengthBytes - 2 + dict.length + 1) % 64 !== 0) dict += ' ';
  dict += '\n';
  const prefix = Buffer.alloc(8 + lengthBytes);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]).copy(prefix);
  prefix[6] = version;
  prefix[7] = 0;
  if (version === 1) prefix.writeUInt16LE(dict.length, 8);
  else prefix.writeUInt32LE(dict.length, 8);

  const size = Number(descr.slice(2));
  const data = Buffer.alloc(values.length * size);
  values.forEach((value, index) => {
    const little = descr.startsWith('<');
    if (size === 4 && little) data.writeFloatLE(value, index * 4);
    if (size === 4 && !little) data.writeFloatBE(value, index * 4);
    if (size === 8 && little) data.writeDoubleLE(value, index * 8);
    if (size === 8 && !little) data.writeDoubleBE(value, index * 8);
  });
  const bytes = Buffer.concat([prefix, Buffer.from(dict, 'latin1'), data]);
  return bytes.subarray(0, bytes.length - dropBytes);
}

async function writeNpy(name: string, fixture: NpyFixture): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, buildNpy(fixture));
  return file;
}

const values = [0.1, -2.5, 3, 1e-3, 65504, -0.75];

describe('readNpy round trips', () => {
  const cases: [string, NpyFixture][] = [
    ['float32 v1', { descr: '<f4', shape: [2, 3], values }],
    ['float64 v1', { descr: '<f8', shape: [2, 3], values }],
    ['big-endian float32', { descr: '>f4', shape: [2, 3], values }],
    ['big-endian float64', { descr: '>f8', shape: [3, 2], values }],
    ['float32 v2', { descr: '<f4', shape: [2, 3], values, version: 2 }],
    ['float64 v3', { descr: '<f8', shape: [2, 3], values, version: 3 }],
  ];
  for (const [name, fixture] of cases) {
    it(`reads ${name}`, async () => {
      const file = await writeNpy(`${name.replaceAll(' ', '-')}.npy`, fixture);
      const array = await readNpy(file);
      expect(array.rows).toBe(fixture.shape[0]);
      expect(array.columns).toBe(fixture.shape[1]);
      expect(array.header.dtype).toBe(fixture.descr);
      expect(array.header.version).toEqual([fixture.version ?? 1, 0]);
      expect(Array.from(array.data)).toEqual(values.map(Math.fround));
    });
  }

  it('reads a 1-D array as one column', async () => {
    const file = await writeNpy('vector.npy', { descr: '<f4', shape: [4], values: [1, 2, 3, 4] });
    const array = await readNpy(file);
    expect(array.rows).toBe(4);
    expect(array.columns).toBe(1);
    expect(Array.from(array.data)).toEqual([1, 2, 3, 4]);
  });

  it('ignores bytes after the data', async () => {
    const file = path.join(dir, 'trailing.npy');
    const bytes = buildNpy({ descr: '<f4', shape: [1, 2], values: [1, 2] });
    await writeFile(file, Buffer.concat([bytes, Buffer.alloc(16, 0xff)]));
    const array = await readNpy(file);
    expect(Array.from(array.data)).toEqual([1, 2]);
  });

  it('accepts Fortran order with one column', async () => {
    const fixture = { descr: '<f4', shape: [3, 1], values: [1, 2, 3], fortran: true };
    const file = await writeNpy('fortran-column.npy', fixture);
    const array = await readNpy(file);
    expect(Array.from(array.data)).toEqual([1, 2, 3]);
  });
});

describe('openNpy readRows', () => {
  it('reads a row range with positioned reads', async () => {
    const data = Array.from({ length: 20 }, (_, index) => index);
    const file = await writeNpy('range.npy', { descr: '>f8', shape: [5, 4], values: data });
    const npy = await openNpy(file);
    try {
      expect(npy.rows).toBe(5);
      expect(npy.columns).toBe(4);
      expect(Array.from(await npy.readRows(3, 2))).toEqual(data.slice(12, 20));
      expect(Array.from(await npy.readRows(1, 1))).toEqual(data.slice(4, 8));
      expect(Array.from(await npy.readRows(5, 0))).toEqual([]);
      expect(Array.from(await npy.readRowsFloat64(0, 1))).toEqual(data.slice(0, 4));
    } finally {
      await npy.close();
    }
  });

  it('reads across chunk boundaries', async () => {
    // 2100 rows of 2048 float32 values are 17.2 MB, more than one 16 MiB chunk.
    const rows = 2100;
    const columns = 2048;
    const header = buildNpy({ descr: '>f4', shape: [rows, columns] });
    const data = Buffer.alloc(rows * columns * 4);
    for (let row = 0; row < rows; row++) data.writeFloatBE(row, row * columns * 4);
    const file = path.join(dir, 'large.npy');
    await writeFile(file, Buffer.concat([header, data]));

    const array = await readNpy(file);
    expect(array.data[2099 * columns]).toBe(2099);
    expect(array.data[2099 * columns + 1]).toBe(0);
    expect(array.data[2048 * columns]).toBe(2048);

    data.writeFloatBE(NaN, (2099 * columns + 5) * 4);
    await writeFile(file, Buffer.concat([header, data]));
    const error = await rejection(readNpy(file));
    expect(error.message).toBe(
      `${file}: row 2099, column 5 is NaN; every value must be a finite number`,
    );
  });

  it('rejects rows past the end', async () => {
    const file = await writeNpy('range-end.npy', { descr: '<f4', shape: [2, 1], values: [1, 2] });
    const npy = await openNpy(file);
    try {
      const error = await rejection(npy.readRows(1, 2));
      expect(error.code).toBe('INTERNAL');
      expect(error.message).toBe(`cannot read rows 1 to 2 of ${file}, which has 2 rows`);
    } finally {
      await npy.close();
    }
  });

  it('names row and column of a NaN in a later range', async () => {
    const data = [1, 2, 3, 4, 5, NaN];
    const file = await writeNpy('range-nan.npy', { descr: '<f4', shape: [3, 2], values: data });
    const npy = await openNpy(file);
    try {
      expect(Array.from(await npy.readRows(0, 2))).toEqual([1, 2, 3, 4]);
      const error = await rejection(npy.readRows(2, 1));
      expect(error.message).toBe(
        `${file}: row 2, column 1 is NaN; every value must be a finite number`,
      );
    } finally {
      await npy.close();
    }
  });

  it('accepts a custom source name', async () => {
    const file = await writeNpy('named.npy', { descr: '<f4', shape: [1, 1], values: [Infinity] });
    const error = await rejection(readNpy(file, { source: 'users.npy' }));
    expect(error.message).toBe(
      'users.npy: row 0, column 0 is Infinity; every value must be a finite number',
    );
  });
});

describe('readNpy rejections', () => {
  const nonFinite: [string, string, number][] = [
    ['<f4', 'NaN', NaN],
    ['>f4', '-Infinity', -Infinity],
    ['<f8', 'Infinity', Infinity],
    ['>f8', 'NaN', NaN],
  ];
  for (const [descr, shown, value] of nonFinite) {
    it(`rejects ${shown} in ${descr}`, async () => {
      const data = [0, 1, 2, 3, value, 5];
      const order = descr.startsWith('<') ? 'le' : 'be';
      const name = `bad-${order}${descr.slice(1)}-${shown}.npy`;
      const file = await writeNpy(name, { descr, shape: [2, 3], values: data });
      const error = await rejection(readNpy(file));
      expect(error.code).toBe('NON_FINITE_VALUE');
      expect(error.message).toBe(
        `${file}: row 1, column 1 is ${shown}; every value must be a finite number`,
      );
    });
  }

  it('rejects float64 outside the float32 range', async () => {
    const fixture = { descr: '<f8', shape: [1, 3], values: [0, 0, -1e39] };
    const file = await writeNpy('overflow.npy', fixture);
    const error = await rejection(readNpy(file));
    expect(error.code).toBe('NON_FINITE_VALUE');
    expect(error.message).toBe(
      `${file}: row 0, column 2 is -1e+39, outside the float32 range (|x| <= 3.4028235e38); ` +
        'every value must fit in float32',
    );
  });

  it('accepts float64 that rounds to the largest float32', async () => {
    const largest = 3.4028234663852886e38;
    const file = await writeNpy('largest.npy', { descr: '<f8', shape: [1, 1], values: [largest] });
    const array = await readNpy(file);
    expect(array.data[0]).toBe(largest);
  });

  it('rejects an unsupported dtype', async () => {
    const file = await writeNpy('int64.npy', { descr: '<i8', shape: [1, 1] });
    const error = await rejection(readNpy(file));
    expect(error.code).toBe('UNSUPPORTED_FORMAT');
    expect(error.message).toBe(
      `${file} has dtype '<i8' (int64); expected float32 or float64 ` +
        "('<f4', '<f8', '>f4' or '>f8'). Convert the array with arr.astype(numpy.float32) " +
        'before saving it',
    );
  });

  it('rejects float16 naming it', async () => {
    const file = await writeNpy('half.npy', { descr: '<f2', shape: [1, 1] });
    const error = await rejection(readNpy(file));
    expect(error.message).toContain("has dtype '<f2' (float16);");
  });

  it('rejects Fortran order', async () => {
    const file = await writeNpy('fortran.npy', {
      descr: '<f4',
      shape: [2, 3],
      values,
      fortran: true,
    });
    const error = await rejection(readNpy(file));
    expect(error.code).toBe('UNSUPPORTED_FORMAT');
    expect(error.message).toBe(
      `${file} is stored in Fortran (column-major) order; ` +
        'save numpy.ascontiguousarray(arr) instead',
    );
  });

  it('rejects rank 3', async () => {
    const file = await writeNpy('rank3.npy', { descr: '<f4', shape: [1, 1, 1], values: [1] });
    const error = await rejection(readNpy(file));
    expect(error.message).toBe(`${file} has shape (1, 1, 1); expected a 1-D or 2-D array`);
  });

  it('rejects a truncated file', async () => {
    const file = await writeNpy('truncated.npy', {
      descr: '<f4',
      shape: [2, 3],
      values,
      dropBytes: 5,
    });
    const error = await rejection(readNpy(file));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe(
      `${file} is truncated: shape (2, 3) of dtype '<f4' needs 24 bytes of data ` +
        'but the file has 19',
    );
  });

  it('rejects bad magic', async () => {
    const file = path.join(dir, 'text.npy');
    await writeFile(file, 'id,x\nu1,0.5\n');
    const error = await rejection(readNpy(file));
    expect(error.code).toBe('UNSUPPORTED_FORMAT');
    expect(error.message).toBe(
      `${file} is not a .npy file: it does not start with the bytes \\x93NUMPY`,
    );
  });

  it('rejects an unknown version', async () => {
    const file = path.join(dir, 'version4.npy');
    const bytes = buildNpy({ descr: '<f4', shape: [1, 1], values: [1] });
    bytes[6] = 4;
    await writeFile(file, bytes);
    const error = await rejection(readNpy(file));
    expect(error.message).toBe(
      `${file} uses .npy format version 4.0; supported versions are 1.0, 2.0 and 3.0`,
    );
  });

  it('rejects a header without shape', async () => {
    const file = path.join(dir, 'no-shape.npy');
    const dict = "{'descr': '<f4', 'fortran_order': False, }".padEnd(53) + '\n';
    const prefix = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, dict.length, 0]);
    await writeFile(file, Buffer.concat([prefix, Buffer.from(dict, 'latin1')]));
    const error = await rejection(readNpy(file));
    expect(error.message).toBe(`${file} has an invalid .npy header: the 'shape' entry is missing`);
  });

  it('rejects a header longer than the file', async () => {
    const file = path.join(dir, 'short-header.npy');
    const prefix = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0xff, 0]);
    await writeFile(file, Buffer.concat([prefix, Buffer.from("{'descr'")]));
    const error = await rejection(readNpy(file));
    expect(error.message).toBe(
      `${file} has an invalid .npy header: the header length 255 runs past the end of the file`,
    );
  });

  it('rejects an empty file', async () => {
    const file = path.join(dir, 'empty.npy');
    await writeFile(file, '');
    const error = await rejection(readNpy(file));
    expect(error.code).toBe('EMPTY_INPUT');
    expect(error.message).toBe(`${file} has no rows; at least one vector is required`);
  });

  it('rejects a missing file', async () => {
    const file = path.join(dir, 'missing.npy');
    const error = await rejection(readNpy(file));
    expect(error.code).toBe('READ_FAILED');
    expect(error.message).toBe(`cannot read ${file}: no such file or directory`);
  });

  it('rejects a directory', async () => {
    const error = await rejection(readNpy(dir));
    expect(error.code).toBe('READ_FAILED');
    expect(error.message).toBe(`cannot read ${dir}: is a directory`);
  });
});

describe('NpyWriter', () => {
  it('writes blocks that read back', async () => {
    const target = path.join(dir, 'matrix.npy');
    const writer = await NpyWriter.open(target, 3, 2);
    const block = new Float32Array([1, 2, 3, 4]);
    await writer.writeRows(block);
    block.fill(0); // the writer must not keep a reference to the caller's buffer
    await writer.writeRows(new Float32Array([5.5, -6]));
    expect(writer.rowsWritten).toBe(3);
    await writer.finish();

    const array = await readNpy(target);
    expect(array.header.version).toEqual([1, 0]);
    expect(array.header.dataOffset % 64).toBe(0);
    expect(array.rows).toBe(3);
    expect(array.columns).toBe(2);
    expect(Array.from(array.data)).toEqual([1, 2, 3, 4, 5.5, -6]);
    expect((await readdir(dir)).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });

  it('rejects a short matrix and writes nothing', async () => {
    const target = path.join(dir, 'short-matrix.npy');
    await writeFile(target, 'earlier output');
    const writer = await NpyWriter.open(target, 3, 2);
    await writer.writeRows(new Float32Array([1, 2]));
    const error = await rejection(writer.finish());
    expect(error.message).toBe(`${target} was declared with 3 rows but 1 were written`);
    expect(await readFile(target, 'utf8')).toBe('earlier output');
    expect((await readdir(dir)).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });

  it('rejects a partial row', async () => {
    const target = path.join(dir, 'partial-row.npy');
    const writer = await NpyWriter.open(target, 3, 2);
    const error = await rejection(writer.writeRows(new Float32Array([1, 2, 3])));
    expect(error.message).toBe(
      `block of 3 values written to ${target} is not a whole number of 2-column rows`,
    );
    await writer.abort();
  });

  it('rejects rows beyond the declared count', async () => {
    const target = path.join(dir, 'extra-rows.npy');
    const writer = await NpyWriter.open(target, 1, 2);
    const error = await rejection(writer.writeRows(new Float32Array([1, 2, 3, 4])));
    expect(error.message).toBe(`${target} was declared with 1 rows but 2 were written`);
    await writer.abort();
  });

  it('opens through openMatrixWriter', async () => {
    const target = path.join(dir, 'matrix-writer.npy');
    const writer = await openMatrixWriter(target, 1, 3);
    await writer.writeRows(new Float32Array([0.25, 0.5, 1]));
    await writer.finish();
    expect(Array.from((await readNpy(target)).data)).toEqual([0.25, 0.5, 1]);
  });

  it('switches to version 2.0 for a long header', () => {
    const shape = Array.from({ length: 30000 }, () => 1);
    const bytes = npyHeaderBytes(shape);
    expect(bytes[6]).toBe(2);
    expect(bytes.length % 64).toBe(0);
    expect(bytes.readUInt32LE(8) + 12).toBe(bytes.length);
  });
});

/** True when python3 with numpy can run, for the fixtures that numpy itself writes. */
function hasNumpy(): boolean {
  try {
    execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!hasNumpy())('numpy interoperability', () => {
  function python(script: string): string {
    return execFileSync('python3', ['-c', script, dir], { encoding: 'utf8' });
  }

  it('reads files that numpy writes', async () => {
    python(`
import sys, numpy as np
from numpy.lib import format
d = sys.argv[1]
a = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
np.save(d + '/np-f8.npy', a)
np.save(d + '/np-f4.npy', a.astype(np.float32))
np.save(d + '/np-be.npy', a.astype('>f4'))
with open(d + '/np-v2.npy', 'wb') as f:
    format.write_array(f, a.astype(np.float32), version=(2, 0))
np.save(d + '/np-1d.npy', np.array([1.5, 2.5], dtype=np.float32))
np.save(d + '/np-fortran.npy', np.asfortranarray(a))
np.save(d + '/np-int.npy', np.arange(4, dtype=np.int32).reshape(2, 2))
`);
    const expected = Array.from({ length: 12 }, (_, index) => Math.fround(index / 7));
    for (const name of ['np-f8', 'np-f4', 'np-be', 'np-v2']) {
      const array = await readNpy(path.join(dir, `${name}.npy`));
      expect(array.rows).toBe(3);
      expect(array.columns).toBe(4);
      expect(Array.from(array.data)).toEqual(expected);
    }
    const vector = await readNpy(path.join(dir, 'np-1d.npy'));
    expect(Array.from(vector.data)).toEqual([1.5, 2.5]);

    const fortran = await rejection(readNpy(path.join(dir, 'np-fortran.npy')));
    expect(fortran.message).toContain('Fortran (column-major) order');
    const int = await rejection(readNpy(path.join(dir, 'np-int.npy')));
    expect(int.message).toContain("has dtype '<i4' (int32);");
  });

  it('writes files that numpy reads', async () => {
    const writer = await NpyWriter.open(path.join(dir, 'for-numpy.npy'), 2, 3);
    await writer.writeRows(new Float32Array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]));
    await writer.finish();
    const output = python(`
import sys, numpy as np
a = np.load(sys.argv[1] + '/for-numpy.npy')
print(a.dtype, a.shape, a.flags['C_CONTIGUOUS'], a.tolist())
`);
    const expected = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6].map(Math.fround);
    const rows = `[${expected.slice(0, 3).join(', ')}], [${expected.slice(3).join(', ')}]`;
    expect(output.trim()).toBe(`float32 (2, 3) True [${rows}]`);
  });
});
