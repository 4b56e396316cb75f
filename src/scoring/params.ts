import { AttnScoreError } from './errors.js';
import { messages } from './messages.js';

/** Scoring parameters, all validated by {@link resolveParams}. */
export interface ScoreParams {
  /** Contents kept per user, best first. */
  readonly k: number;
  /** Sharpness of the experience score: each content adds w * exp(alpha * a). */
  readonly alpha: number;
  /** Slope of the loyalty sigmoid. */
  readonly beta: number;
  /** Offset of the loyalty sigmoid. */
  readonly gamma: number;
  /** Contents scoring below this cosine are left out of the top-k list (not of CX). */
  readonly minScore: number;
  /** Divide the weights by their sum, so CX becomes a weighted mean of exp terms. */
  readonly normalizeWeights: boolean;
}

export const defaultParams: ScoreParams = Object.freeze({
  k: 10,
  alpha: 1,
  beta: 1,
  gamma: 0,
  minScore: -Infinity,
  normalizeWeights: false,
});

/** The largest |alpha|: exp(80) is about 5.5e34, inside float32's 3.4e38. */
export const MAX_ABS_ALPHA = 80;

/**
 * Fills defaults and validates each parameter, throwing a `RangeError`-like
 * {@link AttnScoreError} with code `INVALID_PARAMETER` that names the first
 * invalid one.
 */
export function resolveParams(input: Partial<ScoreParams> = {}): ScoreParams {
  const params = { ...defaultParams, ...withoutUndefined(input) };
  const { k, alpha, beta, gamma, minScore, normalizeWeights } = params;
  if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1) {
    throw invalid(messages.positiveInteger('k', k));
  }
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || Math.abs(alpha) > MAX_ABS_ALPHA) {
    throw invalid(messages.alphaRange(alpha));
  }
  if (typeof beta !== 'number' || !Number.isFinite(beta)) {
    throw invalid(messages.finiteNumber('beta', beta));
  }
  if (typeof gamma !== 'number' || !Number.isFinite(gamma)) {
    throw invalid(messages.finiteNumber('gamma', gamma));
  }
  const minScoreValid =
    typeof minScore === 'number' &&
    (minScore === -Infinity || (Number.isFinite(minScore) && minScore >= -1 && minScore <= 1));
  if (!minScoreValid) throw invalid(messages.minScoreRange(minScore));
  if (typeof normalizeWeights !== 'boolean') {
    throw invalid(`normalizeWeights must be true or false (got ${String(normalizeWeights)})`);
  }
  return Object.freeze(params);
}

function invalid(message: string): AttnScoreError {
  return new AttnScoreError('INVALID_PARAMETER', message);
}

function withoutUndefined<T extends object>(input: T): Partial<T> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as Partial<T>;
}
