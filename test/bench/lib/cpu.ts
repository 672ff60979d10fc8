/**
 * CPU time of a process, for "CPU per inference": another process's whole CPU time (every thread)
 * from /proc/<pid>/stat, and this process's from process.cpuUsage() (getrusage, every thread too).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

/** The kernel's clock tick (`getconf CLK_TCK`), the unit of utime/stime in /proc/<pid>/stat; usually 100. */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      ticksPerSecond = Number.isFinite(value) && value > 0 ? value : 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/**
 * The fields of a /proc stat file after the command name, so index 0 is field 3 (state): ppid is 1,
 * utime 11, stime 12, cutime 13, cstime 14. The name (field 2) is parenthesised and may hold spaces,
 * hence the split after the last ')'.
 */
function statFields(path: string): string[] {
  const stat = readFileSync(path, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Two clock-tick fields of a stat file, summed, in milliseconds. */
function ticksMs(fields: string[], a: number, b: number, path: string): number {
  const sum = Number(fields[a]) + Number(fields[b]);
  if (!Number.isFinite(sum)) throw new Error(`cannot parse ${path}`);
  return (sum * 1000) / clockTicksPerSecond();
}

/** utime + stime of process `pid` (all of its threads) in milliseconds; Linux only. */
export function processCpuMs(pid: number): number {
  const path = `/proc/${pid}/stat`;
  return ticksMs(statFields(path), 11, 12, path);
}

/**
 * CPU (ms) of this process's children that have exited and been waited for (cutime + cstime): a
 * child's whole CPU once it is gone, e.g. a load generator run as a child process.
 */
export function exitedChildrenCpuMs(): number {
  return ticksMs(statFields('/proc/self/stat'), 13, 14, '/proc/self/stat');
}

/** This process's user + system CPU time in milliseconds, all threads. */
export function selfCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** A CPU clock to read before and after a measurement window. */
export type CpuClock = () => number;

export const cpuClockOf = (pid: number): CpuClock => () => processCpuMs(pid);

export interface SystemCpu {
  /** Non-idle CPU time of the whole machine, all cores, ms (steal excluded). */
  busyMs: number;
  /** Time the hypervisor ran something else while we wanted a core, ms. */
  stealMs: number;
}

/** Machine-wide CPU counters from the first line of /proc/stat; zeros where unavailable. */
export function systemCpu(): SystemCpu {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [, ...rest] = line.trim().split(/\s+/);
    const v = rest.map(Number);
    const at = (i: number): number => (Number.isFinite(v[i]) ? v[i]! : 0);
    // user nice system idle iowait irq softirq steal guest guest_nice (guest time is inside user)
    const busy = at(0) + at(1) + at(2) + at(5) + at(6);
    const toMs = 1000 / clockTicksPerSecond();
    return { busyMs: busy * toMs, stealMs: at(7) * toMs };
  } catch {
    return { busyMs: 0, stealMs: 0 };
  }
}

export interface ThreadSample {
  /** CPU time, ms. */
  cpuMs: number;
  /** Time spent runnable but waiting for a CPU (run-queue wait), ms; NaN without /proc/.../schedstat. */
  waitMs: number;
}

/**
 * Per-thread CPU and run-queue wait of process `pid`, keyed by thread id (the main thread's id is
 * `pid`): /proc/<pid>/task/<tid>/schedstat (ns), else utime+stime from .../stat (clock ticks).
 */
export function threadCpuMs(pid: number): Map<number, ThreadSample> {
  const out = new Map<number, ThreadSample>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const sched = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
      if (sched.length >= 2 && sched.every(Number.isFinite) && (sched[0] ?? 0) > 0) {
        out.set(Number(tid), { cpuMs: sched[0]! / 1e6, waitMs: sched[1]! / 1e6 });
        continue;
      }
      const path = `/proc/${pid}/task/${tid}/stat`;
      out.set(Number(tid), { cpuMs: ticksMs(statFields(path), 11, 12, path), waitMs: Number.NaN });
    } catch {
      // the thread exited between listing and reading
    }
  }
  return out;
}

export interface ThreadUse {
  /** Busy share of one core, main (JS event loop) thread. */
  main: number;
  /** Share of the window the main thread was runnable but had no CPU. */
  mainWaiting: number;
  /** Busiest other thread (for the worker: a session thread), share of one core. */
  busiestOther: number;
  /** All other threads together, cores. */
  others: number;
}

/** How busy each thread was between two threadCpuMs snapshots `seconds` apart. */
export function threadUse(pid: number, before: Map<number, ThreadSample>, after: Map<number, ThreadSample>, seconds: number): ThreadUse {
  let main = 0;
  let mainWaiting = Number.NaN;
  let busiestOther = 0;
  let others = 0;
  for (const [tid, sample] of after) {
    const prior = before.get(tid);
    const delta = (sample.cpuMs - (prior?.cpuMs ?? 0)) / 1000 / seconds;
    if (tid === pid) {
      main = delta;
      mainWaiting = (sample.waitMs - (prior?.waitMs ?? 0)) / 1000 / seconds;
    } else {
      others += delta;
      busiestOther = Math.max(busiestOther, delta);
    }
  }
  return { main, mainWaiting, busiestOther, others };
}

/** Direct children of `pid` (e.g. nginx's worker processes): the children files under /proc/<pid>/task, else a scan of /proc. */
export function childPids(pid: number): number[] {
  const out = new Set<number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      for (const child of text.split(/\s+/)) if (child !== '') out.add(Number(child));
    }
    return [...out];
  } catch {
    // kernel without CONFIG_PROC_CHILDREN: scan every process for its parent id
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(statFields(`/proc/${entry}/stat`)[1]);
      if (ppid === pid) out.add(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return [...out];
}

/**
 * A CPU clock summing several processes (e.g. a proxy's master and workers, or every upstream),
 * utime + stime from /proc/<pid>/stat, ms. `pids` is read at each call; a process that has exited
 * counts 0 from then on, so keep the set stable across a window.
 */
export function cpuClockOfAll(pids: () => readonly number[]): CpuClock {
  return () => {
    let total = 0;
    for (const pid of pids()) {
      try {
        total += processCpuMs(pid);
      } catch {
        // exited
      }
    }
    return total;
  };
}

/** Children of `parent` whose command name (/proc/<pid>/comm) starts with `name`, e.g. a redis-server it spawned. */
export function pidsNamed(parent: number, name: string): number[] {
  return childPids(parent).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith(name);
    } catch {
      return false;
    }
  });
}

/** Resident set size of process `pid` in bytes (VmRSS of /proc/<pid>/status); NaN when unreadable. */
export function rssBytes(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? Number.NaN : Number(kb) * 1024;
  } catch {
    return Number.NaN;
  }
}
