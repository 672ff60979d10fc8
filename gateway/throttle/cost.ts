/**
 * What a request costs in tokens: 1 per request, or its batch size (config `cost: 'batch'`), so a
 * client cannot send 100 rows for the price of one.
 *
 * The batch size is read with a small scanner instead of JSON.parse: it walks the body once,
 * skipping every value it does not need (tensor data above all) without allocating, and never looks
 * at the binary tail of a request using the binary tensor extension — only at its JSON header, the
 * first `Inference-Header-Content-Length` bytes.
 *
 * What counts as the batch size, to agree with the worker (worker/protocol/v2-request.ts,
 * tf-routes.ts), which reads the body with JSON.parse semantics:
 * - V2: `inputs[i].shape[0]`, the largest over the inputs (the worker rejects inputs whose batch
 *   dimensions differ, but taking the largest means a mismatched request cannot buy a discount);
 *   a repeated key counts by its last occurrence, as in JSON.parse.
 * - TF row format: the number of `instances`. Columnar: the length of `inputs` when it is a list,
 *   else the longest list among its named values.
 * Anything else — malformed JSON, no inputs, a scalar shape, a batch below 1 — costs 1: the worker
 * rejects a malformed request anyway, so guessing low costs at most one token per bad request.
 *
 * @example
 *   requestCost('batch', 'v2', Buffer.from('{"inputs":[{"name":"x","shape":[8,4],"datatype":"FP32","data":[...]}]}'), {}) // 8
 */
import type { IncomingHttpHeaders } from 'node:http';
import { HEADER_BINARY_LENGTH } from '../../shared/protocol/headers.ts';

export type CostMode = 'request' | 'batch';

/** Tokens this request costs under `mode`: 1, or its batch size (at least 1). */
export function requestCost(mode: CostMode, protocol: 'v2' | 'tf', body: Buffer, headers: IncomingHttpHeaders): number {
  if (mode === 'request') return 1;
  const size = batchSizeOf(protocol, body, headers);
  return size === undefined || size < 1 ? 1 : size;
}

/** The batch size declared by a request body, or undefined when the body does not say (or is malformed). */
export function batchSizeOf(protocol: 'v2' | 'tf', body: Buffer, headers: IncomingHttpHeaders): number | undefined {
  let json = body;
  const headerLength = headers[HEADER_BINARY_LENGTH];
  if (protocol === 'v2' && headerLength !== undefined) {
    const length = Number(Array.isArray(headerLength) ? headerLength[0] : headerLength);
    if (!Number.isSafeInteger(length) || length < 0 || length > body.length) return undefined;
    json = body.subarray(0, length);
  }
  try {
    return protocol === 'v2' ? v2BatchSize(new Scanner(json)) : tfBatchSize(new Scanner(json));
  } catch (err) {
    if (err instanceof Malformed) return undefined;
    throw err;
  }
}

function v2BatchSize(s: Scanner): number | undefined {
  let batch: number | undefined;
  s.object((key) => {
    if (key !== 'inputs') return s.skipValue();
    batch = undefined; // a repeated "inputs" replaces the earlier one, as in JSON.parse
    if (s.peek() !== BRACKET_OPEN) return s.skipValue();
    s.array(() => {
      const first = inputBatch(s);
      if (first !== undefined) batch = Math.max(batch ?? first, first);
    });
  });
  s.end();
  return batch;
}

/** shape[0] of one V2 input object (the last "shape" key wins), or undefined. */
function inputBatch(s: Scanner): number | undefined {
  if (s.peek() !== BRACE_OPEN) {
    s.skipValue();
    return undefined;
  }
  let first: number | undefined;
  s.object((key) => {
    if (key !== 'shape') return s.skipValue();
    first = undefined;
    if (s.peek() !== BRACKET_OPEN) return s.skipValue();
    let index = 0;
    s.array(() => {
      if (index++ === 0) first = s.number();
      else s.skipValue();
    });
  });
  return first;
}

function tfBatchSize(s: Scanner): number | undefined {
  let batch: number | undefined;
  s.object((key) => {
    if (key === 'instances') {
      batch = s.peek() === BRACKET_OPEN ? s.countElements() : (s.skipValue(), undefined);
    } else if (key === 'inputs') {
      const c = s.peek();
      if (c === BRACKET_OPEN) batch = s.countElements();
      else if (c === BRACE_OPEN) {
        batch = undefined;
        s.object(() => {
          if (s.peek() !== BRACKET_OPEN) return s.skipValue();
          const n = s.countElements();
          batch = Math.max(batch ?? n, n);
        });
      } else {
        s.skipValue();
        batch = undefined;
      }
    } else s.skipValue();
  });
  s.end();
  return batch;
}

class Malformed extends Error {}

const BRACE_OPEN = 0x7b; // {
const BRACE_CLOSE = 0x7d; // }
const BRACKET_OPEN = 0x5b; // [
const BRACKET_CLOSE = 0x5d; // ]
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \
const COMMA = 0x2c;
const COLON = 0x3a;

