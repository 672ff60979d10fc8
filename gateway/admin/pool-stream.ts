/**
 * `GET /admin/pool/stream`: the pool snapshot as server-sent events, `event: pool` once a second,
 * the first at once, with `retry: 2000` for reconnecting clients. Behind the admin token like
 * every admin route (browsers read it with fetch() and a stream reader, since EventSource cannot
 * send a header; the token never goes in a query string).
 *
 * One timer serves every open stream and runs only while one is open; a snapshot is built once
 * per tick whatever the number of clients. A stream ends when its client goes away (the listener
 * and, for the last one, the timer go with it), when the client stops reading (over
 * `maxBufferedBytes` unsent: cut rather than buffered without bound), and when its server is
 * closing, so a draining gateway is not held open by dashboards.
 */
import type { ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import { Gauge, type Registry } from 'prom-client';

export interface PoolStreamOptions {
  /** The JSON sent in each event. */
  snapshot: () => unknown;
  intervalMs?: number;
  /** A client further behind than this is disconnected. */
  maxBufferedBytes?: number;
  /** Registers `infergate_gateway_pool_streams` (open streams) here. */
  registry?: Registry;
}

const RETRY_MS = 2000;

export class PoolStream {
  readonly #clients = new Set<ServerResponse>();
  readonly #snapshot: () => unknown;
  readonly #intervalMs: number;
  readonly #maxBufferedBytes: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: PoolStreamOptions) {
    this.#snapshot = options.snapshot;
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
    if (!(this.#intervalMs > 0)) throw new Error('pool stream: intervalMs must be positive');
    const clients = this.#clients;
    if (options.registry !== undefined) {
      new Gauge({
        name: 'infergate_gateway_pool_streams', help: 'Open pool dashboard event streams (GET /admin/pool/stream)', registers: [options.registry],
        collect() {
          this.set(clients.size);
        },
      });
    }
  }

  /** Open streams. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Whether the shared timer is running (only while a stream is open). */
  get ticking(): boolean {
    return this.#timer !== undefined;
  }

  /** The express handler: takes over the response until the client leaves. */
  readonly handle = (req: Request, res: Response): void => {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no', // proxies such as NGINX would otherwise hold events back
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    req.socket.setNoDelay(true);
    res.write(`retry: ${RETRY_MS}\n\n${this.#frame()}`);
    this.#clients.add(res);
    res.once('close', () => this.#leave(res));
    this.#timer ??= setInterval(() => this.#tick(), this.#intervalMs);
  };

  /** Ends every stream (the gateway is shutting down). */
  close(): void {
    for (const res of [...this.#clients]) {
      endForShutdown(res);
      this.#leave(res);
    }
  }

  #leave(res: ServerResponse): void {
    this.#clients.delete(res);
    if (this.#clients.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #frame(): string {
    return `event: pool\ndata: ${JSON.stringify(this.#snapshot())}\n\n`;
  }

  #tick(): void {
    const frame = this.#frame();
    for (const res of this.#clients) {
      if (serverClosing(res)) endForShutdown(res);
      else if (res.writableLength > this.#maxBufferedBytes) res.destroy();
      else res.write(frame);
    }
  }
}

/**
 * Ends the stream, then its connection: a keep-alive connection that goes idle after the server
 * began closing is not closed by Node, and would hold the server open until its forced close.
 */
function endForShutdown(res: ServerResponse): void {
  const socket = res.socket;
  res.end(() => socket?.end());
}

/** The server that accepted the connection stopped listening: it is draining. */
function serverClosing(res: ServerResponse): boolean {
  const server = (res.socket as { server?: { listening?: boolean } } | null)?.server;
  return server?.listening === false;
}
