import { expect } from 'vitest';
import type { UserResult } from '../../src/scoring/types.js';

/** Tolerances of the engine against the float64 reference. */
export const tolerance = { cosine: 1e-5, cxRelative: 1e-5, loyalty: 1e-6 } as const;

/**
 * Returns the relative CX tolerance for `alpha`. A float32 cosine carries up
 * to about 3e-7 absolute error, and exp(alpha * a) turns an error e in a into
 * a relative error of |alpha| * e, so past |alpha| = 33 the bound grows with
 * |alpha|.
 */
export function cxTolerance(alpha: number): number {
  return Math.max(tolerance.cxRelative, 3e-7 * Math.abs(alpha));
}

/** The reference's view of one user: its top list and every cosine, for near-tie checks. */
export interface ExpectedUser {
  readonly cx: number;
  readonly loyalty: number;
  readonly topIndex: ArrayLike<number>;
  readonly topScore: ArrayLike<number>;
  /** Cosine of content row c for this user, for any c. */
  readonly cosine: (row: number) => number;
  /** The best cosine just outside the list, or -Infinity when there is none. */
  readonly nextScore: number;
  /** The alpha of the run, which sets the CX tolerance. */
  readonly alpha: number;
}

/**
 * Checks one user's result against the reference within the documented
 * precision. A content may differ from the reference's at a rank only when
 * its true cosine lies within the cosine tolerance of the reference's score
 * there (a near tie).
 */
export function expectUserMatches(
  actual: UserResult,
  expected: ExpectedUser,
  rowOf: (content: UserResult['top'][number]['content']) => number,
  label: string,
): void {
  const relativeCx = Math.abs(actual.cx - expected.cx) / Math.max(Math.abs(expected.cx), Number.MIN_VALUE);
  if (!(relativeCx <= cxTolerance(expected.alpha))) {
    expect.fail(`${label}: cx ${actual.cx} vs reference ${expected.cx} (relative error ${relativeCx})`);
  }
  if (!(Math.abs(actual.loyalty - expected.loyalty) <= tolerance.loyalty)) {
    expect.fail(`${label}: loyalty ${actual.loyalty} vs reference ${expected.loyalty}`);
  }
  if (actual.top.length !== expected.topIndex.length) {
    expect.fail(`${label}: ${actual.top.length} matches vs reference ${expected.topIndex.length}`);
  }
  const seen = new Set<number>();
  for (let rank = 0; rank < actual.top.length; rank++) {
    const match = actual.top[rank]!;
    const row = rowOf(match.content);
    const referenceScore = expected.topScore[rank]!;
    if (seen.has(row)) expect.fail(`${label}: content row ${row} appears twice`);
    seen.add(row);
    if (!(Math.abs(match.score - referenceScore) <= tolerance.cosine)) {
      expect.fail(`${label} rank ${rank}: score ${match.score} vs reference ${referenceScore}`);
    }
    if (!(Math.abs(expected.cosine(row) - match.score) <= tolerance.cosine)) {
      expect.fail(`${label} rank ${rank}: row ${row} reported ${match.score}, true cosine ${expected.cosine(row)}`);
    }
    if (row !== expected.topIndex[rank]) {
      const nearTie = Math.abs(expected.cosine(row) - referenceScore) <= tolerance.cosine;
      if (!nearTie) {
        expect.fail(
          `${label} rank ${rank}: row ${row} (cosine ${expected.cosine(row)}) where the reference has ` +
            `row ${expected.topIndex[rank]} (cosine ${referenceScore}), not a near tie`,
        );
      }
    }
  }
  const last = actual.top.length - 1;
  if (last >= 0 && !(actual.top[last]!.score >= expected.nextScore - tolerance.cosine)) {
    expect.fail(`${label}: last score ${actual.top[last]!.score} is below the next best ${expected.nextScore}`);
  }
}
