/**
 * Named catalogs: contents prepared once on the server's pool backend and
 * shared by every request that scores against them. A catalog that is
 * replaced or deleted while requests still use it is released when the last
 * of them finishes. With a data folder, each catalog is also saved as
 * `NAME.npy` (float32 vectors) and `NAME.json` (ids, weights, creation time)
 * and loaded again when the server starts.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Backend } from '../backends/backend.js';
import { npyHeaderBytes, readNpy } from '../io/npy.js';
import { prepareCatalog, type PreparedCatalog } from '../score.js';
import type { RowId } from '../scoring/types.js';
import type { VectorInput } from '../vectors.js';
import { buildCosineIndex, type CosineIndex } from './pairs.js';
import { problem } from './problems.js';
import { CATALOG_NAME } from './schemas.js';

/** The description of a catalog that `GET /v1/catalogs/{name}` returns. */
export interface CatalogInfo {
  readonly name: string;
  readonly rows: number;
  readonly dim: number;
  /** True when the catalog has weights other than the default 1 each. */
  readonly weighted: boolean;
  /** Ids are row numbers when the upload named none. */
  readonly idType: 'string' | 'number' | 'mixed';
  /** ISO 8601 time of the upload. */
  readonly createdAt: string;
}

/** Contents of a catalog upload, validated by the engine when prepared. */
export interface CatalogUpload {
  readonly vectors: VectorInput;
  readonly weights?: readonly number[];
}

/** A catalog in use by one request; `release` must be called once when it is done. */
export interface CatalogLease {
  readonly catalog: PreparedCatalog;
  readonly index: CosineIndex;
  release(): void;
}

class CatalogEntry {
  readonly info: CatalogInfo;
  readonly catalog: PreparedCatalog;
  private indexCache: CosineIndex | undefined;
  private users = 0;
  private removed = false;

  constructor(info: CatalogInfo, catalog: PreparedCatalog) {
    this.info = info;
    this.catalog = catalog;
  }

  /** The pairs index, built on first use because only `POST /v1/pairs` needs it. */
  get index(): CosineIndex {
    this.indexCache ??= buildCosineIndex(this.catalog.contents);
    return this.indexCache;
  }

  lease(): CatalogLease {
    this.users++;
    let released = false;
    return {
      catalog: this.catalog,
      index: this.index,
      release: () => {
        if (released) return;
        released = true;
        this.users--;
        if (this.removed && this.users === 0) this.catalog.dispose();
      },
    };
  }

  /** Disposes the prepared contents now, or when the last lease is released. */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    if (this.users === 0) this.catalog.dispose();
  }
}

/** The catalogs of one server, prepared on its backend. */
export class CatalogStore {
  private readonly entries = new Map<string, CatalogEntry>();
  /** The last save or delete of each name still running, so that writes of one name queue. */
  private readonly pendingWrites = new Map<string, Promise<unknown>>();
  private readonly backend: Backend;
  private readonly dataDir: string | undefined;
  private readonly logger: Logger;

  constructor(backend: Backend, dataDir: string | undefined, logger: Logger) {
    this.backend = backend;
    this.dataDir = dataDir;
    this.logger = logger;
  }

  /** Number of catalogs. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Validates and prepares `upload` under `name`, saves it when there is a
   * data folder, and replaces any catalog of that name. Returns its
   * description and whether the name is new.
   */
  async put(name: string, upload: CatalogUpload): Promise<{ info: CatalogInfo; created: boolean }> {
    checkName(name);
    const catalog = await prepareCatalog({
      contents: upload.vectors,
      ...(upload.weights ? { weights: upload.weights } : {}),
      backend: this.backend,
    });
    return this.serialized(name, async () => {
      const info = describe(name, catalog, new Date().toISOString());
      try {
        if (this.dataDir !== undefined) await this.save(name, catalog, info);
      } catch (error) {
        catalog.dispose();
        throw error;
      }
      const previous = this.entries.get(name);
      this.entries.set(name, new CatalogEntry(info, catalog));
      previous?.remove();
      return { info, created: previous === undefined };
    });
  }

  /**
   * Runs `task` after every earlier save or delete of `name` has finished.
   * Saving writes two files, so two uploads of one name at once could
   * otherwise leave the vectors of one beside the ids of the other.
   */
  private async serialized<T>(name: string, task: () => Promise<T>): Promise<T> {
    const previous = this.pendingWrites.get(name) ?? Promise.resolve();
    const result = previous.catch(() => undefined).then(task);
    const settled = result.catch(() => undefined);
    this.pendingWrites.set(name, settled);
    try {
      return await result;
    } finally {
      if (this.pendingWrites.get(name) === settled) this.pendingWrites.delete(name);
    }
  }

  /** Descriptions of every catalog, by name. */
  list(): CatalogInfo[] {
    return [...this.entries.values()]
      .map((entry) => entry.info)
      .sort((a, b) => a.name.localeCompare(b.name, 'en'));
  }

