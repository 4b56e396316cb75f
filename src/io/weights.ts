import { extname } from 'node:path';

import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import { parseNumberField } from './common.js';
import { readLines } from './ids.js';
import { openNpy } from './npy.js';

/**
 * Reads one weight per content from a .npy file (1-D, or C x 1, float32 or float64) or from a
 * text file with one number per line. Throws when the count differs from `contents` or a weight
 * is not a finite number, naming the row.
 */
export async function readWeights(path: string, contents: number): Promise<Float64Array> {
  const isNpy = extname(path).toLowerCase() === '.npy';
  const weights = isNpy ? await readNpyWeights(path) : await readTextWeights(path);
  if (weights.length !== contents) {
    throw new AttnScoreError('INVALID_INPUT', messages.weightCount(path, weights.length, contents));
  }
  return weights;
}

async function readNpyWeights(source: string): Promise<Float64Array> {
  const file = await openNpy(source);
  try {
    const { shape } = file.header;
    if (shape.length === 2 && shape[1] !== 1) {
      throw new AttnScoreError(
        'UNSUPPORTED_FORMAT',
        messages.npyRank(source, shape, 'a 1-D array or a single column (C, 1) of weights'),
      );
    }
    const weights = await file.readRowsFloat64(0, file.rows);
    for (let row = 0; row < weights.length; row++) {
      if (!Number.isFinite(Math.fround(weights[row]!))) {
        throw new AttnScoreError(
          'NON_FINITE_VALUE',
          messages.nonFiniteWeight(source, row, weights[row]),
        );
      }
    }
    return weights;
  } finally {
    await file.close();
  }
}

async function readTextWeights(source: string): Promise<Float64Array> {
  const lines = await readLines(source, source);
  const weights = new Float64Array(lines.length);
  for (let row = 0; row < lines.length; row++) {
    const parsed = parseNumberField(lines[row]);
    const value = parsed.kind === 'number' ? parsed.value : undefined;
    if (value === undefined || !Number.isFinite(Math.fround(value))) {
      const shown = parsed.kind === 'invalid' ? parsed.text : (value ?? '');
      const code = parsed.kind === 'number' ? 'NON_FINITE_VALUE' : 'INVALID_INPUT';
      throw new AttnScoreError(
        code,
        messages.weightValue(messages.rowAt(source, row, row + 1), shown),
      );
    }
    weights[row] = value;
  }
  return weights;
}