/**
 * A minimal pull scanner over UTF-8 JSON bytes. It checks structure (brackets, commas, colons,
 * strings) but not every token's grammar: it only has to be right on valid JSON, and on invalid JSON
 * to end (it throws Malformed, or returns some batch the worker will reject with the body anyway).
 */
class Scanner {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  peek(): number {
    this.ws();
    if (this.pos >= this.buf.length) throw new Malformed();
    return this.buf[this.pos]!;
  }

  end(): void {
    this.ws();
    if (this.pos !== this.buf.length) throw new Malformed();
  }

  /** Walks an object; `onKey` must consume the value (by reading or skipping it). */
  object(onKey: (key: string) => void): void {
    this.expect(BRACE_OPEN);
    if (this.peek() === BRACE_CLOSE) {
      this.pos++;
      return;
    }
    for (;;) {
      if (this.peek() !== QUOTE) throw new Malformed();
      const key = this.string();
      this.expect(COLON);
      onKey(key);
      const c = this.peek();
      this.pos++;
      if (c === BRACE_CLOSE) return;
      if (c !== COMMA) throw new Malformed();
    }
  }

  /** Walks an array; `onElement` must consume each element. */
  array(onElement: () => void): void {
    this.expect(BRACKET_OPEN);
    if (this.peek() === BRACKET_CLOSE) {
      this.pos++;
      return;
    }
    for (;;) {
      onElement();
      const c = this.peek();
      this.pos++;
      if (c === BRACKET_CLOSE) return;
      if (c !== COMMA) throw new Malformed();
    }
  }

  countElements(): number {
    let n = 0;
    this.array(() => {
      this.skipValue();
      n++;
    });
    return n;
  }

  /** A number token; `undefined` (after skipping it) for any other value. */
  number(): number | undefined {
    const c = this.peek();
    if (c !== 0x2d && (c < 0x30 || c > 0x39)) {
      this.skipValue();
      return undefined;
    }
    const start = this.pos;
    this.scalarEnd();
    const n = Number(this.buf.toString('latin1', start, this.pos));
    if (Number.isNaN(n)) throw new Malformed();
    return n;
  }

  /** Skips one value of any kind, however deeply nested, without recursion or allocation. */
  skipValue(): void {
    const c = this.peek();
    if (c === QUOTE) {
      this.skipString();
      return;
    }
    if (c !== BRACE_OPEN && c !== BRACKET_OPEN) {
      const start = this.pos;
      this.scalarEnd();
      if (this.pos === start) throw new Malformed();
      return;
    }
    // Bracket counting is enough here: strings are skipped whole, so brackets inside them do not
    // count; whether { closes with } is not checked (JSON.parse in the worker will be).
    let depth = 0;
    const buf = this.buf;
    while (this.pos < buf.length) {
      const b = buf[this.pos]!;
      if (b === QUOTE) {
        this.skipString();
        continue;
      }
      this.pos++;
      if (b === BRACE_OPEN || b === BRACKET_OPEN) depth++;
      else if (b === BRACE_CLOSE || b === BRACKET_CLOSE) {
        if (--depth === 0) return;
      }
    }
    throw new Malformed();
  }

  private string(): string {
    const start = this.pos;
    this.skipString();
    const inner = this.buf.subarray(start + 1, this.pos - 1);
    // Keys are short; only one with an escape sequence needs real decoding.
    return inner.includes(BACKSLASH) ? (JSON.parse(this.buf.toString('utf8', start, this.pos)) as string) : inner.toString('utf8');
  }

  /** Moves past the string whose opening quote is at `pos`. */
  private skipString(): void {
    const buf = this.buf;
    let from = this.pos + 1;
    for (;;) {
      // indexOf runs natively: long strings (base64 BYTES data) are skipped fast.
      const q = buf.indexOf(QUOTE, from);
      if (q < 0) throw new Malformed();
      // The quote ends the string unless an odd number of backslashes precede it.
      let k = q - 1;
      while (k > this.pos && buf[k] === BACKSLASH) k--;
      if ((q - 1 - k) % 2 === 0) {
        this.pos = q + 1;
        return;
      }
      from = q + 1;
    }
  }

  /** Moves to the end of a number / true / false / null token. */
  private scalarEnd(): void {
    const buf = this.buf;
    while (this.pos < buf.length) {
      const b = buf[this.pos]!;
      if (b === COMMA || b === BRACKET_CLOSE || b === BRACE_CLOSE || b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) return;
      this.pos++;
    }
  }

  private expect(byte: number): void {
    if (this.peek() !== byte) throw new Malformed();
    this.pos++;
  }

  private ws(): void {
    const buf = this.buf;
    while (this.pos < buf.length) {
      const b = buf[this.pos]!;
      if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) return;
      this.pos++;
    }
  }
}
