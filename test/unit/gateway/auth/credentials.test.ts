/**
 * Credential extraction and the RFC 6750 challenge (gateway/auth/credentials.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateApiKey } from '../../../../gateway/auth/api-key.ts';
import { extractCredential, wwwAuthenticate } from '../../../../gateway/auth/credentials.ts';

const { key } = generateApiKey();
const other = generateApiKey().key;
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig';

test('no credential', () => {
  assert.deepEqual(extractCredential({}), { kind: 'none' });
  assert.deepEqual(extractCredential({ authorization: 'Basic dXNlcjpwYXNz' }), { kind: 'none' }, 'another scheme is not ours');
});

test('Bearer carries a JWT; the scheme is case-insensitive', () => {
  for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
    assert.deepEqual(extractCredential({ authorization: `${scheme} ${JWT}` }), { kind: 'bearer', token: JWT });
  }
  assert.deepEqual(extractCredential({ authorization: `Bearer   ${JWT}  ` }), { kind: 'bearer', token: JWT });
});

test('Bearer with an igk_ token is an API key', () => {
  assert.deepEqual(extractCredential({ authorization: `Bearer ${key}` }), { kind: 'api-key', key });
  // Malformed, but still meant as an API key: the key verifier says "malformed".
  assert.deepEqual(extractCredential({ authorization: 'Bearer igk_short' }), { kind: 'api-key', key: 'igk_short' });
});

test('X-API-Key carries an API key', () => {
  assert.deepEqual(extractCredential({ 'x-api-key': key }), { kind: 'api-key', key });
  assert.deepEqual(extractCredential({ 'x-api-key': ` ${key} ` }), { kind: 'api-key', key });
});

test('an empty Bearer is a (bad) bearer credential, not none', () => {
  assert.deepEqual(extractCredential({ authorization: 'Bearer' }), { kind: 'bearer', token: '' });
  assert.deepEqual(extractCredential({ authorization: 'Bearer   ' }), { kind: 'bearer', token: '' });
});

test('two different credentials conflict; the same key twice does not', () => {
  assert.deepEqual(extractCredential({ authorization: `Bearer ${JWT}`, 'x-api-key': key }), { kind: 'conflict' });
  assert.deepEqual(extractCredential({ authorization: `Bearer ${other}`, 'x-api-key': key }), { kind: 'conflict' });
  assert.deepEqual(extractCredential({ 'x-api-key': `${key}, ${other}` }), { kind: 'conflict' }, 'repeated header, joined by Node');
  assert.deepEqual(extractCredential({ 'x-api-key': [key, other] }), { kind: 'conflict' });
  assert.deepEqual(extractCredential({ authorization: `Bearer ${key}`, 'x-api-key': key }), { kind: 'api-key', key });
  assert.deepEqual(extractCredential({ 'x-api-key': `${key}, ${key}` }), { kind: 'api-key', key });
});

test('WWW-Authenticate per RFC 6750: no error without a credential, error and description otherwise', () => {
  assert.equal(wwwAuthenticate(), 'Bearer realm="infergate"');
  assert.equal(wwwAuthenticate('invalid_token'), 'Bearer realm="infergate", error="invalid_token"');
  assert.equal(wwwAuthenticate('invalid_token', 'the token has expired'), 'Bearer realm="infergate", error="invalid_token", error_description="the token has expired"');
  assert.equal(wwwAuthenticate('insufficient_scope', 'may not use "iris"\\'), 'Bearer realm="infergate", error="insufficient_scope", error_description="may not use iris"');
  assert.equal(wwwAuthenticate('invalid_token', 'a\r\nSet-Cookie: x'), 'Bearer realm="infergate", error="invalid_token", error_description="aSet-Cookie: x"');
});
