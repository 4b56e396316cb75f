import type { Backend, BlockRequest, PreparedContents } from '../backend.js';
import type { BlockScores } from '../../scoring/types.js';
import { prepareReference, scoreReference, type ReferenceContents } from '../../scoring/reference.js';

interface JsPrepared extends PreparedContents {
  readonly reference: ReferenceContents;
}

/**
 * The `js` backend: the float64 reference behind the backend interface. It
 * is the oracle for the other backends and the fallback where WebAssembly
 * SIMD is missing. Expect it to be 30 to 40 times slower than `wasm`.
 */
export function createJsBackend(): Backend {
  return {
    name: 'js',
    variant: 'float64 reference',
    prepare(contents, rows, dim, weights): JsPrepared {
      return { rows, dim, reference: prepareReference(contents, rows, dim, weights), dispose() {} };
    },
    scoreBlock(prepared: PreparedContents, request: BlockRequest): BlockScores {
      return scoreReference((prepared as JsPrepared).reference, request);
    },
    dispose() {},
  };
}
