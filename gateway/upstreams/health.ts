/**
 * Active checks of one worker: readiness (GET /v2/health/ready) with hysteresis — admitted after
 * `healthyThreshold` passes, removed after `unhealthyThreshold` failures — and its model index
 * (POST /v2/repository/index, then metadata of each newly seen model version).
 */
import type { Logger } from '../../shared/logger.ts';
import type { GatewayConfig } from '../config/schema.ts';
import { HEADER_QUEUE_DEPTH } from '../../shared/protocol/headers.ts';
import { requestJson } from './http-client.ts';
import type { ModelMetadata, Upstream } from './upstream.ts';

export type ReadinessChange = 'admitted' | 'removed' | undefined;

export async function checkReadiness(upstream: Upstream, options: GatewayConfig['health'], logger: Logger): Promise<ReadinessChange> {
  let ok = false;
  try {
    const reply = await requestJson(upstream.url, upstream.controlAgent, 'GET', '/v2/health/ready', undefined, options.timeoutMs);
    ok = reply.status === 200;
    upstream.lastCheckError = ok ? '' : `readiness answered ${reply.status}`;
    // Keep the load figure fresh for an idle worker too: balancers would otherwise avoid a worker
    // forever on the strength of the last depth it reported while busy.
    const depth = Number(reply.headers[HEADER_QUEUE_DEPTH]);
    if (Number.isFinite(depth)) upstream.queueDepth = depth;
  } catch (err) {
    upstream.lastCheckError = (err as Error).message;
  }
  if (ok) {
    upstream.consecutiveSuccesses++;
    upstream.consecutiveFailures = 0;
    if (!upstream.ready && upstream.consecutiveSuccesses >= options.healthyThreshold) {
      await refreshIndex(upstream, options.timeoutMs, logger);
      upstream.ready = true;
      logger.info({ worker: upstream.id, url: upstream.url.origin, models: [...upstream.models.keys()] }, 'worker admitted');
      return 'admitted';
    }
  } else {
    upstream.consecutiveFailures++;
    upstream.consecutiveSuccesses = 0;
    if (upstream.ready && upstream.consecutiveFailures >= options.unhealthyThreshold) {
      upstream.ready = false;
      logger.warn({ worker: upstream.id, url: upstream.url.origin, reason: upstream.lastCheckError }, 'worker removed from candidates');
      return 'removed';
    }
  }
  return undefined;
}

interface IndexEntry {
  name: string;
  version: string;
  state: string;
}

/**
 * Replaces the upstream's model map with what it reports ready; keeps metadata already fetched.
 *
 * `periodic`: the routine refresh of an admitted worker. An index in which nothing is ready then
 * keeps the last map: a worker that is not ready for a moment reports every model unavailable,
 * and emptying the map would answer 404 "unknown model" for models it serves until the next
 * refresh. Whether it is really gone is for the readiness checks, with their hysteresis, to say.
 */
export async function refreshIndex(upstream: Upstream, timeoutMs: number, logger: Logger, periodic = false): Promise<void> {
  let entries: IndexEntry[];
  try {
    const reply = await requestJson(upstream.url, upstream.controlAgent, 'POST', '/v2/repository/index', { ready: true }, timeoutMs);
    if (reply.status !== 200 || !Array.isArray(reply.body)) throw new Error(`index answered ${reply.status}`);
    entries = (reply.body as IndexEntry[]).filter((e) => e.state === 'READY' && typeof e.name === 'string');
  } catch (err) {
    logger.debug({ worker: upstream.id, err: (err as Error).message }, 'index refresh failed; keeping the last one');
    return;
  }
  if (periodic && entries.length === 0 && upstream.ready && upstream.models.size > 0) {
    logger.debug({ worker: upstream.id }, 'index lists nothing ready; keeping the last one until readiness decides');
    return;
  }
  const next = new Map<string, Map<string, ModelMetadata | undefined>>();
  const fetches: Array<Promise<void>> = [];
  for (const { name, version } of entries) {
    const versions = next.get(name) ?? new Map<string, ModelMetadata | undefined>();
    next.set(name, versions);
    const known = upstream.models.get(name)?.get(String(version));
    versions.set(String(version), known);
    if (known === undefined) {
      fetches.push(requestJson(upstream.url, upstream.controlAgent, 'GET', `/v2/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}`, undefined, timeoutMs)
        .then((reply) => {
          if (reply.status === 200 && reply.body !== null && typeof reply.body === 'object') versions.set(String(version), reply.body as ModelMetadata);
        }, () => undefined));
    }
  }
  await Promise.all(fetches);
  upstream.models = next;
}
