/**
 * A real Redis for integration tests: spawns `redis-server` on a free port with persistence off, waits
 * until it answers PING, and kills it when the test ends (`t.after`). It can be killed, restarted on
 * the same port (with empty data, hence an empty script cache), or frozen (SIGSTOP) to play a slow
 * or dead store.
 *
 * When `REDIS_URL` is set the fixture uses that server instead of spawning one; it then cannot kill,
 * restart or pause it, and `controllable` is false — tests that need those call `skipUnlessControllable`.
 * Tests should use their own unique key names either way, since an external server is shared.
 *
 * @example
 *   const redis = await startRedis(t);
 *   const client = redis.client();
 *   await client.set('k', 'v');
 *   await redis.restart(); // same port, no data, no scripts
 *
 *   test('survives a Redis crash', async (t) => {
 *     const redis = await startRedis(t);
 *     if (skipUnlessControllable(t, redis)) return;
 *     await redis.kill();
 *   });
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

const execFileAsync = promisify(execFile);

export interface RedisFixture {
  /** `redis://127.0.0.1:<port>` (or `REDIS_URL`). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** False when the server came from `REDIS_URL`: kill, restart, pause and resume then throw. */
  readonly controllable: boolean;
  /**
   * A new ioredis client to this server (default options unless given), with an error listener
   * attached so a killed server does not print "Unhandled error event"; disconnected on `stop`.
   */
  client(options?: RedisOptions): Redis;
  /** Stops the server (SIGTERM, then SIGKILL) and disconnects the fixture's clients. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL: the server dies at once, as in a crash; connections see a reset. */
  kill(): Promise<void>;
  /** Kills the server if it runs and starts a fresh one on the same port: no keys, no scripts. */
  restart(): Promise<void>;
  /** SIGSTOP: the server keeps its connections but answers nothing until `resume`. */
  pause(): void;
  /** SIGCONT after `pause`; a no-op when not paused or stopped. */
  resume(): void;
}

export interface StartRedisOptions {
  /** Extra `redis-server` arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: string[];
  /** How long to wait for PING to answer; default 10 s. */
  startTimeoutMs?: number;
  /** Ignore `REDIS_URL` and always spawn a server (for tests that must kill or restart it). */
  spawn?: boolean;
}

const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';

/** Starts (or, with `REDIS_URL`, connects to) a Redis for the test; cleaned up by `t.after`. */
export async function startRedis(t?: TestContext, options: StartRedisOptions = {}): Promise<RedisFixture> {
  const clients = new Set<Redis>();
  const makeClient = (host: string, port: number, extra: RedisOptions = {}): Redis => {
    const client = new Redis({ host, port, ...extra });
    client.on('error', () => {
      // Expected while a test kills or pauses the server; the test asserts on command results.
    });
    clients.add(client);
    client.once('end', () => clients.delete(client));
    return client;
  };
  const disconnectClients = (): void => {
    for (const c of clients) c.disconnect();
    clients.clear();
  };

  const external = process.env.REDIS_URL;
  if (external !== undefined && external !== '' && options.spawn !== true) {
    const parsed = new URL(external);
    const host = parsed.hostname || '127.0.0.1';
    const port = Number(parsed.port || 6379);
    const unsupported = (): never => {
      throw new Error('REDIS_URL is set: the fixture cannot kill, restart or pause an external Redis');
    };
    const fixture: RedisFixture = {
      url: external,
      host,
      port,
      controllable: false,
      client: (extra) => {
        const client = new Redis(external, { ...extra });
        client.on('error', () => {});
        clients.add(client);
        return client;
      },
      stop: async () => disconnectClients(),
      kill: async () => unsupported(),
      restart: async () => unsupported(),
      pause: () => unsupported(),
      resume: () => unsupported(),
    };
    t?.after(() => fixture.stop());
    return fixture;
  }

  const host = '127.0.0.1';
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  let child: ChildProcess | undefined;
  let paused = false;

  const launch = async (port: number): Promise<ChildProcess> => {
    const proc = spawn(
      REDIS_SERVER,
      ['--port', String(port), '--bind', host, '--save', '', '--appendonly', 'no', '--dir', tmpdir(), ...(options.args ?? [])],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-8_000);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    const exited = new Promise<never>((_, reject) => {
      proc.once('error', (err) => reject(err));
      proc.once('exit', (code, signal) => reject(new Error(`redis-server exited early (code ${code}, signal ${signal}):\n${output}`)));
    });
    exited.catch(() => {}); // only observed through the race below
    try {
      await Promise.race([waitForPong(host, port, timeoutMs), exited]);
    } catch (err) {
      proc.kill('SIGKILL');
      throw err;
    }
    return proc;
  };

  const killChild = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    if (paused) proc.kill('SIGCONT');
    paused = false;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 2_000);
    await exited;
    clearTimeout(timer);
  };

  // Bind port 0 to learn a free port, close it, and hand it to redis-server. Another process can
  // take the port in between: then redis-server exits with "Address already in use" and we retry.
  let port = 0;
  let lastError: unknown;
  for (let attempt = 0; attempt < 5 && child === undefined; attempt++) {
    port = await freePort();
    try {
      child = await launch(port);
    } catch (err) {
      lastError = err;
    }
  }
  if (child === undefined) throw new Error(`could not start redis-server: ${(lastError as Error)?.message ?? lastError}`);

  const fixture: RedisFixture = {
    url: `redis://${host}:${port}`,
    host,
    port,
    controllable: true,
    client: (extra) => makeClient(host, port, extra),
    stop: async () => {
      disconnectClients();
      await killChild('SIGTERM');
    },
    kill: () => killChild('SIGKILL'),
    restart: async () => {
      await killChild('SIGKILL');
      // The old socket is closed (redis sets SO_REUSEADDR), so the same port is free again at once;
      // retry briefly in case the kernel has not released it yet.
      let err: unknown;
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          child = await launch(port);
          return;
        } catch (e) {
          err = e;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      throw err;
    },
    pause: () => {
      if (child === undefined) throw new Error('redis-server is not running');
      child.kill('SIGSTOP');
      paused = true;
    },
    resume: () => {
      // A no-op once the server is gone, so `t.after(() => redis.resume())` is always safe.
      if (child !== undefined && paused) child.kill('SIGCONT');
      paused = false;
    },
  };
  t?.after(() => fixture.stop());
  return fixture;
}

