/**
 * Background-noise handling shared by benchmarks: how busy the machine is before a run starts, and
 * rerunning a cell while something outside the benchmark kept cores busy (keeping the quietest try).
 */
import { systemCpu } from './cpu.ts';
import type { CellResult } from './load.ts';

/** Cores busy machine-wide over `ms` of this process doing nothing. */
export async function backgroundLoad(ms = 1000): Promise<number> {
  const before = systemCpu();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  return (systemCpu().busyMs - before.busyMs) / (performance.now() - t0);
}

/** Cores busy outside the benchmark during a cell (other processes, unaccounted kernel work, hypervisor steal). */
export const noiseOf = (r: CellResult): number => r.otherCores + r.stealCores;

export interface RetryPolicy {
  /** A cell noisier than this many cores is rerun. */
  noisyCores: number;
  /** Reruns allowed per cell. */
  perCell: number;
  /** Reruns left for the whole run; decremented as they are used. */
  budget: { left: number };
  /** Progress output for a rerun. */
  log?: (line: string) => void;
}

export function isNoisy(r: CellResult, noisyCores: number): boolean {
  return r.otherCores > noisyCores || r.stealCores > noisyCores;
}

/**
 * Runs a cell; while it was noisy (see RetryPolicy) and reruns are left, runs it again, and returns
 * the quietest attempt with the number of attempts made.
 */
export async function quietest<T>(run: () => Promise<T>, resultOf: (t: T) => CellResult, policy: RetryPolicy, label = 'cell'): Promise<T & { attempts: number }> {
  let best = await run();
  let attempt = best;
  let attempts = 1;
  for (let retry = 0; isNoisy(resultOf(attempt), policy.noisyCores) && retry < policy.perCell && policy.budget.left > 0; retry++) {
    policy.budget.left--;
    policy.log?.(`${label}: noisy (${resultOf(attempt).otherCores.toFixed(2)} other cores busy, ${resultOf(attempt).stealCores.toFixed(2)} steal), rerunning`);
    attempt = await run();
    attempts++;
    if (noiseOf(resultOf(attempt)) < noiseOf(resultOf(best))) best = attempt;
  }
  return { ...best, attempts };
}
