// The throttle stage charges what a request carries: its batch size in `batch` mode, compressed or
// not; and answers a denial with 429 and its headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { silentLogger } from '../../../shared/logger.ts';
import { InfergateError } from '../../../shared/errors.ts';
import { throttleStage } from '../../../gateway/pipeline/throttle.ts';
import { MemoryLimiter } from '../../../gateway/throttle/memory-limiter.ts';
import { RequestContext } from '../../../gateway/pipeline/context.ts';

function context(body: Buffer, headers: Record<string, string> = {}): RequestContext {
  const set: Record<string, string> = {};
  const req = { headers } as never;
  const res = { setHeader: (name: string, value: string) => { set[name] = value; } } as never;
  const ctx = new RequestContext(req, res, { protocol: 'v2', model: 'iris', version: undefined }, 'r', 0, 1e9);
  ctx.body = body;
  ctx.principal = { subject: 'alice', kind: 'api-key', models: '*', plan: { ratePerSec: 0.001, burst: 10 } };
  return ctx;
}

const v2Body = (rows: number): Buffer => Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 2], data: new Array(rows * 2).fill(0) }] }));

test('batch cost: a gzip body costs its inflated batch size, not 1', async () => {
  const limiter = new MemoryLimiter();
  const stage = throttleStage({ enabled: true, plans: {}, perModel: false, cost: 'batch', onStoreFailure: 'open', leaseMs: 0 }, { limiter, logger: silentLogger(), bodyLimitBytes: 1 << 20 });
  await stage(context(gzipSync(v2Body(8)), { 'content-encoding': 'gzip' })); // 8 of 10 tokens
  await assert.rejects(async () => stage(context(v2Body(3))), (err: InfergateError) => err.code === 'GW_ERR_RATE_LIMITED' && err.headers['Retry-After'] !== undefined);
  await stage(context(v2Body(2))); // exactly the 2 left
});

test('an unknown default plan fails at build time, naming it', () => {
  assert.throws(() => throttleStage({ enabled: true, plans: {}, defaultPlan: 'gold', perModel: false, cost: 'request', onStoreFailure: 'open', leaseMs: 0 }, { limiter: new MemoryLimiter(), logger: silentLogger(), bodyLimitBytes: 1024 }), /gold/);
});

test('a plan named like an Object property is an unknown plan: the default applies, not a 500', async () => {
  const plans = { gold: { ratePerSec: 0.001, burst: 2 } };
  assert.throws(() => throttleStage({ enabled: true, plans, defaultPlan: 'constructor', perModel: false, cost: 'request', onStoreFailure: 'open', leaseMs: 0 }, { limiter: new MemoryLimiter(), logger: silentLogger(), bodyLimitBytes: 1024 }), /constructor/);
  for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    const stage = throttleStage({ enabled: true, plans, defaultPlan: 'gold', perModel: false, cost: 'request', onStoreFailure: 'open', leaseMs: 0 }, { limiter: new MemoryLimiter(), logger: silentLogger(), bodyLimitBytes: 1024 });
    const named = (): RequestContext => {
      const ctx = context(v2Body(1));
      ctx.principal = { subject: `holder-of-${name}`, kind: 'jwt', models: '*', plan: name };
      return ctx;
    };
    await stage(named());
    await stage(named());
    await assert.rejects(async () => stage(named()), (err: InfergateError) => err.code === 'GW_ERR_RATE_LIMITED', `${name}: gold's burst of 2 applies`);
  }
});

test('a JWT whose subject reads like another caller\'s spends its own bucket', async () => {
  const stage = throttleStage({ enabled: true, plans: {}, perModel: false, cost: 'request', onStoreFailure: 'open', leaseMs: 0 }, { limiter: new MemoryLimiter(), logger: silentLogger(), bodyLimitBytes: 1024 });
  const as = (kind: 'jwt' | 'anonymous' | 'api-key', subject: string): RequestContext => {
    const ctx = context(v2Body(1));
    ctx.principal = { subject, kind, models: '*', plan: { ratePerSec: 0.001, burst: 1 } };
    return ctx;
  };
  for (const [subject, owner] of [['anonymous', 'anonymous'], ['key:abc', 'api-key']] as const) {
    await stage(as(owner, subject)); // the real caller spends its one token
    await stage(as('jwt', subject)); // the token holder still has its own
    await assert.rejects(async () => stage(as('jwt', subject)), (err: InfergateError) => err.code === 'GW_ERR_RATE_LIMITED');
  }
});
