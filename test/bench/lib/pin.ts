/**
 * CPU pinning for the scaling and overload scenarios: `taskset -a -p -c <cpus> <pid>` sets the
 * affinity of every thread a process has (threads it starts later inherit it). Linux only; where
 * taskset or the CPUs are missing, nothing is pinned and the caller says so in its report.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

/** True when the process was pinned. */
export function pinToCpus(pid: number, cpus: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The CPU list this process may use as taskset prints it (e.g. "0,1"), to restore after pinning. */
export function currentCpus(pid = process.pid): string {
  try {
    return execFileSync('taskset', ['-c', '-p', String(pid)], { encoding: 'utf8' }).split(':').pop()!.trim();
  } catch {
    return `0-${os.cpus().length - 1}`;
  }
}
