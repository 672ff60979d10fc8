// The dependency rules of docs/architecture.md, checked on the source tree: gateway and worker never
// import each other, shared/ imports no server or runtime package, and exactly one worker file
// imports onnxruntime-node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../helpers/processes.ts';

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(REPO_ROOT, dir), { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(path)));
    else if (/\.(ts|js)$/.test(entry.name)) out.push(path);
  }
  return out;
}

async function importsOf(file: string): Promise<string[]> {
  const text = await readFile(join(REPO_ROOT, file), 'utf8');
  return [...text.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]!);
}

test('gateway/ and worker/ never import each other', async () => {
  for (const [from, forbidden] of [['gateway', 'worker'], ['worker', 'gateway']] as const) {
    for (const file of await sources(from)) {
      for (const spec of await importsOf(file)) {
        assert.ok(!new RegExp(`(^|/)${forbidden}/`).test(spec), `${file} imports ${spec}`);
      }
    }
  }
});

test('shared/ imports no express, http-proxy or onnxruntime-node, and ioredis only in the Redis client factory', async () => {
  // shared/redis/connect.ts is the one place a Redis client is made, for the gateway, the worker and the CLI alike.
  const redisFactory = join('shared', 'redis', 'connect.ts');
  for (const file of await sources('shared')) {
    for (const spec of await importsOf(file)) {
      assert.ok(!/^(express|http-proxy|onnxruntime-node)$/.test(spec), `${file} imports ${spec}`);
      assert.ok(spec !== 'ioredis' || file === redisFactory, `${file} imports ioredis (only ${redisFactory} may)`);
      // The CLI starts processes by loading their main modules lazily; nothing else in shared/ reaches out.
      if (!file.startsWith(join('shared', 'cli'))) assert.ok(!/(gateway|worker)\//.test(spec), `${file} imports ${spec}`);
    }
  }
});

test('only worker/repository/session-thread.ts imports onnxruntime-node', async () => {
  const users: string[] = [];
  for (const dir of ['worker', 'gateway', 'shared']) {
    for (const file of await sources(dir)) if ((await importsOf(file)).includes('onnxruntime-node')) users.push(relative('.', file));
  }
  assert.deepEqual(users, [join('worker', 'repository', 'session-thread.ts')]);
});
