/** Row id as read from input: a string from text files, a number for row positions. */
export type RowId = string | number;

/**
 * A dense set of vectors: `rows` x `dim` float32 values in row-major order,
 * with one id per row. Weights, when present, are one per row.
 */
export interface VectorSet {
  readonly ids: readonly RowId[];
  readonly data: Float32Array;
  readonly rows: number;
  readonly dim: number;
  readonly weights?: Float64Array;
  /** The origin of the vectors (a path or a field name), used in messages. */
  readonly source: string;
}

/** One ranked content for a user. */
export interface Match {
  readonly content: RowId;
  readonly score: number;
}

/** The scores of one user, as written to JSONL and returned by the API. */
export interface UserResult {
  readonly user: RowId;
  readonly cx: number;
  readonly loyalty: number;
  readonly top: Match[];
}

/**
 * Per-user content rows to leave out of the top-k list, in compressed sparse
 * row form: the rows excluded for local user `i` are
 * `rows[offsets[i]]` .. `rows[offsets[i + 1] - 1]`, sorted ascending.
 * Excluded contents still count towards CX.
 */
export interface ExclusionList {
  readonly offsets: Int32Array;
  readonly rows: Int32Array;
}

/** The scores a backend computes for one block of users against the prepared contents. */
export interface BlockScores {
  readonly rows: number;
  /** Slots per user in `index` and `score`: min(k, C). */
  readonly k: number;
  /** Number of filled slots per user (fewer than `k` when minScore or exclusions bite). */
  readonly count: Int32Array;
  /** Content rows, `rows` x `k`, best first, ties by lower row; -1 in unfilled slots. */
  readonly index: Int32Array;
  /** Cosine similarities matching `index`; NaN in unfilled slots. */
  readonly score: Float64Array;
  /** sum over contents of w_c * exp(alpha * a(u, c)) with the raw weights. */
  readonly cx: Float64Array;
  /** `rows` x C cosine similarities, only when the request asked for the matrix. */
  readonly matrix?: Float32Array;
}
