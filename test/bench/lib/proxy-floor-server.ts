/**
 * The proxy floor: a bare node:http server that forwards every request through http-proxy with a
 * keep-alive agent, round-robin over the upstreams given in argv[2] (JSON array of URLs). No
 * pipeline, no logging, no metrics: what proxying over node:http + http-proxy costs by itself, the
 * part of the gateway's cost it cannot shed without leaving that stack. Run as a child process by
 * proxy-floor.ts; reports its port over IPC.
 */
import { Agent, createServer } from 'node:http';
import httpProxy from 'http-proxy';

const targets = JSON.parse(process.argv[2] ?? '[]') as string[];
// The gateway's agent settings (gateway/upstreams/upstream.ts), one agent per upstream.
const agents = targets.map(() => new Agent({ keepAlive: true, maxSockets: 128, maxFreeSockets: 64, timeout: 30_000, scheduling: 'lifo' }));
const proxy = httpProxy.createProxyServer({ ws: false, xfwd: false, changeOrigin: false });
proxy.on('error', (_err, _req, res) => {
  if ('writeHead' in res && !res.headersSent) res.writeHead(502);
  res.end();
});
let next = 0;
const server = createServer((req, res) => {
  const i = next++ % targets.length;
  proxy.web(req, res, { target: targets[i], agent: agents[i] });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send!({ port: typeof address === 'object' && address ? address.port : 0 });
});
process.on('disconnect', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
