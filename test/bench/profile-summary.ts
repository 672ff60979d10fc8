/**
 * `tsx test/bench/profile-summary.ts <dir-or-file.cpuprofile> [top]`: where a profiled process spent
 * its CPU, per profile (one per thread: the worker's main thread and each session thread).
 *
 *   BENCH_WORKER_PROF=/tmp/prof BENCH_ONLY_MODELS=cifar10 BENCH_MODES=binary BENCH_CONCURRENCY=16 npm run bench:worker
 *   npx tsx test/bench/profile-summary.ts /tmp/prof
 *
 * When the directory holds the bench's windows.json, each measured window is summarized on its own
 * (start-up, warm-up and teardown left out); otherwise whole profiles are.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { profileStartUs, summarizeProfile, type ProfileSummary } from './lib/cpuprofile.ts';
import type { ProfileWindow } from './lib/profiled-worker.ts';
import { renderTable } from './lib/table.ts';

const target = process.argv[2];
const top = Number(process.argv[3] ?? 20);
if (!target) {
  console.error('usage: tsx test/bench/profile-summary.ts <dir-or-file.cpuprofile> [top]');
  process.exit(2);
}

const isDir = (await stat(target)).isDirectory();
const files = isDir
  ? (await readdir(target)).filter((f) => f.endsWith('.cpuprofile')).sort().map((f) => join(target, f))
  : [target];

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
function print(title: string, s: ProfileSummary): void {
  console.log(`\n== ${title}`);
  console.log(`wall ${s.wallMs.toFixed(0)} ms, busy ${s.busyMs.toFixed(0)} ms (${pct(s.wallMs > 0 ? s.busyMs / s.wallMs : 0)} of one core), idle ${s.idleMs.toFixed(0)} ms`);
  if (s.busyMs < 1) return;
  console.log(renderTable([{ title: 'area', align: 'left' }, { title: 'self ms' }, { title: 'of busy' }], s.byArea.map((r) => [r.name, r.ms.toFixed(0), pct(r.share)])));
  console.log();
  console.log(renderTable([{ title: 'function', align: 'left' }, { title: 'self ms' }, { title: 'of busy' }], s.byFunction.map((r) => [r.name, r.ms.toFixed(0), pct(r.share)])));
}

const windowsFile = isDir ? join(target, 'windows.json') : '';
if (windowsFile && existsSync(windowsFile)) {
  const windows = JSON.parse(await readFile(windowsFile, 'utf8')) as ProfileWindow[];
  for (const w of windows) {
    const procFiles = files.filter((f) => f.includes(`.${w.pid}.`));
    if (procFiles.length === 0) continue;
    // Every thread's profile uses the same clock; the earliest start is the main thread's, at process start.
    const t0 = Math.min(...(await Promise.all(procFiles.map(profileStartUs))));
    const range = { fromUs: t0 + w.fromMs * 1000, toUs: t0 + w.toMs * 1000 };
    for (const file of procFiles) print(`${w.label} — ${file}`, await summarizeProfile(file, top, range));
  }
} else {
  for (const file of files) print(file, await summarizeProfile(file, top));
}
