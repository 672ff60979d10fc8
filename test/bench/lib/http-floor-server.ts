/**
 * The HTTP floor: a bare node:http server that reads each request body completely and answers with a
 * fixed small binary-V2-shaped response, no parsing, no inference. What the worker costs above this is
 * its own doing. Run as a child process by http-floor.ts; reports its port over IPC.
 */
import { createServer } from 'node:http';

const header = Buffer.from('{"model_name":"floor","model_version":"1","outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,10],"parameters":{"binary_data_size":40}}]}');
const body = Buffer.concat([header, Buffer.alloc(40)]);

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    if (req.url === '/v2/health/live') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
      res.end('{}');
      return;
    }
    Buffer.concat(chunks);
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(header.length),
      'content-length': String(body.length),
    });
    res.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send!({ port: typeof address === 'object' && address ? address.port : 0 });
});
process.on('disconnect', () => server.close(() => process.exit(0)));
