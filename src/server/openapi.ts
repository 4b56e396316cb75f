/** The OpenAPI 3.1 description of the server, served at `GET /openapi.json`. */
import { z } from 'zod';
import {
  catalogScoreSchema,
  contentSetSchema,
  detailedMatrixSchema,
  inlineScoreSchema,
  matrixSchema,
  pairsSchema,
} from './schemas.js';

type JsonObject = Record<string, unknown>;

/** JSON Schema 2020-12 of a request schema, which OpenAPI 3.1 takes as it is. */
function schemaOf(schema: z.ZodType): JsonObject {
  const json = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    unrepresentable: 'any',
    // The vectors' fast check is a custom function; describe what it accepts instead.
    override: (context) => {
      if (context.zodSchema === matrixSchema) Object.assign(context.jsonSchema, matrixJson);
    },
  }) as JsonObject;
  delete json.$schema;
  return json;
}

const matrixJson = (() => {
  const json = z.toJSONSchema(detailedMatrixSchema, { target: 'draft-2020-12' }) as JsonObject;
  delete json.$schema;
  return json;
})();

const problemSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    type: { type: 'string', format: 'uri', examples: ['urn:attnscore:problem:invalid-body'] },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    pointer: { type: 'string', description: 'JSON Pointer to the offending body field' },
    value: { description: 'The offending value, shortened to 200 characters of JSON' },
    rule: { type: 'string', description: 'The rule broken: a zod issue code or engine error code' },
    requestId: { type: 'string' },
  },
};

const resultSchema = {
  type: 'object',
  required: ['user', 'cx', 'loyalty', 'top'],
  properties: {
    user: { type: ['string', 'integer'] },
    cx: { type: 'number' },
    loyalty: { type: 'number' },
    top: {
      type: 'array',
      items: {
        type: 'object',
        required: ['content', 'score'],
        properties: { content: { type: ['string', 'integer'] }, score: { type: 'number' } },
      },
    },
  },
};

const catalogInfoSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    rows: { type: 'integer' },
    dim: { type: 'integer' },
    weighted: { type: 'boolean' },
    idType: { enum: ['string', 'number', 'mixed'] },
    createdAt: { type: 'string', format: 'date-time' },
  },
};

const problems = (...statuses: number[]): JsonObject =>
  Object.fromEntries(
    statuses.map((status) => [
      String(status),
      {
        description: `problem details (${status})`,
        content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
      },
    ]),
  );

const json = (schema: JsonObject, description = 'OK'): JsonObject => ({
  description,
  content: { 'application/json': { schema } },
});

const scoringErrors = problems(400, 401, 413, 429, 503);
const nameParameter = {
  name: 'name',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' },
};
const ARROW_STREAM = 'application/vnd.apache.arrow.stream';

/** Results as JSON, or as an Arrow IPC stream when the Accept header requests one. */
const resultsResponse = {
  description: 'OK',
  content: {
    'application/json': {
      schema: {
        type: 'object',
        properties: { results: { type: 'array', items: { $ref: '#/components/schemas/UserResult' } } },
      },
    },
    [ARROW_STREAM]: {
      schema: {
        type: 'string',
        contentMediaType: ARROW_STREAM,
        description:
          'With layout=user: user_id, cx, loyalty, top (list of {content_id, score}). ' +
          'With layout=long: user_id, rank, content_id, score, cx, loyalty.',
      },
    },
  },
};

/** Binary bodies of vectors, for catalog uploads and for the users of a catalog score request. */
const binaryVectorBodies = {
  [ARROW_STREAM]: {
    schema: {
      type: 'string',
      contentMediaType: ARROW_STREAM,
      description:
        'An id column, a vector column (a list or fixed-size list of numbers, or one numeric ' +
        'column per dimension) and, for catalogs, a weight column; chosen by the query ' +
        'parameters idColumn, vectorColumn, vectorColumns and weightColumn, else detected',
    },
  },
  'application/x-npy': { schema: { type: 'string', contentMediaType: 'application/x-npy' } },
  'application/octet-stream': {
    schema: { type: 'string', description: 'little-endian float32, row-major; shape from X-Shape or rows and dim' },
  },
};

/** Query parameters of binary bodies: their shape or columns, and the Arrow result layout. */
const binaryParameters = [
  { name: 'rows', in: 'query', schema: { type: 'integer', minimum: 1 } },
  { name: 'dim', in: 'query', schema: { type: 'integer', minimum: 1 } },
  { name: 'X-Shape', in: 'header', schema: { type: 'string', examples: ['10000,256'] } },
  ...['idColumn', 'vectorColumn', 'vectorColumns', 'weightColumn'].map((name) => ({
    name,
    in: 'query',
    schema: { type: 'string' },
  })),
];

