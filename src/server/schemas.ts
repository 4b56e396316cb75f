/**
 * Request body schemas (zod 4) and the parser that turns the first failed
 * rule into a 400 problem with the field's JSON Pointer, value and rule.
 * Vector values that overflow float32, and duplicate ids, are left to the
 * engine, whose messages name the row and column.
 */
import { z } from 'zod';
import { MAX_ABS_ALPHA } from '../scoring/params.js';
import { problem, type ProblemError } from './problems.js';

/** Catalog names: also used as file names in the data folder, so no slashes or leading dots. */
export const CATALOG_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A user or content id: a string, or an integer as a row number would be. */
export const idSchema = z.union([z.string().min(1).max(1024), z.int()]);

/**
 * Rows of numbers, every row as long as the first, checked value by value with zod's own
 * rules. It explains a bad matrix with the exact path; {@link matrixSchema} runs first.
 */
export const detailedMatrixSchema = z
  .array(z.array(z.number()).min(1, 'a vector needs at least one value'))
  .min(1, 'at least one vector is required')
  .superRefine((rows, context) => {
    const dim = rows[0]?.length ?? 0;
    for (let row = 1; row < rows.length; row++) {
      if (rows[row]!.length !== dim) {
        context.addIssue({
          code: 'custom',
          path: [row],
          input: rows[row]!.length,
          params: { rule: 'equal_dimensions' },
          message: `row ${row} has ${rows[row]!.length} values but row 0 has ${dim}`,
        });
        return;
      }
    }
  });

/** The rule name of {@link matrixSchema}'s check, which parseBody replaces by the detailed one. */
const MATRIX_RULE = 'number_matrix';

/**
 * Returns whether `value` is what {@link detailedMatrixSchema} accepts: a non-empty array of
 * equally long, non-empty arrays of finite numbers. One plain loop, several times faster than
 * zod's per-value checks on a matrix of a hundred thousand numbers.
 */
function isNumberMatrix(value: unknown): value is number[][] {
  if (!Array.isArray(value) || value.length === 0 || !Array.isArray(value[0])) return false;
  const dim = (value[0] as unknown[]).length;
  if (dim === 0) return false;
  for (const row of value) {
    if (!Array.isArray(row) || row.length !== dim) return false;
    for (let column = 0; column < dim; column++) {
      const number: unknown = row[column];
      if (typeof number !== 'number' || !Number.isFinite(number)) return false;
    }
  }
  return true;
}

/**
 * The vectors of a request. A matrix that fails the fast check is checked again by
 * {@link detailedMatrixSchema} in parseBody, so the problem names the exact value.
 */
export const matrixSchema = z.custom<number[][]>(isNumberMatrix, {
  message: 'vectors must be rows of numbers, every row as long as the first',
  params: { rule: MATRIX_RULE },
});

/** Checks that `ids` (and `weights`, for contents) have one entry per vector. */
function checkLengths(
  set: { ids?: unknown[] | undefined; vectors: unknown[]; weights?: unknown[] | undefined },
  context: z.RefinementCtx,
): void {
  for (const field of ['ids', 'weights'] as const) {
    const values = set[field];
    if (values !== undefined && values.length !== set.vectors.length) {
      context.addIssue({
        code: 'custom',
        path: [field],
        input: values.length,
        params: { rule: 'one_per_vector' },
        message: `${field} has ${values.length} entries but there are ${set.vectors.length} vectors`,
      });
    }
  }
}

/** Users: vectors with optional ids (row numbers when omitted). */
export const vectorSetSchema = z
  .strictObject({
    ids: z.array(idSchema).optional(),
    vectors: matrixSchema,
  })
  .superRefine(checkLengths);

/** A content weight: a number that stays finite when rounded to float32, as the engine keeps it. */
const weightSchema = z.number().refine((value) => Number.isFinite(Math.fround(value)), {
  message: 'every weight must be a finite number that fits in float32 (|w| <= 3.4028235e38)',
  params: { rule: 'float32_range' },
});

/** Contents: vectors with optional ids and weights (1 each when omitted). */
export const contentSetSchema = z
  .strictObject({
    ids: z.array(idSchema).optional(),
    vectors: matrixSchema,
    weights: z.array(weightSchema).optional(),
  })
  .superRefine(checkLengths);

