import { realpathSync } from 'node:fs';
import path from 'node:path';

/**
 * Returns the absolute path that `file` refers to, with symbolic links
 * resolved, so that two names for one file compare equal. A file that does
 * not exist yet resolves through its folder.
 */
export function canonicalPath(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    try {
      return path.join(realpathSync(path.dirname(file)), path.basename(file));
    } catch {
      return path.resolve(file);
    }
  }
}
