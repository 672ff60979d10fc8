// RateLimit-* and Retry-After from a decision (draft-ietf-httpapi-ratelimit-headers-06; RFC 9110).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rateLimitHeaders } from '../../../../gateway/throttle/headers.ts';

test('headers: an admission carries limit, remaining and reset (seconds, rounded up), no Retry-After', () => {
  assert.deepEqual(rateLimitHeaders({ allowed: true, limit: 20, remaining: 19, resetMs: 100, retryAfterMs: 0 }), {
    'RateLimit-Limit': '20',
    'RateLimit-Remaining': '19',
    'RateLimit-Reset': '1',
  });
  assert.equal(rateLimitHeaders({ allowed: true, limit: 20, remaining: 20, resetMs: 0, retryAfterMs: 0 })['RateLimit-Reset'], '0');
  assert.equal(rateLimitHeaders({ allowed: true, limit: 20, remaining: 0, resetMs: 2001, retryAfterMs: 0 })['RateLimit-Reset'], '3');
});

test('headers: a denial adds Retry-After, rounded up and at least 1 s', () => {
  assert.equal(rateLimitHeaders({ allowed: false, limit: 5, remaining: 0, resetMs: 500, retryAfterMs: 20 })['Retry-After'], '1');
  assert.equal(rateLimitHeaders({ allowed: false, limit: 5, remaining: 0, resetMs: 5000, retryAfterMs: 2500 })['Retry-After'], '3');
  assert.equal(rateLimitHeaders({ allowed: false, limit: 5, remaining: 0, resetMs: 5000, retryAfterMs: 0 })['Retry-After'], '1');
});

test('headers: no Retry-After when no wait will help (cost above the burst)', () => {
  const h = rateLimitHeaders({ allowed: false, limit: 5, remaining: 5, resetMs: 0, retryAfterMs: Number.POSITIVE_INFINITY });
  assert.equal(h['Retry-After'], undefined);
  assert.equal(h['RateLimit-Remaining'], '5');
});
