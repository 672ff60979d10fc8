import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mayHoldUnsafeIntegers, parseJsonPrecise } from '../../../worker/protocol/codec/precise-json.ts';

const DEPTH = 64;
const parse = (text: string): unknown => parseJsonPrecise(text, DEPTH);

describe('parseJsonPrecise: integers', () => {
  test('integers beyond 2^53 come back as exact BigInts', () => {
    assert.equal(parse('9007199254740993'), 9007199254740993n); // 2^53 + 1, which JSON.parse rounds to 2^53
    assert.equal(parse('18446744073709551615'), 18446744073709551615n); // UINT64 max
    assert.equal(parse('9223372036854775807'), 9223372036854775807n); // INT64 max
    assert.equal(parse('-9223372036854775808'), -9223372036854775808n); // INT64 min
    assert.equal(parse('-9007199254740993'), -9007199254740993n);
  });

  test('safe integers stay numbers', () => {
    assert.equal(parse('0'), 0);
    assert.equal(parse('42'), 42);
    assert.equal(parse('-17'), -17);
    assert.equal(parse('9007199254740991'), Number.MAX_SAFE_INTEGER);
    assert.equal(parse('-9007199254740991'), Number.MIN_SAFE_INTEGER);
    assert.ok(Object.is(parse('-0'), -0));
  });

  test('big integers keep their place inside objects and arrays', () => {
    assert.deepEqual(parse('{"a":[1, 18446744073709551615, -3], "b": {"c": -9223372036854775808}}'), {
      a: [1, 18446744073709551615n, -3],
      b: { c: -9223372036854775808n },
    });
  });
});

describe('parseJsonPrecise: everything else is what JSON.parse gives', () => {
  test('numbers with a fraction or exponent are floats, even when long', () => {
    assert.equal(parse('1.5'), 1.5);
    assert.equal(parse('-0.1'), -0.1);
    assert.equal(parse('1e300'), 1e300);
    assert.equal(parse('1E+2'), 100);
    assert.equal(parse('2.5e-3'), 0.0025);
    assert.equal(parse('0.12345678901234567'), 0.12345678901234567);
    assert.equal(parse('12345678901234567890.5'), 12345678901234567890.5);
    assert.equal(parse('12345678901234567890e0'), 12345678901234567890);
  });

  test('strings with escapes decode exactly', () => {
    assert.equal(parse(String.raw`"a\"b\\c\/d\n\t\u00e9\ud83d\ude00"`), 'a"b\\c/d\n\té😀');
    assert.equal(parse('"12345678901234567890"'), '12345678901234567890', 'digits in a string stay a string');
    assert.equal(parse('""'), '');
  });

  test('a corpus of documents parses the same as with JSON.parse', () => {
    const corpus = [
      '{}', '[]', 'null', 'true', 'false', '"x"', ' \n\t[ 1 , 2 ]\r\n',
      '{"id":"r1","inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[[1.5,-2],[3e-2,4]]}]}',
      '{"a":{"b":{"c":[null,true,false,"\\u0041"]}},"d":[]}',
      '[{"k":"v"},[[]],{}]',
    ];
    for (const text of corpus) assert.deepEqual(parse(text), JSON.parse(text), text);
  });

  test('__proto__ is an ordinary own key, as with JSON.parse', () => {
    const parsed = parse('{"__proto__":{"polluted":1},"n":12345678901234567890}') as Record<string, unknown>;
    assert.deepEqual(Object.keys(parsed), ['__proto__', 'n']);
    assert.equal(parsed.polluted, undefined, 'keys of the __proto__ value must not be inherited');
    assert.equal(Object.getPrototypeOf(parsed), Object.prototype);
  });
});

describe('parseJsonPrecise: limits and errors', () => {
  // maxDepth counts the containers around the innermost value: [[[1]]] puts `1` three deep.
  test('values nested up to maxDepth containers deep are accepted', () => {
    assert.deepEqual(parseJsonPrecise('[[[1]]]', 3), [[[1]]]);
    assert.deepEqual(parseJsonPrecise('{"a":{"b":{"c":1}}}', 3), { a: { b: { c: 1 } } });
  });

  test('deeper nesting is refused with a SyntaxError naming the limit', () => {
    assert.throws(() => parseJsonPrecise('[[[[1]]]]', 3), { name: 'SyntaxError', message: /deeper than 3/ });
    assert.throws(() => parseJsonPrecise('{"a":{"b":{"c":{"d":1}}}}', 3), { name: 'SyntaxError', message: /deeper than 3/ });
  });

  test('a hostile 100 000-level nesting fails cleanly instead of overflowing the stack', () => {
    const text = '['.repeat(100_000) + ']'.repeat(100_000);
    assert.throws(() => parseJsonPrecise(text, 40), { name: 'SyntaxError', message: /deeper than 40/ });
  });

  test('malformed JSON is rejected with a SyntaxError, wherever JSON.parse rejects it', () => {
    const malformed = [
      '', ' ', '{', '[', '[1,]', '{"a":1,}', '{"a" 1}', '{a:1}', "{'a':1}", 'tru', 'nul', '[1] x', '[1 2]',
      '"unterminated', '"bad \\x escape"', '"raw \u0001 control"', '01', '1.', '.5', '+1', '-', 'NaN', 'Infinity',
      '12345678901234567890 1', '[12345678901234567890,]',
    ];
    for (const text of malformed) {
      assert.throws(() => JSON.parse(text), SyntaxError, `oracle: JSON.parse should reject ${JSON.stringify(text)}`);
      assert.throws(() => parse(text), SyntaxError, `should reject ${JSON.stringify(text)}`);
    }
  });
});

describe('mayHoldUnsafeIntegers', () => {
  test('true when an integer literal could exceed 2^53 (16 digits or more)', () => {
    assert.equal(mayHoldUnsafeIntegers('9007199254740993'), true);
    assert.equal(mayHoldUnsafeIntegers('{"data":[1,18446744073709551615]}'), true);
    assert.equal(mayHoldUnsafeIntegers('[-9223372036854775808]'), true);
  });

  test('false for short integers and for long decimals, which JSON.parse handles without loss of integer precision', () => {
    assert.equal(mayHoldUnsafeIntegers('{"data":[1,2,3],"shape":[1,3]}'), false);
    assert.equal(mayHoldUnsafeIntegers('123456789012345'), false); // 15 digits: always below 2^53
    assert.equal(mayHoldUnsafeIntegers('0.12345678901234567'), false);
    assert.equal(mayHoldUnsafeIntegers('[-0.12345678901234567]'), false);
    assert.equal(mayHoldUnsafeIntegers('12345678901234567.5'), false);
    assert.equal(mayHoldUnsafeIntegers('1.2345678901234567e5'), false);
    assert.equal(mayHoldUnsafeIntegers('12345678901234567e2'), false);
    assert.equal(mayHoldUnsafeIntegers('1e12345678901234567'), false);
  });
});
