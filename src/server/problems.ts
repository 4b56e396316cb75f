/**
 * Errors as RFC 9457 problem details (`application/problem+json`): a `type`
 * URI, `title`, `status` and `detail`, plus `pointer`, `value` and `rule` for
 * a field that failed validation, and `requestId` to find the log line.
 */
import type { Response } from 'express';
import { isInputError, type AttnScoreError, type ErrorCode } from '../scoring/errors.js';

/** The media type of every error body. */
export const PROBLEM_TYPE = 'application/problem+json';

/** The fields of one problem, before `requestId` is added. */
export interface Problem {
  /** A URN naming the kind of problem, e.g. `urn:attnscore:problem:invalid-body`. */
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  /** JSON Pointer (RFC 6901) to the offending field of the request body. */
  readonly pointer?: string;
  /** The offending value, shortened to at most {@link MAX_VALUE_CHARS} characters of JSON. */
  readonly value?: unknown;
  /** The rule the value broke, such as a zod issue code or an engine error code. */
  readonly rule?: string;
}

/** Longest JSON text of a rejected value echoed back, so that a huge array is not. */
export const MAX_VALUE_CHARS = 200;

const titles: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** An error that a handler throws to send a given problem as the response. */
export class ProblemError extends Error {
  readonly problem: Problem;
  /** Extra response headers, such as `Retry-After`. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(problem: Problem, headers: Readonly<Record<string, string>> = {}) {
    super(problem.detail);
    this.name = 'ProblemError';
    this.problem = problem;
    this.headers = headers;
  }
}

/** Builds a problem of `status` whose type URN ends in `slug`. */
export function problem(
  status: number,
  slug: string,
  detail: string,
  field: Pick<Problem, 'pointer' | 'value' | 'rule'> = {},
  headers: Readonly<Record<string, string>> = {},
): ProblemError {
  const value = field.value === undefined ? {} : { value: shorten(field.value) };
  return new ProblemError({
    type: `urn:attnscore:problem:${slug}`,
    title: titles[status] ?? 'Error',
    status,
    detail,
    ...(field.pointer === undefined ? {} : { pointer: field.pointer }),
    ...value,
    ...(field.rule === undefined ? {} : { rule: field.rule }),
  }, headers);
}

/**
 * Maps any thrown value to a problem: a {@link ProblemError} as it is, an
 * engine input error to 400 with its message and code, a body-parser error to
 * its status, and anything else to a 500 that reveals nothing internal.
 */
export function toProblemError(error: unknown): ProblemError {
  if (error instanceof ProblemError) return error;
  if (isInputError(error)) {
    return problem(400, slugOf(error.code), error.message, { rule: error.code, ...locate(error) });
  }
  const parser = bodyParserError(error);
  if (parser !== undefined) return parser;
  return problem(500, 'internal', 'the server failed to handle the request; see its log');
}

/** Sends `error` as `application/problem+json`, with the request id when there is one. */
export function sendProblem(response: Response, error: ProblemError, requestId?: string): void {
  for (const [name, value] of Object.entries(error.headers)) response.setHeader(name, value);
  const body = { ...error.problem, ...(requestId === undefined ? {} : { requestId }) };
  response.status(error.problem.status).type(PROBLEM_TYPE).send(JSON.stringify(body));
}

/**
 * JSON Pointers of the vector sets of a request body, by the source name the routes give them.
 * The users and inline contents are fields, and an uploaded catalogue is the body itself.
 */
const SET_POINTERS: Readonly<Record<string, string>> = {
  users: '/users',
  contents: '/contents',
  catalog: '',
};

/** Parameters whose engine messages start with their name, and their body fields. */
const PARAMETER_POINTERS: Readonly<Record<string, string>> = {
  k: '/k',
  alpha: '/alpha',
  beta: '/beta',
  gamma: '/gamma',
  minScore: '/minScore',
  normalizeWeights: '/normalizeWeights',
};

/**
 * Finds the JSON Pointer (RFC 6901) of the field an engine error is about, and its value
 * where the message shows it, from the message's source name, row and column. Returns
 * nothing when the message names no field of the body.
 */
function locate(error: AttnScoreError): Pick<Problem, 'pointer' | 'value'> {
  const message = error.message;
  const cell = /^(\w+): row (\d+), column (\d+) is ([^;,]+)[;,]/.exec(message);
  if (cell && SET_POINTERS[cell[1]!] !== undefined) {
    const pointer = `${SET_POINTERS[cell[1]!]}/vectors/${cell[2]}/${cell[3]}`;
    return { pointer, value: parseShown(cell[4]!) };
  }
  const duplicate = /^(\w+) ids has id (.+) at row \d+ and again at row (\d+);/.exec(message);
  if (duplicate && SET_POINTERS[duplicate[1]!] !== undefined) {
    return { pointer: `${SET_POINTERS[duplicate[1]!]}/ids/${duplicate[3]}`, value: parseShown(duplicate[2]!) };
  }
  if (error.code === 'DIMENSION_MISMATCH') return { pointer: '/users/vectors' };
  const excludedContent = /^exclude for user (.+?) names content id (.+), which is not/.exec(message);
  if (excludedContent) {
    const user = String(parseShown(excludedContent[1]!));
    return { pointer: `/exclude/${escapePointer(user)}`, value: parseShown(excludedContent[2]!) };
  }
  if (message.startsWith('exclude names user id ')) return { pointer: '/exclude' };
  const parameter = /^(\w+) /.exec(message);
  if (parameter && PARAMETER_POINTERS[parameter[1]!] !== undefined) {
    return { pointer: PARAMETER_POINTERS[parameter[1]!]! };
  }
  return {};
}

/** Reads back a value that a message showed as JSON, or keeps the text. */
function parseShown(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Converts an engine error code such as `UNKNOWN_ID` to a slug such as `unknown-id`. */
function slugOf(code: ErrorCode): string {
  return code.toLowerCase().replace(/_/g, '-');
}

/** Maps the errors that Express's body parsers raise, which carry `type` and `status`. */
function bodyParserError(error: unknown): ProblemError | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { type, status, limit } = error as { type?: unknown; status?: unknown; limit?: unknown };
  if (type === 'entity.too.large') {
    return problem(413, 'body-too-large', `the request body exceeds the limit of ${String(limit)} bytes`);
  }
  if (type === 'entity.parse.failed') {
    return problem(400, 'invalid-json', 'the request body is not valid JSON');
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return problem(415, 'unsupported-encoding', 'the request body has an unsupported encoding');
  }
  if (typeof status === 'number' && status >= 400 && status < 500 && typeof type === 'string') {
    return problem(status, 'invalid-body', `the request body could not be read (${type})`);
  }
  // Other client errors that carry a 4xx status: a path parameter that is not valid
  // percent-encoding (URIError from the router), or a body whose Content-Encoding does not
  // match its bytes (zlib errors from the body parser).
  const statusCode = typeof status === 'number' ? status : (error as { statusCode?: unknown }).statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    const detail = error instanceof URIError ? 'the request path is not valid percent-encoding' : 'the request body could not be read';
    return problem(statusCode, 'invalid-request', detail);
  }
  return undefined;
}

/** Returns `value`, or a truncated JSON string of it when its JSON is long. */
function shorten(value: unknown): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    // A value nested too deeply for JSON.stringify overflows String() as well.
    return '[a value too deeply nested to show]';
  }
  if (text === undefined) return String(value);
  return text.length <= MAX_VALUE_CHARS ? value : `${text.slice(0, MAX_VALUE_CHARS)}...`;
}
