import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import { backendNames, type Backend, type BackendName } from './backend.js';
import { createJsBackend } from './js/index.js';
import { createGpujsBackend } from './gpujs/index.js';
import { createWasmBackend } from './wasm/index.js';

export type { Backend, BackendName, BlockRequest, PreparedContents } from './backend.js';
export { backendNames } from './backend.js';

/** The backend used when none is named: WebAssembly SIMD. */
export const defaultBackend: BackendName = 'wasm';

/** Creates the backend called `name`, rejecting unknown names with the list of known ones. */
export function createBackend(name: string = defaultBackend): Backend {
  if (!isBackendName(name)) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.unknownBackend(name, backendNames));
  }
  switch (name) {
    case 'wasm':
      return createWasmBackend();
    case 'js':
      return createJsBackend();
    case 'gpujs':
      return createGpujsBackend();
  }
}

function isBackendName(name: string): name is BackendName {
  return (backendNames as readonly string[]).includes(name);
}
