/**
 * JSON.parse loses integers beyond 2^53. A request that may carry such integers (INT64/UINT64
 * tensors) is parsed here instead: integer literals outside the safe range become BigInt, everything
 * else is what JSON.parse would give. The native parser stays the fast path for every other body.
 */
const LONG_INTEGER = /(?<![\d.eE])-?\d{16,}(?![\d.eE])/;

/** True when `text` has an integer literal long enough that JSON.parse could round it. */
export function mayHoldUnsafeIntegers(text: string): boolean {
  return LONG_INTEGER.test(text);
}

export function parseJsonPrecise(text: string, maxDepth: number): unknown {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at position ${i}`);
  };
  const skipWhitespace = (): void => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 10 || c === 13 || c === 9) i++;
      else return;
    }
  };
  const parseValue = (depth: number): unknown => {
    if (depth > maxDepth) fail(`nesting deeper than ${maxDepth}`);
    skipWhitespace();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: Record<string, unknown> = {};
      skipWhitespace();
      if (text[i] === '}') { i++; return obj; }
      for (;;) {
        skipWhitespace();
        if (text[i] !== '"') fail('expected a string key');
        const key = parseString();
        skipWhitespace();
        if (text[i] !== ':') fail('expected :');
        i++;
        const value = parseValue(depth + 1);
        // As JSON.parse: "__proto__" is an own key, never the prototype.
        if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
        else obj[key] = value;
        skipWhitespace();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return obj; }
        fail('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const arr: unknown[] = [];
      skipWhitespace();
      if (text[i] === ']') { i++; return arr; }
      for (;;) {
        arr.push(parseValue(depth + 1));
        skipWhitespace();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return arr; }
        fail('expected , or ]');
      }
    }
    if (c === '"') return parseString();
    if (text.startsWith('true', i)) { i += 4; return true; }
    if (text.startsWith('false', i)) { i += 5; return false; }
    if (text.startsWith('null', i)) { i += 4; return null; }
    return parseNumber();
  };
  const parseString = (): string => {
    const start = i;
    i++;
    for (;;) {
      const c = text.charCodeAt(i);
      if (Number.isNaN(c)) fail('unterminated string');
      if (c === 92) i += 2; // backslash: skip the escaped character
      else if (c === 34) break;
      else i++;
    }
    i++;
    return JSON.parse(text.slice(start, i)) as string; // the native parser handles escapes exactly
  };
  const parseNumber = (): number | bigint => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (match === null) fail('unexpected token');
    const literal = match![0];
    i += literal.length;
    if (match![2] === undefined && match![3] === undefined) {
      const n = Number(literal);
      return Number.isSafeInteger(n) ? n : BigInt(literal);
    }
    return Number(literal);
  };
  const value = parseValue(0);
  skipWhitespace();
  if (i !== text.length) fail('unexpected data after the JSON value');
  return value;
}
