/**
 * A TCP proxy for fault injection on a link (e.g. gateway → Redis): forwards bytes both ways and, on
 * cue, delays them, stalls them (holds every byte until `resume`), resets every connection, or
 * refuses new ones. Ordering is preserved in each direction.
 *
 * @example
 *   const proxy = await startTcpProxy(t, redis.port);
 *   const client = new Redis({ port: proxy.port });
 *   proxy.setDelay(500); // every byte now arrives 500 ms late, both ways
 *   proxy.stall();       // nothing gets through until resume()
 *   proxy.resetAll();    // TCP RST on every open connection
 */
import { createServer, connect, type Socket, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import type { TestContext } from 'node:test';

export interface TcpProxy {
  readonly port: number;
  /** Delay every chunk by `ms` in both directions (0 = pass through); also ends a stall. */
  setDelay(ms: number): void;
  /** Hold every byte, both ways, until `resume` or `setDelay`; connections stay open. */
  stall(): void;
  /** End a stall: held bytes flow (after the current delay). */
  resume(): void;
  /** Reset (RST) every open connection, both sides. New connections are still accepted. */
  resetAll(): void;
  /** Refuse new connections (accept and reset at once) while true. */
  refuse(on: boolean): void;
  /** Connections currently open. */
  readonly connections: number;
  close(): Promise<void>;
}

interface Pending {
  chunk: Buffer;
  due: number;
}

/** One direction of a connection: a queue released when each chunk's time comes, in order. */
class Lane {
  private readonly queue: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly to: Socket,
    private readonly state: { delayMs: number; stalled: boolean },
  ) {}

  push(chunk: Buffer): void {
    this.queue.push({ chunk, due: Date.now() + this.state.delayMs });
    this.flush();
  }

  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.state.stalled) return;
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0]!.due <= now) {
      const { chunk } = this.queue.shift()!;
      if (!this.to.destroyed) this.to.write(chunk);
    }
    const next = this.queue[0];
    if (next !== undefined) this.timer = setTimeout(() => this.flush(), next.due - now);
  }

  /** Re-time held chunks after a delay change, keeping order. */
  retime(): void {
    const now = Date.now();
    for (const p of this.queue) p.due = Math.min(p.due, now + this.state.delayMs);
    this.flush();
  }

  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.queue.length = 0;
  }
}

export async function startTcpProxy(t: TestContext | undefined, targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const state = { delayMs: 0, stalled: false, refusing: false };
  const links = new Set<{ client: Socket; upstream: Socket; lanes: Lane[] }>();

  const server = createServer((client) => {
    if (state.refusing) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: targetHost, port: targetPort });
    const up = new Lane(upstream, state);
    const down = new Lane(client, state);
    const link = { client, upstream, lanes: [up, down] };
    links.add(link);
    const teardown = (): void => {
      if (!links.delete(link)) return;
      up.dispose();
      down.dispose();
      if (!client.destroyed) client.destroy();
      if (!upstream.destroyed) upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => up.push(chunk));
    upstream.on('data', (chunk: Buffer) => down.push(chunk));
    for (const s of [client, upstream]) {
      s.on('error', teardown);
      s.on('close', teardown);
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  const proxy: TcpProxy = {
    port,
    setDelay(ms) {
      state.delayMs = ms;
      state.stalled = false;
      for (const l of links) for (const lane of l.lanes) lane.retime();
    },
    stall() {
      state.stalled = true;
    },
    resume() {
      state.stalled = false;
      for (const l of links) for (const lane of l.lanes) lane.flush();
    },
    resetAll() {
      for (const l of [...links]) {
        l.client.resetAndDestroy();
        l.upstream.resetAndDestroy();
      }
    },
    refuse(on) {
      state.refusing = on;
    },
    get connections() {
      return links.size;
    },
    async close() {
      if (!server.listening) return;
      const closed = once(server, 'close');
      server.close();
      for (const l of [...links]) {
        l.client.destroy();
        l.upstream.destroy();
      }
      await closed;
    },
  };
  t?.after(() => proxy.close());
  return proxy;
}
