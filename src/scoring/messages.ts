/**
 * The text of every input error, in one place so that tests can pin it.
 * Rows and columns are counted from 0, as numpy counts them.
 */

/** Formats a value for a message: strings quoted, numbers as JavaScript prints them. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** True for a source that names a file rather than a role such as `users`. */
function isPath(source: string): boolean {
  return /[./\\]/.test(source);
}

export const messages = {
  positiveInteger: (name: string, value: unknown) =>
    `${name} must be a positive integer (got ${show(value)})`,
  finiteNumber: (name: string, value: unknown) =>
    `${name} must be a finite number (got ${show(value)})`,
  alphaRange: (value: number) =>
    `alpha must be finite with |alpha| <= 80 so that exp(alpha * a) fits in float32 (got ${show(value)})`,
  minScoreRange: (value: unknown) =>
    `minScore must be a number in [-1, 1] or -Infinity (got ${show(value)})`,
  nonFinite: (source: string, row: number, column: number, value: number) =>
    `${source}: row ${row}, column ${column} is ${show(value)}; every value must be a finite number`,
  nonFiniteWeight: (source: string, row: number, value: number) =>
    `${source}: weight at row ${row} is ${show(value)}; every weight must be a finite number ` +
    `that fits in float32 (|w| <= 3.4028235e38)`,
  dimensionMismatch: (userDim: number, contentDim: number, users = 'users', contents = 'contents') =>
    `users have ${userDim} dims but contents have ${contentDim}` +
    (isPath(users) || isPath(contents) ? ` (users ${users}, contents ${contents})` : ''),
  empty: (source: string) => `${source} has no rows; at least one vector is required`,
  zeroDim: (source: string) => `${source} has vectors of length 0; at least one dimension is required`,
  csvNoDimensions: (source: string) =>
    `${source} has vectors of length 0; at least one dimension is required, and fields must be ` +
    `separated by commas (convert tab- or semicolon-separated files first)`,
  weightCount: (source: string, got: number, contents: number) =>
    `${source} has ${got} weights but there are ${contents} contents; give one weight per content row`,
  idCount: (source: string, got: number, rows: number) =>
    `${source} has ${got} ids but the vectors have ${rows} rows; give one id per row`,
  dataLength: (source: string, got: number, rows: number, dim: number) =>
    `${source} has ${got} values but ${rows} rows x ${dim} dims needs ${rows * dim}`,
  weightSumNotPositive: (sum: number) =>
    `normalizeWeights needs weights with a positive sum whose reciprocal is finite ` +
    `(got ${show(sum)})`,
  unknownUserId: (id: unknown) => `exclude names user id ${show(id)}, which is not among the users`,
  unknownContentId: (userId: unknown, id: unknown) =>
    `exclude for user ${show(userId)} names content id ${show(id)}, which is not among the contents`,
  unknownBackend: (name: unknown, known: readonly string[]) =>
    `unknown backend ${show(name)}; expected one of ${known.join(', ')}`,
  noWebGpuAdapter: (tried: string, reason: string) =>
    `backend "webgpu" is not available: ${tried} found no adapter (${reason}). ` +
    `Install a Vulkan driver (the GPU vendor's, or mesa-vulkan-drivers for the CPU adapter ` +
    `lavapipe), or use --backend wasm`,
  webGpuTooLarge: (what: string, bytes: number, limit: number) =>
    `${what} needs ${bytes} bytes in one GPU buffer but the adapter allows ` +
    `${limit} (maxStorageBufferBindingSize); use --backend wasm, a smaller k or fewer contents`,

  // Input and output files. `at` is a row location built by `rowAt`, and `place` one built
  // by `rowPlace`, so that binary and text formats name rows the same way.
  rowAt: (source: string, row: number, line?: number) =>
    line === undefined ? `${source}: row ${row}` : `${source} line ${line} (row ${row})`,
  rowPlace: (row: number, line?: number) =>
    line === undefined ? `row ${row}` : `line ${line} (row ${row})`,
  readFailed: (source: string, reason: string) => `cannot read ${source}: ${reason}`,
  writeFailed: (target: string, reason: string) => `cannot write ${target}: ${reason}`,
  unknownExtension: (source: string, supported: readonly string[]) =>
    `${source} has an unsupported file extension; expected one of ${supported.join(', ')}, ` +
    `or give the format explicitly`,
  unknownFormat: (format: unknown, known: readonly string[]) =>
    `unknown input format ${show(format)}; expected one of ${known.join(', ')}`,
  idsFileNotAllowed: (idsPath: string, source: string) =>
    `ids file ${idsPath} applies only to .npy input, but ${source} contains its own ids`,
  notNpy: (source: string) =>
    `${source} is not a .npy file: it does not start with the bytes \\x93NUMPY`,
  npyVersion: (source: string, major: number, minor: number) =>
    `${source} uses .npy format version ${major}.${minor}; supported versions are 1.0, 2.0 and 3.0`,
  npyHeader: (source: string, detail: string) => `${source} has an invalid .npy header: ${detail}`,
  npyDtype: (source: string, dtype: string) =>
    `${source} has dtype ${dtype}; expected float32 or float64 ('<f4', '<f8', '>f4' or '>f8'). ` +
    `Convert the array with arr.astype(numpy.float32) before saving it`,
  npyFortranOrder: (source: string) =>
    `${source} is stored in Fortran (column-major) order; ` +
    `save numpy.ascontiguousarray(arr) instead`,
  npyRank: (source: string, shape: readonly number[], expected: string) =>
    `${source} has shape (${shape.join(', ')}${shape.length === 1 ? ',' : ''}); ` +
    `expected ${expected}`,
  npyTruncated: (
    source: string,
    shape: readonly number[],
    dtype: string,
    expected: number,
    got: number,
  ) =>
    `${source} is truncated: shape (${shape.join(', ')}${shape.length === 1 ? ',' : ''}) ` +
    `of dtype '${dtype}' needs ${expected} bytes of data but the file has ${got}`,
  npyRowRange: (source: string, start: number, count: number, rows: number) =>
    `cannot read rows ${start} to ${start + count - 1} of ${source}, which has ${rows} rows`,
  nonFiniteAt: (at: string, column: number, value: unknown) =>
    `${at}, column ${column} is ${show(value)}; every value must be a finite number`,
  float32Range: (at: string, column: number, value: number) =>
    `${at}, column ${column} is ${show(value)}, outside the float32 range ` +
    `(|x| <= 3.4028235e38); every value must fit in float32`,
  notANumber: (at: string, column: number, value: unknown) =>
    `${at}, column ${column} is ${show(value)}, which is not a number; ` +
    `every value must be a finite number`,
  emptyField: (at: string, column: number) =>
    `${at}, column ${column} is empty; every value must be a finite number`,
  raggedRow: (at: string, got: number, expected: number) =>
    `${at} has ${got} values but the first row has ${expected}; ` +
    `every row must have the same length`,
  invalidJson: (at: string, detail: string) => `${at} is not valid JSON: ${detail}`,
  notJsonObject: (at: string) =>
    `${at} is not a JSON object; each line must look like {"id": "a", "vector": [0.5, 1]}`,
  missingField: (at: string, field: string) =>
    `${at} has no "${field}" field; each line must look like {"id": "a", "vector": [0.5, 1]}`,
  invalidId: (at: string, value: unknown) =>
    `${at} has id ${show(value)}; an id must be a non-empty string or a finite number`,
  invalidVector: (at: string, value: unknown) =>
    `${at} has "vector" ${show(value)}; expected an array of numbers`,
  invalidWeight: (at: string, value: unknown) =>
    `${at} has weight ${show(value)}; every weight must be a finite number that fits in ` +
    `float32 (|w| <= 3.4028235e38)`,
  mixedWeights: (source: string, withPlace: string, withoutPlace: string) =>
    `${source} has a "weight" at ${withPlace} but none at ${withoutPlace}; ` +
    `give a weight on every row or on none`,
  duplicateId: (source: string, id: unknown, firstPlace: string, secondPlace: string) =>
    `${source} has id ${show(id)} at ${firstPlace} and again at ${secondPlace}; ids must be unique`,
  emptyId: (at: string) => `${at} has an empty id; every row needs a non-empty id`,
  weightValue: (at: string, value: unknown) =>
    `${at} is ${show(value)}; every weight must be a finite number that fits in float32 ` +
    `(|w| <= 3.4028235e38)`,
  invalidCsv: (source: string, detail: string) => `${source} is not valid CSV: ${detail}`,
  nonFiniteResult: (user: unknown, field: string, value: number) =>
    `result for user ${show(user)} has ${field} ${show(value)}, which the output cannot hold; ` +
    `scores, cx and loyalty must be finite`,
  npyRowCount: (target: string, written: number, rows: number) =>
    `${target} was declared with ${rows} rows but ${written} were written`,
  npyBlockLength: (target: string, length: number, columns: number) =>
    `block of ${length} values written to ${target} is not a whole number ` +
    `of ${columns}-column rows`,

  // Parquet and Arrow IPC tables.
  columnNotFound: (source: string, column: string, available: string) =>
    `${source} has no column ${show(column)}; its columns are ${available}`,
  columnType: (source: string, column: string, type: string, expected: string) =>
    `${source}: column ${show(column)} has type ${type}; expected ${expected}`,
  vectorColumnConflict: () =>
    'give either a vector column (a list per row) or vector columns (one per dimension), not both',
  vectorColumnAmbiguous: (source: string, columns: readonly string[]) =>
    `${source} has several list columns (${columns.map(show).join(', ')}); ` +
    `choose the vector column with --vector-column`,
  vectorColumnMissing: (source: string, available: string) =>
    `${source} has no list column of numbers and no numbered columns such as f0, f1, ...; ` +
    `its columns are ${available}. Choose them with --vector-column or --vector-columns`,
  noColumnWithPrefix: (source: string, prefix: string, available: string) =>
    `${source} has no column whose name starts with ${show(prefix)}; its columns are ${available}`,
  idColumnAmbiguous: (source: string, columns: readonly string[]) =>
    `${source} has several string or integer columns (${columns.map(show).join(', ')}); ` +
    `choose the id column with --id-column`,
  nullVector: (at: string, column: string) =>
    `${at}, column ${show(column)} is null; every row needs a vector`,
  badListValue: (at: string, name: string, position: number, value: number) =>
    Number.isFinite(value)
      ? `${at}, column ${show(name)} has ${show(value)} at position ${position}, outside the float32 ` +
        `range (|x| <= 3.4028235e38); every value must fit in float32`
      : `${at}, column ${show(name)} has ${show(value)} at position ${position}; ` +
        `every value must be a finite number`,
  nullElement: (at: string, column: string, element: number) =>
    `${at}, column ${show(column)} has a null at position ${element}; ` +
    `every value must be a finite number`,
  nullValue: (at: string, column: string) =>
    `${at}, column ${show(column)} is null; every row needs a value`,
  noParquetParts: (folder: string) =>
    `${folder} is a folder with no .parquet files; expected a Parquet file or a folder of ` +
    `part files as Spark and DuckDB write them`,
  invalidTable: (source: string, format: string, detail: string) =>
    `${source} is not a valid ${format} file: ${detail}`,
  partSchemaDiffers: (part: string, first: string, detail: string) =>
    `part file ${part} does not match the first part ${first}: ${detail}`,
  compressionNotSupported: (format: string) =>
    `compression applies to Parquet output only; ${format} output is written uncompressed`,
  mixedIdTypes: (column: string, id: unknown) =>
    `${column} was written as integers, from the first block of users, but ${show(id)} is a ` +
    `string; for Parquet and Arrow output give ids of one kind, all numbers or all strings`,

  // Streaming users, shards, resumable runs and merging shard outputs.
  invalidRowRange: (source: string, start: unknown, end: unknown, rows: number | undefined) =>
    `invalid row range ${show(start)} to ${show(end)} for ${source}` +
    (rows === undefined ? '' : `, which has ${rows} rows`) +
    `; expected whole numbers with 0 <= start <= end`,
  rowsPastEnd: (source: string, rows: number, end: number) =>
    `${source} has ${rows} rows but rows up to ${end - 1} were requested; ` +
    `the file changed after its rows were counted`,
  idsFileChanged: (idsPath: string, read: number, rows: number) =>
    `${idsPath} ended after ${read} of ${rows} ids; the file changed while it was being read`,
  nonNegativeNumber: (name: string, value: unknown) =>
    `${name} must be a number >= 0 (got ${show(value)})`,
  shardRows: (rows: unknown) => `the row count must be a whole number >= 0 (got ${show(rows)})`,
  shardSyntax: (text: string) =>
    `--shard must look like I/N, such as 0/4, with 0 <= I < N (got ${show(text)})`,
  shardBothOptions: () =>
    '--shard and --shard-count were both given; give --shard I/N, or --shard-count N ' +
    'with the index in the environment',
  shardIndexRange: (index: number, count: number, from: string) =>
    `shard index ${show(index)} (from ${from}) is outside 0..${count - 1} for ${count} shards`,
  shardIndexVariable: (variable: string, value: string) =>
    `${variable} is ${show(value)}; expected a whole number >= 0`,
  shardIndexMissing: (count: number, variables: readonly string[]) =>
    `--shard-count ${count} takes the shard index from ${variables.join(', ')}, ` +
    `but none of them is set; give --shard I/N instead`,
  invalidManifest: (path: string, detail: string) =>
    `${path} is not a valid attnscore run manifest: ${detail}`,
  resumeMismatch: (folder: string, field: string, previous: string, current: string) =>
    `${folder} contains a run with ${field} ${previous}, but this run has ${current}; ` +
    `rerun with the same inputs and parameters to resume, or remove ${folder} to start over`,
  partsNeedFile: () =>
    'a resumable run needs an output file; standard output (-) cannot be resumed',
  partRangeTaken: (start: number, end: number, first: number, last: number) =>
    `cannot record users ${start} to ${end - 1}: they are outside this run's users ` +
    `${first} to ${last - 1} or already in a recorded part`,
  partOutOfRange: (index: number, start: number, count: number) =>
    `part ${index} (users ${start} to ${start + count - 1}) overlaps another part ` +
    `or lies outside the run's users`,
  partsIncomplete: (out: string, start: number, end: number, pending: number) =>
    `cannot assemble ${out}: ${pending} users are not scored yet, the first from ${start} ` +
    `to ${end - 1}`,
  partDamaged: (partPath: string, detail: string, folder: string) =>
    `part file ${partPath} ${detail}; it changed after it was written. ` +
    `Remove ${folder} to score every user again`,
  fileMissing: () => 'is missing',
  sizeDiffers: (bytes: number, expected: number) =>
    `has ${bytes} bytes but its manifest records ${expected}`,
  sha256Differs: (sha256: string, expected: string) =>
    `has sha256 ${sha256} but its manifest records ${expected}`,
  csvHeaderMissing: (header: string) => `does not start with the CSV header ${header}`,
  mergeNoInputs: () => 'merge needs at least one shard output',
  shardManifestMissing: (output: string, manifestPath: string) =>
    `${output} has no manifest ${manifestPath}; merge takes the outputs of ` +
    `attnscore score --shard runs, each with the manifest that the run writes beside it`,
  mergeMismatch: (
    field: string,
    firstPath: string,
    firstValue: string,
    otherPath: string,
    otherValue: string,
  ) =>
    `shard outputs differ in ${field}: ${firstPath} has ${firstValue} but ${otherPath} has ` +
    `${otherValue}; merge only the shards of one run`,
  mergeDuplicateShard: (index: number, count: number, firstPath: string, otherPath: string) =>
    `${firstPath} and ${otherPath} are both shard ${index}/${count}; give each shard once`,
  mergeMissingShards: (missing: readonly number[], count: number) =>
    (missing.length === 1 ? 'shard ' : 'shards ') +
    missing.map((index) => `${index}/${count}`).join(', ') +
    (missing.length === 1 ? ' is' : ' are') +
    ` missing; give all ${count} shard outputs`,
  shardOutputChanged: (output: string, detail: string) =>
    `shard output ${output} ${detail}; it changed after its run finished, so run that shard again`,
  mergeOutputIsInput: (out: string) =>
    `--out ${out} is one of the shard outputs or their manifests; choose another output path`,
  mergeFormatMismatch: (out: string, named: string, format: string) =>
    `--out ${out} names ${named} output but the shards contain ${format}; ` +
    `give an --out path with the .${format} extension`,
} as const;
