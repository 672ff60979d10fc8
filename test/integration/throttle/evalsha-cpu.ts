/**
 * Measures what one rate-limit decision costs the gateway process: client CPU (user + system) per
 * call and calls per second, at concurrency 64 on one connection, against a fresh redis-server.
 * Not a test (no assertions); run by hand, figures go to docs/throttling.md:
 *
 *   node --import tsx test/integration/throttle/evalsha-cpu.ts [callsPerVariant=200000]
 *
 * Variants: the RedisLimiter as the gateway uses it (shared deadline sweep, decision object), over
 * 1000 keys (takes rarely share a call) and on one key (64 concurrent takes coalesce), the bare
 * defineCommand call, the same with ioredis auto-pipelining, and the in-memory limiter.
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { RedisLimiter } from '../../../gateway/throttle/redis-limiter.ts';
import { MemoryLimiter } from '../../../gateway/throttle/memory-limiter.ts';
import { bucketKey } from '../../../gateway/throttle/limiter.ts';
import { startRedis } from '../../helpers/redis.ts';

const CALLS = Number(process.argv[2] ?? 200_000);
const CONCURRENCY = 64;
const LUA = readFileSync(new URL('../../../gateway/throttle/token-bucket.lua', import.meta.url), 'utf8');
const plan = { ratePerSec: 1e6, burst: 1e6 };
const keys = Array.from({ length: 1000 }, (_, i) => bucketKey(`bench-${i}`));

async function measure(name: string, call: (key: string) => Promise<unknown>, keyCount = keys.length): Promise<void> {
  let next = 0;
  const run = async (n: number): Promise<void> => {
    next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < n) await call(keys[next++ % keyCount]!);
      }),
    );
  };
  await run(Math.min(20_000, CALLS)); // warm up (JIT, connection, script cache)
  const cpu = process.cpuUsage();
  const start = performance.now();
  await run(CALLS);
  const wall = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  const cpuUs = (used.user + used.system) / CALLS;
  console.log(`${name.padEnd(44)} ${cpuUs.toFixed(2).padStart(6)} µs CPU/call  ${Math.round(CALLS / wall).toString().padStart(7)} calls/s`);
}

const redis = await startRedis(undefined, { spawn: true });
try {
  console.log(`redis-server on ${redis.url}; ${CALLS} calls per variant, concurrency ${CONCURRENCY}, one connection each`);
  const limiter = new RedisLimiter({ url: redis.url, deadlineMs: 1000 });
  await limiter.ready();
  await measure('RedisLimiter.take, 1000 keys (as the gateway calls it)', (k) => limiter.take(k, 1, plan));
  await measure('RedisLimiter.take, one hot key (coalesced)', (k) => limiter.take(k, 1, plan), 1);
  await limiter.close();

  for (const autoPipelining of [false, true]) {
    const client = new Redis(redis.url, { enableAutoPipelining: autoPipelining });
    client.defineCommand('tb', { numberOfKeys: 1, lua: LUA });
    const tb = (client as unknown as { tb(k: string, ...a: Array<number | string>): Promise<unknown> }).tb.bind(client);
    // rate, burst, maxTtlMs, then no lease (leaseMs, holder, seq, held, returned, want), then one cost
    await measure(`bare defineCommand EVALSHA, autoPipelining ${autoPipelining ? 'on' : 'off'}`, (k) => tb(k, 1e6, 1e6, 86_400_000, 0, '', 0, 0, 0, 0, 1));
    client.disconnect();
  }

  const memory = new MemoryLimiter();
  await measure('MemoryLimiter.take', (k) => memory.take(k, 1, plan));
} finally {
  await redis.stop();
}
