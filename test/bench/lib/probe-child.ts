/**
 * A liveness prober in its own process (its own event loop, not slowed by the load generator's):
 * GET <url> on a fresh TCP connection each time, like a kubelet probe, one at a time, the next one
 * `intervalMs` after the previous started (or at once if it took longer). Driven by probe.ts over IPC.
 */
import { request } from 'node:http';

interface StartMessage {
  type: 'start';
  url: string;
  intervalMs: number;
  timeoutMs: number;
}
interface StopMessage {
  type: 'stop';
}

let running = false;
let samples: number[] = [];
let failures = 0;
let loop: Promise<void> = Promise.resolve();

function probeOnce(url: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(url, { method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) resolve(performance.now() - started);
        else reject(new Error(`status ${res.statusCode}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function run(message: StartMessage): Promise<void> {
  while (running) {
    const started = performance.now();
    try {
      samples.push(await probeOnce(message.url, message.timeoutMs));
    } catch {
      failures++;
    }
    const wait = message.intervalMs - (performance.now() - started);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

process.on('message', (message: StartMessage | StopMessage) => {
  if (message.type === 'start') {
    running = true;
    samples = [];
    failures = 0;
    loop = run(message);
    process.send!({ type: 'started' });
  } else {
    running = false;
    void loop.then(() => process.send!({ type: 'stopped', samples, failures }));
  }
});
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready' });
