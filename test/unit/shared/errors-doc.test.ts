// Keeps docs/errors.md and the error catalogue in shared/errors.ts in step: every code documented
// with its real status, and no documented code that the code base does not have.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { ERROR_CATALOGUE } from '../../../shared/errors.ts';

test('docs/errors.md lists exactly the catalogue codes, each with its status', async () => {
  const doc = await readFile(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const rows = [...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])] as const);
  const documented = new Map(rows);
  assert.equal(documented.size, rows.length, 'a code is documented twice');
  for (const [code, { status }] of Object.entries(ERROR_CATALOGUE)) {
    assert.equal(documented.get(code), status, `${code} should be documented with status ${status}`);
  }
  for (const code of documented.keys()) assert.ok(code in ERROR_CATALOGUE, `${code} is documented but not in shared/errors.ts`);
});
