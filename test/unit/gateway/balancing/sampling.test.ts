import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CandidateState } from '../../../../gateway/balancing/candidate-state.ts';
import { pickOfTwo, randomIndex } from '../../../../gateway/balancing/sampling.ts';
import { chiSquare } from './fixtures.ts';
import { mulberry32 } from './seeded-rng.ts';

test('randomIndex stays in [0, n) even for an rng outside its contract', () => {
  assert.equal(randomIndex(() => 0, 5), 0);
  assert.equal(randomIndex(() => 0.999_999_9, 5), 4);
  assert.equal(randomIndex(() => 1, 5), 4);
  assert.equal(randomIndex(() => -0.1, 5), 0);
  assert.equal(randomIndex(() => Number.NaN, 5), 0);
});

test('pickOfTwo draws distinct pairs, each ordered pair equally likely', () => {
  // n = 4 gives 12 ordered pairs, each with probability 1/12: 12 000 draws, 1 000 expected each,
  // df 11, critical value 31.26 at p = 0.001. A pair with i = j would show up as a 13th key.
  const rng = mulberry32(1);
  const items = [0, 1, 2, 3];
  const seen = new Map<string, number>();
  for (let k = 0; k < 12_000; k++) {
    let pair = '';
    pickOfTwo(items, rng, (a, b) => {
      pair = `${a}${b}`;
      return 0;
    });
    seen.set(pair, (seen.get(pair) ?? 0) + 1);
  }
  assert.equal(seen.size, 12);
  for (const pair of seen.keys()) assert.notEqual(pair[0], pair[1]);
  assert.ok(chiSquare([...seen.values()], Array(12).fill(1000)) < 31.26, JSON.stringify(Object.fromEntries(seen)));
});

test('pickOfTwo keeps the better of the two, and the first drawn on a tie', () => {
  const rng = mulberry32(2);
  for (let k = 0; k < 100; k++) {
    let first: number | undefined;
    const picked = pickOfTwo([10, 20, 30], rng, (a, b) => {
      first = a;
      return a - b;
    });
    assert.ok(picked !== undefined && picked <= 20); // 30 always loses
    const tie = pickOfTwo([10, 20, 30], rng, (a) => {
      first = a;
      return 0;
    });
    assert.equal(tie, first);
  }
  assert.equal(pickOfTwo([], rng, () => 0), undefined);
  assert.equal(pickOfTwo([7], rng, () => 0), 7);
});

test('CandidateState keeps state by id and sweeps ids not seen for ttlPicks picks', () => {
  const state = new CandidateState(() => ({ seenAt: 0, value: 0 }), 4);
  state.beginPick(); // pick 1
  state.get('gone').value = 1;
  state.get('stays').value = 2;
  for (let pick = 2; pick <= 7; pick++) {
    state.beginPick();
    state.get('stays');
  }
  assert.equal(state.size, 2); // the sweep at pick 4 drops entries last seen before pick 0: none
  state.beginPick(); // the sweep at pick 8 drops entries last seen before pick 4: 'gone' (pick 1)
  assert.equal(state.size, 1);
  assert.equal(state.get('stays').value, 2);
  assert.equal(state.get('gone').value, 0); // a returning id starts afresh
});
