/**
 * Several simulated workers in one process, each on its own port, run as a child by
 * simulated-workers.ts (`startSimulatedFleet`). Every worker is the real simulated worker
 * (worker/simulated/app.ts: its own execution slots, queue, id and V2 surface); only the process is
 * shared.
 *
 * Why one process: on this kind of machine (a small VM) every sleep-to-wake of a process costs about
 * 75 µs of CPU (a bare `setTimeout(2)` loop measures that), so eight worker processes at a few hundred
 * requests per second each spend a core on wake-ups and context switches — the scaling scenario then
 * measures the workers' core, not the gateway's. One event loop serving all the ports wakes once for
 * many requests.
 *
 * Options (JSON in argv[2]): `{ count, delayMs, concurrency, model }`. IPC: sends `{ ports }` once
 * every worker listens; exits when the parent disconnects.
 */
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../../shared/logger.ts';
import { PACKAGE_VERSION } from '../../../shared/version.ts';
import { buildSimulatedWorker } from '../../../worker/simulated/app.ts';
import { SimulatedWorkerConfigSchema } from '../../../worker/simulated/config.ts';

export interface SimulatedFleetOptions {
  count: number;
  delayMs: number;
  /** Execution slots per worker (0 = any number at once). */
  concurrency: number;
  model: string;
}

const options = JSON.parse(process.argv[2] ?? '{}') as SimulatedFleetOptions;
const logger = createLogger({ name: 'infergate-simulated-fleet', level: 'warn' });
const servers: Server[] = [];

for (let i = 0; i < options.count; i++) {
  const config = SimulatedWorkerConfigSchema.parse({
    port: 0,
    workerId: `sim-${i + 1}`,
    delayMs: options.delayMs,
    concurrency: options.concurrency,
    models: [options.model],
  });
  const worker = buildSimulatedWorker(config, { logger, version: PACKAGE_VERSION });
  const server = createServer({ keepAliveTimeout: 65_000, headersTimeout: 30_000 }, worker.handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
}

process.send?.({ ports: servers.map((s) => (s.address() as AddressInfo).port) });
process.on('disconnect', () => {
  for (const server of servers) server.closeAllConnections();
  process.exit(0);
});