/**
 * For tests that kill, restart or pause Redis: skips the test (with the reason) when the fixture
 * uses an external `REDIS_URL`. Returns true when skipped, so the test can `return`.
 */
export function skipUnlessControllable(t: TestContext, redis: RedisFixture): boolean {
  if (redis.controllable) return false;
  t.skip('REDIS_URL is set: this test needs a Redis it can kill, restart or pause');
  return true;
}

/** A port that was free a moment ago (bind 0, read it, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Resolves once the server answers PING with +PONG (not -LOADING or a refusal). */
async function waitForPong(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pingOnce(host, port)) return;
    if (Date.now() > deadline) throw new Error(`redis-server on ${host}:${port} did not answer PING within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function pingOnce(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

export interface RedisClusterFixture {
  /** Every node (masters first, as created), each a controllable single-server fixture. */
  readonly nodes: readonly RedisFixture[];
  /** `redis+cluster://127.0.0.1:<p1>,...`: what the gateway, worker and CLI accept. */
  readonly url: string;
  /** A new ioredis Cluster client (error listener attached), disconnected on `stop`. */
  client(options?: ClusterOptions): Cluster;
  /** The nodes that are masters now. */
  masters(): Promise<RedisFixture[]>;
  /** The node serving `key`'s hash slot as master now. */
  masterOf(key: string): Promise<RedisFixture>;
  /** Waits until a node other than `dead` serves `key`'s slot and the cluster state is ok again. */
  waitForPromotion(key: string, dead: RedisFixture, timeoutMs?: number): Promise<RedisFixture>;
  stop(): Promise<void>;
}

export interface StartRedisClusterOptions {
  /** Masters; each gets `replicasPerMaster` replicas. Default 3. */
  masters?: number;
  /** Default 1, so killing a master promotes its replica. */
  replicasPerMaster?: number;
  /** `cluster-node-timeout`: how long a node may be unreachable before a failover; default 1000 ms. */
  nodeTimeoutMs?: number;
}

const REDIS_CLI = process.env.REDIS_CLI ?? 'redis-cli';

/**
 * A local Redis Cluster for the test (`redis-server --cluster-enabled yes` per node, then
 * `redis-cli --cluster create`): 3 masters + 3 replicas by default, persistence off, a short node
 * timeout so a killed master's replica is promoted within seconds. `cluster-require-full-coverage
 * no`: while one master is down the others keep serving their slots, as production clusters should
 * be run for infergate (docs/redis.md). Every node is killed when the test ends, pass or fail.
 * Always spawned, whatever REDIS_URL says.
 *
 * @example
 *   const cluster = await startRedisCluster(t);
 *   const master = await cluster.masterOf('{infergate:rl:key:ab12}');
 *   await master.kill();
 *   await cluster.waitForPromotion('{infergate:rl:key:ab12}', master);
 */
