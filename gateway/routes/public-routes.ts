/**
 * What the gateway answers itself on the public port, from its pool view: health, server and model
 * metadata, model readiness, and the repository extension fanned out to every worker. Inference
 * paths never come here (gateway/pipeline), so express's routing cost stays off the hot path.
 *
 * Model metadata, readiness and the repository index take the same credential as inference (the
 * index lists only the models the caller may use); load and unload take the admin token
 * (routes/caller-auth.ts). Health, `GET /v2` and `/metrics` are open, as probes and scrapers expect.
 */
import express, { type Request, type Response } from 'express';
import { InfergateError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { mayUseModel } from '../auth/principal.ts';
import { requestJson } from '../upstreams/http-client.ts';
import type { Pool } from '../upstreams/pool.ts';
import type { Upstream } from '../upstreams/upstream.ts';
import type { CallerAuth } from './caller-auth.ts';

export interface PublicRouteDeps {
  pool: Pool;
  logger: Logger;
  version: string;
  metricsText: () => Promise<{ contentType: string; body: string }>;
  upstreamTimeoutMs: number;
  caller: CallerAuth;
}

export function publicRoutes(deps: PublicRouteDeps): express.Router {
  const { pool, caller } = deps;
  const router = express.Router();
  router.get('/v2/health/live', (_req, res) => void res.json({ live: true }));
  router.get('/v2/health/ready', (_req, res) => {
    const ready = pool.list().some((u) => u.ready && !u.draining);
    if (!ready) res.setHeader('retry-after', '1');
    res.status(ready ? 200 : 503).json({ ready });
  });
  router.get('/v2', (_req, res) => void res.json({ name: 'infergate', version: deps.version, extensions: ['binary_tensor_data', 'classification', 'model_repository', 'schedule_policy'] }));

  const metadata = async (req: Request, res: Response): Promise<void> => {
    const { model, version } = modelParams(req);
    await caller.authorizeModel(req, res, model);
    requireKnown(pool, model, version);
    const { metadata: meta, versions } = pool.metadata(model, version);
    if (meta === undefined) throw new InfergateError('GW_ERR_NO_WORKER', `no ready worker has reported metadata for '${model}' yet`, { 'Retry-After': '1' });
    res.json({ ...meta, versions });
  };
  const ready = async (req: Request, res: Response): Promise<void> => {
    const { model, version } = modelParams(req);
    await caller.authorizeModel(req, res, model);
    requireKnown(pool, model, version);
    if (pool.candidates(model, version, new Set()).length === 0 && !pool.hasCapacityLater(model, version, new Set())) {
      throw new InfergateError('GW_ERR_NO_WORKER', `no ready worker serves '${model}'`, { 'Retry-After': '1' });
    }
    res.json({ name: model, ready: true });
  };
  router.get('/v2/models/:model', metadata);
  router.get('/v2/models/:model/versions/:version', metadata);
  router.get('/v2/models/:model/ready', ready);
  router.get('/v2/models/:model/versions/:version/ready', ready);

  router.post('/v2/repository/index', async (req, res) => {
    const principal = await caller.principal(req, res);
    const results = await fanOut(pool.list(), (u) => requestJson(u.url, u.controlAgent, 'POST', '/v2/repository/index', {}, deps.upstreamTimeoutMs));
    const merged = new Map<string, { name: string; version: string; state: string; reason: string; workers: Record<string, string> }>();
    for (const { upstream, reply } of results) {
      if (reply?.status !== 200 || !Array.isArray(reply.body)) continue;
      for (const e of reply.body as Array<{ name: string; version: string; state: string; reason: string }>) {
        if (!mayUseModel(principal, e.name)) continue;
        const key = `${e.name}\u0000${e.version}`;
        const entry = merged.get(key) ?? { name: e.name, version: e.version, state: e.state, reason: e.reason, workers: {} };
        entry.workers[upstream.id] = e.state;
        if (e.state === 'READY') entry.state = 'READY'; // ready somewhere is ready for the gateway's clients
        merged.set(key, entry);
      }
    }
    res.json([...merged.values()].sort((a, b) => a.name.localeCompare(b.name) || Number(a.version) - Number(b.version)));
  });
  const repositoryAction = (action: 'load' | 'unload') => async (req: Request, res: Response): Promise<void> => {
    await caller.requireAdmin(req, res);
    const model = String(req.params.model);
    const path = `/v2/repository/models/${encodeURIComponent(model)}/${action}`;
    const results = await fanOut(pool.list(), (u) => requestJson(u.url, u.controlAgent, 'POST', path, {}, Math.max(deps.upstreamTimeoutMs, 30_000)));
    await pool.refreshAll();
    const workers = results.map(({ upstream, reply, error }) => ({
      worker: upstream.id,
      url: upstream.url.origin,
      status: reply?.status ?? 0,
      ok: reply?.status === 200,
      ...(reply !== undefined && reply.status !== 200 ? { error: (reply.body as { error?: string } | undefined)?.error ?? `status ${reply.status}` } : {}),
      ...(error !== undefined ? { error } : {}),
    }));
    res.json({ name: model, action, ok: workers.length > 0 && workers.every((w) => w.ok), workers });
  };
  router.post('/v2/repository/models/:model/load', repositoryAction('load'));
  router.post('/v2/repository/models/:model/unload', repositoryAction('unload'));

  router.get('/metrics', async (_req, res) => {
    const { contentType, body } = await deps.metricsText();
    res.type(contentType).send(body);
  });
  return router;
}

function modelParams(req: Request): { model: string; version: string | undefined } {
  return { model: String(req.params.model), version: req.params.version === undefined ? undefined : String(req.params.version) };
}

function requireKnown(pool: Pool, model: string, version: string | undefined): void {
  const knowledge = pool.knowledgeOf(model, version);
  if (knowledge === 'unknown-model') throw new InfergateError('GW_ERR_MODEL_NOT_FOUND', `model '${model}' is not served by any worker`);
  if (knowledge === 'unknown-version') throw new InfergateError('GW_ERR_VERSION_NOT_FOUND', `model '${model}' has no version '${version}' on any worker`);
}

interface FanOutResult<T> {
  upstream: Upstream;
  reply: T | undefined;
  error: string | undefined;
}

async function fanOut<T>(upstreams: Upstream[], call: (u: Upstream) => Promise<T>): Promise<Array<FanOutResult<T>>> {
  return Promise.all(upstreams.map(async (upstream) => {
    try {
      return { upstream, reply: await call(upstream), error: undefined };
    } catch (err) {
      return { upstream, reply: undefined, error: (err as Error).message };
    }
  }));
}
