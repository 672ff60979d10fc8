/**
 * Closing node:http(s) servers without cutting a request and without leaving clients to find a
 * dead keep-alive connection: from the moment the close starts, every response that has not yet
 * sent its headers (those in flight and those still to come on open connections) says
 * `Connection: close`, so a client opens its next request elsewhere instead of writing it into a
 * connection that is about to close; idle connections close as soon as they are idle.
 */
import type { Server, ServerResponse } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';

/**
 * node:http's own link from a connection to the response it is answering now (`_httpMessage`, set
 * when the request arrives). Pipelined requests behind it are not reachable; they close the
 * connection after their answers only if they arrive after the close starts.
 */
type HttpConnection = Socket & { _httpMessage?: ServerResponse | null };

export interface GracefulCloser {
  /**
   * Stops accepting connections and resolves once every connection has closed: 'drained' when the
   * last in-flight request finished, 'cut' when `drainMs` ran out and the rest were closed
   * (`onCut` is called then, before they close).
   */
  close(drainMs: number, onCut?: () => void): Promise<'drained' | 'cut'>;
}

/** Call before the servers listen: it follows their connections from the first one. */
export function gracefulCloser(servers: ReadonlyArray<Server>): GracefulCloser {
  const connections = new Set<HttpConnection>();
  for (const server of servers) {
    // Over TLS, node:http reads and writes the TLS socket, which only exists once the handshake is done.
    const event = server instanceof HttpsServer ? 'secureConnection' : 'connection';
    server.on(event, (socket: HttpConnection) => {
      connections.add(socket);
      socket.once('close', () => connections.delete(socket));
    });
  }
  let closing: Promise<'drained' | 'cut'> | undefined;
  return {
    close(drainMs, onCut) {
      closing ??= new Promise((resolve) => {
        let outcome: 'drained' | 'cut' = 'drained';
        const closed = Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
        for (const server of servers) server.prependListener('request', (_req, res) => { res.shouldKeepAlive = false; });
        for (const socket of connections) {
          const res = socket._httpMessage;
          if (res != null && !res.headersSent) res.shouldKeepAlive = false;
        }
        const closeIdle = (): void => servers.forEach((s) => s.closeIdleConnections());
        closeIdle();
        const idleSweep = setInterval(closeIdle, 50);
        const force = setTimeout(() => {
          outcome = 'cut';
          onCut?.();
          servers.forEach((s) => s.closeAllConnections());
        }, drainMs);
        void closed.then(() => {
          clearTimeout(force);
          clearInterval(idleSweep);
          resolve(outcome);
        });
      });
      return closing;
    },
  };
}
