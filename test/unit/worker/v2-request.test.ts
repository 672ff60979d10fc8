import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ServedVersion } from '../../../worker/repository/model-repository.ts';
import type { TensorSpec } from '../../../worker/repository/session-protocol.ts';
import { StoragePool } from '../../../worker/protocol/codec/storage-pool.ts';
import { decodeInferRequest, HeaderPlans, type DecodedRequest } from '../../../worker/protocol/v2-request.ts';

/** Only the fields decodeInferRequest reads; the rest of ServedVersion (scheduler, ...) is not touched. */
function fakeModel(inputs: TensorSpec[], outputs: TensorSpec[], maxBatchSize: number): ServedVersion {
  return { inputs, outputs, config: { maxBatchSize } } as unknown as ServedVersion;
}

const MODEL = fakeModel(
  [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }, { name: 'mask', datatype: 'BOOL', shape: [-1, 2] }],
  [{ name: 'probs', datatype: 'FP32', shape: [-1, 3] }, { name: 'label', datatype: 'INT64', shape: [-1] }],
  4,
);
const LIMITS = { maxElements: 1000, maxJsonDepth: 40 };

const decode = (body: unknown, model = MODEL): DecodedRequest =>
  decodeInferRequest(Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), undefined, model, LIMITS);

/** A binary-extension body: JSON header, then the raw tensors; returns the body and its header length. */
function binaryBody(header: unknown, ...tensors: Uint8Array[]): [Buffer, string] {
  const json = Buffer.from(JSON.stringify(header));
  return [Buffer.concat([json, ...tensors]), String(json.length)];
}

const X = { name: 'x', datatype: 'FP32', shape: [2, 2], data: [1, 2, 3, 4] };
const MASK = { name: 'mask', datatype: 'BOOL', shape: [2, 2], data: [true, false, false, true] };
const fp32Bytes = (values: number[]): Uint8Array => new Uint8Array(Float32Array.from(values).buffer);

const error = (code: string, message: RegExp) => ({ name: 'InfergateError', code, message });

describe('JSON requests', () => {
  test('decode into typed tensors in the model\'s input order', () => {
    const req = decode({ id: 'r1', inputs: [MASK, X] });
    assert.equal(req.id, 'r1');
    assert.deepEqual(req.inputs, [
      { name: 'x', datatype: 'FP32', shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) },
      { name: 'mask', datatype: 'BOOL', shape: [2, 2], data: Uint8Array.from([1, 0, 0, 1]) },
    ]);
  });

  test('nested and flat data give identical tensors', () => {
    const flat = decode({ inputs: [X, MASK] });
    const nested = decode({ inputs: [{ ...X, data: [[1, 2], [3, 4]] }, { ...MASK, data: [[true, false], [false, true]] }] });
    assert.deepEqual(nested.inputs, flat.inputs);
  });

  test('id is optional', () => {
    assert.equal(decode({ inputs: [X, MASK] }).id, undefined);
  });

  test('INT64 data beyond 2^53 arrives exact', () => {
    const model = fakeModel([{ name: 'ids', datatype: 'INT64', shape: [-1] }], [{ name: 'y', datatype: 'INT64', shape: [-1] }], 4);
    const req = decode('{"inputs":[{"name":"ids","datatype":"INT64","shape":[3],"data":[9223372036854775807,-9007199254740993,1]}]}', model);
    assert.deepEqual(Array.from(req.inputs[0]!.data as BigInt64Array), [9223372036854775807n, -9007199254740993n, 1n]);
  });

  test('a long integer literal in a float tensor is read as JSON.parse would read it',
    () => {
      const model = fakeModel([{ name: 'v', datatype: 'FP64', shape: [-1] }], [{ name: 'y', datatype: 'FP64', shape: [-1] }], 4);
      const req = decode('{"inputs":[{"name":"v","datatype":"FP64","shape":[2],"data":[9007199254740993, 0.5]}]}', model);
      assert.deepEqual(Array.from(req.inputs[0]!.data as Float64Array), [9007199254740992, 0.5]);
    });

  test('a data length that does not match the shape is refused, naming the input', () => {
    assert.throws(() => decode({ inputs: [{ ...X, data: [1, 2, 3] }, MASK] }), error('WK_ERR_BAD_TENSOR', /'x'.*needs 4 elements, got 3/));
  });

  test('an input with neither data nor binary_data_size is refused', () => {
    assert.throws(() => decode({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 2] }, MASK] }), error('WK_ERR_BAD_TENSOR', /'x' has neither "data" nor binary_data_size/));
  });

  test('validation errors from the declaration surface with their own codes', () => {
    assert.throws(() => decode({ inputs: [X] }), error('WK_ERR_BAD_TENSOR', /missing input 'mask'/));
    assert.throws(() => decode({ inputs: [X, MASK, X] }), error('WK_ERR_BAD_TENSOR', /'x' is given more than once/));
    assert.throws(() => decode({ inputs: [{ ...X, shape: [5, 2], data: new Array(10).fill(0) }, MASK] }), error('WK_ERR_BATCH_TOO_LARGE', /'x'/));
  });
});

