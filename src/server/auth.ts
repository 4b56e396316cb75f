/** Bearer-key access control for the /v1 routes. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { problem } from './problems.js';

/**
 * Returns middleware that requires `Authorization: Bearer KEY` with one of
 * `keys`. Keys are compared as SHA-256 digests with `timingSafeEqual`, so the
 * comparison time depends on neither the key's length nor its content, and
 * every key is compared so the time does not reveal which one matched.
 */
export function requireBearerKey(keys: readonly string[]): RequestHandler {
  const digests = keys.map(digest);
  return (request, _response, next) => {
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      next(unauthorized('missing bearer key; send "Authorization: Bearer KEY"'));
      return;
    }
    const given = digest(match[1]!);
    let accepted = false;
    for (const expected of digests) accepted = timingSafeEqual(given, expected) || accepted;
    next(accepted ? undefined : unauthorized('the bearer key is not valid'));
  };
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

function unauthorized(detail: string): Error {
  return problem(401, 'unauthorized', detail, {}, { 'WWW-Authenticate': 'Bearer realm="attnscore"' });
}
