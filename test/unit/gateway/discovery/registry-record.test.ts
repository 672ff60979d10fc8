// The registry's shared format (shared/registry/): key names keep one hash tag, records and messages
// round-trip, and parsing drops what is unusable while ignoring fields it does not know.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registryKeys } from '../../../../shared/registry/keys.ts';
import { encodeMessage, encodeRecord, parseMessage, parseRecord, type WorkerRecord } from '../../../../shared/registry/record.ts';

const RECORD: WorkerRecord = { id: 'worker-1', url: 'http://10.0.0.7:9001', models: { iris: ['1', '2'] }, capacity: 8, startedAt: 1_700_000_000_000, version: '0.1.0' };

/** The Redis Cluster hash tag of a key: the first {...} with something inside. */
function hashTag(key: string): string | undefined {
  return /\{([^}]+)\}/.exec(key)?.[1];
}

test('every registry key shares one hash tag; the channel is plain', () => {
  const keys = registryKeys();
  assert.equal(keys.record('w-1'), '{infergate:workers}:worker:w-1');
  assert.equal(keys.index, '{infergate:workers}:index');
  assert.equal(keys.channel, 'infergate:workers');
  assert.equal(hashTag(keys.record('a')), hashTag(keys.index));
  assert.equal(registryKeys('staging').record('x'), '{staging:workers}:worker:x');
  assert.throws(() => registryKeys('bad{ns}'), /namespace/);
});

test('records and messages round-trip', () => {
  assert.deepEqual(parseRecord(encodeRecord(RECORD)), RECORD);
  assert.deepEqual(parseMessage(encodeMessage({ type: 'join', record: RECORD })), { type: 'join', record: RECORD });
  assert.deepEqual(parseMessage(encodeMessage({ type: 'leave', id: 'worker-1', url: RECORD.url })), { type: 'leave', id: 'worker-1', url: RECORD.url });
});

test('URLs are reduced to their origin; unknown fields are ignored; optional ones defaulted', () => {
  const parsed = parseRecord(JSON.stringify({ id: 'w', url: 'http://10.0.0.7:9001/v2/', future: true }));
  assert.deepEqual(parsed, { id: 'w', url: 'http://10.0.0.7:9001', models: {}, capacity: 1, startedAt: 0, version: 'unknown' });
});

test('unusable records and messages are dropped', () => {
  for (const text of [null, '', 'not json', '[]', '{}', JSON.stringify({ ...RECORD, id: '' }), JSON.stringify({ ...RECORD, id: 'has space' }),
    JSON.stringify({ ...RECORD, url: 'ftp://x' }), JSON.stringify({ ...RECORD, url: 'nope' })]) {
    assert.equal(parseRecord(text), undefined, String(text));
  }
  for (const text of ['x', '{}', JSON.stringify({ type: 'join', record: {} }), JSON.stringify({ type: 'leave', id: 'w' }), JSON.stringify({ type: 'other', id: 'w', url: RECORD.url })]) {
    assert.equal(parseMessage(text), undefined, text);
  }
});
