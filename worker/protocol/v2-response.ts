/**
 * Encodes a V2 inference response: JSON with flat `data`, or (binary extension) a JSON header
 * followed by raw tensor bytes, in the order of the outputs in the header.
 */
import type { Tensor } from '../../shared/protocol/datatypes.ts';
import { encodeBinaryTensor } from './codec/binary-tensor.ts';
import { encodeJsonData } from './codec/json-tensor.ts';
import type { RequestedOutput } from './v2-request.ts';

export interface EncodedResponse {
  body: Buffer;
  contentType: string;
  /** Set when binary outputs follow the JSON header. */
  headerLength?: number;
}

export function encodeInferResponse(
  model: { name: string; version: string },
  id: string | undefined,
  outputs: readonly Tensor[],
  requested: readonly RequestedOutput[],
): EncodedResponse {
  const parts: string[] = [];
  const binaries: Uint8Array[] = [];
  outputs.forEach((tensor, i) => {
    const head = `{"name":${JSON.stringify(tensor.name)},"datatype":"${tensor.datatype}","shape":[${tensor.shape.join(',')}]`;
    if (requested[i]?.binary) {
      const bytes = encodeBinaryTensor(tensor.datatype, tensor.data);
      binaries.push(bytes);
      parts.push(`${head},"parameters":{"binary_data_size":${bytes.byteLength}}}`);
    } else {
      parts.push(`${head},"data":${encodeJsonData(tensor.datatype, tensor.data)}}`);
    }
  });
  const idPart = id === undefined ? '' : `,"id":${JSON.stringify(id)}`;
  const json = `{"model_name":${JSON.stringify(model.name)},"model_version":${JSON.stringify(model.version)}${idPart},"outputs":[${parts.join(',')}]}`;
  if (binaries.length === 0) return { body: Buffer.from(json), contentType: 'application/json' };
  const header = Buffer.from(json);
  return {
    body: Buffer.concat([header, ...binaries]),
    contentType: 'application/octet-stream',
    headerLength: header.length,
  };
}
