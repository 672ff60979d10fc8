// The public port over HTTPS: a self-signed certificate made here with openssl, inference with its
// CA trusted, plain HTTP refused, and the certificate replaced on SIGHUP without a restart — new
// connections get the new one, an open connection keeps working, a broken file keeps the old one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startWorker, waitFor } from '../../helpers/processes.ts';
import { IRIS_BODY, irisRepository, startConfiguredGateway, tempDir } from './support.ts';

const run = promisify(execFile);
const OPENSSL = spawnSync('openssl', ['version']).error === undefined;

async function makeCertificate(dir: string, name: string): Promise<{ cert: string; key: string; fingerprint: string }> {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=localhost/O=${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyPath, '-out', certPath]);
  const cert = await readFile(certPath, 'utf8');
  return { cert, key: await readFile(keyPath, 'utf8'), fingerprint: new X509Certificate(cert).fingerprint256 };
}

interface TlsAnswer {
  status: number;
  body: string;
  fingerprint: string;
  reused: boolean;
}

/** One iris inference over HTTPS; reports the certificate the server presented. */
function inferTls(url: string, options: { ca?: string; agent?: HttpsAgent }): Promise<TlsAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${url}/v2/models/iris/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(IRIS_BODY)) },
      ...(options.agent ? { agent: options.agent } : { agent: false, ca: options.ca }),
    }, (res) => {
      const socket = res.socket as TLSSocket;
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      const reused = socket.isSessionReused() || (req as unknown as { reusedSocket: boolean }).reusedSocket;
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, fingerprint, reused }));
    });
    req.on('error', reject);
    req.end(IRIS_BODY);
  });
}

test('HTTPS on the public port, certificate reloaded on SIGHUP', { skip: OPENSSL ? false : 'openssl is not installed' }, async (t) => {
  const dir = await tempDir(t, 'tls');
  const [first, second] = await Promise.all([makeCertificate(dir, 'first'), makeCertificate(dir, 'second')]);
  assert.notEqual(first.fingerprint, second.fingerprint);
  const certFile = join(dir, 'server.crt');
  const keyFile = join(dir, 'server.key');
  await writeFile(certFile, first.cert);
  await writeFile(keyFile, first.key);

  const worker = await startWorker(t, await irisRepository(t));
  const gateway = await startConfiguredGateway(t, [worker.url], { listen: { tlsCertFile: certFile, tlsKeyFile: keyFile } });
  assert.match(gateway.url, /^https:\/\/127\.0\.0\.1:\d+$/, 'the gateway announces an https URL');
  const plainUrl = gateway.url.replace(/^https:/, 'http:');

  await t.test('inference over HTTPS with the CA trusted', async () => {
    const answer = await inferTls(gateway.url, { ca: first.cert });
    assert.equal(answer.status, 200, answer.body);
    assert.equal((JSON.parse(answer.body) as { model_name: string }).model_name, 'iris');
    assert.equal(answer.fingerprint, first.fingerprint);
  });

  await t.test('an untrusted certificate is refused by the client', async () => {
    await assert.rejects(inferTls(gateway.url, {}), /self[- ]signed/i);
  });

  await t.test('plain HTTP to the TLS port gets no answer', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const req = httpRequest(`${plainUrl}/v2/health/live`, { agent: false, timeout: 3000 }, (res) => {
        res.resume();
        resolve(`answered ${res.statusCode}`);
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => resolve(`error: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
      req.end();
    });
    assert.match(outcome, /^error: (ECONNRESET|EPIPE|HPE_\w+)/, outcome);
    // And the TLS port still serves TLS afterwards.
    assert.equal((await inferTls(gateway.url, { ca: first.cert })).status, 200);
  });

  await t.test('SIGHUP with a new certificate: new connections see it, an open one keeps working', async () => {
    const keepAlive = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: first.cert });
    t.after(() => keepAlive.destroy());
    const before = await inferTls(gateway.url, { agent: keepAlive });
    assert.equal(before.fingerprint, first.fingerprint);

    await writeFile(certFile, second.cert);
    await writeFile(keyFile, second.key);
    const logsBefore = gateway.logs.length;
    gateway.child.kill('SIGHUP');
    await waitFor(() => gateway.logs.slice(logsBefore).some((l) => l.msg === 'TLS certificate reloaded'), 5000);

    const fresh = await inferTls(gateway.url, { ca: second.cert });
    assert.equal(fresh.status, 200);
    assert.equal(fresh.fingerprint, second.fingerprint, 'a new connection gets the new certificate');
    await assert.rejects(inferTls(gateway.url, { ca: first.cert }), 'the old CA no longer vouches for the server');

    const open = await inferTls(gateway.url, { agent: keepAlive });
    assert.equal(open.status, 200, 'the connection opened before the reload still works');
    assert.equal(open.reused, true, 'on the same socket');
    assert.equal(open.fingerprint, first.fingerprint);
    assert.equal(gateway.child.exitCode, null, 'SIGHUP does not stop the gateway');
  });

  await t.test('SIGHUP with a broken certificate file keeps the old certificate', async () => {
    await writeFile(certFile, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    const logsBefore = gateway.logs.length;
    gateway.child.kill('SIGHUP');
    await waitFor(() => gateway.logs.slice(logsBefore).some((l) => l.msg === 'TLS certificate reload failed; the old one stays'), 5000);
    const answer = await inferTls(gateway.url, { ca: second.cert });
    assert.equal(answer.status, 200);
    assert.equal(answer.fingerprint, second.fingerprint);
  });
});
