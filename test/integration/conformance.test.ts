/**
 * ONNX conformance through a real worker: every model of ONNX's own backend test data
 * (shared/onnx-conformance, see its README.md) is served by one `infergate worker` process and
 * every expected output is checked through the Open Inference Protocol V2 `infer` endpoint.
 *
 * - Node cases: the reference inputs are sent twice, as JSON (`data`) with JSON outputs, and through
 *   the binary tensor extension with binary outputs; both answers must match the reference outputs.
 * - Light CNNs: the input is defined by rule (x[i] = float32(i/n)), sent as 600 KB of binary, and the
 *   output is read back both binary and as JSON.
 * - 64-bit integers beyond 2^53, which the corpus does not contain, are pushed through two of its
 *   models with inputs whose result is computed here, to prove JSON and binary keep them exact.
 *
 * Tolerance, from the corpus's `checked_with`: floats |got - exp| <= 1e-6 + 1e-4·|exp| (NaN matches
 * NaN, equal infinities match); every other type, every shape and every datatype exactly.
 *
 * The corpus lives beside the repository (`<repo>/../shared/onnx-conformance/`) or wherever
 * INFERGATE_CONFORMANCE_DIR points; without it the test is skipped.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startWorker, type RunningProcess } from '../helpers/processes.ts';
import { decodeTensorProto, type DecodedTensor } from '../helpers/onnx-pb.ts';
import {
  halfToNumber,
  inferBinary,
  inferJson,
  type InferOptions,
  type InferResponse,
  type InputTensor,
  type OutputTensor,
  type TensorData,
  type V2Datatype,
} from '../helpers/v2-client.ts';

// ---------------------------------------------------------------------------------------------
// The corpus index (index.json; see the corpus README for every field)

interface IndexTensor {
  name: string;
  elem_type: string;
  v2_datatype: V2Datatype;
  dims: number[];
}

interface NodeCase {
  name: string;
  model: string;
  inputs: Array<IndexTensor & { file: string }>;
  outputs: Array<IndexTensor & { file: string }>;
  tags: string[];
  ort_ok?: boolean;
}

interface LightCase {
  name: string;
  model: string;
  input_rule: string;
  inputs: IndexTensor[];
  outputs: Array<IndexTensor & { expected_file: string }>;
  ort_ok?: boolean;
}

interface CorpusIndex {
  node: NodeCase[];
  light: LightCase[];
  dropped?: Array<{ name: string; why: string }>;
}

/** The corpus directory, and whether it holds an index.json. */
function locateCorpus(): { dir: string; found: boolean } {
  const fromEnv = process.env.INFERGATE_CONFORMANCE_DIR;
  const dir = fromEnv ? resolve(fromEnv) : fileURLToPath(new URL('../../../shared/onnx-conformance/', import.meta.url));
  return { dir, found: existsSync(join(dir, 'index.json')) };
}

// ---------------------------------------------------------------------------------------------
// Comparison

const FLOAT_TYPES: ReadonlySet<V2Datatype> = new Set(['FP16', 'FP32', 'FP64']);
const ABS_TOL = 1e-6;
const REL_TOL = 1e-4;

function show(v: number | bigint | Uint8Array): string {
  if (v instanceof Uint8Array) return JSON.stringify(Buffer.from(v).toString('utf8'));
  return typeof v === 'bigint' ? `${v}n` : String(v);
}

