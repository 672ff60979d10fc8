/**
 * KServe V2 inference request bodies for load tests: JSON tensors, or Triton's binary tensor
 * extension (JSON header + raw little-endian bytes, header length in Inference-Header-Content-Length).
 */

export interface FloatInput {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface PreparedRequest {
  headers: Record<string, string>;
  body: Buffer;
}

/** `{"inputs":[{"name","shape","datatype":"FP32","data":[...]}]}`, outputs as JSON. */
export function jsonRequest(inputs: readonly FloatInput[]): PreparedRequest {
  const body = JSON.stringify({
    inputs: inputs.map((i) => ({ name: i.name, shape: i.shape, datatype: 'FP32', data: Array.from(i.data) })),
  });
  return { headers: { 'content-type': 'application/json' }, body: Buffer.from(body) };
}

/** Binary inputs (`binary_data_size`) and binary outputs (`binary_data_output: true`). */
export function binaryRequest(inputs: readonly FloatInput[]): PreparedRequest {
  const header = Buffer.from(
    JSON.stringify({
      inputs: inputs.map((i) => ({ name: i.name, shape: i.shape, datatype: 'FP32', parameters: { binary_data_size: i.data.byteLength } })),
      parameters: { binary_data_output: true },
    }),
  );
  const tails = inputs.map((i) => Buffer.from(i.data.buffer, i.data.byteOffset, i.data.byteLength));
  return {
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    body: Buffer.concat([header, ...tails]),
  };
}

/** Deterministic pseudo-random floats in [0, 1) (xorshift32), so every run sends the same bytes. */
export function seededFloats(count: number, seed = 0x1234567): Float32Array {
  const out = new Float32Array(count);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x / 2 ** 32;
  }
  return out;
}

/** Sends one request and checks the answer is a 200 of the expected kind; throws with the body otherwise. Returns the response body size. */
export async function checkOnce(url: string, request: PreparedRequest, expectBinary: boolean): Promise<number> {
  const res = await fetch(url, { method: 'POST', headers: request.headers, body: new Uint8Array(request.body) });
  const bytes = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`POST ${url}: ${res.status} ${bytes.toString('utf8').slice(0, 500)}`);
  const headerLength = res.headers.get('inference-header-content-length');
  if (expectBinary !== (headerLength !== null)) {
    throw new Error(`POST ${url}: expected a ${expectBinary ? 'binary' : 'JSON'} answer, got content-type ${res.headers.get('content-type')}`);
  }
  const json = JSON.parse(bytes.subarray(0, headerLength === null ? bytes.length : Number(headerLength)).toString('utf8')) as { outputs?: unknown[] };
  if (!Array.isArray(json.outputs) || json.outputs.length === 0) throw new Error(`POST ${url}: answer has no outputs`);
  return bytes.length;
}
