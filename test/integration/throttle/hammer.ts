/**
 * A separate process hammering one bucket through its own RedisLimiter, for the multi-replica
 * exactness test (redis-limiter.test.ts). Protocol on stdio, one JSON line each:
 *   args: <redis-url> <key> <ratePerSec> <burst> <durationMs> <concurrency>
 *   out:  {"ready":true}                      once connected
 *   in:   {"go": <epoch ms to start at>}
 *   out:  {"admitted":n,"denied":n,"errors":n,"firstSentAt":ms,"firstRepliedAt":ms,
 *          "lastAdmittedSentAt":ms,"lastAdmittedRepliedAt":ms}                  then exit
 * Times are epoch milliseconds with sub-ms precision (performance.timeOrigin + now), comparable
 * across processes on one machine.
 */
import { createInterface } from 'node:readline';
import { RedisLimiter } from '../../../gateway/throttle/redis-limiter.ts';

const [url, key, rate, burst, durationMs, concurrency] = process.argv.slice(2);
if (concurrency === undefined) throw new Error('usage: hammer.ts <redis-url> <key> <ratePerSec> <burst> <durationMs> <concurrency>');
const plan = { ratePerSec: Number(rate), burst: Number(burst) };
const epochNow = (): number => performance.timeOrigin + performance.now();

// A generous deadline: this measures atomicity across processes, not the deadline.
const limiter = new RedisLimiter({ url: url!, deadlineMs: 2000 });
await limiter.ready();
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);

const lines = createInterface({ input: process.stdin });
const go = await new Promise<number>((resolve) => lines.once('line', (line) => resolve((JSON.parse(line) as { go: number }).go)));
lines.close();
await new Promise((r) => setTimeout(r, Math.max(0, go - epochNow())));

const stats = {
  admitted: 0,
  denied: 0,
  errors: 0,
  firstSentAt: Number.POSITIVE_INFINITY,
  firstRepliedAt: Number.POSITIVE_INFINITY,
  lastAdmittedSentAt: 0,
  lastAdmittedRepliedAt: 0,
};
const end = go + Number(durationMs);
await Promise.all(
  Array.from({ length: Number(concurrency) }, async () => {
    while (epochNow() < end) {
      const sentAt = epochNow();
      stats.firstSentAt = Math.min(stats.firstSentAt, sentAt);
      try {
        const d = await limiter.take(key!, 1, plan);
        const repliedAt = epochNow();
        stats.firstRepliedAt = Math.min(stats.firstRepliedAt, repliedAt);
        if (d.allowed) {
          stats.admitted++;
          stats.lastAdmittedSentAt = Math.max(stats.lastAdmittedSentAt, sentAt);
          stats.lastAdmittedRepliedAt = Math.max(stats.lastAdmittedRepliedAt, repliedAt);
        } else stats.denied++;
      } catch {
        stats.errors++;
      }
    }
  }),
);
process.stdout.write(`${JSON.stringify(stats)}\n`);
await limiter.close();