/** Asserts that `got` is `expected`: datatype and shape exactly, values within the corpus tolerance. */
function assertTensor(got: OutputTensor, expected: DecodedTensor, where: string): void {
  assert.equal(got.datatype, expected.datatype, `${where}: datatype`);
  assert.deepEqual(got.shape, expected.dims, `${where}: shape`);
  assert.equal(got.data.length, expected.values.length, `${where}: element count`);
  const isFloat = FLOAT_TYPES.has(expected.datatype);
  const decode = (data: TensorData, i: number): number | bigint | Uint8Array => {
    const v = data[i]!;
    return expected.datatype === 'FP16' ? halfToNumber(v as number) : v;
  };
  const mismatches: string[] = [];
  let count = 0;
  for (let i = 0; i < expected.values.length; i++) {
    const g = decode(got.data, i);
    const e = decode(expected.values, i);
    let ok: boolean;
    if (isFloat) {
      const gn = g as number;
      const en = e as number;
      ok = (Number.isNaN(gn) && Number.isNaN(en)) || gn === en || Math.abs(gn - en) <= ABS_TOL + REL_TOL * Math.abs(en);
    } else if (e instanceof Uint8Array) {
      ok = g instanceof Uint8Array && Buffer.from(g).equals(Buffer.from(e));
    } else {
      ok = g === e;
    }
    if (!ok) {
      count++;
      if (mismatches.length < 5) mismatches.push(`[${i}] got ${show(g)}, expected ${show(e)}`);
    }
  }
  if (count > 0) assert.fail(`${where}: ${count} of ${expected.values.length} values differ: ${mismatches.join('; ')}`);
}

interface Expectation {
  model: string;
  id: string;
  outputs: DecodedTensor[];
  /** How outputs must come back. */
  outputForm: 'json' | 'binary';
}

/** Checks the envelope (model, version, id, output names, encoding) and every output tensor. */
function assertResponse(res: InferResponse, want: Expectation): void {
  assert.equal(res.modelName, want.model, 'model_name');
  assert.equal(res.modelVersion, '1', 'model_version');
  assert.equal(res.id, want.id, 'id is echoed');
  assert.deepEqual(
    res.outputs.map((o) => o.name).sort(),
    want.outputs.map((o) => o.name).sort(),
    'output names',
  );
  const raw = res.body.outputs as Array<Record<string, unknown>>;
  for (const [i, out] of res.outputs.entries()) {
    const entry = raw[i]!;
    if (want.outputForm === 'json') {
      assert.ok(Array.isArray(entry.data) && !entry.data.some(Array.isArray), `output '${out.name}': data must be a flat array`);
      assert.equal(out.parameters?.binary_data_size, undefined, `output '${out.name}': binary although JSON was asked for`);
    } else {
      assert.equal(typeof out.parameters?.binary_data_size, 'number', `output '${out.name}': not binary although binary was asked for`);
    }
  }
  for (const exp of want.outputs) assertTensor(res.output(exp.name), exp, `output '${exp.name}'`);
}

// ---------------------------------------------------------------------------------------------
// Cases

type Mode = { label: string; send: typeof inferJson; options: InferOptions; outputForm: 'json' | 'binary' };

/** JSON in + JSON out, and binary in + binary out (here asked per output, by name). */
function nodeModes(outputNames: string[]): Mode[] {
  return [
    { label: 'JSON in, JSON out', send: inferJson, options: {}, outputForm: 'json' },
    { label: 'binary in, binary out', send: inferBinary, options: { outputs: outputNames }, outputForm: 'binary' },
  ];
}

async function runNodeCase(t: TestContext, corpus: string, worker: RunningProcess, c: NodeCase): Promise<void> {
  if (c.ort_ok === false) {
    t.skip('index.json: onnxruntime-node could not reproduce this case');
    return;
  }
  const load = async (file: string, meta: IndexTensor): Promise<DecodedTensor> => {
    const decoded = decodeTensorProto(await readFile(join(corpus, file)));
    // The index and the .pb files come from the same place; a disagreement is a corpus problem.
    assert.equal(decoded.datatype, meta.v2_datatype, `${file}: datatype in index.json`);
    assert.deepEqual(decoded.dims, meta.dims, `${file}: dims in index.json`);
    return { ...decoded, name: meta.name };
  };
  const inputs = await Promise.all(c.inputs.map((io) => load(io.file, io)));
  const outputs = await Promise.all(c.outputs.map((io) => load(io.file, io)));
  const request: InputTensor[] = inputs.map((x) => ({ name: x.name, datatype: x.datatype, shape: x.dims, data: x.values }));

  for (const mode of nodeModes(outputs.map((o) => o.name))) {
    await t.test(mode.label, async () => {
      const id = `${c.name}/${mode.outputForm}`;
      const res = await mode.send(worker.url, c.name, request, { ...mode.options, id });
      assertResponse(res, { model: c.name, id, outputs, outputForm: mode.outputForm });
    });
  }
}