export async function startRedisCluster(t: TestContext, options: StartRedisClusterOptions = {}): Promise<RedisClusterFixture> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 1;
  const configDir = await mkdtemp(join(tmpdir(), 'infergate-cluster-'));
  t.after(() => rm(configDir, { recursive: true, force: true }));
  const nodes: RedisFixture[] = [];
  for (let i = 0; i < masters * (1 + replicas); i++) {
    nodes.push(await startRedis(t, {
      spawn: true,
      args: [
        '--cluster-enabled', 'yes', '--cluster-config-file', join(configDir, `nodes-${i}.conf`),
        '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 1000), '--cluster-require-full-coverage', 'no',
        // Replicas sync at once (the default waits 5 s to batch them): a replica that never synced cannot take over.
        '--repl-diskless-sync-delay', '0',
        '--dir', configDir,
      ],
    }));
  }
  const addresses = nodes.map((n) => `${n.host}:${n.port}`);
  await execFileAsync(REDIS_CLI, ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 60_000 });
  const clients = new Set<Cluster>();
  const nodeClients = new Map(nodes.map((n) => [n, n.client()]));
  const byPort = (port: number): RedisFixture => {
    const node = nodes.find((n) => n.port === port);
    if (node === undefined) throw new Error(`no cluster node on port ${port}`);
    return node;
  };
  /** The master port of `slot` as `asker` sees it, and whether `asker` thinks the cluster is ok. */
  const view = async (asker: Redis, slot: number): Promise<{ port: number | undefined; ok: boolean }> => {
    const ranges = (await asker.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>;
    const range = ranges.find(([from, to]) => slot >= from && slot <= to);
    const info = String(await asker.call('CLUSTER', 'INFO'));
    return { port: range?.[2][1], ok: info.includes('cluster_state:ok') };
  };
  const slotOf = async (key: string, asker: Redis): Promise<number> => Number(await asker.call('CLUSTER', 'KEYSLOT', key));
  // Every node must agree the cluster is whole, and every replica must have synced (or it could not
  // take over), before the test starts.
  await waitUntil(async () => {
    for (const client of nodeClients.values()) {
      const info = String(await client.call('CLUSTER', 'INFO'));
      if (!info.includes('cluster_state:ok') || !info.includes(`cluster_known_nodes:${nodes.length}`)) return false;
      const replication = String(await client.call('INFO', 'replication'));
      if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return false;
    }
    return true;
  }, 30_000, 'the cluster to reach cluster_state:ok on every node with every replica in sync');

  const fixture: RedisClusterFixture = {
    nodes,
    url: `redis+cluster://${addresses.join(',')}`,
    client: (extra = {}) => {
      const client = new Cluster(nodes.slice(0, masters).map((n) => ({ host: n.host, port: n.port })), extra);
      client.on('error', () => {});
      clients.add(client);
      return client;
    },
    masters: async () => {
      const roles = await Promise.all([...nodeClients].map(async ([node, client]) => ((await client.call('ROLE').catch(() => ['gone'])) as [string])[0] === 'master' ? [node] : []));
      return roles.flat();
    },
    masterOf: async (key) => {
      let lastError: unknown;
      for (const asker of nodeClients.values()) {
        try {
          const { port } = await view(asker, await slotOf(key, asker));
          if (port !== undefined) return byPort(port);
        } catch (err) {
          lastError = err; // a killed node: ask the next
        }
      }
      throw new Error(`no master serves the slot of ${key}: ${(lastError as Error | undefined)?.message ?? 'uncovered slot'}`);
    },
    waitForPromotion: async (key, dead, timeoutMs = 30_000) => {
      const asker = nodeClients.get(nodes.find((n) => n !== dead)!)!;
      const slot = await slotOf(key, asker);
      let promoted: RedisFixture | undefined;
      await waitUntil(async () => {
        const { port, ok } = await view(asker, slot);
        if (port === undefined || port === dead.port || !ok) return false;
        promoted = byPort(port);
        return ((await nodeClients.get(promoted)!.call('ROLE')) as [string])[0] === 'master';
      }, timeoutMs, `a replica to take over the slot of ${key}`);
      return promoted!;
    },
    stop: async () => {
      for (const c of clients) c.disconnect();
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
  t.after(() => fixture.stop());
  return fixture;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface RedisSentinelFixture {
  /** The master and its replica as started (which one is master changes with `failover`). */
  readonly servers: readonly [RedisFixture, RedisFixture];
  /** The sentinel's port. */
  readonly sentinelPort: number;
  /** The master's name in the sentinel's configuration. */
  readonly masterName: string;
  /** `redis+sentinel://127.0.0.1:<sentinel>/<name>`: what the gateway, worker and CLI accept. */
  readonly url: string;
  /** The server that is master now, as the sentinel says. */
  master(): Promise<RedisFixture>;
  /** SENTINEL FAILOVER, then waits until the replica is master and the sentinel says so; the new master. */
  failover(timeoutMs?: number): Promise<RedisFixture>;
  stop(): Promise<void>;
}

/**
 * A local Sentinel setup for the test: a master, one replica and one sentinel (quorum 1,
 * down-after 1000 ms), on free ports, with the sentinel's generated config in a temp dir. Returns
 * once the replica is in sync and the sentinel knows it; everything is killed when the test ends.
 *
 * @example
 *   const sentinel = await startRedisSentinel(t);
 *   // gateway --redis sentinel.url ...
 *   const promoted = await sentinel.failover();
 */
export async function startRedisSentinel(t: TestContext, masterName = 'infergate'): Promise<RedisSentinelFixture> {
  const master = await startRedis(t, { spawn: true, args: ['--repl-diskless-sync-delay', '0'] });
  const replica = await startRedis(t, { spawn: true, args: ['--repl-diskless-sync-delay', '0', '--replicaof', master.host, String(master.port)] });
  const servers = [master, replica] as const;
  const replicaClient = replica.client();
  await waitUntil(async () => String(await replicaClient.call('INFO', 'replication')).includes('master_link_status:up'), 30_000, 'the replica to sync');

  const dir = await mkdtemp(join(tmpdir(), 'infergate-sentinel-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  let sentinel: ChildProcess | undefined;
  let port = 0;
  for (let attempt = 0; attempt < 5 && sentinel === undefined; attempt++) {
    port = await freePort();
    const conf = join(dir, `sentinel-${port}.conf`);
    await writeFile(conf, [
      `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
      `sentinel monitor ${masterName} ${master.host} ${master.port} 1`,
      `sentinel down-after-milliseconds ${masterName} 1000`,
      `sentinel failover-timeout ${masterName} 10000`,
    ].join('\n'));
    const proc = spawn(REDIS_SERVER, [conf, '--sentinel'], { stdio: 'ignore' });
    if (await waitForPong(master.host, port, 10_000).then(() => true, () => false)) sentinel = proc;
    else proc.kill('SIGKILL');
  }
  if (sentinel === undefined) throw new Error('could not start redis-server --sentinel');
  const running = sentinel;
  const stopSentinel = async (): Promise<void> => {
    if (running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, 'exit');
    running.kill('SIGKILL');
    await exited;
  };
  t.after(stopSentinel);
  const ask = new Redis({ host: master.host, port, lazyConnect: false });
  ask.on('error', () => {});
  t.after(() => ask.disconnect());
  await waitUntil(async () => ((await ask.call('SENTINEL', 'REPLICAS', masterName)) as unknown[]).length === 1, 30_000, 'the sentinel to find the replica');

  const masterNow = async (): Promise<RedisFixture> => {
    const [, masterPort] = (await ask.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)) as [string, string];
    return servers.find((s) => s.port === Number(masterPort))!;
  };
  return {
    servers,
    sentinelPort: port,
    masterName,
    url: `redis+sentinel://${master.host}:${port}/${masterName}`,
    master: masterNow,
    failover: async (timeoutMs = 30_000) => {
      const before = await masterNow();
      const after = servers.find((s) => s !== before)!;
      const afterClient = after.client();
      // The replica must be in sync, or the sentinel refuses to promote it.
      await waitUntil(async () => String(await afterClient.call('INFO', 'replication')).includes('master_link_status:up'), timeoutMs, 'the replica to be in sync');
      await ask.call('SENTINEL', 'FAILOVER', masterName);
      await waitUntil(async () => (await masterNow()) === after && ((await afterClient.call('ROLE')) as [string])[0] === 'master', timeoutMs, 'the sentinel failover');
      return after;
    },
    stop: async () => {
      await stopSentinel();
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}