describe('request envelope', () => {
  test('malformed JSON is ERR_BAD_JSON (400)', () => {
    assert.throws(() => decode('{"inputs": ['), { ...error('ERR_BAD_JSON', /not valid JSON/), status: 400 });
    assert.throws(() => decode('{"inputs": [12345678901234567890,]}'), error('ERR_BAD_JSON', /not valid JSON/), 'the precise parser path too');
  });

  test('id must be a string', () => {
    assert.throws(() => decode({ id: 5, inputs: [X, MASK] }), error('ERR_BAD_REQUEST', /"id" must be a string/));
  });

  test('the body must be an object with an inputs array', () => {
    assert.throws(() => decode('[1]'), error('ERR_BAD_REQUEST', /JSON object/));
    assert.throws(() => decode('null'), error('ERR_BAD_REQUEST', /JSON object/));
    assert.throws(() => decode({}), error('ERR_BAD_REQUEST', /"inputs" must be an array/));
    assert.throws(() => decode({ inputs: [X, MASK], outputs: {} }), error('ERR_BAD_REQUEST', /"outputs" must be an array/));
    assert.throws(() => decode({ inputs: [X, MASK], parameters: 3 }), error('ERR_BAD_REQUEST', /"parameters" must be an object/));
    assert.throws(() => decode({ inputs: [null] }), error('ERR_BAD_REQUEST', /every input must be an object/));
  });
});

