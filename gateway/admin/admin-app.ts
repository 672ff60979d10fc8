/**
 * The admin API, on its own port (default 127.0.0.1:8081), every route behind the admin token:
 * workers (list with all their state, add, remove, drain, undrain), the balancing strategy
 * (get, set at run time), and the effective configuration with secrets masked.
 */
import express from 'express';
import { z } from 'zod';
import { InfergateError } from '../../shared/errors.ts';
import { STRATEGY_NAMES } from '../balancing/registry.ts';
import type { GatewayConfig } from '../config/schema.ts';
import type { Pool } from '../upstreams/pool.ts';
import type { Upstream } from '../upstreams/upstream.ts';
import { requireAdminToken } from './admin-auth.ts';

export interface AdminDeps {
  pool: Pool;
  /** The configuration in force (it changes on reload). */
  config: () => GatewayConfig;
  adminToken: string | undefined;
  strategy(): string;
  setStrategy(name: string, source: string): void;
}

const AddWorker = z.strictObject({ url: z.url({ protocol: /^https?$/ }), weight: z.number().positive().max(1000).default(1) });
const SetStrategy = z.strictObject({ strategy: z.enum(STRATEGY_NAMES) });

export function workerView(u: Upstream): object {
  return {
    id: u.id,
    url: u.url.origin,
    source: u.source,
    ready: u.ready,
    draining: u.draining,
    breaker: u.breaker.state,
    inFlight: u.inFlight,
    queueDepth: u.queueDepth,
    latencyMs: Math.round(u.latencyMs * 100) / 100,
    weight: u.weight,
    lastCheckError: u.lastCheckError || undefined,
    models: Object.fromEntries([...u.models].map(([name, versions]) => [name, [...versions.keys()]])),
  };
}

export function adminRouter(deps: AdminDeps): express.Router {
  const { pool } = deps;
  const router = express.Router();
  router.use(requireAdminToken(deps.adminToken));
  router.use(express.json({ limit: '64kb' }));

  router.get('/admin/workers', (_req, res) => void res.json({ strategy: deps.strategy(), workers: pool.list().map(workerView) }));
  router.post('/admin/workers', (req, res) => {
    const body = parse(AddWorker, req.body);
    if (pool.get(body.url) !== undefined) throw new InfergateError('GW_ERR_CONFLICT', `worker ${new URL(body.url).origin} is already in the pool`);
    res.status(201).json(workerView(pool.add(body.url, { weight: body.weight, source: 'admin' })));
  });
  router.delete('/admin/workers/:id', (req, res) => {
    if (!pool.remove(String(req.params.id))) throw new InfergateError('ERR_NOT_FOUND', `no worker '${req.params.id}'`);
    res.status(204).end();
  });
  for (const [action, draining] of [['drain', true], ['undrain', false]] as const) {
    router.post(`/admin/workers/:id/${action}`, (req, res) => {
      const upstream = pool.get(String(req.params.id));
      if (upstream === undefined) throw new InfergateError('ERR_NOT_FOUND', `no worker '${req.params.id}'`);
      upstream.draining = draining;
      res.json(workerView(upstream));
    });
  }
  router.get('/admin/strategy', (_req, res) => void res.json({ strategy: deps.strategy(), available: STRATEGY_NAMES }));
  router.put('/admin/strategy', (req, res) => {
    const { strategy } = parse(SetStrategy, req.body);
    deps.setStrategy(strategy, 'admin API');
    res.json({ strategy: deps.strategy() });
  });
  router.get('/admin/config', (_req, res) => void res.json(maskSecrets(deps.config())));
  return router;
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body ?? {});
  if (!result.success) {
    throw new InfergateError('ERR_BAD_REQUEST', result.error.issues.map((i) => (i.code === 'unrecognized_keys' ? `unknown key ${i.keys.join(', ')}` : `${i.path.join('.') || 'body'}: ${i.message}`)).join('; '));
  }
  return result.data;
}

/** The config with every secret replaced, so it can be shown to operators. */
export function maskSecrets(config: GatewayConfig): unknown {
  return JSON.parse(JSON.stringify(config, (key, value: unknown) => (/token|secret|password|key$/i.test(key) && typeof value === 'string' ? '***' : value)));
}
