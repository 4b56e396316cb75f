/**
 * The HTTP server: an Express 5 app over one scoring backend (a piscina
 * worker pool by default), with named catalogs, a bounded request queue,
 * per-request timeouts, bearer keys, pino request logs and Prometheus
 * metrics. {@link startServer} binds it; `close` drains it.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { pino, type Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { Backend } from '../backends/backend.js';
import { JsonResultEncoder } from '../io/json-results.js';
import { createPoolBackend } from '../pool/index.js';
import { openBackend } from '../backends/index.js';
import { prepareCatalog, scoreCatalogBlocks, type PreparedCatalog } from '../score.js';
import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import type { UserResult } from '../scoring/types.js';
import { toVectorSet, type VectorInput } from '../vectors.js';
import { requireBearerKey } from './auth.js';
import { ARROW_TYPE, encodeArrowResults, NPY_TYPE, parseArrowBody, parseNpyBody, parseRawBody, RAW_TYPE } from './binary.js';
import { CatalogStore, type CatalogUpload } from './catalogs.js';
import type { ServerConfig } from './config.js';
import { createMetrics, type ServerMetrics } from './metrics.js';
import { buildOpenApi } from './openapi.js';
import { buildCosineIndex, scorePairs } from './pairs.js';
import { problem, ProblemError, sendProblem, toProblemError } from './problems.js';
import { QueueFullError, RequestQueue } from './queue.js';
import {
  catalogScoreSchema,
  queryParametersSchema,
  contentSetSchema,
  inlineScoreSchema,
  pairsSchema,
  parseBody,
  type CatalogScoreBody,
  type ContentSetBody,
  type VectorSetBody,
} from './schemas.js';

/** Options of {@link startServer}. */
export interface ServerOptions {
  readonly config: ServerConfig;
  /** Destination of request and error lines; by default pino's JSON lines on stdout. */
  readonly logger?: Logger;
  /**
   * The scoring backend, which the server then disposes on close. By default
   * a pool of `config.threads` workers, which keeps scoring off the thread
   * that serves HTTP.
   */
  readonly backend?: Backend;
  /** Time that `close` waits for requests in flight before it drops their connections. */
  readonly shutdownGraceMs?: number;
}

/** A running server. */
export interface AttnScoreServer {
  /** Base URL, such as `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly port: number;
  readonly logger: Logger;
  /**
   * Stops accepting connections, lets requests in flight finish, then
   * releases the catalogs and the backend. Safe to call more than once.
   */
  close(): Promise<void>;
}

/** Request ids accepted from `X-Request-Id`; anything else is replaced by a UUID. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Seconds a client is asked to wait after a 429 or a timeout. */
const RETRY_AFTER_SECONDS = '1';

/** The body types that catalog uploads and catalog score requests accept, for messages. */
const BODY_TYPES = `application/json, ${ARROW_TYPE}, ${NPY_TYPE} or ${RAW_TYPE}`;

/**
 * Starts the server on `config.host` and `config.port`, after the backend is
 * up and any saved catalogs are loaded. `/readyz` turns ready once a warm-up
 * block has run on the backend.
 */
export async function startServer(options: ServerOptions): Promise<AttnScoreServer> {
  const { config } = options;
  const logger = options.logger ?? pino({ name: 'attnscore' });
  const backend =
    options.backend ??
    (config.backend === 'webgpu' ? await openBackend('webgpu') : createPoolBackend({ threads: config.threads }));
  const state = { ready: false, draining: false };
  const catalogs = new CatalogStore(backend, config.dataDir, logger);
  const queue = new RequestQueue(config.concurrency, config.queueLimit);
  const metrics = createMetrics(
    () => queue.depth,
    () => queue.running,
  );
  let server: Server;
  try {
    await warmUp(backend);
    await catalogs.load();
    const app = createApp({ config, logger, backend, catalogs, queue, metrics, state });
    server = createServer(app);
    await listen(server, config.host, config.port);
  } catch (error) {
    catalogs.disposeAll();
    await backend.dispose();
    throw error;
  }
  state.ready = true;
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  logger.info(
    { host: config.host, port, backend: `${backend.name} (${backend.variant})`, threads: config.threads, catalogs: catalogs.size },
    'server started',
  );

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      state.ready = false;
      state.draining = true;
      logger.info('server stopping: no new connections, waiting for requests in flight');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // close() drops only the connections idle at the time of the call. A keep-alive
      // connection whose request finishes later would stay open until the client drops it.
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      const grace = setTimeout(() => {
        logger.warn('shutdown grace period over; closing the remaining connections');
        server.closeAllConnections();
      }, options.shutdownGraceMs ?? 30_000);
      await closed;
      clearInterval(sweep);
      clearTimeout(grace);
      catalogs.disposeAll();
      await backend.dispose();
      logger.info('server stopped');
    })();
    return closing;
  };
  return { url: `http://${host}:${port}`, port, logger, close };
}

