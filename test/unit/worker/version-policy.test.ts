import assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectVersions } from '../../../worker/repository/version-policy.ts';

const ON_DISK = [1, 10, 3, 2]; // unsorted, as a directory listing may come back; 10 > 3 numerically

test('latest: n serves the n highest versions, newest first', () => {
  assert.deepEqual(selectVersions(ON_DISK, { latest: 1 }), [10]);
  assert.deepEqual(selectVersions(ON_DISK, { latest: 2 }), [10, 3]);
});

test('latest: n larger than what is on disk serves everything', () => {
  assert.deepEqual(selectVersions(ON_DISK, { latest: 9 }), [10, 3, 2, 1]);
});

test('all serves every version, newest first', () => {
  assert.deepEqual(selectVersions(ON_DISK, { all: true }), [10, 3, 2, 1]);
});

test('specific serves only the listed versions that exist', () => {
  assert.deepEqual(selectVersions(ON_DISK, { specific: [1, 3, 7] }), [3, 1]);
  assert.deepEqual(selectVersions(ON_DISK, { specific: [7] }), []);
});

test('no versions on disk serves nothing', () => {
  assert.deepEqual(selectVersions([], { latest: 1 }), []);
  assert.deepEqual(selectVersions([], { all: true }), []);
});

test('the input list is not reordered', () => {
  const available = [1, 10, 3];
  selectVersions(available, { all: true });
  assert.deepEqual(available, [1, 10, 3]);
});
