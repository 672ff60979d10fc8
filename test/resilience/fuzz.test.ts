// A property-based fuzzer (fast-check) against a real gateway in front of a real worker: V2 request
// bodies — valid-ish structure with random datatypes, shapes, data, parameters and ids; random JSON;
// random bytes; binary-extension bodies whose header length is right, wrong or not a number — under
// random paths and headers (Content-Type, Content-Encoding, Inference-Header-Content-Length,
// X-Request-Id, X-Infergate-Timeout-Ms, Authorization).
//
// Property: every answer is 2xx, or a JSON error whose code is in the catalogue with the catalogue's
// status — never a 500 from bad input. Afterwards both processes are up, and neither the gateway nor
// the worker counted an internal error, nor did the gateway hold the client's mistakes against the
// worker's breaker.
//
// FUZZ_RUNS (default 400) and FUZZ_SEED (default fixed, so CI is repeatable) tune it; a failure
// prints the seed and the shrunk counterexample, and `FUZZ_SEED=<seed>` replays it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { scrapeMetrics } from '../helpers/metrics.ts';
import { startWorker } from '../helpers/processes.ts';
import { irisRepository, startConfiguredGateway, workerIdOf } from '../integration/gateway/support.ts';
import { HANG_MS, assertAlive, expectCatalogued } from './support.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_122);
const BODY_LIMIT = 256 * 1024;

const DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'] as const;

/** `arbitrary` in `weight` cases out of 6, else undefined (the header is left out). */
function sometimes<T>(weight: number, arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: 6 - weight, arbitrary: fc.constant(undefined) }, { weight, arbitrary });
}

/** Printable ASCII: what an HTTP client can put in a header value. */
const headerText = (max: number): fc.Arbitrary<string> => fc.stringMatching(new RegExp(`^[\\x20-\\x7e]{0,${max}}$`));

const datatype = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...DATATYPES) }, fc.constantFrom('fp32', 'FP128', '', 'STRING'), fc.string({ maxLength: 8 }));
const dimension = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 6 }) }, fc.constantFrom(-1, -2, 1.5, 2 ** 31, 2 ** 53, 1e308, Number.MAX_SAFE_INTEGER), fc.constantFrom('4', null, true, [2]));
const shape = fc.oneof({ weight: 6, arbitrary: fc.array(dimension, { maxLength: 4 }) }, fc.constantFrom([], [1, 4], [4, 1], [1, 1], new Array(40).fill(1)), fc.jsonValue({ maxDepth: 2 }));
const element = fc.oneof(
  fc.double(), fc.integer(), fc.boolean(), fc.string({ maxLength: 6 }),
  fc.constantFrom('NaN', 'Infinity', '-Infinity', '18446744073709551616', -0, 1e309, null),
);
const data = fc.oneof(
  { weight: 4, arbitrary: fc.array(element, { maxLength: 12 }) },
  fc.array(fc.array(element, { maxLength: 4 }), { maxLength: 4 }),
  fc.array(fc.double({ noNaN: true }), { minLength: 4, maxLength: 4 }),
  fc.jsonValue({ maxDepth: 3 }),
);
const parameters = fc.dictionary(fc.constantFrom('binary_data', 'binary_data_size', 'classification', 'binary_data_output', 'priority', 'timeout', 'x'), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 });
const input = fc.record({
  name: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('features', 'sqft', 'INPUT0') }, fc.string({ maxLength: 10 })),
  datatype,
  shape,
  data,
  parameters,
}, { requiredKeys: ['name'] });
const output = fc.record({ name: fc.oneof(fc.constantFrom('probabilities', 'price'), fc.string({ maxLength: 8 })), parameters }, { requiredKeys: ['name'] });
const v2Request = fc.record({
  id: fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.constant(null)),
  inputs: fc.oneof({ weight: 6, arbitrary: fc.array(input, { maxLength: 3 }) }, fc.jsonValue({ maxDepth: 2 })),
  outputs: fc.array(output, { maxLength: 3 }),
  parameters,
}, { requiredKeys: ['inputs'] });

/** A well-formed iris request (1–3 rows) with random ids, parameters and requested outputs: the 2xx path. */
const validIris = fc.record({
  rows: fc.array(fc.array(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }), { minLength: 4, maxLength: 4 }), { minLength: 1, maxLength: 3 }),
  id: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
  parameters: fc.option(parameters, { nil: undefined }),
  outputs: fc.option(fc.array(output, { maxLength: 2 }), { nil: undefined }),
});

/** A request body, with the headers that belong to its kind. */
interface Body {
  kind: string;
  bytes: Uint8Array;
  headers: Record<string, string>;
}
const jsonBody = v2Request.map((r): Body => ({ kind: 'v2', bytes: Buffer.from(JSON.stringify(r)), headers: { 'content-type': 'application/json' } }));
const validJsonBody = validIris.map(({ rows, ...rest }): Body => ({
  kind: 'valid',
  bytes: Buffer.from(JSON.stringify({ ...rest, inputs: [{ name: 'features', datatype: 'FP32', shape: [rows.length, 4], data: rows }] })),
  headers: { 'content-type': 'application/json' },
}));
const validBinaryBody = validIris.map(({ rows, ...rest }): Body => {
  const raw = Buffer.from(Float32Array.from(rows.flat()).buffer);
  const header = Buffer.from(JSON.stringify({ ...rest, inputs: [{ name: 'features', datatype: 'FP32', shape: [rows.length, 4], parameters: { binary_data_size: raw.length } }] }));
  return { kind: 'valid-binary', bytes: Buffer.concat([header, raw]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } };
});
const randomJson = fc.jsonValue({ maxDepth: 4 }).map((v): Body => ({ kind: 'json', bytes: Buffer.from(JSON.stringify(v) ?? ''), headers: { 'content-type': 'application/json' } }));
const randomBytes = fc.uint8Array({ maxLength: 256 }).map((b): Body => ({ kind: 'bytes', bytes: b, headers: {} }));
const binaryBody = fc.tuple(v2Request, fc.uint8Array({ maxLength: 64 }), fc.oneof(fc.constant('exact'), fc.integer({ min: -5, max: 5000 }).map(String), headerText(6)))
  .map(([request, tail, length]): Body => {
    const header = Buffer.from(JSON.stringify(request));
    return {
      kind: 'binary',
      bytes: Buffer.concat([header, tail]),
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': length === 'exact' ? String(header.length) : length },
    };
  });

