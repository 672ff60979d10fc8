/** Free TCP ports for processes that cannot listen on port 0 and report back (nginx), or whose log may not say. */
import { createServer } from 'node:net';

/** A TCP port free right now on 127.0.0.1 (the OS picks it; a small race with other processes remains). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
