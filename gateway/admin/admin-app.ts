/**
 * The admin API, on its own port (default 127.0.0.1:8081), every /admin/ route behind the admin token:
 * workers (list with all their state, add, remove, drain, undrain), the balancing strategy
 * (get, set at run time), API keys (list, create, revoke, rotate), the effective configuration
 * with secrets masked, and the pool dashboard's figures (once, or as a stream of server-sent events).
 */
import express from 'express';
import { z } from 'zod';
import { InfergateError } from '../../shared/errors.ts';
import { KeyStateError, type KeyRecord, type KeyStore } from '../auth/key-store.ts';
import { STRATEGY_NAMES } from '../balancing/registry.ts';
import type { GatewayConfig } from '../config/schema.ts';
import type { Pool } from '../upstreams/pool.ts';
import { requireAdminToken } from './admin-auth.ts';
import type { PoolSnapshot } from './pool-snapshot.ts';
import type { PoolStream } from './pool-stream.ts';
import { workerView } from './worker-view.ts';

export interface AdminDeps {
  pool: Pool;
  /** The configuration in force (it changes on reload). */
  config: () => GatewayConfig;
  adminToken: string | undefined;
  strategy(): string;
  setStrategy(name: string, source: string): void;
  /** Undefined when API keys are disabled: the key routes answer 404. */
  keyStore: KeyStore | undefined;
  poolSnapshot(): PoolSnapshot;
  poolStream: PoolStream;
}

const AddWorker = z.strictObject({ url: z.url({ protocol: /^https?$/ }), weight: z.number().positive().max(1000).default(1) });
const SetStrategy = z.strictObject({ strategy: z.enum(STRATEGY_NAMES) });
const CreateKey = z.strictObject({
  name: z.string().min(1).max(200),
  // ["*"] means every model, as it does for the CLI and in a JWT's models claim.
  models: z.union([z.literal('*'), z.array(z.string().min(1)).min(1)]).default('*').transform((m) => (Array.isArray(m) && m.includes('*') ? '*' as const : m)),
  ratePerSec: z.number().positive().optional(),
  burst: z.number().int().positive().optional(),
  plan: z.string().optional(),
  expiresAt: z.number().int().positive().optional(),
});
const RotateKey = z.strictObject({ graceMs: z.number().int().min(0).max(30 * 86_400_000).default(3_600_000) });

/** A key record as operators see it: never the digest, never the secret. */
function keyView(record: KeyRecord): object {
  const { digest: _digest, ...visible } = record;
  return visible;
}

export function adminRouter(deps: AdminDeps): express.Router {
  const { pool } = deps;
  const router = express.Router();
  router.use('/admin', requireAdminToken(deps.adminToken));
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
      pool.setDraining(upstream, draining);
      res.json(workerView(upstream));
    });
  }
  router.get('/admin/strategy', (_req, res) => void res.json({ strategy: deps.strategy(), available: STRATEGY_NAMES }));
  router.put('/admin/strategy', (req, res) => {
    const { strategy } = parse(SetStrategy, req.body);
    deps.setStrategy(strategy, 'admin API');
    res.json({ strategy: deps.strategy() });
  });
  router.get('/admin/pool', (_req, res) => void res.json(deps.poolSnapshot()));
  router.get('/admin/pool/stream', deps.poolStream.handle);
  router.get('/admin/config', (_req, res) => void res.json(maskSecrets(deps.config())));

  const store = (): KeyStore => {
    if (deps.keyStore === undefined) throw new InfergateError('ERR_NOT_FOUND', 'API keys are disabled in this gateway\'s configuration');
    return deps.keyStore;
  };
  router.get('/admin/keys', async (_req, res) => void res.json({ keys: (await store().list()).map(keyView) }));
  router.post('/admin/keys', async (req, res) => {
    const input = parse(CreateKey, req.body);
    const created = await createKey(store(), {
      name: input.name,
      models: input.models,
      ...(input.ratePerSec !== undefined && { ratePerSec: input.ratePerSec }),
      ...(input.burst !== undefined && { burst: input.burst }),
      ...(input.plan !== undefined && { plan: input.plan }),
      ...(input.expiresAt !== undefined && { expiresAt: input.expiresAt }),
    });
    res.status(201).json({ key: created.key, record: keyView(created.record), note: 'the key is shown once: store it now' });
  });
  router.delete('/admin/keys/:id', async (req, res) => {
    const record = await store().revoke(String(req.params.id));
    if (record === undefined) throw new InfergateError('ERR_NOT_FOUND', `no API key '${req.params.id}'`);
    res.json(keyView(record));
  });
  router.post('/admin/keys/:id/rotate', async (req, res) => {
    const { graceMs } = parse(RotateKey, req.body);
    let created;
    try {
      created = await store().rotate(String(req.params.id), graceMs);
    } catch (err) {
      if (err instanceof KeyStateError) throw new InfergateError('GW_ERR_CONFLICT', err.message);
      throw err;
    }
    if (created === undefined) throw new InfergateError('ERR_NOT_FOUND', `no API key '${req.params.id}'`);
    res.status(201).json({ key: created.key, record: keyView(created.record), note: 'the new key is shown once; the old one stays valid for the grace period' });
  });
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
/** The key store's own checks (checkCreateInput, a TypeError) are the client's mistake: 400. */
async function createKey(store: KeyStore, input: Parameters<KeyStore['create']>[0]): ReturnType<KeyStore['create']> {
  try {
    return await store.create(input);
  } catch (err) {
    if (err instanceof TypeError) throw new InfergateError('ERR_BAD_REQUEST', err.message);
    throw err;
  }
}

export function maskSecrets(config: GatewayConfig): unknown {
  return JSON.parse(JSON.stringify(config, (key, value: unknown) => {
    if (typeof value !== 'string') return value;
    if (/token|secret|password|key$/i.test(key)) return '***';
    // Credentials inside an address (redis://user:password@host): the key name says nothing of them.
    return value.replace(URL_PASSWORD, '$1***@');
  }));
}

/** The password of `scheme://user:password@host`, with what precedes it kept (`$1`). */
const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^:@/]*:)[^@/]*@/i;
