/**
 * The worker process: reads flags and environment, builds the app, listens, and drains on SIGTERM
 * (readiness fails first so balancers stop sending, in-flight requests finish, then it exits).
 */
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { answerClientError, refuseExpectation } from '../shared/http/client-error.ts';
import { createLogger } from '../shared/logger.ts';
import { parseRedisUrl } from '../shared/redis/topology.ts';
import { PACKAGE_VERSION } from '../shared/version.ts';
import { buildWorker } from './app.ts';
import { WorkerConfigSchema } from './config.ts';
import { WorkerRegistration, defaultAdvertiseUrl, servedModels } from './registration.ts';

export const WORKER_USAGE = `infergate worker --models <dir> [--port <p>] [--host <h>] [--worker-id <id>]
                 [--poll-interval-ms <ms>] [--body-limit-bytes <n>] [--drain-delay-ms <ms>] [--drain-timeout-ms <ms>]
                 [--register <redis-url> [--advertise-url <url>] [--heartbeat-ms 2000] [--registry-ttl-ms 6000] [--capacity <n>]]
  Serves the ONNX models under <dir> (<dir>/<name>/<version>/model.onnx) over the Open Inference
  Protocol v2 and TF-Serving REST. Defaults: --port 9001 --host 127.0.0.1. LOG_LEVEL sets the log level.
  --register takes redis://host:port, redis+sentinel://host:26379,.../<master-name> or
  redis+cluster://host:port,host:port (docs/redis.md).
  SIGTERM drains: readiness fails at once (a registered worker withdraws), the listener closes after
  --drain-delay-ms (default 0; at least 1000 with --register),
  in-flight requests finish within --drain-timeout-ms (default 30000), then the process exits.
  With --simulate-delay-ms <ms> it runs a simulated worker instead (no models; see infergate worker --simulate-delay-ms 0 --help).`;

/** How long a registered worker keeps serving after withdrawing from the registry. */
const REGISTRY_SETTLE_MS = 1000;

export async function runWorker(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv.some((a) => a.startsWith('--simulate-'))) return (await import('./simulated/main.ts')).runSimulatedWorker(argv, env);
  const { values } = parseArgs({
    args: argv,
    options: {
      models: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'worker-id': { type: 'string' },
      'poll-interval-ms': { type: 'string' },
      'body-limit-bytes': { type: 'string' },
      'drain-delay-ms': { type: 'string' },
      'drain-timeout-ms': { type: 'string' },
      register: { type: 'string' },
      'advertise-url': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'registry-ttl-ms': { type: 'string' },
      capacity: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(WORKER_USAGE);
    return 0;
  }
  if (values.models === undefined) {
    console.error(`infergate worker: --models <dir> is required\n\n${WORKER_USAGE}`);
    return 2;
  }
  const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  const parsed = WorkerConfigSchema.safeParse({
    modelsDir: resolve(values.models),
    port: num(values.port),
    host: values.host,
    workerId: values['worker-id'] ?? env.INFERGATE_WORKER_ID,
    pollIntervalMs: num(values['poll-interval-ms']),
    bodyLimitBytes: num(values['body-limit-bytes']),
    drainDelayMs: num(values['drain-delay-ms']),
    drainTimeoutMs: num(values['drain-timeout-ms']),
    registerUrl: values.register ?? env.INFERGATE_REGISTER,
    advertiseUrl: values['advertise-url'] ?? env.INFERGATE_ADVERTISE_URL,
    heartbeatMs: num(values['heartbeat-ms']),
    registryTtlMs: num(values['registry-ttl-ms']),
    capacity: num(values.capacity),
  });
  if (!parsed.success) {
    console.error(`infergate worker: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return 2;
  }
  if (parsed.data.registerUrl !== undefined) {
    try {
      parseRedisUrl(parsed.data.registerUrl);
    } catch (err) {
      console.error(`infergate worker: --register: ${(err as Error).message}`);
      return 2;
    }
  }
  const config = Object.freeze(parsed.data);
  const logger = createLogger({ name: 'infergate-worker', level: env.LOG_LEVEL });
  const worker = buildWorker(config, { logger, now: () => performance.now(), version: PACKAGE_VERSION });

  // connectionsCheckingInterval: Node enforces the two timeouts only that often (30 s by default).
  const server = createServer({ keepAliveTimeout: config.keepAliveTimeoutMs, requestTimeout: config.requestTimeoutMs, headersTimeout: 30_000, connectionsCheckingInterval: 1000 }, worker.handle);
  server.on('clientError', (err, socket) => answerClientError(err as NodeJS.ErrnoException, socket as Socket, logger));
  server.on('checkExpectation', (req, res) => refuseExpectation(req, res, logger));
  server.maxHeadersCount = 200;
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolveListen());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  logger.info({ url: `http://${host}:${port}`, workerId: worker.workerId, models: config.modelsDir }, 'worker listening');

  let registration: WorkerRegistration | undefined;
  if (config.registerUrl !== undefined) {
    const advertiseUrl = config.advertiseUrl ?? defaultAdvertiseUrl(config.host, port);
    if (advertiseUrl === undefined) {
      console.error('infergate worker: --register needs --advertise-url (no external address found)');
      server.close();
      return 2;
    }
    registration = new WorkerRegistration({
      redisUrl: config.registerUrl,
      workerId: worker.workerId,
      advertiseUrl,
      describe: () => ({ models: servedModels(worker.repository.servedVersions()), capacity: config.capacity ?? availableParallelism() }),
      version: PACKAGE_VERSION,
      heartbeatMs: config.heartbeatMs,
      ttlMs: config.registryTtlMs,
      namespace: config.registryNamespace,
      logger,
    });
  }

  let stopping: Promise<void> | undefined;
  const stop = (signal: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ signal }, 'draining: readiness now fails, in-flight requests finish');
      await registration?.withdraw(); // gateways following the registry drop this worker while it still listens
      worker.startDraining();
      // Still serving, readiness failing: gateways need a moment to stop choosing this worker before
      // its listener (and keep-alive sockets) close. Registered workers always get at least the time
      // a registry leave message needs to reach the gateways and their in-flight picks to land.
      const delayMs = registration === undefined ? config.drainDelayMs : Math.max(config.drainDelayMs, REGISTRY_SETTLE_MS);
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      const forced = setTimeout(() => {
        logger.error({ timeoutMs: config.drainTimeoutMs }, 'drain timed out; exiting with requests in flight');
        process.exit(1);
      }, config.drainTimeoutMs);
      forced.unref();
      server.close();
      server.closeIdleConnections();
      await worker.close();
      server.closeAllConnections(); // keep-alive sockets would otherwise hold the process open
      logger.info('worker stopped');
    })();
    return stopping;
  };
  const done = new Promise<void>((resolveDone) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void stop(signal).then(resolveDone)); // repeats join the same drain
  });
  await worker.start();
  logger.info({ ready: worker.repository.servedVersions().map((s) => `${s.name}/${s.version}`) }, 'worker ready');
  await registration?.start();
  await done;
  return 0;
}
