/**
 * A process that registers a worker URL in the Redis registry and heartbeats until killed: the
 * registry test SIGKILLs it to play a worker that dies without withdrawing. On SIGTERM it withdraws.
 *
 *   node --import tsx register-child.ts   (env: REDIS_URL, WORKER_ID, ADVERTISE_URL, HEARTBEAT_MS, TTL_MS)
 * Prints one JSON line {"registered": true} once its first heartbeat has been written.
 */
import { createLogger } from '../../../shared/logger.ts';
import { WorkerRegistration } from '../../../worker/registration.ts';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};

const registration = new WorkerRegistration({
  redisUrl: env('REDIS_URL'),
  workerId: env('WORKER_ID'),
  advertiseUrl: env('ADVERTISE_URL'),
  heartbeatMs: Number(env('HEARTBEAT_MS')),
  ttlMs: Number(env('TTL_MS')),
  describe: () => ({ models: { echo: ['1'] }, capacity: 1 }),
  version: 'test',
  logger: createLogger({ name: 'register-child', level: 'warn', destination: process.stderr }),
});
await registration.start();
console.log(JSON.stringify({ registered: registration.state === 'registered' }));
// Keeps the event loop alive (the heartbeat timers are unref'd, as in the worker).
const alive = setInterval(() => undefined, 1 << 30);
process.on('SIGTERM', () => {
  void registration.withdraw().then(() => clearInterval(alive));
});
