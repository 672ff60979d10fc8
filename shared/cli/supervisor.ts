/**
 * Keeps local worker processes running for `infergate up`: each is a child process of this one;
 * one that exits unexpectedly is restarted on the same port with exponential backoff (capped), and
 * stop() sends SIGTERM to all and waits for them to drain.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SERVER_NODE_FLAGS } from './node-flags.ts';

const CLI = fileURLToPath(new URL('./bin.js', import.meta.url));

export interface SupervisedWorker {
  readonly url: string;
  readonly restarts: number;
  readonly pid: number | undefined;
}

interface Slot {
  id: string;
  port: number;
  url: string;
  child: ChildProcess | undefined;
  restarts: number;
  backoffMs: number;
}

export interface SupervisorOptions {
  count: number;
  modelsDir: string;
  host: string;
  log: (fields: Record<string, unknown>, message: string) => void;
  /** Where worker log lines go (default: this process's stdout). */
  output?: NodeJS.WritableStream;
}

export class WorkerSupervisor {
  readonly #options: SupervisorOptions;
  readonly #slots: Slot[] = [];
  #stopping = false;

  constructor(options: SupervisorOptions) {
    this.#options = options;
  }

  get workers(): SupervisedWorker[] {
    return this.#slots.map((s) => ({ url: s.url, restarts: s.restarts, pid: s.child?.pid }));
  }

  /** Starts every worker and resolves with their URLs once each is listening. */
  async start(): Promise<string[]> {
    for (let i = 0; i < this.#options.count; i++) {
      const slot: Slot = { id: `local-${i + 1}`, port: 0, url: '', child: undefined, restarts: 0, backoffMs: 250 };
      this.#slots.push(slot);
    }
    await Promise.all(this.#slots.map((slot) => this.#spawn(slot)));
    return this.#slots.map((s) => s.url);
  }

  /** From now on an exiting worker is not restarted (Ctrl-C reaches the whole process group). */
  stopping(): void {
    this.#stopping = true;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#slots.map((slot) => new Promise<void>((resolve) => {
      const child = slot.child;
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    })));
  }

  #spawn(slot: Slot): Promise<void> {
    const { modelsDir, host } = this.#options;
    const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, CLI, 'worker', '--models', modelsDir, '--host', host, '--port', String(slot.port), '--worker-id', slot.id], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    slot.child = child;
    const output = this.#options.output ?? process.stdout;
    return new Promise<void>((resolve, reject) => {
      let listening = false;
      createInterface({ input: child.stdout! }).on('line', (line) => {
        output.write(`${line}\n`);
        if (listening) return;
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === 'worker listening' && typeof entry.url === 'string') {
            listening = true;
            slot.url = entry.url;
            slot.port = Number(new URL(entry.url).port); // a restart comes back on the same port
            resolve();
          }
        } catch {
          // not a log line
        }
      });
      child.once('exit', (code, signal) => {
        if (!listening) reject(new Error(`worker ${slot.id} exited before listening (code ${code}, signal ${signal})`));
        if (this.#stopping) return;
        this.#options.log({ worker: slot.id, code, signal, restartInMs: slot.backoffMs }, 'worker exited; restarting');
        const delay = slot.backoffMs;
        slot.backoffMs = Math.min(slot.backoffMs * 2, 10_000);
        setTimeout(() => {
          if (this.#stopping) return;
          slot.restarts++;
          this.#spawn(slot).then(() => {
            slot.backoffMs = 250;
          }, (err: Error) => this.#options.log({ worker: slot.id, err: err.message }, 'worker restart failed'));
        }, delay).unref();
      });
    });
  }
}