describe('binary tensor extension', () => {
  const X_BIN = { name: 'x', datatype: 'FP32', shape: [2, 2], parameters: { binary_data_size: 16 } };
  const MASK_BIN = { name: 'mask', datatype: 'BOOL', shape: [2, 2], parameters: { binary_data_size: 4 } };

  test('binary tensors decode to the same tensors as their JSON form', () => {
    const [body, length] = binaryBody({ id: 'b', inputs: [X_BIN, MASK_BIN] }, fp32Bytes([1, 2, 3, 4]), Uint8Array.from([1, 0, 0, 1]));
    const req = decodeInferRequest(body, length, MODEL, LIMITS);
    assert.equal(req.id, 'b');
    assert.deepEqual(req.inputs, decode({ inputs: [X, MASK] }).inputs);
  });

  test('binary and JSON inputs can be mixed', () => {
    const [body, length] = binaryBody({ inputs: [MASK, X_BIN] }, fp32Bytes([1, 2, 3, 4]));
    assert.deepEqual(decodeInferRequest(body, length, MODEL, LIMITS).inputs, decode({ inputs: [X, MASK] }).inputs);
  });

  test('binary data follows the header in the order of the inputs', () => {
    const [body, length] = binaryBody({ inputs: [MASK_BIN, X_BIN] }, Uint8Array.from([1, 0, 0, 1]), fp32Bytes([1, 2, 3, 4]));
    assert.deepEqual(decodeInferRequest(body, length, MODEL, LIMITS).inputs, decode({ inputs: [X, MASK] }).inputs);
  });

  test('with a storage pool, binary inputs are decoded into its buffers and listed for release', () => {
    const pool = new StoragePool();
    const reused = pool.acquire(16);
    pool.release(reused);
    const [body, length] = binaryBody({ inputs: [X_BIN, MASK_BIN] }, fp32Bytes([1, 2, 3, 4]), Uint8Array.from([1, 0, 0, 1]));
    const req = decodeInferRequest(body, length, MODEL, { ...LIMITS, storage: pool });
    assert.deepEqual(req.inputs, decode({ inputs: [X, MASK] }).inputs);
    assert.equal((req.inputs[0]!.data as Float32Array).buffer, reused, 'the released buffer of the right size is taken');
    assert.deepEqual(req.storage, [reused, (req.inputs[1]!.data as Uint8Array).buffer]);
    assert.deepEqual(decode({ inputs: [X, MASK] }).storage, [], 'JSON inputs take nothing from the pool');
  });

  test('a header sent again is replayed from its plan: same tensors, same outputs, checks on the body still made', () => {
    const plans = new HeaderPlans();
    const limits = { ...LIMITS, headerPlans: plans };
    const header = { id: 'r', inputs: [MASK_BIN, X_BIN], outputs: [{ name: 'label', parameters: { binary_data: true } }] };
    const [first, length] = binaryBody(header, Uint8Array.from([1, 0, 0, 1]), fp32Bytes([1, 2, 3, 4]));
    const full = decodeInferRequest(first, length, MODEL, limits);
    const [second] = binaryBody(header, Uint8Array.from([0, 1, 1, 7]), fp32Bytes([5, 6, 7, 8]));
    const replayed = decodeInferRequest(second, length, MODEL, limits);
    assert.equal(replayed.id, 'r');
    assert.deepEqual(replayed.outputs, full.outputs);
    assert.deepEqual(replayed.inputs, decode({ id: 'r', inputs: [{ ...X, data: [5, 6, 7, 8] }, { ...MASK, data: [false, true, true, true] }] }).inputs);
    assert.notEqual(replayed.inputs[0]!.data, full.inputs[0]!.data, 'data is decoded afresh');

    const [short] = binaryBody(header, Uint8Array.from([1, 0, 0, 1]), fp32Bytes([1, 2, 3]));
    assert.throws(() => decodeInferRequest(short, length, MODEL, limits), error('WK_ERR_BAD_TENSOR', /'x'.*binary_data_size 16 runs past the end/));
    const [long] = binaryBody(header, Uint8Array.from([1, 0, 0, 1]), fp32Bytes([1, 2, 3, 4]), Uint8Array.from([9]));
    assert.throws(() => decodeInferRequest(long, length, MODEL, limits), error('ERR_BAD_REQUEST', /1 bytes of binary data .*belong to none/));
  });

  test('a header plan is only replayed for the same model and the same header bytes', () => {
    const plans = new HeaderPlans();
    const limits = { ...LIMITS, headerPlans: plans };
    const [body, length] = binaryBody({ inputs: [X_BIN, MASK_BIN] }, fp32Bytes([1, 2, 3, 4]), Uint8Array.from([1, 0, 0, 1]));
    decodeInferRequest(body, length, MODEL, limits);
    const other = fakeModel([{ name: 'x', datatype: 'FP32', shape: [-1, 2] }, { name: 'mask', datatype: 'BOOL', shape: [-1, 3] }], MODEL.outputs, 4);
    assert.throws(() => decodeInferRequest(body, length, other, limits), error('WK_ERR_BAD_TENSOR', /'mask'/));
    const [changed, changedLength] = binaryBody({ inputs: [X_BIN, { ...MASK_BIN, shape: [2, 3] }] }, fp32Bytes([1, 2, 3, 4]), Uint8Array.from([1, 0, 0, 1]));
    assert.throws(() => decodeInferRequest(changed, changedLength, MODEL, limits), error('WK_ERR_BAD_TENSOR', /'mask'/));
  });

  test('bytes left over after the last tensor are refused', () => {
    const [body, length] = binaryBody({ inputs: [X_BIN, MASK_BIN] }, fp32Bytes([1, 2, 3, 4]), Uint8Array.from([1, 0, 0, 1, 9, 9]));
    assert.throws(() => decodeInferRequest(body, length, MODEL, LIMITS), error('ERR_BAD_REQUEST', /2 bytes of binary data .*belong to none/));
  });

  test('a binary_data_size that runs past the end of the body is refused', () => {
    const [body, length] = binaryBody({ inputs: [X_BIN, MASK_BIN] }, fp32Bytes([1, 2, 3, 4]), Uint8Array.from([1, 0]));
    assert.throws(() => decodeInferRequest(body, length, MODEL, LIMITS), error('WK_ERR_BAD_TENSOR', /'mask'.*binary_data_size 4 runs past the end/));
  });

  test('a binary_data_size that disagrees with the shape is refused', () => {
    const [body, length] = binaryBody({ inputs: [{ ...X_BIN, parameters: { binary_data_size: 12 } }, MASK] }, fp32Bytes([1, 2, 3]));
    assert.throws(() => decodeInferRequest(body, length, MODEL, LIMITS), error('WK_ERR_BAD_TENSOR', /'x'.*12 bytes.*need 16/));
  });

  test('a binary_data_size that is not a non-negative integer is refused', () => {
    const [body, length] = binaryBody({ inputs: [{ ...X_BIN, parameters: { binary_data_size: '16' } }, MASK] }, fp32Bytes([1, 2, 3, 4]));
    assert.throws(() => decodeInferRequest(body, length, MODEL, LIMITS), error('WK_ERR_BAD_TENSOR', /'x'.*binary_data_size/));
  });

  test('binary_data_size without Inference-Header-Content-Length is refused', () => {
    assert.throws(() => decode({ inputs: [X_BIN, MASK] }), error('ERR_BAD_REQUEST', /'x'.*no Inference-Header-Content-Length/));
  });

  test('a header length that does not fit the body is refused', () => {
    const [body] = binaryBody({ inputs: [X, MASK] });
    for (const length of [String(body.length + 1), '-1', 'abc', '1.5']) {
      assert.throws(() => decodeInferRequest(body, length, MODEL, LIMITS), error('ERR_BAD_REQUEST', /Inference-Header-Content-Length/), length);
    }
  });

  test('a header length equal to the body with only JSON inputs is fine', () => {
    const [body, length] = binaryBody({ inputs: [X, MASK] });
    assert.deepEqual(decodeInferRequest(body, length, MODEL, LIMITS).inputs, decode({ inputs: [X, MASK] }).inputs);
  });
});

