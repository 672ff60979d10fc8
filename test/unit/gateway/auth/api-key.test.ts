/**
 * The API-key format (gateway/auth/api-key.ts): round trip, the checksum catching every one-character
 * typo (CRC-32 detects all bursts ≤ 32 bits, so this is exhaustive, not sampled), malformed shapes,
 * digests and their constant-time comparison.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { crc32 as zlibCrc32 } from 'node:zlib';
import {
  API_KEY_LENGTH, crc32, digest, digestBytes, digestsEqual, displayPrefix, formatApiKey, generateApiKey, isKeyId, looksLikeApiKey, parseApiKey, secretMatches,
} from '../../../../gateway/auth/api-key.ts';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

test('a generated key parses back to its id and secret', () => {
  for (let i = 0; i < 200; i++) {
    const { key, id, secret } = generateApiKey();
    assert.equal(key.length, API_KEY_LENGTH);
    assert.match(key, /^igk_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}$/);
    assert.deepEqual(parseApiKey(key), { id, secret });
    assert.equal(formatApiKey(id, secret), key);
    assert.ok(isKeyId(id));
    assert.ok(looksLikeApiKey(key));
  }
});

test('ids and secrets are random: no repeats over many keys', () => {
  const ids = new Set<string>();
  const secrets = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const { id, secret } = generateApiKey();
    ids.add(id);
    secrets.add(secret);
  }
  assert.equal(ids.size, 2000);
  assert.equal(secrets.size, 2000);
});

test('every one-character substitution anywhere after the prefix is rejected by the checksum', () => {
  const { key } = generateApiKey();
  let tried = 0;
  for (let position = 4; position < key.length; position++) {
    if (key[position] === '_') continue;
    for (const c of BASE62) {
      if (c === key[position]) continue;
      const typo = key.slice(0, position) + c + key.slice(position + 1);
      assert.equal(parseApiKey(typo), undefined, `typo at ${position} (${c}) accepted`);
      tried++;
    }
  }
  assert.equal(tried, (API_KEY_LENGTH - 5) * 61);
});

test('adjacent transpositions are rejected too', () => {
  const { key } = generateApiKey();
  for (let position = 4; position < key.length - 1; position++) {
    const [a, b] = [key[position]!, key[position + 1]!];
    if (a === b || a === '_' || b === '_') continue;
    const swapped = key.slice(0, position) + b + a + key.slice(position + 2);
    assert.equal(parseApiKey(swapped), undefined, `swap at ${position} accepted`);
  }
});

test('malformed shapes are rejected', () => {
  const { key, id, secret } = generateApiKey();
  const cases = [
    '', 'igk_', key.slice(0, -1), `${key}0`, ` ${key}`, `${key} `, key.replace('igk_', 'IGK_'), key.replace('igk_', 'igx_'),
    key.replace(`_${secret}`, `-${secret}`), `igk_${id}${secret}`, key.replace(/.$/, '-'), key.toUpperCase(),
    'Bearer ' + key, `igk_${'a'.repeat(12)}_${'b'.repeat(38)}`, 'not a key at all', 'x'.repeat(10_000),
    key.slice(0, 20) + 'é' + key.slice(21),
  ];
  for (const text of cases) assert.equal(parseApiKey(text), undefined, JSON.stringify(text.slice(0, 60)));
});

test('crc32 agrees with zlib where Node has it', { skip: typeof zlibCrc32 !== 'function' && 'zlib.crc32 needs Node 20.15+' }, () => {
  for (const text of ['', 'a', 'igk_abc_def', generateApiKey().key, 'é€😀']) assert.equal(crc32(text), zlibCrc32(text));
  assert.equal(crc32('123456789'), 0xcbf43926); // the CRC-32 check value
});

test('digest is the SHA-256 of the secret; comparison is by value and refuses malformed digests', () => {
  const { secret } = generateApiKey();
  const d = digest(secret);
  assert.equal(d, createHash('sha256').update(secret).digest('hex'));
  assert.ok(digestsEqual(d, digest(secret)));
  assert.ok(!digestsEqual(d, digest(`${secret}x`)));
  assert.ok(!digestsEqual(d, d.slice(0, 62)));
  assert.ok(!digestsEqual('', ''));
  assert.ok(!digestsEqual('zz'.repeat(32), 'zz'.repeat(32)));
});

test('secretMatches checks a secret against the raw stored digest; digestBytes refuses anything but 64 hex digits', () => {
  const { secret } = generateApiKey();
  const stored = digest(secret);
  const bytes = digestBytes(stored);
  assert.ok(bytes !== undefined);
  assert.deepEqual(bytes, createHash('sha256').update(secret).digest());
  assert.ok(secretMatches(secret, bytes));
  assert.ok(!secretMatches(`${secret}x`, bytes));
  assert.ok(!secretMatches(secret.slice(1), bytes));
  assert.ok(!secretMatches(secret, undefined));
  assert.ok(!secretMatches(secret, bytes.subarray(0, 31)));
  for (const bad of ['', stored.slice(0, 62), `${stored}0`, 'zz'.repeat(32), `${stored.slice(0, 63)}g`]) assert.equal(digestBytes(bad), undefined, bad);
  assert.deepEqual(digestBytes(stored.toUpperCase()), bytes, 'hex is case-insensitive');
});

test('crc32 of non-ASCII text is the CRC of its UTF-8 bytes', () => {
  for (const text of ['é', 'igk_ü_∑', '😀 key']) assert.equal(crc32(text), zlibCrc32(Buffer.from(text, 'utf8')), text);
});

test('the display prefix shows the id and four characters of the secret, nothing more', () => {
  const { id, secret, key } = generateApiKey();
  const shown = displayPrefix(id, secret);
  assert.equal(shown, `igk_${id}_${secret.slice(0, 4)}`);
  assert.ok(key.startsWith(shown));
  assert.equal(parseApiKey(shown), undefined);
});
