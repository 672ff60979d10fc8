/**
 * `infergate worker --simulate-delay-ms <ms> …`: runs a simulated worker (app.ts) instead of serving
 * ONNX models. Reads flags, listens, and drains on SIGTERM like the real worker: readiness fails at
 * once, the listener closes after --drain-delay-ms, in-flight requests finish, then it exits.
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { createLogger } from '../../shared/logger.ts';
import { PACKAGE_VERSION } from '../../shared/version.ts';
import { buildSimulatedWorker } from './app.ts';
import { SimulatedWorkerConfigSchema } from './config.ts';

export const SIMULATED_WORKER_USAGE = `infergate worker --simulate-delay-ms <ms> [--simulate-models a,b] [--simulate-concurrency <n>]
                 [--simulate-queue-size <n>] [--port <p>] [--host <h>] [--worker-id <id>] [--drain-delay-ms <ms>]
  A simulated worker for capacity tests and benchmarks: the V2 surface a gateway needs (health,
  metadata, repository index, inference) and no model. Every inference waits for one of
  --simulate-concurrency execution slots (default 0: no limit), holds it --simulate-delay-ms, and
  answers a fixed V2 response (output "output", FP32 [1,1]). Requests beyond the slots queue, at
  most --simulate-queue-size (default 1024; then 503). Models default to "simulated", version 1.`;

export async function runSimulatedWorker(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        'simulate-delay-ms': { type: 'string' },
        'simulate-models': { type: 'string' },
        'simulate-concurrency': { type: 'string' },
        'simulate-queue-size': { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        'worker-id': { type: 'string' },
        'drain-delay-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    console.error(`infergate worker: ${(err as Error).message}\n\n${SIMULATED_WORKER_USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(SIMULATED_WORKER_USAGE);
    return 0;
  }
  const text = (name: string): string | undefined => values[name] as string | undefined;
  const num = (name: string): number | undefined => (text(name) === undefined ? undefined : Number(text(name)));
  const parsed = SimulatedWorkerConfigSchema.safeParse({
    delayMs: num('simulate-delay-ms'),
    models: text('simulate-models')?.split(',').map((m) => m.trim()).filter((m) => m !== ''),
    concurrency: num('simulate-concurrency'),
    maxQueueSize: num('simulate-queue-size'),
    port: num('port'),
    host: text('host'),
    workerId: text('worker-id') ?? env.INFERGATE_WORKER_ID,
    drainDelayMs: num('drain-delay-ms'),
  });
  if (!parsed.success) {
    console.error(`infergate worker: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return 2;
  }
  const config = Object.freeze(parsed.data);
  const logger = createLogger({ name: 'infergate-worker', level: env.LOG_LEVEL });
  const worker = buildSimulatedWorker(config, { logger, version: PACKAGE_VERSION });
  const server = createServer({ keepAliveTimeout: 65_000, headersTimeout: 30_000 }, worker.handle);
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolveListen());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  logger.info(
    { url: `http://${host}:${port}`, workerId: worker.workerId, simulated: { delayMs: config.delayMs, concurrency: config.concurrency, models: config.models } },
    'worker listening (simulated: no models are loaded)',
  );

  await new Promise<void>((resolveDone) => {
    let stopping = false;
    const stop = async (signal: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'draining: readiness now fails, in-flight requests finish');
      worker.startDraining();
      if (config.drainDelayMs > 0) await new Promise((r) => setTimeout(r, config.drainDelayMs));
      server.close();
      server.closeIdleConnections();
      await worker.idle();
      server.closeAllConnections();
      logger.info('worker stopped');
      resolveDone();
    };
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void stop(signal));
  });
  return 0;
}
