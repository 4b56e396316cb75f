/**
 * Shortest decimals for float32 values: the fewest significant digits (6 to 9) that read
 * back to the same float32 when parsed as a float64 and rounded to float32, as JSON and CSV
 * readers do. The common range, magnitudes from 1e-4 to 1e6, is computed with exact integer
 * arithmetic in float64 and builds no intermediate string. Other magnitudes go through
 * `toPrecision`, which gives the same digits more slowly.
 */

/** Powers of ten that float64 represents exactly. */
const POW10 = Array.from({ length: 23 }, (_, exponent) => 10 ** exponent);

/**
 * The result of {@link shortestDigits}, kept in module state so the hot path allocates
 * nothing: the value is `digits / 10^scale`, where `digits` has no trailing zeros and
 * `scale` may be negative.
 */
let digits = 0;
let scale = 0;

/**
 * Finds the shortest digits of a positive float32 `value` from 1e-4 to 1e6 and stores them in
 * {@link digits} and {@link scale}; returns false, storing nothing, for other values. In that
 * range every product `value * 10^scale` below is exact, scale being 3 to 12: a float32
 * significand has 24 bits, 5^12 fewer than 29, and their product stays under 2^53.
 */
function shortestDigits(value: number): boolean {
  if (!(value >= 1e-4 && value < 1e6)) return false;
  // Find the scale that puts the value in [1e8, 1e9): nine digits before the point.
  let at = 8;
  let scaled = value * POW10[at]!;
  while (scaled >= 1e9) scaled = value * POW10[--at]!;
  while (scaled < 1e8) scaled = value * POW10[++at]!;

  // Nine digits always read back. Try eight, then seven and six while each still reads back.
  // Math.round rounds an exact half up, as toPrecision does for positive values.
  let best = Math.round(scaled);
  let bestScale = at;
  for (let shorter = at - 1; shorter >= at - 3; shorter--) {
    const candidate = Math.round(value * POW10[shorter]!);
    if (Math.fround(candidate / POW10[shorter]!) !== value) break;
    best = candidate;
    bestScale = shorter;
  }
  while (best % 10 === 0) {
    best /= 10;
    bestScale--;
  }
  digits = best;
  scale = bestScale;
  return true;
}

/**
 * Formats `value`, rounded to float32, as its shortest decimal in the notation of
 * `String(number)`. `value` must be finite.
 */
export function formatFloat32(value: number): string {
  const single = Math.fround(value);
  if (single === 0) return '0';
  const magnitude = Math.abs(single);
  if (!shortestDigits(magnitude)) return String(slowShortest(single));
  const sign = single < 0 ? '-' : '';
  const text = String(digits);
  if (scale <= 0) return sign + text + '0'.repeat(-scale);
  const point = text.length - scale;
  if (point > 0) return `${sign}${text.slice(0, point)}.${text.slice(point)}`;
  return `${sign}0.${'0'.repeat(-point)}${text}`;
}

/**
 * Writes `value`, rounded to float32, as its shortest decimal in ASCII at `offset` in
 * `target`, which must have 16 bytes free there, and returns the offset after it. Writes
 * the same characters as {@link formatFloat32}. `value` must be finite.
 */
export function writeFloat32(target: Uint8Array, offset: number, value: number): number {
  const single = Math.fround(value);
  const magnitude = Math.abs(single);
  if (single === 0 || !shortestDigits(magnitude)) return writeAscii(target, offset, formatFloat32(single));
  let at = offset;
  if (single < 0) target[at++] = 0x2d;
  // Count the digits, then write them from the last one back.
  let length = 1;
  while (length < 10 && digits >= POW10[length]!) length++;
  const point = length - scale;
  if (point <= 0) {
    target[at++] = 0x30;
    target[at++] = 0x2e;
    for (let zero = point; zero < 0; zero++) target[at++] = 0x30;
  }
  const end = at + length + (point > 0 && point < length ? 1 : 0);
  let rest = digits;
  let position = end;
  for (let index = length - 1; index >= 0; index--) {
    if (point > 0 && index === point - 1 && point < length) target[--position] = 0x2e;
    const digit = rest % 10;
    rest = (rest - digit) / 10;
    target[--position] = 0x30 + digit;
  }
  at = end;
  for (let zero = 0; zero < -scale; zero++) target[at++] = 0x30;
  return at;
}

/** Writes an ASCII string and returns the offset after it. */
function writeAscii(target: Uint8Array, offset: number, text: string): number {
  for (let index = 0; index < text.length; index++) target[offset + index] = text.charCodeAt(index);
  return offset + text.length;
}

/**
 * Returns the shortest of 6 to 9 significant digits that reads back to float32 `value`,
 * found with toPrecision. Most float32 values need 8 or 9, so it starts at 8 and shortens
 * while the value still reads back.
 */
function slowShortest(value: number): number {
  let shortest = Number(value.toPrecision(8));
  if (Math.fround(shortest) !== value) return Number(value.toPrecision(9));
  for (let count = 7; count >= 6; count--) {
    const shorter = Number(value.toPrecision(count));
    if (Math.fround(shorter) !== value) break;
    shortest = shorter;
  }
  return shortest;
}
