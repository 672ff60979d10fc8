// Where Redis is: the URL forms (redis://, redis+sentinel://, redis+cluster://), the gateway
// config's redis section, the REDIS_URL override, and how connectRedis places each caller's
// options on a Cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, Redis } from 'ioredis';
import { resolveGatewayConfig } from '../../../gateway/main.ts';
import { parseGatewayConfig } from '../../../gateway/config/load.ts';
import { closeRedis, connectRedis } from '../../../shared/redis/connect.ts';
import { describeTopology, parseNode, parseRedisUrl, RedisUrlError, topologyOf } from '../../../shared/redis/topology.ts';

test('redis:// and rediss:// URLs are kept as they are, for ioredis to read', () => {
  for (const url of ['redis://127.0.0.1:6379', 'rediss://user:p%40ss@redis.internal:6380/2']) assert.deepEqual(parseRedisUrl(url), { kind: 'single', url });
});

test('redis+sentinel:// names the sentinels, the master, the db and the passwords', () => {
  assert.deepEqual(parseRedisUrl('redis+sentinel://:s3cret@10.0.0.1:26380,10.0.0.2,[::1]:26381/mymaster/3?sentinelPassword=p%26q'), {
    kind: 'sentinel',
    name: 'mymaster',
    sentinels: [{ host: '10.0.0.1', port: 26_380 }, { host: '10.0.0.2', port: 26_379 }, { host: '::1', port: 26_381 }],
    db: 3,
    tls: false,
    password: 's3cret',
    sentinelPassword: 'p&q',
  });
  assert.deepEqual(parseRedisUrl('rediss+sentinel://app:pw@s1:26379/m'), { kind: 'sentinel', name: 'm', sentinels: [{ host: 's1', port: 26_379 }], db: 0, tls: true, username: 'app', password: 'pw' });
});

test('redis+cluster:// lists start nodes; the user alone, as in redis:// URLs, is a user name', () => {
  assert.deepEqual(parseRedisUrl('redis+cluster://ops@n1:7000,n2:7001'), { kind: 'cluster', nodes: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }], tls: false, username: 'ops' });
  assert.deepEqual(parseRedisUrl('rediss+cluster://n1'), { kind: 'cluster', nodes: [{ host: 'n1', port: 6379 }], tls: true });
});

test('anything else is refused with a message that never shows the password', () => {
  const cases: Array<[string, RegExp]> = [
    ['http://127.0.0.1:6379', /not a Redis URL/],
    ['127.0.0.1:6379', /not a Redis URL/],
    ['redis+sentinel://:hunter2@s1:26379', /names the master/],
    ['redis+sentinel://s1:26379/m/x', /expected \/<master-name>\[\/<db>\]/],
    ['redis+cluster://n1:7000/1', /takes no path/],
    ['redis+cluster://:hunter2@n1:99999', /is not host:port/],
    ['redis+cluster://n1:7000?db=1', /unknown Redis URL parameter 'db'/],
    ['redis://:hunter2@[bad', /not a valid Redis URL/],
  ];
  for (const [url, message] of cases) {
    assert.throws(() => parseRedisUrl(url), (err: Error) => err instanceof RedisUrlError && message.test(err.message) && !err.message.includes('hunter2'), url);
  }
  assert.throws(() => parseNode('a b:1', 6379), RedisUrlError);
});

test('the gateway config accepts exactly one of url, sentinel and cluster, each validated', () => {
  const sentinel = { name: 'm', nodes: ['s1:26379', 's2'] };
  const cluster = { nodes: ['n1:7000'] };
  assert.deepEqual(topologyOf(parseGatewayConfig({ redis: { sentinel } }, 't').redis), { kind: 'sentinel', name: 'm', sentinels: [{ host: 's1', port: 26_379 }, { host: 's2', port: 26_379 }], db: 0, tls: false });
  assert.deepEqual(topologyOf(parseGatewayConfig({ redis: { cluster: { ...cluster, password: 'pw' } } }, 't').redis), { kind: 'cluster', nodes: [{ host: 'n1', port: 7000 }], tls: false, password: 'pw' });
  assert.equal(topologyOf(parseGatewayConfig({}, 't').redis), undefined, 'no Redis: embedded mode');
  assert.throws(() => parseGatewayConfig({ redis: { url: 'redis://r', cluster } }, 't'), /give one of redis.url, redis.sentinel or redis.cluster/);
  assert.throws(() => parseGatewayConfig({ redis: { cluster: { nodes: ['n1:port'] } } }, 't'), /redis.cluster.nodes.0: 'n1:port' is not host:port/);
  assert.throws(() => parseGatewayConfig({ redis: { url: 'redis+cluster://n1/0' } }, 't'), /redis.url: a redis\+cluster:\/\/ URL takes no path/);
  assert.throws(() => parseGatewayConfig({ redis: { sentinel: { nodes: ['s1'] } } }, 't'), /redis.sentinel.name/);
  assert.throws(() => parseGatewayConfig({ redis: { cluster: { nodes: ['n1'], natMap: {} } } }, 't'), /unknown key 'redis.cluster.natMap'/);
});