const fuzzedRequest = fc.record({
  path: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('iris', 'house-price', 'iris/versions/1') },
    fc.constantFrom('iris/versions/9', 'nope', 'iris/versions/', '%00', 'iris%2F..%2F..'),
    fc.string({ maxLength: 12 }).map(encodeURIComponent),
  ),
  body: fc.oneof({ weight: 4, arbitrary: jsonBody }, { weight: 2, arbitrary: validJsonBody }, validBinaryBody, randomJson, randomBytes, binaryBody),
  gzip: fc.boolean(),
  // Each header mostly absent (or, for Content-Type, the body's own), so that most requests get
  // past the gateway's checks and the worker's validation is fuzzed too.
  headers: fc.record({
    'content-type': sometimes(1, fc.oneof(fc.constantFrom('application/json', 'application/octet-stream', 'application/json; charset=utf-8', 'text/plain', 'multipart/form-data', ''), headerText(20))),
    'content-encoding': sometimes(1, fc.oneof(fc.constantFrom('identity', 'gzip', 'deflate', 'br', 'gzip, gzip', 'GZIP'), headerText(10))),
    'inference-header-content-length': sometimes(1, fc.oneof(fc.integer({ min: -1, max: 1000 }).map(String), headerText(8))),
    'x-request-id': sometimes(2, headerText(140)),
    'x-infergate-timeout-ms': sometimes(2, fc.oneof(fc.integer({ min: -10, max: 100_000 }).map(String), fc.constantFrom('0', '1e30', 'NaN', ''), headerText(8))),
    authorization: sometimes(1, fc.oneof(fc.constantFrom('Bearer ', 'Bearer igk_bad_key', 'Basic dXNlcjpwYXNz', 'Bearer eyJhbGciOiJub25lIn0.e30.'), headerText(60).map((s) => `Bearer ${s}`))),
  }).map((headers) => Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)) as Record<string, string>),
});

type FuzzedRequest = typeof fuzzedRequest extends fc.Arbitrary<infer T> ? T : never;

test('fuzzing V2 bodies and headers through the gateway: 2xx or a catalogued JSON error, never a 500', { timeout: 300_000 }, async (t) => {
  const repo = await irisRepository(t, ['house-price']);
  const worker = await startWorker(t, repo);
  const gateway = await startConfiguredGateway(t, [worker.url], { limits: { bodyBytes: BODY_LIMIT } });
  const workerId = await workerIdOf(gateway, worker.url);
  const gatewayBefore = await scrapeMetrics(gateway.url);
  const workerBefore = await scrapeMetrics(worker.url);
  const statuses = new Map<number, number>();
  t.diagnostic(`fast-check seed ${SEED}, ${RUNS} runs (replay with FUZZ_SEED=${SEED})`);

  const send = async (r: FuzzedRequest): Promise<void> => {
    // A body sent compressed only when the request says so: the other claims of an encoding are lies to catch.
    const bytes = r.gzip && r.headers['content-encoding'] === 'gzip' ? gzipSync(r.body.bytes) : r.body.bytes;
    const res = await fetch(`${gateway.url}/v2/models/${r.path}/infer`, {
      method: 'POST',
      headers: { ...r.body.headers, ...r.headers },
      body: new Uint8Array(bytes),
      signal: AbortSignal.timeout(HANG_MS),
    });
    const text = await res.text();
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    assert.notEqual(res.status, 500, `500 from a ${r.body.kind} body: ${text.slice(0, 300)}`);
    if (res.status >= 200 && res.status < 300) return;
    expectCatalogued(res.status, text);
  };

  try {
    await fc.assert(fc.asyncProperty(fuzzedRequest, send), { seed: SEED, numRuns: RUNS });
  } finally {
    t.diagnostic(`answers by status: ${[...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}: ${n}`).join(', ')}`);
  }

  // (b) Both processes are up and still serve a good request.
  await assertAlive(gateway, worker);
  const good = await fetch(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] }) });
  assert.equal(good.status, 200);
  await good.body?.cancel();
  // (c) The fuzzed requests went through the pipeline and some reached the worker; none was an
  // internal error on either side; none counted against the worker's breaker.
  const gatewayAfter = await scrapeMetrics(gateway.url);
  const workerAfter = await scrapeMetrics(worker.url);
  assert.ok(gatewayAfter.delta(gatewayBefore, 'infergate_gateway_requests_total') >= RUNS / 2, 'the fuzzed requests were counted');
  assert.ok(gatewayAfter.delta(gatewayBefore, 'infergate_gateway_requests_total', { worker: workerId }) > 0, 'some reached the worker');
  assert.equal(gatewayAfter.delta(gatewayBefore, 'infergate_gateway_requests_total', { status: '500' }), 0);
  for (const outcome of ['ERR_INTERNAL', 'WK_ERR_INFERENCE_FAILED']) assert.equal(workerAfter.delta(workerBefore, 'infergate_worker_requests_total', { outcome }), 0, outcome);
  assert.equal(gatewayAfter.delta(gatewayBefore, 'infergate_gateway_breaker_transitions_total', { worker: workerId }), 0);
});
