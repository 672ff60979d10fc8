/**
 * The protocol-independent core of an inference call: submit validated tensors to the model's
 * scheduler within the request's deadline, then apply output selection and classification.
 * Both the V2 and the TF-Serving routes end here.
 */
import type { Tensor } from '../../shared/protocol/datatypes.ts';
import type { CancelSignal } from '../scheduler/scheduler.ts';
import type { ServedVersion } from '../repository/model-repository.ts';
import { classify } from './classification.ts';
import type { RequestedOutput } from './v2-request.ts';

export interface InferenceCall {
  model: ServedVersion;
  inputs: Tensor[];
  outputs: RequestedOutput[];
  /** Caller's remaining budget (gateway header), if any; the model's queue timeout applies as well. */
  timeoutMs: number | undefined;
  signal: CancelSignal;
  now: () => number;
}

export async function runInference(call: InferenceCall): Promise<Tensor[]> {
  const { model, outputs } = call;
  const results = await model.scheduler.submit({
    inputs: call.inputs,
    outputNames: outputs.map((o) => o.name),
    deadline: call.timeoutMs === undefined ? Infinity : call.now() + call.timeoutMs,
    queueTimeoutMs: model.config.queueTimeoutMs,
    signal: call.signal,
  });
  return results.map((tensor, i) => {
    const k = outputs[i]!.classification;
    return k > 0 ? classify(tensor, k, model.config.maxBatchSize > 0, model.config.labels[tensor.name]) : tensor;
  });
}
