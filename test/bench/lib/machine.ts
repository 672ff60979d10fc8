/** What the numbers were measured on, printed at the top of every benchmark report. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { REPO_ROOT } from '../../helpers/processes.ts';
import { createRequire } from 'node:module';
import os from 'node:os';
import { measureWakeCost, type WakeCost } from './wake-cost.ts';

export interface MachineInfo {
  cpuModel: string;
  logicalCores: number;
  /** CPUs this process may run on (cgroup/affinity aware, Node >= 18.14). */
  availableCores: number;
  memoryGiB: number;
  platform: string;
  node: string;
  onnxruntimeNode: string;
  /** What waking a sleeping thread costs here (wake-cost.ts); null until probeMachine() ran. */
  threadWakeUp: WakeCost | null;
}

let wakeCost: WakeCost | null = null;

/** Measures what only running code can tell about the machine (the thread wake-up cost), for machineInfo(). */
export async function probeMachine(): Promise<void> {
  wakeCost = await measureWakeCost();
}

function packageVersion(name: string): string {
  try {
    const require = createRequire(import.meta.url);
    const path = require.resolve(`${name}/package.json`);
    return (JSON.parse(readFileSync(path, 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Installed versions of the given packages, as resolved from this repository ('unknown' when missing). */
export function packageVersions(names: readonly string[]): Record<string, string> {
  return Object.fromEntries(names.map((n) => [n, packageVersion(n)]));
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    logicalCores: cpus.length,
    availableCores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    onnxruntimeNode: packageVersion('onnxruntime-node'),
    threadWakeUp: wakeCost,
  };
}

export function describeMachine(info: MachineInfo): string[] {
  return [
    `cpu:              ${info.cpuModel}`,
    `cores:            ${info.logicalCores} logical (${info.availableCores} available to this process)`,
    `memory:           ${info.memoryGiB} GiB`,
    `os:               ${info.platform}`,
    `node:             ${info.node}`,
    `onnxruntime-node: ${info.onnxruntimeNode}`,
    ...(info.threadWakeUp
      ? [`thread wake-up:   ${info.threadWakeUp.notifyUs.toFixed(1)} µs in the waker (Atomics.notify of a sleeping thread, median of ${info.threadWakeUp.rounds}; a futex wake: a few µs on bare metal, 10-20 on some VMs)`]
      : []),
  ];
}

/** The commit measured, and how many files under gateway/ and shared/ differ from it (others may be editing). */
export function sourceState(): string {
  try {
    const git = (...args: string[]): string => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = git('status', '--porcelain', '--', 'gateway', 'shared').split('\n').filter((l) => l !== '').length;
    return `${git('rev-parse', '--short', 'HEAD')}${dirty > 0 ? ` + ${dirty} uncommitted file(s) under gateway/ and shared/` : ''}`;
  } catch {
    return 'unknown (no git)';
  }
}