  /** Returns the description of `name`, or throws a 404 problem when there is none. */
  describe(name: string): CatalogInfo {
    return this.entry(name).info;
  }

  /** Leases `name` for one request; throws a 404 problem when there is none. */
  lease(name: string): CatalogLease {
    return this.entry(name).lease();
  }

  /** Deletes `name` and its saved files; throws a 404 problem when there is none. */
  async delete(name: string): Promise<void> {
    this.entry(name);
    await this.serialized(name, async () => {
      const entry = this.entry(name);
      // The files go first, so that a folder that cannot be written keeps the catalog
      // both in memory and on disk instead of bringing it back at the next start.
      if (this.dataDir !== undefined) {
        await rm(join(this.dataDir, `${name}.json`), { force: true });
        await rm(join(this.dataDir, `${name}.npy`), { force: true });
      }
      this.entries.delete(name);
      entry.remove();
    });
  }

  /**
   * Loads every catalog saved in the data folder, creating the folder when it
   * is missing. A catalog that fails to load is logged and skipped, so one bad
   * file does not keep the server down.
   */
  async load(): Promise<void> {
    if (this.dataDir === undefined) return;
    await mkdir(this.dataDir, { recursive: true });
    const names = (await readdir(this.dataDir))
      .filter((file) => file.endsWith('.json'))
      .map((file) => file.slice(0, -'.json'.length))
      .filter((name) => CATALOG_NAME.test(name));
    for (const name of names) {
      try {
        await this.loadOne(name);
        this.logger.info({ catalog: name }, 'catalog loaded from the data folder');
      } catch (error) {
        this.logger.error({ err: error, catalog: name }, 'failed to load a saved catalog; skipped');
      }
    }
  }

  /** Releases every catalog, for shutdown. */
  disposeAll(): void {
    for (const entry of this.entries.values()) entry.remove();
    this.entries.clear();
  }

  private entry(name: string): CatalogEntry {
    const entry = this.entries.get(name);
    if (entry === undefined) {
      throw problem(404, 'catalog-not-found', `catalog ${JSON.stringify(name)} does not exist`);
    }
    return entry;
  }

  /** Writes the vectors, then the metadata, each through a temporary file renamed into place. */
  private async save(name: string, catalog: PreparedCatalog, info: CatalogInfo): Promise<void> {
    const dir = this.dataDir!;
    await mkdir(dir, { recursive: true });
    const { contents, weights } = catalog;
    const data = Buffer.from(contents.data.buffer, contents.data.byteOffset, contents.data.byteLength);
    const npy = Buffer.concat([npyHeaderBytes([contents.rows, contents.dim]), data]);
    const meta = {
      ids: contents.ids,
      ...(weights ? { weights: Array.from(weights) } : {}),
      createdAt: info.createdAt,
    };
    await writeAtomically(join(dir, `${name}.npy`), npy);
    await writeAtomically(join(dir, `${name}.json`), JSON.stringify(meta));
  }

  private async loadOne(name: string): Promise<void> {
    const dir = this.dataDir!;
    const meta = JSON.parse(await readFile(join(dir, `${name}.json`), 'utf8')) as {
      ids: RowId[];
      weights?: number[];
      createdAt: string;
    };
    const array = await readNpy(join(dir, `${name}.npy`), { source: `saved catalog ${name}` });
    const catalog = await prepareCatalog({
      contents: { data: array.data, rows: array.rows, dim: array.columns, ids: meta.ids },
      ...(meta.weights ? { weights: meta.weights } : {}),
      backend: this.backend,
    });
    this.entries.set(name, new CatalogEntry(describe(name, catalog, meta.createdAt), catalog));
  }
}

function checkName(name: string): void {
  if (!CATALOG_NAME.test(name)) {
    throw problem(
      400,
      'invalid-catalog-name',
      `catalog name ${JSON.stringify(name)} is invalid; use 1 to 128 letters, digits, ".", "_" ` +
        `or "-", starting with a letter or digit`,
      { value: name, rule: 'catalog_name' },
    );
  }
}

function describe(name: string, catalog: PreparedCatalog, createdAt: string): CatalogInfo {
  const { contents, weights } = catalog;
  const types = new Set(contents.ids.map((id) => typeof id));
  const idType = types.size > 1 ? 'mixed' : types.has('string') ? 'string' : 'number';
  return {
    name,
    rows: contents.rows,
    dim: contents.dim,
    weighted: weights !== undefined && weights.some((weight) => weight !== 1),
    idType,
    createdAt,
  };
}

async function writeAtomically(path: string, data: string | Buffer): Promise<void> {
  const temporary = `${path}.tmp-${randomUUID()}`;
  await writeFile(temporary, data);
  await rename(temporary, path);
}
