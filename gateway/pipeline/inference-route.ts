/**
 * Recognises the paths that go to a worker through the inference pipeline, without a framework
 * router: this runs on every request, so it is one regex per route and method.
 *
 * Only the methods each route has at the worker are taken (V2 infer and TF predict: POST; TF model
 * status and metadata: GET and HEAD, as every GET resource must take HEAD, RFC 9110 §9.1). Any other method on those paths never reaches a worker: the gateway
 * answers 405 itself, with `Allow` from `allowedInferenceMethods`.
 */
import { canonicalVersion } from '../../shared/protocol/version.ts';
import type { InferenceRoute } from './context.ts';

const V2_INFER = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/infer$/;
const TF_PREDICT = /^\/v1\/models\/([^/:]+)(?:\/versions\/(\d+))?:predict$/;
const TF_MODEL = /^\/v1\/models\/([^/:]+)(?:\/versions\/(\d+))?(?:\/metadata)?$/;

/** Each pipeline route with its one method, in the order they are tried. */
const ROUTES: ReadonlyArray<{ method: string; pattern: RegExp; protocol: InferenceRoute['protocol'] }> = [
  { method: 'POST', pattern: V2_INFER, protocol: 'v2' },
  { method: 'POST', pattern: TF_PREDICT, protocol: 'tf' },
  { method: 'GET', pattern: TF_MODEL, protocol: 'tf' },
  { method: 'HEAD', pattern: TF_MODEL, protocol: 'tf' },
];

export function matchInferenceRoute(method: string | undefined, url: string | undefined): InferenceRoute | undefined {
  if (url === undefined) return undefined;
  const path = pathOf(url);
  for (const candidate of ROUTES) {
    if (candidate.method !== method) continue;
    const m = candidate.pattern.exec(path);
    if (m !== null) return route(candidate.protocol, m);
  }
  return undefined;
}

/**
 * The methods a pipeline path takes, for a 405's `Allow` header; undefined when `url` is not a
 * pipeline path (the public routes then decide, or answer 404).
 *
 * @example
 *   allowedInferenceMethods('/v1/models/iris:predict') // ['POST']
 */
export function allowedInferenceMethods(url: string): readonly string[] | undefined {
  const path = pathOf(url);
  const methods = ROUTES.filter((candidate) => candidate.pattern.test(path)).map((candidate) => candidate.method);
  return methods.length > 0 ? methods : undefined;
}

/**
 * The origin form (`/path?query`) of a request target a client sent in absolute form
 * (`http://host/path?query`), which a server must accept (RFC 9112 §3.2.2); undefined when `url`
 * is already in origin form or is no URL at all.
 */
export function originFormOf(url: string): string | undefined {
  if (url.charCodeAt(0) === 47 /* '/' */ || !/^https?:\/\//i.test(url)) return undefined;
  try {
    const parsed = new URL(url);
    return parsed.pathname + parsed.search;
  } catch {
    return undefined;
  }
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function route(protocol: 'v2' | 'tf', m: RegExpExecArray): InferenceRoute | undefined {
  try {
    return { protocol, model: decodeURIComponent(m[1]!), version: m[2] === undefined ? undefined : canonicalVersion(decodeURIComponent(m[2])) };
  } catch {
    return undefined; // bad percent-encoding: let the router answer 400/404
  }
}
