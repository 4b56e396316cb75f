import { readFile } from 'node:fs/promises';

import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import { IdRegistry, openForReading, readFailed, stripBom } from './common.js';

/**
 * Reads a UTF-8 text file as lines, accepting `\n` and `\r\n` endings. Empty lines at the end,
 * such as the one that a trailing newline leaves, are dropped.
 */
export async function readLines(path: string, source: string): Promise<string[]> {
  const handle = await openForReading(path, source);
  let text: string;
  try {
    text = await readFile(handle, 'utf8');
  } catch (error) {
    throw readFailed(source, error);
  } finally {
    await handle.close();
  }
  const lines = stripBom(text).split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/**
 * Reads an ids file, one id per line, and checks that it has exactly `rows` ids, none empty and
 * none repeated. Ids are kept exactly as written, without trimming, and are always strings.
 */
export async function readIds(path: string, rows: number): Promise<string[]> {
  const ids = await readLines(path, path);
  const registry = new IdRegistry(path);
  for (let row = 0; row < ids.length; row++) {
    const line = row + 1;
    if (ids[row] === '') {
      throw new AttnScoreError('INVALID_INPUT', messages.emptyId(messages.rowAt(path, row, line)));
    }
    registry.add(ids[row], row, line);
  }
  if (ids.length !== rows) {
    throw new AttnScoreError('INVALID_INPUT', messages.idCount(path, ids.length, rows));
  }
  return ids;
}
