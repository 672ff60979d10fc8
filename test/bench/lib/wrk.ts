/**
 * wrk (https://github.com/wg/wrk, Debian package `wrk`) as a closed-loop HTTP load generator: one
 * event-loop thread in C, so it costs the machine about half the CPU per request that autocannon does
 * in Node. On a 2-core machine the load generator shares the cores with the process under test, so a
 * cheaper one leaves more of them to that process. A Lua script sets the request and prints wrk's
 * own summary as one JSON line when the run ends.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const WRK_BIN = process.env.BENCH_WRK ?? '/usr/bin/wrk';

export function wrkAvailable(): boolean {
  return existsSync(WRK_BIN);
}

/** "4.1.0" from `wrk -v` (which exits 1 after printing it), or "not installed". */
export function wrkVersion(): string {
  if (!wrkAvailable()) return 'not installed';
  const result = spawnSync(WRK_BIN, ['-v'], { encoding: 'utf8' });
  return /wrk (?:debian\/)?(\S+)/.exec(result.stdout ?? '')?.[1] ?? 'unknown';
}

export interface WrkRequest {
  url: string;
  connections: number;
  method: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

/** What one wrk run reports (its summary; latency from its histogram, µs resolution). */
export interface WrkRun {
  /** Responses of any status. */
  responses: number;
  /** Responses with status >= 400 (wrk's `errors.status`). */
  statusErrors: number;
  /** Connect, read, write and timeout errors. */
  transportErrors: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

const MARKER = 'INFERGATE_WRK ';

/** Lua long-bracket string: no escaping needed as long as the text holds no `]==]`. */
function luaString(text: string): string {
  if (text.includes(']==]')) throw new Error(`wrk script: cannot quote ${JSON.stringify(text)}`);
  return `[==[${text}]==]`;
}

function script(request: WrkRequest, bodyFile: string | undefined): string {
  const lines = [`wrk.method = ${luaString(request.method)}`];
  for (const [name, value] of Object.entries(request.headers)) lines.push(`wrk.headers[ ${luaString(name)} ] = ${luaString(value)}`); // the spaces: `[[` would open a long string
  if (bodyFile !== undefined) lines.push(`local f = assert(io.open(${luaString(bodyFile)}, "rb"))`, 'wrk.body = f:read("*a")', 'f:close()');
  lines.push(
    'function done(summary, latency, requests)',
    '  local e = summary.errors',
    `  io.write(string.format('${MARKER}{"responses":%d,"durationUs":%d,"status":%d,"transport":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d,"meanUs":%.3f}\\n',`,
    '    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,',
    '    latency:percentile(50), latency:percentile(99), latency.max, latency.mean))',
    'end',
  );
  return `${lines.join('\n')}\n`;
}

/**
 * Runs wrk for `seconds` (whole seconds: wrk's -d has no finer unit) with one thread and
 * `connections` keep-alive connections, each with one request outstanding.
 */
export async function runWrk(request: WrkRequest, seconds: number): Promise<WrkRun> {
  const dir = await mkdtemp(join(tmpdir(), 'infergate-wrk-'));
  try {
    let bodyFile: string | undefined;
    if (request.body !== undefined && request.body.length > 0) {
      bodyFile = join(dir, 'body');
      await writeFile(bodyFile, request.body);
    }
    const scriptFile = join(dir, 'request.lua');
    await writeFile(scriptFile, script(request, bodyFile));
    const args = ['-t1', `-c${request.connections}`, `-d${Math.max(1, Math.round(seconds))}s`, '--timeout', '30s', '-s', scriptFile, request.url];
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn(WRK_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited with ${code}: ${out.trim()}`))));
    });
    const line = output.split('\n').find((l) => l.startsWith(MARKER));
    if (line === undefined) throw new Error(`wrk printed no summary: ${output.trim()}`);
    const s = JSON.parse(line.slice(MARKER.length)) as { responses: number; durationUs: number; status: number; transport: number; p50Us: number; p99Us: number; maxUs: number; meanUs: number };
    return {
      responses: s.responses,
      statusErrors: s.status,
      transportErrors: s.transport,
      seconds: s.durationUs / 1e6,
      p50Ms: s.p50Us / 1000,
      p99Ms: s.p99Us / 1000,
      maxMs: s.maxUs / 1000,
      meanMs: s.meanUs / 1000,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
