/**
 * NGINX as the reference reverse proxy for gateway benchmarks: a throw-away nginx.conf (one worker
 * process, round-robin over the given upstreams with upstream keep-alive), run in the foreground
 * (`daemon off`) as a child of this process. Used only when the binary exists (Debian: `apt-get
 * install nginx`); nothing here installs it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, statSync, truncateSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../../helpers/processes.ts';
import { childPids } from './cpu.ts';
import { freePort } from './ports.ts';

export { freePort };

export const NGINX_BIN = process.env.BENCH_NGINX ?? '/usr/sbin/nginx';

export function nginxAvailable(): boolean {
  return existsSync(NGINX_BIN);
}

/** `nginx version: nginx/1.22.1` (printed on stderr) → `1.22.1`, or 'unknown'. */
export function nginxVersion(): string {
  const out = spawnSync(NGINX_BIN, ['-v'], { encoding: 'utf8' });
  return /nginx\/(\S+)/.exec(`${out.stdout ?? ''}${out.stderr ?? ''}`)?.[1] ?? 'unknown';
}

export interface NginxOptions {
  /** host:port of each upstream server. */
  upstreams: string[];
  /** Idle upstream connections each worker keeps (`keepalive`). */
  keepalive?: number;
  /** Write an access log line per request (to a file in the temp dir), like the gateway does. */
  accessLog?: boolean;
}

export interface NginxProcess {
  url: string;
  /** The master; the worker is its child. */
  pid: number;
  /** Master and workers, for CPU accounting. */
  pids(): number[];
  config: string;
  accessLogFile: string;
  logSize(): number;
  truncateLog(): void;
  stop(): Promise<void>;
}

/** The nginx.conf used, so the report can print exactly what ran. */
export function nginxConfig(dir: string, port: number, options: NginxOptions): string {
  const user = typeof process.getuid === 'function' && process.getuid() === 0 ? 'user root;\n' : '';
  const accessLog = options.accessLog === false ? 'access_log off;' : `access_log ${join(dir, 'access.log')} main;`;
  return `${user}worker_processes 1;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  log_format main '$remote_addr [$time_iso8601] "$request" $status $body_bytes_sent $request_time $upstream_addr $upstream_response_time';
  ${accessLog}
  client_body_temp_path ${join(dir, 'client_body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  upstream workers {
${options.upstreams.map((u) => `    server ${u};`).join('\n')}
    keepalive ${options.keepalive ?? 64};
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://workers;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

export async function startNginx(options: NginxOptions): Promise<NginxProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'infergate-bench-nginx-'));
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(join(dir, sub));
  const port = await freePort();
  const config = nginxConfig(dir, port, options);
  const confFile = join(dir, 'nginx.conf');
  await writeFile(confFile, config);
  const child: ChildProcess = spawn(NGINX_BIN, ['-c', confFile, '-p', dir, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    stderr = (stderr + c).slice(-8000);
  });
  const exited = once(child, 'exit');
  const pid = child.pid;
  if (pid === undefined) throw new Error('nginx has no pid');
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error('nginx exited');
      await fetch(`${url}/v2/health/ready`);
      return childPids(pid).length > 0;
    }, 10_000);
  } catch {
    child.kill('SIGKILL');
    const log = await readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
    throw new Error(`nginx did not start: ${stderr}\n${log}`);
  }
  const accessLogFile = join(dir, 'access.log');
  return {
    url,
    pid,
    pids: () => [pid, ...childPids(pid)],
    config,
    accessLogFile,
    logSize: () => (existsSync(accessLogFile) ? statSync(accessLogFile).size : 0),
    truncateLog: () => {
      if (existsSync(accessLogFile)) truncateSync(accessLogFile, 0);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGQUIT'); // graceful shutdown
        const workers = childPids(pid);
        const timer = setTimeout(() => {
          for (const w of workers) {
            try {
              process.kill(w, 'SIGKILL');
            } catch {
              // already gone
            }
          }
          child.kill('SIGKILL');
        }, 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
