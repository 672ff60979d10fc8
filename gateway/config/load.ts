/**
 * Reading and validating the gateway config file (YAML or JSON). Every problem is reported with the
 * path of the key and the file, and an unknown key is named, so a typo fails at boot.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { GatewayConfigSchema, type GatewayConfig } from './schema.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Formats zod issues as "path: message" lines, naming unknown keys. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((issue) => {
    const path = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') {
      return `unknown key ${issue.keys.map((k) => `'${path ? `${path}.` : ''}${k}'`).join(', ')}`;
    }
    return `${path || '(top level)'}: ${issue.message}`;
  }).join('; ');
}

export function parseGatewayConfig(raw: unknown, source: string): GatewayConfig {
  const result = GatewayConfigSchema.safeParse(raw ?? {});
  if (!result.success) throw new ConfigError(`${source}: ${describeIssues(result.error.issues)}`);
  return result.data;
}

/** Reads a config file; `.json` as JSON, anything else as YAML (which JSON also is). */
export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    return path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
}

/** Sets `value` at a dotted path in a plain object tree, creating objects on the way. */
export function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (node[key] === null || typeof node[key] !== 'object') node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

/**
 * REDIS_URL or a --redis flag: the URL replaces whichever of redis.url, redis.sentinel and
 * redis.cluster the file gave, as an override should (the schema refuses more than one).
 */
export function overrideRedisUrl(raw: Record<string, unknown>, url: string): void {
  const redis = raw.redis !== null && typeof raw.redis === 'object' ? { ...(raw.redis as Record<string, unknown>) } : {};
  delete redis.sentinel;
  delete redis.cluster;
  raw.redis = { ...redis, url };
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
