/**
 * Where Redis is: one node, a master watched by Sentinel, or a Redis Cluster — parsed from the URL
 * forms the CLI flags and REDIS_URL accept, or from the gateway config's `redis` section. Pure data;
 * shared/redis/connect.ts turns it into ioredis clients.
 *
 * URL forms (docs/redis.md):
 *   redis://[user:password@]host:port[/db]         one node, handed to ioredis unchanged
 *   rediss://...                                   the same over TLS
 *   redis+sentinel://[user:password@]host:port[,host:port...]/<master-name>[/<db>][?sentinelPassword=<p>]
 *                                                  the sentinels (default port 26379); user and
 *                                                  password are the master's
 *   redis+cluster://[user:password@]host:port[,host:port...]
 *                                                  a few cluster nodes to start from (default port 6379)
 *   rediss+sentinel://, rediss+cluster://          the same over TLS
 *
 * @example
 *   parseRedisUrl('redis+cluster://10.0.0.1:7000,10.0.0.2:7000')
 *   // { kind: 'cluster', nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7000 }], tls: false }
 */

export interface RedisNode {
  host: string;
  port: number;
}

/** Credentials of the data nodes (a Sentinel's master and replicas, every Cluster node). */
interface RedisAuth {
  username?: string;
  password?: string;
  tls: boolean;
}

export type RedisTopology =
  | { kind: 'single'; url: string }
  | ({ kind: 'sentinel'; name: string; sentinels: RedisNode[]; sentinelPassword?: string; db: number } & RedisAuth)
  | ({ kind: 'cluster'; nodes: RedisNode[] } & RedisAuth);

/** A Redis URL of any form above, or a parsed topology: what every Redis user in infergate accepts. */
export type RedisTarget = string | RedisTopology;

export class RedisUrlError extends Error {
  override name = 'RedisUrlError';
}

const DEFAULT_PORT = { sentinel: 26_379, cluster: 6379 } as const;
const MULTI_NODE_URL = /^(rediss?)\+(sentinel|cluster):\/\/(?:([^@/?#]*)@)?([^/?#]+)(\/[^?#]*)?(?:\?([^#]*))?$/;

/** Parses any supported URL form; throws RedisUrlError (with no password in it) when it is not one. */
export function parseRedisUrl(text: string): RedisTopology {
  const trimmed = text.trim();
  if (/^rediss?:\/\//.test(trimmed)) {
    try {
      new URL(trimmed);
    } catch {
      throw new RedisUrlError(`'${redactRedisUrl(trimmed)}' is not a valid Redis URL`);
    }
    return { kind: 'single', url: trimmed };
  }
  const match = MULTI_NODE_URL.exec(trimmed);
  if (match === null) {
    throw new RedisUrlError(`'${redactRedisUrl(trimmed)}' is not a Redis URL: use redis://host:port, redis+sentinel://host:port,.../<master-name> or redis+cluster://host:port,...`);
  }
  const [, scheme, kind, userinfo, hostList, path = '', query = ''] = match as unknown as [string, string, 'sentinel' | 'cluster', string | undefined, string, string | undefined, string | undefined];
  const auth: RedisAuth = { tls: scheme === 'rediss', ...credentials(userinfo) };
  const nodes = hostList.split(',').map((entry) => parseNode(entry, DEFAULT_PORT[kind]));
  const params = new URLSearchParams(query);
  const allowed = kind === 'sentinel' ? ['sentinelPassword'] : [];
  const unknown = [...params.keys()].filter((k) => !allowed.includes(k));
  if (unknown.length > 0) throw new RedisUrlError(`unknown Redis URL parameter ${unknown.map((k) => `'${k}'`).join(', ')}${allowed.length > 0 ? ` (known: ${allowed.join(', ')})` : ''}`);
  if (kind === 'cluster') {
    if (path !== '' && path !== '/') throw new RedisUrlError('a redis+cluster:// URL takes no path: a Redis Cluster has only database 0');
    return { kind, nodes, ...auth };
  }
  const [name, db = '0', ...rest] = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (name === undefined) throw new RedisUrlError('a redis+sentinel:// URL names the master after the hosts: redis+sentinel://host:26379/<master-name>');
  if (rest.length > 0 || !/^\d{1,2}$/.test(db)) throw new RedisUrlError(`'${path}': expected /<master-name>[/<db>]`);
  const sentinelPassword = params.get('sentinelPassword');
  return { kind, name, sentinels: nodes, db: Number(db), ...auth, ...(sentinelPassword !== null && { sentinelPassword }) };
}

/** `host:port` (or `[v6]:port`, or `host` with the default port) → a node; throws on anything else. */
export function parseNode(text: string, defaultPort: number): RedisNode {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]/]+))(?::(\d{1,5}))?$/.exec(text.trim());
  const port = match?.[3] === undefined ? defaultPort : Number(match[3]);
  if (match === null || !(port >= 1 && port <= 65_535)) throw new RedisUrlError(`'${text}' is not host:port`);
  return { host: match[1] ?? match[2]!, port };
}

/** The gateway config's `redis` section (validated) → where Redis is; undefined = no Redis (embedded mode). */
export function topologyOf(section: {
  url?: string | undefined;
  sentinel?: { name: string; nodes: readonly string[]; username?: string | undefined; password?: string | undefined; sentinelPassword?: string | undefined; db: number; tls: boolean } | undefined;
  cluster?: { nodes: readonly string[]; username?: string | undefined; password?: string | undefined; tls: boolean } | undefined;
}): RedisTopology | undefined {
  const auth = (s: { username?: string | undefined; password?: string | undefined; tls: boolean }): RedisAuth => ({
    tls: s.tls, ...(s.username !== undefined && { username: s.username }), ...(s.password !== undefined && { password: s.password }),
  });
  if (section.sentinel !== undefined) {
    const s = section.sentinel;
    return { kind: 'sentinel', name: s.name, sentinels: s.nodes.map((n) => parseNode(n, DEFAULT_PORT.sentinel)), db: s.db, ...auth(s), ...(s.sentinelPassword !== undefined && { sentinelPassword: s.sentinelPassword }) };
  }
  if (section.cluster !== undefined) return { kind: 'cluster', nodes: section.cluster.nodes.map((n) => parseNode(n, DEFAULT_PORT.cluster)), ...auth(section.cluster) };
  return section.url === undefined || section.url === '' ? undefined : parseRedisUrl(section.url);
}

/** For logs: the topology with every password replaced. */
export function describeTopology(target: RedisTarget): string {
  const topology = typeof target === 'string' ? parseRedisUrl(target) : target;
  const list = (nodes: RedisNode[]): string => nodes.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(',');
  switch (topology.kind) {
    case 'single': return redactRedisUrl(topology.url);
    case 'sentinel': return `sentinel ${list(topology.sentinels)} master ${topology.name} db ${topology.db}`;
    case 'cluster': return `cluster ${list(topology.nodes)}`;
  }
}

/** A URL with the password in its user info replaced by `***`. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

function credentials(userinfo: string | undefined): { username?: string; password?: string } {
  if (userinfo === undefined || userinfo === '') return {};
  const colon = userinfo.indexOf(':');
  // As ioredis reads redis:// URLs: no colon means a user name alone.
  const username = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon));
  const password = decodeURIComponent(colon < 0 ? '' : userinfo.slice(colon + 1));
  return { ...(username !== '' && { username }), ...(password !== '' && { password }) };
}