/** Scoring parameters in the query string, for binary users bodies. */
const scoringQueryParameters = [
  { name: 'k', in: 'query', schema: { type: 'integer', minimum: 1 } },
  ...['alpha', 'beta', 'gamma', 'minScore'].map((name) => ({ name, in: 'query', schema: { type: 'number' } })),
  { name: 'normalizeWeights', in: 'query', schema: { type: 'boolean' } },
  { name: 'layout', in: 'query', schema: { enum: ['user', 'long'] }, description: 'layout of Arrow results' },
];

/** Builds the OpenAPI document; `version` is the package version. */
export function buildOpenApi(version: string): JsonObject {
  return {
    openapi: '3.1.0',
    info: {
      title: 'attnscore batch scoring API',
      version,
      description:
        'Cosine top-k matching, experience score CX and loyalty for users x contents. ' +
        'Errors are RFC 9457 problem details.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Problem: problemSchema,
        UserResult: resultSchema,
        CatalogInfo: catalogInfoSchema,
        Contents: schemaOf(contentSetSchema),
        CatalogScoreRequest: schemaOf(catalogScoreSchema),
        ScoreRequest: schemaOf(inlineScoreSchema),
        PairsRequest: schemaOf(pairsSchema),
      },
    },
    security: [{ bearer: [] }, {}],
    paths: {
      '/v1/catalogs': {
        get: {
          summary: 'List catalogs',
          responses: {
            '200': json({
              type: 'object',
              properties: { catalogs: { type: 'array', items: { $ref: '#/components/schemas/CatalogInfo' } } },
            }),
            ...problems(401),
          },
        },
      },
      '/v1/catalogs/{name}': {
        parameters: [nameParameter],
        put: {
          summary: 'Upload or replace a catalog of contents',
          parameters: binaryParameters,
          requestBody: {
            required: true,
            content: {
              'application/json': { schema: { $ref: '#/components/schemas/Contents' } },
              ...binaryVectorBodies,
            },
          },
          responses: {
            '200': json({ $ref: '#/components/schemas/CatalogInfo' }, 'replaced'),
            '201': json({ $ref: '#/components/schemas/CatalogInfo' }, 'created'),
            ...problems(400, 401, 413, 415),
          },
        },
        get: {
          summary: 'Describe a catalog',
          responses: { '200': json({ $ref: '#/components/schemas/CatalogInfo' }), ...problems(401, 404) },
        },
        delete: {
          summary: 'Delete a catalog',
          responses: { '204': { description: 'deleted' }, ...problems(401, 404) },
        },
      },
      '/v1/catalogs/{name}/score': {
        parameters: [nameParameter],
        post: {
          summary: 'Score users against a catalog',
          parameters: [...binaryParameters, ...scoringQueryParameters],
          requestBody: {
            required: true,
            content: {
              'application/json': { schema: { $ref: '#/components/schemas/CatalogScoreRequest' } },
              ...binaryVectorBodies,
            },
          },
          responses: { '200': resultsResponse, ...scoringErrors, ...problems(404) },
        },
      },
      '/v1/score': {
        post: {
          summary: 'Score users against contents given inline',
          parameters: [scoringQueryParameters.at(-1)!],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/ScoreRequest' } } },
          },
          responses: { '200': resultsResponse, ...scoringErrors },
        },
      },
      '/v1/pairs': {
        post: {
          summary: 'Cosine of given (user, content) pairs, in float64',
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/PairsRequest' } } },
          },
          responses: {
            '200': json({ type: 'object', properties: { scores: { type: 'array', items: { type: 'number' } } } }),
            ...scoringErrors,
            ...problems(404),
          },
        },
      },
      '/healthz': {
        get: { summary: 'Liveness', security: [], responses: { '200': json({ type: 'object' }) } },
      },
      '/readyz': {
        get: {
          summary: 'Readiness: the WebAssembly module and worker pool are up',
          security: [],
          responses: { '200': json({ type: 'object' }), ...problems(503) },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics',
          security: [],
          responses: { '200': { description: 'OK', content: { 'text/plain': { schema: { type: 'string' } } } } },
        },
      },
      '/openapi.json': {
        get: { summary: 'This document', security: [], responses: { '200': json({ type: 'object' }) } },
      },
    },
  };
}
