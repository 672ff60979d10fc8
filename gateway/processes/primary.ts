/**
 * `infergate gateway --processes <n>`: the primary of a node:cluster group of n gateway processes
 * sharing the public and admin ports (node:cluster hands connections to the children in turn). The
 * primary serves nothing itself; it
 * - forks n children running `infergate gateway` with the same flags and environment;
 * - restarts a child that exits unexpectedly, after 250 ms doubling to 10 s (reset once a child has
 *   stayed up 10 s), so a crash loop does not spin;
 * - forwards SIGTERM and SIGINT (each child drains: gateway/main.ts) and SIGHUP (each reloads);
 * - relays a strategy set through one child's admin API to its siblings when there is no Redis
 *   broadcast, and hands the last one to every child started later (gateway/processes/messages.ts);
 * - exits once every child has exited after a stop signal: 0 when every child stopped cleanly, else
 *   1. The code describes the stop: a child still starting, which the signal ends before it could
 *   drain (it had served nothing), stopped cleanly, and so did a slot waiting to restart (its
 *   crash was logged when it happened).
 *
 * Each child is a whole gateway: its own worker pool, breakers, in-flight counts and health checks.
 * Rate limits are exact across children only with Redis (docs/redis.md); the caller warns otherwise.
 */
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../shared/logger.ts';
import { isSiblingMessage, type SiblingMessage } from './messages.ts';

const CLI = fileURLToPath(new URL('../../shared/cli/bin.js', import.meta.url));
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 10_000;
/** A child that ran this long before exiting was not crash-looping: its next restart is immediate-ish again. */
const STABLE_AFTER_MS = 10_000;

export interface GatewayPrimaryOptions {
  /** Number of gateway processes. */
  count: number;
  /** The `infergate gateway` flags, passed to every child as they are. */
  argv: readonly string[];
  /** The children's environment (added to this process's). */
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Told the real URLs once every child listens (the ports are shared, so any child's will do). */
  onListening?(urls: { url: string; admin: string }): void;
}

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  startedAt: number;
  backoffMs: number;
  lastExitCode: number;
  listening: boolean;
  /** A SIGHUP came while this slot's process was starting: passed on once it listens. */
  hupPending: boolean;
}

/** Runs the group until a stop signal and every child has exited; resolves with the exit code. */
export function runGatewayPrimary(options: GatewayPrimaryOptions): Promise<number> {
  const { count, logger } = options;
  cluster.setupPrimary({ exec: CLI, args: ['gateway', ...options.argv] });
  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({ index, worker: undefined, startedAt: 0, backoffMs: FIRST_BACKOFF_MS, lastExitCode: 0, listening: false, hupPending: false }));
  let stopping = false;
  /** The stop signal passed on to the children. */
  let stopSignal: NodeJS.Signals | undefined;
  let announced = false;
  /** The last strategy set through an admin API, for children started after it. */
  let strategy: SiblingMessage | undefined;

  return new Promise<number>((resolve) => {
    const live = (): Worker[] => slots.flatMap((s) => (s.worker !== undefined ? [s.worker] : []));
    const finishIfDone = (): void => {
      if (!stopping || live().length > 0) return;
      for (const signal of SIGNALS) process.off(signal, onSignal);
      const failed = slots.filter((s) => s.lastExitCode !== 0).map((s) => s.index);
      logger.info({ failed }, 'all gateway processes exited');
      resolve(failed.length === 0 ? 0 : 1);
    };

    const fork = (slot: Slot): void => {
      const worker = cluster.fork(options.env);
      slot.worker = worker;
      slot.startedAt = Date.now();
      slot.listening = false;
      slot.hupPending = false; // a fresh process reads the config file as it is now
      worker.on('message', (message: unknown) => {
        if (!isSiblingMessage(message)) return;
        if (message.type === 'infergate:strategy') {
          strategy = message;
          if (message.relay) for (const sibling of live()) if (sibling !== worker && sibling.isConnected()) sibling.send(message);
          return;
        }
        if (strategy !== undefined && worker.isConnected()) worker.send(strategy);
        slot.listening = true;
        if (slot.hupPending) {
          slot.hupPending = false;
          worker.process.kill('SIGHUP');
        }
        if (!announced && slots.every((s) => s.listening)) {
          announced = true;
          logger.info({ url: message.url, admin: message.admin, processes: count }, 'all gateway processes listening');
          options.onListening?.({ url: message.url, admin: message.admin });
        }
      });
      worker.on('exit', (code, signal) => {
        slot.worker = undefined;
        // Ended by the stop signal itself, before its drain handler was in place: it was starting.
        slot.lastExitCode = stopping && code === null && signal === stopSignal ? 0 : code ?? 1;
        if (stopping) {
          finishIfDone();
          return;
        }
        if (Date.now() - slot.startedAt >= STABLE_AFTER_MS) slot.backoffMs = FIRST_BACKOFF_MS;
        const delayMs = slot.backoffMs;
        slot.backoffMs = Math.min(slot.backoffMs * 2, MAX_BACKOFF_MS);
        logger.error({ process: slot.index, pid: worker.process.pid, code, signal, restartInMs: delayMs }, 'gateway process exited; restarting');
        setTimeout(() => {
          if (!stopping) fork(slot);
        }, delayMs);
      });
    };

    const onSignal = (signal: NodeJS.Signals): void => {
      if (signal === 'SIGHUP') {
        // A process still starting has no reload handler yet (SIGHUP's default would end it), and
        // may have read the config before the change: it gets the signal once it listens.
        for (const slot of slots) {
          if (slot.worker === undefined) continue; // waiting to restart: it will read the new file
          if (slot.listening) slot.worker.process.kill('SIGHUP');
          else slot.hupPending = true;
        }
        return;
      }
      if (!stopping) {
        logger.info({ signal, processes: live().length }, 'stopping every gateway process');
        stopSignal = signal;
        for (const slot of slots) if (slot.worker === undefined) slot.lastExitCode = 0; // waiting to restart: it stays down
      }
      stopping = true;
      for (const worker of live()) worker.process.kill(signal);
      finishIfDone();
    };
    for (const signal of SIGNALS) process.on(signal, onSignal);
    for (const slot of slots) fork(slot);
  });
}

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
