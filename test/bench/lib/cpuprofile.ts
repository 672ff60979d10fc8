/**
 * Summaries of V8 .cpuprofile files (node --cpu-prof): self time by function and by source area,
 * to see where a benchmarked process spends its CPU.
 */
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  ms: number;
  /** Share of the profile's busy (non-idle) time. */
  share: number;
}

export interface ProfileSummary {
  wallMs: number;
  busyMs: number;
  idleMs: number;
  byFunction: SelfTime[];
  byArea: SelfTime[];
}

/** Groups a script URL into a coarse area: the project's own folders, node internals by subsystem, packages by name. */
export function areaOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(program)') return 'native/(program)';
    if (functionName === '(idle)') return 'idle';
    return `native: ${functionName || '(anonymous)'}`;
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `pkg ${nm[1]}`;
  const internal = /^node:internal\/(.+?)(?:\.js)?$/.exec(url) ?? /^node:(.+)$/.exec(url);
  if (internal) {
    const path = internal[1]!;
    if (path.startsWith('streams') || path.startsWith('stream')) return 'node streams';
    if (path.includes('http') || path.startsWith('_http')) return 'node http';
    if (path.startsWith('net') || path.startsWith('stream_base')) return 'node net';
    if (path.includes('worker') || path.includes('per_context/messageport')) return 'node worker_threads/messaging';
    if (path.startsWith('process/task_queues') || path.startsWith('timers') || path.startsWith('async_hooks')) return 'node event loop/timers';
    return `node ${path.split('/')[0]}`;
  }
  const project = /\/(worker|shared|gateway|models)\/(.+?)\.[jt]s$/.exec(url);
  if (project) return `${project[1]}/${project[2]!.split('/')[0]}`;
  return url;
}

/** The profile's start on the (monotonic, process-wide) profiler clock, µs: the same clock for every thread. */
export async function profileStartUs(path: string): Promise<number> {
  return (JSON.parse(await readFile(path, 'utf8')) as CpuProfile).startTime;
}

/**
 * Self time per function and per area. `range` (profiler clock, µs) keeps only the samples inside
 * it, e.g. a benchmark's measured window rather than process start-up.
 */
export async function summarizeProfile(path: string, top = 25, range?: { fromUs: number; toUs: number }): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  let firstUs = Number.POSITIVE_INFINITY;
  let lastUs = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    // timeDeltas[i] is the time since the previous sample; attribute it to the sample that ends it.
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (range && (t < range.fromUs || t > range.toUs)) continue;
    firstUs = Math.min(firstUs, t - delta);
    lastUs = Math.max(lastUs, t);
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }
  const fn = new Map<string, number>();
  const area = new Map<string, number>();
  let idleUs = 0;
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    busyUs += us;
    const shortUrl = url.replace(/^file:\/\/.*?\/(worker|shared|gateway|node_modules)\//, '$1/');
    const key = `${functionName || '(anonymous)'} ${shortUrl ? `${shortUrl}:${lineNumber + 1}` : ''}`.trim();
    fn.set(key, (fn.get(key) ?? 0) + us);
    const a = areaOf(url, functionName);
    area.set(a, (area.get(a) ?? 0) + us);
  }
  const rank = (m: Map<string, number>): SelfTime[] =>
    [...m.entries()]
      .sort((x, y) => y[1] - x[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }));
  return {
    wallMs: range ? Math.max(0, lastUs - firstUs) / 1000 : (profile.endTime - profile.startTime) / 1000,
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    byFunction: rank(fn),
    byArea: rank(area),
  };
}
