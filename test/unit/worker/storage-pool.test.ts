import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StoragePool } from '../../../worker/protocol/codec/storage-pool.ts';

test('a released buffer is handed out again for the same size, and only for it', () => {
  const pool = new StoragePool();
  const a = pool.acquire(16);
  assert.equal(a.byteLength, 16);
  pool.release(a);
  assert.notEqual(pool.acquire(32), a);
  assert.equal(pool.acquire(16), a);
  assert.notEqual(pool.acquire(16), a, 'handed out once, not twice');
});

test('buffers over the size limit, beyond the per-size count or of too many sizes are not kept', () => {
  const pool = new StoragePool(64, 1, 2);
  const big = pool.acquire(128);
  pool.release(big);
  assert.notEqual(pool.acquire(128), big);

  const first = pool.acquire(8);
  const second = pool.acquire(8);
  pool.release(first);
  pool.release(second);
  assert.equal(pool.acquire(8), first);
  assert.notEqual(pool.acquire(8), second);

  const size16 = pool.acquire(16);
  pool.release(size16);
  const size24 = pool.acquire(24);
  pool.release(size24); // a third size: 8 and 16 are kept already
  assert.equal(pool.acquire(16), size16);
  assert.notEqual(pool.acquire(24), size24);
});
