import { readFileSync } from 'node:fs';

/**
 * Reads a little-endian C-order `.npy` fixture of dtype `<f4`, `<f8` or `<i4`.
 * Independent of the product's own reader, so fixtures check it too.
 */
export function loadNpy(path: string): { data: Float32Array | Float64Array | Int32Array; shape: number[] } {
  const bytes = readFileSync(path);
  const major = bytes[6]!;
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = bytes.subarray(start, start + headerLength).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)![1]!;
  const shape = /'shape':\s*\(([^)]*)\)/
    .exec(header)![1]!
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const body = bytes.subarray(start + headerLength);
  const copy = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
  if (descr === '<f4') return { data: new Float32Array(copy), shape };
  if (descr === '<f8') return { data: new Float64Array(copy), shape };
  if (descr === '<i4') return { data: new Int32Array(copy), shape };
  throw new Error(`${path}: dtype ${descr} is not supported by the test reader`);
}

/** Encodes a little-endian C-order `.npy` (format 1.0) of float32 or float64 values. */
export function encodeNpy(data: Float32Array | Float64Array, shape: readonly number[]): Buffer {
  const descr = data instanceof Float32Array ? '<f4' : '<f8';
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const prefix = Buffer.alloc(10);
  prefix.write('\x93NUMPY', 0, 'latin1');
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}