/** Scoring parameters shared by both score endpoints. */
const parameterShape = {
  k: z.int().min(1).max(1_000_000).optional(),
  alpha: z.number().min(-MAX_ABS_ALPHA).max(MAX_ABS_ALPHA).optional(),
  beta: z.number().optional(),
  gamma: z.number().optional(),
  minScore: z.number().min(-1).max(1).optional(),
  normalizeWeights: z.boolean().optional(),
  exclude: z.record(z.string(), z.array(idSchema)).optional(),
};

/** Reads a query-string number, leaving other values for the number check to reject. */
const queryNumber = z.preprocess((value) => (typeof value === 'string' && value.trim() !== '' ? Number(value) : value), z.number());

/**
 * Query parameters of `POST /v1/catalogs/{name}/score` with a binary users body. `rows` and
 * `dim` belong to raw float32 bodies and are read with them.
 */
export const queryParametersSchema = z.object({
  k: z.preprocess((value) => (typeof value === 'string' && value.trim() !== '' ? Number(value) : value), parameterShape.k),
  alpha: queryNumber.pipe(parameterShape.alpha.unwrap()).optional(),
  beta: queryNumber.optional(),
  gamma: queryNumber.optional(),
  minScore: queryNumber.pipe(parameterShape.minScore.unwrap()).optional(),
  normalizeWeights: z.enum(['true', 'false']).transform((value) => value === 'true').optional(),
  rows: z.string().optional(),
  dim: z.string().optional(),
  idColumn: z.string().min(1).optional(),
  vectorColumn: z.string().min(1).optional(),
  vectorColumns: z.string().min(1).optional(),
  weightColumn: z.string().min(1).optional(),
  layout: z.enum(['user', 'long']).optional(),
});

/** Body of `POST /v1/catalogs/{name}/score`. */
export const catalogScoreSchema = z.strictObject({ users: vectorSetSchema, ...parameterShape });

/** Body of `POST /v1/score`. */
export const inlineScoreSchema = z.strictObject({
  users: vectorSetSchema,
  contents: contentSetSchema,
  ...parameterShape,
});

/** Body of `POST /v1/pairs`: the contents by catalog name or inline, not both. */
export const pairsSchema = z
  .strictObject({
    users: vectorSetSchema,
    catalog: z.string().regex(CATALOG_NAME).optional(),
    contents: contentSetSchema.optional(),
    pairs: z.array(z.tuple([idSchema, idSchema])),
  })
  .superRefine((body, context) => {
    if ((body.catalog === undefined) === (body.contents === undefined)) {
      context.addIssue({
        code: 'custom',
        path: [],
        params: { rule: 'catalog_xor_contents' },
        message: 'give exactly one of "catalog" and "contents"',
      });
    }
  });

export type VectorSetBody = z.infer<typeof vectorSetSchema>;
export type ContentSetBody = z.infer<typeof contentSetSchema>;
export type CatalogScoreBody = z.infer<typeof catalogScoreSchema>;
export type InlineScoreBody = z.infer<typeof inlineScoreSchema>;
export type PairsBody = z.infer<typeof pairsSchema>;

/** Validates `body` against `schema`, throwing a 400 problem for the first issue. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const result = schema.safeParse(body, { reportInput: true });
  if (result.success) return result.data;
  let issue = result.error.issues[0]!;
  if (issue.code === 'custom' && issue.params?.rule === MATRIX_RULE) {
    // Explain the matrix with zod's per-value rules, whose first issue has the exact path.
    const detailed = detailedMatrixSchema.safeParse(valueAt(body, issue.path), { reportInput: true });
    if (!detailed.success) {
      const inner = detailed.error.issues[0]!;
      issue = { ...inner, path: [...issue.path, ...inner.path] };
    }
  }
  const pointer = toPointer(issue.path);
  const customRule = issue.code === 'custom' ? (issue.params?.rule as string | undefined) : undefined;
  const where = pointer === '' ? 'request body' : pointer;
  return throwProblem(
    problem(400, 'invalid-body', `${where}: ${issue.message}`, {
      pointer,
      ...('input' in issue && issue.input !== undefined ? { value: issue.input } : {}),
      rule: customRule ?? issue.code,
    }),
  );
}

/** Follows `path` into a parsed JSON body. */
function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let value = body;
  for (const key of path) value = (value as Record<PropertyKey, unknown> | undefined)?.[key];
  return value;
}

/** Formats a zod path as a JSON Pointer (RFC 6901), e.g. `/users/vectors/3/1`. */
export function toPointer(path: readonly PropertyKey[]): string {
  return path.map((key) => `/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

function throwProblem(error: ProblemError): never {
  throw error;
}