describe('requested outputs', () => {
  test('by default every model output, as JSON, without classification', () => {
    assert.deepEqual(decode({ inputs: [X, MASK] }).outputs, [
      { name: 'probs', binary: false, classification: 0 },
      { name: 'label', binary: false, classification: 0 },
    ]);
    assert.deepEqual(decode({ inputs: [X, MASK], outputs: [] }).outputs.map((o) => o.name), ['probs', 'label']);
  });

  test('binary_data_output makes binary the default for every output', () => {
    const req = decode({ inputs: [X, MASK], parameters: { binary_data_output: true } });
    assert.deepEqual(req.outputs.map((o) => o.binary), [true, true]);
  });

  test('a selection returns only the named outputs, in the order asked', () => {
    const req = decode({ inputs: [X, MASK], outputs: [{ name: 'label' }, { name: 'probs' }] });
    assert.deepEqual(req.outputs, [
      { name: 'label', binary: false, classification: 0 },
      { name: 'probs', binary: false, classification: 0 },
    ]);
  });

  test('a per-output binary_data overrides binary_data_output either way', () => {
    const req = decode({
      inputs: [X, MASK],
      parameters: { binary_data_output: true },
      outputs: [{ name: 'probs', parameters: { binary_data: false } }, { name: 'label' }],
    });
    assert.deepEqual(req.outputs.map((o) => o.binary), [false, true]);
    const other = decode({ inputs: [X, MASK], outputs: [{ name: 'probs', parameters: { binary_data: true } }] });
    assert.deepEqual(other.outputs.map((o) => o.binary), [true]);
  });

  test('the classification parameter asks for top-k', () => {
    const req = decode({ inputs: [X, MASK], outputs: [{ name: 'probs', parameters: { classification: 2 } }] });
    assert.deepEqual(req.outputs, [{ name: 'probs', binary: false, classification: 2 }]);
  });

  test('bad output requests are refused, naming the output', () => {
    assert.throws(() => decode({ inputs: [X, MASK], outputs: [{ name: 'nope' }] }), error('ERR_BAD_REQUEST', /unknown output 'nope'.*'probs', 'label'/));
    assert.throws(() => decode({ inputs: [X, MASK], outputs: [{ name: 'label' }, { name: 'label' }] }), error('ERR_BAD_REQUEST', /'label' is requested more than once/));
    assert.throws(() => decode({ inputs: [X, MASK], outputs: [{ name: 'probs', parameters: { classification: -1 } }] }), error('ERR_BAD_REQUEST', /'probs'.*classification/));
    assert.throws(() => decode({ inputs: [X, MASK], outputs: [{ name: 'probs', parameters: { classification: 1.5 } }] }), error('ERR_BAD_REQUEST', /'probs'.*classification/));
    assert.throws(() => decode({ inputs: [X, MASK], outputs: [{}] }), error('ERR_BAD_REQUEST', /string "name"/));
  });
});