test('REDIS_URL and --redis replace whichever topology the file gives', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'infergate-topology-'));
  try {
    const file = join(dir, 'gateway.json');
    await writeFile(file, JSON.stringify({ redis: { cluster: { nodes: ['n1:7000'] }, decisionDeadlineMs: 80 } }));
    const fromEnv = await resolveGatewayConfig({ config: file }, { REDIS_URL: 'redis+sentinel://s1/m' });
    assert.deepEqual(fromEnv.redis, { url: 'redis+sentinel://s1/m', decisionDeadlineMs: 80, namespace: 'infergate' });
    const fromFlag = await resolveGatewayConfig({ config: file, redis: 'redis://r:6379' }, { REDIS_URL: 'redis://ignored' });
    assert.equal(fromFlag.redis.url, 'redis://r:6379');
    assert.equal((await resolveGatewayConfig({ config: file, processes: '3' }, {})).processes, 3);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('connectRedis: one node and Sentinel get the caller\'s options; a Cluster gets them where ioredis reads them', async () => {
  const limiterLike = { lazyConnect: true, enableOfflineQueue: false, autoResendUnfulfilledCommands: false, commandTimeout: 300, maxRetriesPerRequest: 0, retryStrategy: (n: number) => n * 10, connectionName: 'infergate:test' };
  const single = connectRedis('redis://127.0.0.1:1', limiterLike);
  assert.ok(single instanceof Redis);
  assert.equal(single.options.enableOfflineQueue, false);

  const sentinel = connectRedis('redis+sentinel://:pw@127.0.0.1:1/m?sentinelPassword=sp', limiterLike) as Redis;
  assert.deepEqual([sentinel.options.name, sentinel.options.password, sentinel.options.sentinelPassword, sentinel.options.failoverDetector, sentinel.options.role], ['m', 'pw', 'sp', true, 'master']);

  const cluster = connectRedis('redis+cluster://:pw@127.0.0.1:1', limiterLike);
  assert.ok(cluster instanceof Cluster);
  const { options } = cluster;
  assert.equal(options.enableOfflineQueue, false, 'the offline queue is the cluster\'s');
  assert.equal(options.lazyConnect, true);
  assert.equal(options.scaleReads, 'master', 'reads see the last write');
  assert.equal(options.retryDelayOnFailover, 0, 'a command the caller never wants resent is not resent after a failover');
  assert.equal(options.retryDelayOnClusterDown, 0);
  assert.equal(options.clusterRetryStrategy!(3, new Error('x')), 30, 'the caller\'s reconnect schedule');
  assert.deepEqual([options.redisOptions?.commandTimeout, options.redisOptions?.maxRetriesPerRequest, options.redisOptions?.password, options.redisOptions?.connectionName], [300, 0, 'pw', 'infergate:test']);
  assert.equal((options.redisOptions as Record<string, unknown>).enableOfflineQueue, undefined, 'cluster-level options stay off the nodes');

  const subscriberLike = connectRedis('redis+cluster://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: true, maxRetriesPerRequest: null }) as Cluster;
  assert.equal(subscriberLike.options.retryDelayOnFailover, 100, 'others keep ioredis\'s resend after a failover');
  assert.match(describeTopology('redis+cluster://:pw@127.0.0.1:1'), /^cluster 127\.0\.0\.1:1$/);
  assert.equal(describeTopology('redis://:pw@h:1'), 'redis://***@h:1');
  await Promise.all([single, sentinel, cluster, subscriberLike].map((c) => closeRedis(c)));
});
