/**
 * Recognises the paths that go to a worker through the inference pipeline, without a framework
 * router: this runs on every request, so it is one regex per protocol.
 */
import type { InferenceRoute } from './context.ts';

const V2_INFER = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/infer$/;
const TF_MODEL = /^\/v1\/models\/([^/:]+)(?:\/versions\/(\d+))?(?::predict|\/metadata)?$/;

export function matchInferenceRoute(method: string | undefined, url: string | undefined): InferenceRoute | undefined {
  if (url === undefined) return undefined;
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  let m: RegExpExecArray | null;
  if (method === 'POST' && (m = V2_INFER.exec(path)) !== null) return route('v2', m);
  if ((method === 'POST' || method === 'GET') && (m = TF_MODEL.exec(path)) !== null) return route('tf', m);
  return undefined;
}

function route(protocol: 'v2' | 'tf', m: RegExpExecArray): InferenceRoute | undefined {
  try {
    return { protocol, model: decodeURIComponent(m[1]!), version: m[2] === undefined ? undefined : decodeURIComponent(m[2]) };
  } catch {
    return undefined; // bad percent-encoding: let the router answer 400/404
  }
}
