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
  const ids: string[] = [];
  await checkIds(path, rows, (id) => ids.push(id));
  return ids;
}

/**
 * Streams an ids file with every check of {@link readIds}, passing each id to `onId` in order
 * instead of keeping it. Memory is one line plus one registry entry per id, which the
 * duplicate check needs.
 */
export async function checkIds(
  path: string,
  rows: number,
  onId?: (id: string) => void,
): Promise<void> {
  const registry = new IdRegistry(path);
  let count = 0;
  // Empty lines are an error only when an id follows them, because trailing ones are dropped.
  let emptyRun = 0;
  for await (const line of streamLines(path, path)) {
    if (line === '') {
      emptyRun++;
      continue;
    }
    if (emptyRun > 0) {
      const at = messages.rowAt(path, count, count + 1);
      throw new AttnScoreError('INVALID_INPUT', messages.emptyId(at));
    }
    registry.add(line, count, count + 1);
    onId?.(line);
    count++;
  }
  if (count !== rows) {
    throw new AttnScoreError('INVALID_INPUT', messages.idCount(path, count, rows));
  }
}

/**
 * Streams the lines of a UTF-8 text file as {@link readLines} splits them: a byte order mark
 * is removed and lines end at `\n` or `\r\n`. Unlike readLines it keeps empty lines at the
 * end, so the last line yielded is the text after the final line break, which is empty when
 * the file ends with one. Throws `READ_FAILED` naming `source`.
 */
export async function* streamLines(
  path: string,
  source: string,
): AsyncGenerator<string, void, undefined> {
  const handle = await openForReading(path, source);
  const stream = handle.createReadStream({ encoding: 'utf8' });
  let rest = '';
  let first = true;
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      let text = rest + chunk;
      if (first) {
        text = stripBom(text);
        first = false;
      }
      let start = 0;
      let newline = text.indexOf('\n', start);
      while (newline !== -1) {
        const carriageReturn = newline > start && text.charCodeAt(newline - 1) === 0x0d;
        yield text.slice(start, carriageReturn ? newline - 1 : newline);
        start = newline + 1;
        newline = text.indexOf('\n', start);
      }
      rest = text.slice(start);
    }
  } catch (error) {
    throw readFailed(source, error);
  } finally {
    stream.destroy();
    await handle.close().catch(() => undefined);
  }
  yield rest;
}
