/** The names a Connection header lists (gateway/pipeline/forward.ts), dropped with it on both sides of the proxy. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectionTokens } from '../../../gateway/pipeline/forward.ts';

test('connection tokens: lower case, trimmed, empty ones dropped, repeated headers joined', () => {
  assert.deepEqual(connectionTokens(undefined), []);
  assert.deepEqual(connectionTokens('keep-alive'), ['keep-alive']);
  assert.deepEqual(connectionTokens('close'), ['close']);
  assert.deepEqual(connectionTokens('Keep-Alive, X-Secret ,,TE'), ['keep-alive', 'x-secret', 'te']);
  assert.deepEqual(connectionTokens(['close', 'X-A']), ['close', 'x-a']);
  assert.deepEqual(connectionTokens(' , '), []);
});
