import { expect } from 'vitest';
import { AttnScoreError } from '../../src/scoring/errors.js';

/** Awaits `promise` and returns the AttnScoreError it rejects with, failing when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<AttnScoreError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(AttnScoreError);
    return error as AttnScoreError;
  }
  throw new Error('expected the promise to reject');
}