async function runLightCase(t: TestContext, corpus: string, worker: RunningProcess, c: LightCase): Promise<void> {
  if (c.ort_ok === false) {
    t.skip('index.json: onnxruntime-node could not reproduce this case');
    return;
  }
  // The corpus's input rule: each float input of shape S, n = product(S), x[i] = float32(i / n).
  const request: InputTensor[] = c.inputs.map((io) => {
    assert.equal(io.v2_datatype, 'FP32', `${c.name}: the input rule covers float inputs only`);
    const n = io.dims.reduce((a, d) => a * d, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = i / n;
    return { name: io.name, datatype: 'FP32', shape: io.dims, data };
  });
  const outputs = await Promise.all(
    c.outputs.map(async (io) => ({ ...decodeTensorProto(await readFile(join(corpus, io.expected_file))), name: io.name })),
  );
  const modes: Mode[] = [
    // Binary outputs asked for with the top-level parameter here, per output for the node cases.
    { label: 'binary in, binary out', send: inferBinary, options: {}, outputForm: 'binary' },
    { label: 'binary in, JSON out', send: inferBinary, options: { binaryOutputs: false }, outputForm: 'json' },
  ];
  for (const mode of modes) {
    await t.test(mode.label, async () => {
      const id = `${c.name}/${mode.outputForm}`;
      const res = await mode.send(worker.url, c.name, request, { ...mode.options, id });
      assertResponse(res, { model: c.name, id, outputs, outputForm: mode.outputForm });
    });
  }
}

/** A DecodedTensor built here, for inputs and expectations the corpus does not provide. */
function tensor(name: string, datatype: V2Datatype, dims: number[], values: TensorData): DecodedTensor {
  return { name, datatype, dims, values, elemType: 0 };
}

/**
 * INT64/UINT64 values beyond 2^53, through models from the corpus: Where(condition, x, y) on INT64
 * and Add on UINT64, with results computed here in BigInt.
 */
async function run64BitCase(t: TestContext, worker: RunningProcess, index: CorpusIndex): Promise<void> {
  const names = new Set(index.node.map((c) => c.name));
  const cases: Array<{ model: string; inputs: DecodedTensor[]; outputs: DecodedTensor[] }> = [];
  if (names.has('test_where_long_example')) {
    const x = [2n ** 63n - 1n, 2n ** 53n + 1n, -(2n ** 63n), 123n];
    const y = [-(2n ** 53n) - 1n, 9_007_199_254_740_993n, 7n, -(2n ** 62n) - 3n];
    const cond = [1, 0, 1, 0];
    cases.push({
      model: 'test_where_long_example',
      inputs: [
        tensor('condition', 'BOOL', [2, 2], Uint8Array.from(cond)),
        tensor('x', 'INT64', [2, 2], BigInt64Array.from(x)),
        tensor('y', 'INT64', [2, 2], BigInt64Array.from(y)),
      ],
      outputs: [tensor('z', 'INT64', [2, 2], BigInt64Array.from(cond.map((c, i) => (c ? x[i]! : y[i]!))))],
    });
  }
  if (names.has('test_add_uint64')) {
    const x = Array.from({ length: 60 }, (_, i) => 2n ** 63n + BigInt(i) * 2n ** 40n + 1n);
    const y = Array.from({ length: 60 }, (_, i) => 2n ** 53n + BigInt(i));
    cases.push({
      model: 'test_add_uint64',
      inputs: [tensor('x', 'UINT64', [3, 4, 5], BigUint64Array.from(x)), tensor('y', 'UINT64', [3, 4, 5], BigUint64Array.from(y))],
      outputs: [tensor('sum', 'UINT64', [3, 4, 5], BigUint64Array.from(x.map((v, i) => v + y[i]!)))],
    });
  }
  if (cases.length === 0) {
    t.skip('the corpus has neither test_where_long_example nor test_add_uint64');
    return;
  }
  for (const c of cases) {
    const request: InputTensor[] = c.inputs.map((x) => ({ name: x.name, datatype: x.datatype, shape: x.dims, data: x.values }));
    for (const mode of nodeModes(c.outputs.map((o) => o.name))) {
      await t.test(`${c.model}: ${mode.label}`, async () => {
        const id = `${c.model}/big/${mode.outputForm}`;
        const res = await mode.send(worker.url, c.model, request, { ...mode.options, id });
        assertResponse(res, { model: c.model, id, outputs: c.outputs, outputForm: mode.outputForm });
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Model repository and worker

/** `<tmp>/<name>/1/model.onnx` for every case, linked to the corpus (copied where links fail). */
async function buildRepository(corpus: string, models: Array<{ name: string; model: string }>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'infergate-conformance-'));
  await Promise.all(
    models.map(async (m) => {
      const versionDir = join(dir, m.name, '1');
      await mkdir(versionDir, { recursive: true });
      const source = join(corpus, m.model);
      const target = join(versionDir, 'model.onnx');
      try {
        await symlink(source, target);
      } catch {
        await copyFile(source, target);
      }
    }),
  );
  return dir;
}

/**
 * Waits until `GET /v2/models/{m}/ready` answers 200 for every model. The worker's own readiness
 * is not enough here: this test needs each model loaded, and says which ones never were.
 */
async function waitForModels(url: string, names: string[], timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pending = names;
  while (pending.length > 0) {
    const statuses = await Promise.all(pending.map(async (m) => (await fetch(`${url}/v2/models/${encodeURIComponent(m)}/ready`)).status));
    pending = pending.filter((_, i) => statuses[i] !== 200);
    if (pending.length === 0) return;
    if (Date.now() > deadline) {
      const reasons = await Promise.all(pending.map(async (m) => `${m}: ${(await (await fetch(`${url}/v2/models/${encodeURIComponent(m)}`)).text()).slice(0, 300)}`));
      assert.fail(`${pending.length} model(s) not ready after ${timeoutMs} ms:\n${reasons.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('ONNX conformance corpus through a real worker (V2 JSON and binary)', { concurrency: 4, timeout: 300_000 }, async (t) => {
  const { dir: corpus, found } = locateCorpus();
  if (!found) {
    t.skip(`ONNX conformance corpus not found (no ${join(corpus, 'index.json')}): put it in shared/onnx-conformance beside the repository or set INFERGATE_CONFORMANCE_DIR`);
    return;
  }
  const index = JSON.parse(await readFile(join(corpus, 'index.json'), 'utf8')) as CorpusIndex;
  assert.ok(index.node.length > 0 && index.light.length > 0, 'index.json lists node and light cases');
  const dropped = new Set((index.dropped ?? []).map((d) => d.name));
  const nodeCases = index.node.filter((c) => !dropped.has(c.name));

  let worker: RunningProcess | undefined;
  let repo: string | undefined;
  t.after(async () => {
    await worker?.stop();
    if (repo !== undefined) await rm(repo, { recursive: true, force: true });
  });
  repo = await buildRepository(corpus, [...nodeCases, ...index.light]);
  // 54 models load in parallel, one session thread each: minutes on a busy 2-core machine.
  worker = await startWorker(t, repo, { readyTimeoutMs: 240_000 });
  const w = worker;
  await waitForModels(w.url, [...nodeCases, ...index.light].map((c) => c.name));

  // Subtests are started together and run four at a time (the `concurrency` option above).
  await Promise.all([
    ...nodeCases.map((c) => t.test(`node/${c.name}`, (st) => runNodeCase(st, corpus, w, c))),
    ...index.light.map((c) => t.test(`light/${c.name}`, (st) => runLightCase(st, corpus, w, c))),
    t.test('INT64/UINT64 beyond 2^53 stay exact', (st) => run64BitCase(st, w, index)),
  ]);
});