/** Scores one user against a tiny catalog, so that the kernel and workers are known to run. */
async function warmUp(backend: Backend): Promise<void> {
  const catalog = await prepareCatalog({
    contents: { data: new Float32Array(8 * 4).fill(1), rows: 8, dim: 4 },
    backend,
  });
  try {
    for await (const block of scoreCatalogBlocks(catalog, { users: { data: [[1, 0, 0, 0]] } })) {
      void block;
    }
  } finally {
    catalog.dispose();
  }
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Everything the routes share. */
interface AppContext {
  readonly config: ServerConfig;
  readonly logger: Logger;
  readonly backend: Backend;
  readonly catalogs: CatalogStore;
  readonly queue: RequestQueue;
  readonly metrics: ServerMetrics;
  readonly state: { ready: boolean; draining: boolean };
}

function createApp(context: AppContext): express.Express {
  const { config, logger, metrics, state } = context;
  const app = express();
  app.disable('x-powered-by');
  // Score responses reply to POSTs and are never revalidated, so hashing megabytes of JSON
  // per response for an ETag would only cost time.
  app.disable('etag');
  app.use(requestLogger(logger));
  app.use(recordMetrics(metrics));

  const openApi = JSON.stringify(buildOpenApi(packageVersion()));
  app.get('/healthz', (_request, response) => {
    response.json({ status: 'ok' });
  });
  app.get('/readyz', (_request, response) => {
    if (state.ready) {
      response.json({ status: 'ready' });
      return;
    }
    const detail = state.draining ? 'the server is shutting down' : 'the server is starting';
    sendProblem(response, problem(503, 'not-ready', detail));
  });
  app.get('/metrics', async (_request, response) => {
    response.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.get('/openapi.json', (_request, response) => {
    response.type('application/json').send(openApi);
  });

  const v1 = express.Router();
  if (config.apiKeys.length > 0) v1.use(requireBearerKey(config.apiKeys));
  const json = express.json({ limit: config.bodyLimit, type: ['application/json', 'application/*+json'] });
  const raw = express.raw({ limit: config.bodyLimit, type: [ARROW_TYPE, NPY_TYPE, RAW_TYPE] });
  registerCatalogRoutes(v1, context, json, raw);
  registerScoreRoutes(v1, context, json, raw);
  app.use('/v1', v1);

  app.use((request, _response, next) => {
    next(problem(404, 'not-found', `no route for ${request.method} ${request.path}`));
  });
  app.use(handleError);
  return app;
}

type Middleware = express.RequestHandler;

function registerCatalogRoutes(
  router: express.Router,
  context: AppContext,
  json: Middleware,
  raw: Middleware,
): void {
  const { catalogs } = context;
  router.get('/catalogs', (_request, response) => {
    response.json({ catalogs: catalogs.list() });
  });
  router.get('/catalogs/:name', (request, response) => {
    response.json(catalogs.describe(String(request.params.name)));
  });
  router.delete('/catalogs/:name', async (request, response) => {
    await catalogs.delete(String(request.params.name));
    response.status(204).end();
  });
  // Uploads share the scoring queue, so that parallel uploads hold a bounded number of
  // bodies in memory and normalising a catalogue waits its turn with scoring.
  router.put('/catalogs/:name', whenQueueHasRoom(context, json), raw, async (request, response) => {
    let stored: Awaited<ReturnType<CatalogStore['put']>>;
    try {
      stored = await context.queue.run(async () => {
        const upload = await readUpload(request);
        return catalogs.put(String(request.params.name), upload);
      });
    } catch (error) {
      if (error instanceof QueueFullError) throw queueFullProblem(error);
      throw error;
    }
    const { info, created } = stored;
    request.log.info({ catalog: info.name, rows: info.rows, dim: info.dim }, 'catalog stored');
    response.status(created ? 201 : 200).json(info);
  });
}

/** Reads a catalog upload from a JSON, `.npy` or raw float32 body. */
async function readUpload(request: Request): Promise<CatalogUpload> {
  if (Buffer.isBuffer(request.body)) {
    if (request.is(ARROW_TYPE)) {
      const query = parseBody(queryParametersSchema, request.query);
      const { weights, ...vectors } = await parseArrowBody(request.body, 'contents', query);
      return { vectors, ...(weights ? { weights: Array.from(weights) } : {}) };
    }
    if (request.is(NPY_TYPE)) return { vectors: await parseNpyBody(request.body) };
    return { vectors: parseRawBody(request.body, request.get('X-Shape'), request.query) };
  }
  requireJson(request, BODY_TYPES);
  const body = parseBody(contentSetSchema, request.body);
  return { vectors: vectorInput(body, 'catalog'), ...(body.weights ? { weights: body.weights } : {}) };
}

/**
 * Wraps a body parser so that a full queue returns 429 before the body is read: under
 * overload, parsing megabytes only to reject them would be the unbounded work the queue
 * exists to stop.
 */
function whenQueueHasRoom(context: AppContext, parse: Middleware): Middleware {
  return (request, response, next) => {
    if (context.queue.full) {
      next(queueFullProblem(new QueueFullError(context.queue.capacity)));
      return;
    }
    parse(request, response, next);
  };
}

function queueFullProblem(error: QueueFullError): ProblemError {
  return problem(429, 'queue-full', `${error.message}; retry later`, {}, { 'Retry-After': RETRY_AFTER_SECONDS });
}

function registerScoreRoutes(
  router: express.Router,
  context: AppContext,
  parseJson: Middleware,
  raw: Middleware,
): void {
  const { catalogs, backend, metrics } = context;
  const json = whenQueueHasRoom(context, parseJson);

  router.post('/catalogs/:name/score', json, raw, async (request, response) => {
    const job = await readCatalogScore(request);
    const lease = catalogs.lease(String(request.params.name));
    const results = await runScoring(context, request, response, lease.release, (signal) =>
      collectResults(lease.catalog, job, context.config.blockUsers, signal),
    );
    if (results === undefined) return;
    metrics.pairs.inc({ endpoint: 'score' }, results.length * lease.catalog.contents.rows);
    await sendResults(request, response, results);
  });

  router.post('/score', json, async (request, response) => {
    requireJson(request, 'application/json');
    const body = parseBody(inlineScoreSchema, request.body);
    const results = await runScoring(context, request, response, undefined, async (signal) => {
      const catalog = await prepareCatalog({
        contents: vectorInput(body.contents, 'contents'),
        ...(body.contents.weights ? { weights: body.contents.weights } : {}),
        backend,
      });
      try {
        const job = { ...body, users: vectorInput(body.users, 'users') };
        return await collectResults(catalog, job, context.config.blockUsers, signal);
      } finally {
        catalog.dispose();
      }
    });
    if (results === undefined) return;
    metrics.pairs.inc({ endpoint: 'score' }, results.length * body.contents.vectors.length);
    await sendResults(request, response, results);
  });

  router.post('/pairs', json, async (request, response) => {
    requireJson(request, 'application/json');
    const body = parseBody(pairsSchema, request.body);
    const lease = body.catalog === undefined ? undefined : catalogs.lease(body.catalog);
    const scores = await runScoring(context, request, response, lease?.release, async () => {
      const users = buildCosineIndex(toVectorSet(vectorInput(body.users, 'users'), 'users'));
      const contents =
        lease?.index ?? buildCosineIndex(toVectorSet(vectorInput(body.contents!, 'contents'), 'contents'));
      if (users.set.dim !== contents.set.dim) {
        throw new AttnScoreError(
          'DIMENSION_MISMATCH',
          messages.dimensionMismatch(users.set.dim, contents.set.dim),
        );
      }
      return scorePairs(users, contents, body.pairs);
    });
    if (scores === undefined) return;
    metrics.pairs.inc({ endpoint: 'pairs' }, scores.length);
    response.type('application/json').send(`{"scores":[${Array.from(scores).join(',')}]}`);
  });
}

/**
 * Runs `work` through the queue with the request's timeout. Returns its
 * result, or undefined when the client closed the connection first. Throws a
 * 429 problem when the queue is full, and a 503 problem when the timeout
 * passes, after which the work stops at its next block. `release` runs once the work
 * has settled or was never started.
 */
async function runScoring<T>(
  context: AppContext,
  request: Request,
  response: Response,
  release: (() => void) | undefined,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T | undefined> {
  const controller = new AbortController();
  const { timeoutMs } = context.config;
  const timer = setTimeout(() => controller.abort(new TimeoutError(timeoutMs)), timeoutMs);
  const onClose = (): void => {
    if (!response.writableFinished) controller.abort(new Error('the client closed the connection'));
  };
  response.on('close', onClose);
  const task = context.queue.run(() => work(controller.signal), controller.signal);
  void task.finally(() => release?.()).catch(() => {});
  const aborted = new Promise<never>((_resolve, reject) => {
    controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
  });
  aborted.catch(() => {});
  try {
    return await Promise.race([task, aborted]);
  } catch (error) {
    if (error instanceof QueueFullError) throw queueFullProblem(error);
    if (error instanceof TimeoutError) {
      request.log.warn({ timeoutMs }, 'scoring timed out; the work stops after its current block');
      throw problem(503, 'timeout', error.message, {}, { 'Retry-After': RETRY_AFTER_SECONDS });
    }
    if (controller.signal.aborted && response.destroyed) {
      request.log.info('the client closed the connection; scoring stopped');
      return undefined;
    }
    throw error;
  } finally {
    clearTimeout(timer);
    response.off('close', onClose);
  }
}

/** The reason a request's signal aborts when its time is up. */
class TimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`scoring took longer than the server's limit of ${timeoutMs} ms`);
    this.name = 'TimeoutError';
  }
}

/** Users and parameters of one request against a catalogue. */
interface CatalogScoreJob extends Omit<CatalogScoreBody, 'users'> {
  readonly users: VectorInput;
}

/**
 * Reads a score request against a catalogue: a JSON body, or the users as a `.npy` or raw
 * float32 body with the parameters in the query string. Binary users are numbered by row,
 * and they skip the cost of parsing JSON numbers, which dominates for large batches.
 */
async function readCatalogScore(request: Request): Promise<CatalogScoreJob> {
  if (Buffer.isBuffer(request.body)) {
    const parameters = parseBody(queryParametersSchema, request.query);
    let users: VectorInput;
    if (request.is(ARROW_TYPE)) {
      const set = await parseArrowBody(request.body, 'users', parameters);
      users = { ids: set.ids, data: set.data, rows: set.rows, dim: set.dim };
    } else if (request.is(NPY_TYPE)) {
      users = await parseNpyBody(request.body);
    } else {
      users = parseRawBody(request.body, request.get('X-Shape'), request.query);
    }
    return { ...parameters, users: { ...users, source: 'users' } };
  }
  requireJson(request, BODY_TYPES);
  const body = parseBody(catalogScoreSchema, request.body);
  return { ...body, users: vectorInput(body.users, 'users') };
}

async function collectResults(
  catalog: PreparedCatalog,
  body: CatalogScoreJob,
  blockUsers: number,
  signal: AbortSignal,
): Promise<UserResult[]> {
  const results: UserResult[] = [];
  const blocks = scoreCatalogBlocks(catalog, {
    users: body.users,
    k: body.k,
    alpha: body.alpha,
    beta: body.beta,
    gamma: body.gamma,
    minScore: body.minScore,
    normalizeWeights: body.normalizeWeights,
    ...(body.exclude ? { exclude: body.exclude } : {}),
    blockUsers,
    signal,
  });
  for await (const block of blocks) results.push(...block.results);
  return results;
}

/**
 * Sends results as an Arrow IPC stream when the client's Accept header prefers it (in the
 * `layout` query parameter's layout), else as JSON.
 */
async function sendResults(request: Request, response: Response, results: readonly UserResult[]): Promise<void> {
  if (request.accepts(['application/json', ARROW_TYPE]) === ARROW_TYPE) {
    const { layout } = parseBody(queryParametersSchema, request.query);
    const bytes = await encodeArrowResults(results, layout ?? 'user');
    response.type(ARROW_TYPE).send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    return;
  }
  sendJsonResults(response, results);
}

/** Sends results as `{"results": [...]}`, each exactly as the command line's JSONL line. */
function sendJsonResults(response: Response, results: readonly UserResult[]): void {
  const encoder = new JsonResultEncoder(256 * results.length + 64).ascii('{"results":[');
  results.forEach((result, index) => {
    if (index > 0) encoder.ascii(',');
    encoder.result(result);
  });
  response.type('application/json').send(encoder.ascii(']}').view());
}

function vectorInput(set: VectorSetBody | ContentSetBody, source: string): VectorInput {
  return { data: set.vectors, ...(set.ids ? { ids: set.ids } : {}), source };
}

/** Rejects a body that no JSON parser read, which Express 5 leaves undefined. */
function requireJson(request: Request, expected: string): void {
  if (request.body === undefined) {
    const given = request.get('Content-Type') ?? 'none';
    throw problem(415, 'unsupported-media-type', `Content-Type must be ${expected} (got ${given})`);
  }
}

function requestLogger(logger: Logger): Middleware {
  return pinoHttp({
    logger,
    genReqId(request: IncomingMessage, response) {
      const given = request.headers['x-request-id'];
      const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
      response.setHeader('X-Request-Id', id);
      return id;
    },
    // Only these fields are logged, so headers such as Authorization never reach the log,
    // and the query string is left out because clients sometimes put tokens there.
    serializers: {
      req: (request: { id: unknown; method: string; url: string }) => ({
        id: request.id,
        method: request.method,
        url: request.url.split('?')[0],
      }),
      res: (response: { statusCode: number }) => ({ statusCode: response.statusCode }),
    },
    customLogLevel(_request, response, error) {
      if (error !== undefined || response.statusCode >= 500) return 'error';
      return response.statusCode >= 400 ? 'warn' : 'info';
    },
    // A rejected request's problem goes on its one completion line instead of a line of its own.
    customProps(_request, response) {
      const rejection = (response as unknown as Response).locals?.rejection as object | undefined;
      return rejection ?? {};
    },
  });
}

function recordMetrics(metrics: ServerMetrics): Middleware {
  return (request, response, next) => {
    const started = process.hrtime.bigint();
    response.on('finish', () => {
      // After an error, Express has already reset baseUrl, so the /v1 prefix comes from the URL.
      const prefix = request.originalUrl.startsWith('/v1/') ? '/v1' : '';
      const route = request.route ? `${prefix}${String(request.route.path)}` : 'unmatched';
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.requests.inc({ method: request.method, route, status: String(response.statusCode) });
      metrics.duration.observe({ method: request.method, route }, seconds);
    });
    next();
  };
}

function handleError(error: unknown, request: Request, response: Response, next: NextFunction): void {
  const problemError = toProblemError(error);
  const status = problemError.problem.status;
  if (status >= 500 && !(error instanceof ProblemError)) {
    request.log.error({ err: error }, 'request failed with an internal error');
  } else {
    response.locals.rejection = { problem: problemError.problem.type, detail: problemError.message };
  }
  if (response.headersSent) {
    next(error);
    return;
  }
  sendProblem(response, problemError, String(request.id));
}

/** Reads the package version; dist/server and src/server both lie two levels below the root. */
function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}
