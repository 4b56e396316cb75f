// Shared pieces of the peer benchmark: the job description, seeded data,
// the float64 reference for a sample of users and the check every peer's
// result must pass before its time counts.
import { writeFileSync } from 'node:fs';
import { npyHeaderBytes } from '../../dist/io/npy.js';

/** Precision a peer must meet against the float64 reference (the project's targets). */
export const TOLERANCE = { cosine: 1e-5, cxRelative: 1e-5, loyalty: 1e-6 };

/** Relative CX tolerance for `alpha`: float32 cosine error of 3e-7 grows by |alpha| through exp. */
export function cxTolerance(alpha) {
  return Math.max(TOLERANCE.cxRelative, 3e-7 * Math.abs(alpha));
}

export { syntheticMatrix as randomMatrix } from '../../dist/synthetic.js';

/** Writes a little-endian float32 `.npy` file of `shape`. */
export function writeNpy(path, data, shape) {
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  writeFileSync(path, Buffer.concat([npyHeaderBytes(shape, '<f4'), body]));
}

/** Loyalty from CX in float64: 1 / (1 + exp(-(beta * CX + gamma))). */
export function loyaltyOf(cx, beta, gamma) {
  return 1 / (1 + Math.exp(-(beta * cx + gamma)));
}

/**
 * Keeps the k best (score, row) pairs of rows offered in ascending order,
 * best first; an equal score never displaces an earlier (lower) row.
 */
export class TopK {
  constructor(k) {
    this.k = k;
    this.count = 0;
    this.scores = new Float64Array(k);
    this.rows = new Int32Array(k);
  }

  reset() {
    this.count = 0;
  }

  offer(score, row) {
    const { k, scores, rows } = this;
    if (this.count === k && !(score > scores[k - 1])) return;
    let at = this.count < k ? this.count++ : k - 1;
    while (at > 0 && score > scores[at - 1]) {
      scores[at] = scores[at - 1];
      rows[at] = rows[at - 1];
      at--;
    }
    scores[at] = score;
    rows[at] = row;
  }

  toRows() {
    return Array.from(this.rows.subarray(0, this.count));
  }
}

/** Returns the unit form of each row in float64 (a zero row stays zero). */
function unitRows64(data, rows, dim) {
  const unit = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let d = 0; d < dim; d++) sum += data[r * dim + d] * data[r * dim + d];
    const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
    for (let d = 0; d < dim; d++) unit[r * dim + d] = data[r * dim + d] * scale;
  }
  return unit;
}

/**
 * Computes the float64 reference for the users in `sampleRows`: every
 * cosine, the sorted top k, CX and loyalty, straight from the definitions.
 */
export function referenceFor(job, users, contents, weights, sampleRows) {
  const { dim } = job;
  const unitContents = unitRows64(contents, job.contents, dim);
  const reference = new Map();
  for (const row of sampleRows) {
    const unitUser = unitRows64(users.subarray(row * dim, (row + 1) * dim), 1, dim);
    const cosine = new Float64Array(job.contents);
    let cx = 0;
    for (let c = 0; c < job.contents; c++) {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += unitUser[d] * unitContents[c * dim + d];
      cosine[c] = dot;
      cx += (weights ? weights[c] : 1) * Math.exp(job.alpha * dot);
    }
    const sorted = Float64Array.from(cosine).sort().reverse();
    const top = sorted.subarray(0, Math.min(job.k, job.contents));
    reference.set(row, { cosine, top, cx, loyalty: loyaltyOf(cx, job.beta, job.gamma) });
  }
  return reference;
}

/**
 * Checks a peer's sampled results against the reference and returns the
 * first mismatch as text, or undefined when every sampled user passes. A
 * content may stand at a rank when its true cosine is within the cosine
 * tolerance of the reference's score at that rank, so near ties pass.
 */
export function checkSample(job, reference, sample) {
  if (sample.rows.length === 0) return 'no sampled user was scored';
  for (let i = 0; i < sample.rows.length; i++) {
    const row = sample.rows[i];
    const expected = reference.get(row);
    if (!expected) return `user ${row} is not in the reference sample`;
    const top = sample.top[i];
    const cx = sample.cx[i];
    const loyalty = sample.loyalty[i];
    if (top.length !== expected.top.length) {
      return `user ${row}: ${top.length} matches, expected ${expected.top.length}`;
    }
    if (new Set(top).size !== top.length) return `user ${row}: a content appears twice in the top list`;
    for (let rank = 0; rank < top.length; rank++) {
      const cosine = expected.cosine[top[rank]];
      if (!(Math.abs(cosine - expected.top[rank]) <= TOLERANCE.cosine)) {
        return (
          `user ${row} rank ${rank}: content ${top[rank]} has cosine ${cosine}, ` +
          `the reference's rank ${rank} has ${expected.top[rank]}`
        );
      }
    }
    const relative = Math.abs(cx - expected.cx) / Math.abs(expected.cx);
    if (!(relative <= cxTolerance(job.alpha))) {
      return `user ${row}: CX ${cx} against ${expected.cx} (relative error ${relative.toExponential(2)})`;
    }
    if (!(Math.abs(loyalty - expected.loyalty) <= TOLERANCE.loyalty)) {
      return `user ${row}: loyalty ${loyalty} against ${expected.loyalty}`;
    }
  }
  return undefined;
}
