import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import type { RowId, UserResult } from '../scoring/types.js';
import { writeFloat32 } from './decimal.js';

const ascii = (text: string): Uint8Array => Uint8Array.from(text, (char) => char.charCodeAt(0));

const USER = ascii('{"user":');
const CX = ascii(',"cx":');
const LOYALTY = ascii(',"loyalty":');
const TOP = ascii(',"top":[');
const CONTENT = ascii('{"content":');
const SCORE = ascii(',"score":');
const TOP_END = ascii(']}');

/** Room that one score needs: a sign, "0.", up to 6 zeros and 9 digits, or a longer exponent form. */
const SCORE_BYTES = 24;

/**
 * Encoder that writes results as JSON straight into bytes, without building strings. Each
 * result becomes one `{"user", "cx", "loyalty", "top": [{"content", "score"}]}` object, as
 * the command line's JSON Lines output writes it. Ids keep their JSON type, scores are the
 * shortest decimals that read back to the same float32, and cx and loyalty are float64.
 * The encoder can be reset and reused, so a run allocates its buffer once.
 */
export class JsonResultEncoder {
  private bytes: Buffer;
  private length = 0;

  constructor(initialBytes = 1 << 16) {
    this.bytes = Buffer.allocUnsafe(initialBytes);
  }

  /** Forgets what was written; the buffer is kept for the next batch. */
  reset(): this {
    this.length = 0;
    return this;
  }

  /** Returns the bytes written so far, which stay valid until the next reset or write. */
  view(): Buffer {
    return this.bytes.subarray(0, this.length);
  }

  /** Appends text that is known to be ASCII, such as punctuation or a number. */
  ascii(text: string): this {
    this.reserve(text.length);
    const bytes = this.bytes;
    let at = this.length;
    for (let index = 0; index < text.length; index++) bytes[at++] = text.charCodeAt(index);
    this.length = at;
    return this;
  }

  /**
   * Appends one result as a JSON object. Throws `INTERNAL` for a non-finite score, cx or
   * loyalty, which JSON cannot hold.
   */
  result(result: UserResult): this {
    const { top } = result;
    this.constant(USER).id(result.user);
    this.constant(CX).float64(result, 'cx', result.cx);
    this.constant(LOYALTY).float64(result, 'loyalty', result.loyalty);
    this.constant(TOP);
    for (let rank = 0; rank < top.length; rank++) {
      const match = top[rank]!;
      if (!Number.isFinite(match.score)) {
        throw new AttnScoreError('INTERNAL', messages.nonFiniteResult(result.user, 'score', match.score));
      }
      if (rank > 0) this.byte(0x2c);
      this.constant(CONTENT).id(match.content);
      this.constant(SCORE);
      this.reserve(SCORE_BYTES + 1);
      this.length = writeFloat32(this.bytes, this.length, match.score);
      this.bytes[this.length++] = 0x7d;
    }
    return this.constant(TOP_END);
  }

  /**
   * Appends an id as JSON. A non-negative integer, or a string of printable ASCII without
   * quotes or backslashes, is written byte by byte. Any other id goes through JSON.stringify.
   */
  private id(id: RowId): this {
    if (typeof id === 'number') {
      if (Number.isSafeInteger(id) && id >= 0) return this.ascii(String(id));
      return this.text(JSON.stringify(id));
    }
    this.reserve(id.length + 2);
    const bytes = this.bytes;
    let at = this.length;
    bytes[at++] = 0x22;
    for (let index = 0; index < id.length; index++) {
      const code = id.charCodeAt(index);
      if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) return this.text(JSON.stringify(id));
      bytes[at++] = code;
    }
    bytes[at++] = 0x22;
    this.length = at;
    return this;
  }

  /** Appends any text as UTF-8. */
  private text(text: string): this {
    this.reserve(text.length * 3);
    this.length += this.bytes.write(text, this.length, 'utf8');
    return this;
  }

  private float64(result: UserResult, field: string, value: number): this {
    if (!Number.isFinite(value)) {
      throw new AttnScoreError('INTERNAL', messages.nonFiniteResult(result.user, field, value));
    }
    return this.ascii(String(value));
  }

  private byte(value: number): void {
    this.reserve(1);
    this.bytes[this.length++] = value;
  }

  private constant(constant: Uint8Array): this {
    this.reserve(constant.length);
    const bytes = this.bytes;
    let at = this.length;
    for (let index = 0; index < constant.length; index++) bytes[at++] = constant[index]!;
    this.length = at;
    return this;
  }

  /** Makes room for `count` more bytes, doubling the buffer as often as needed. */
  private reserve(count: number): void {
    if (this.length + count <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.length + count) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
  }
}
