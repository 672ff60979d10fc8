// The admin pages in a real Chromium against a real gateway and workers: the live pool dashboard
// (switching the strategy, draining a worker) and the API keys page (create, see once, revoke and
// see the key refused by the API).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/processes.ts';
import { launchBrowser, openPage, saveScreenshot, scrollsSideways, signIn, skipWithoutChromium, startUiStack } from '../helpers/browser.ts';

const TOKEN_LABEL = 'Admin token';

test('the admin pages in a real browser', async (t) => {
  if (skipWithoutChromium(t)) return;
  const stack = await startUiStack(t);
  const browser = await launchBrowser(t);
  const adminApi = async <T>(path: string, init?: RequestInit): Promise<T> => (await (await stack.gateway.admin(path, init)).json()) as T;

  await t.test('dashboard: live pool table; switching the strategy shows in the table and the admin API', async () => {
    const watched = await openPage(browser, t, `${stack.adminUrl}/ui/dashboard.html`);
    const { page } = watched;
    await signIn(page, TOKEN_LABEL, stack.gateway.adminToken);
    const { workers } = await adminApi<{ workers: Array<{ id: string }> }>('/admin/workers');
    for (const w of workers) await page.locator(`#worker-rows tr[data-worker="${w.id}"]`).waitFor();
    assert.equal(await page.locator('#worker-rows tr').count(), workers.length);

    const before = (await adminApi<{ strategy: string; available: string[] }>('/admin/strategy'));
    const target = before.available.find((s) => s !== before.strategy)!;
    assert.equal(await page.locator('#table-strategy').innerText(), before.strategy);
    await page.getByLabel('Strategy', { exact: true }).selectOption(target);
    await page.getByRole('button', { name: 'Switch strategy' }).click();
    await page.locator('#table-strategy', { hasText: new RegExp(`^${target}$`) }).waitFor({ timeout: 10_000 });
    assert.equal((await adminApi<{ strategy: string }>('/admin/strategy')).strategy, target);
    assert.match(await page.locator('#strategy-message').innerText(), new RegExp(target));

    // Some traffic, so the charts and rates have something to show in the screenshot.
    const { key } = await stack.createKey({ name: 'dashboard-load', models: '*' });
    for (let i = 0; i < 20; i++) {
      await fetch(`${stack.publicUrl}/v2/models/iris/infer`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] }) });
    }
    await page.waitForFunction(() => (document.querySelector('#throughput-chart polyline')?.getAttribute('points') ?? '').split(' ').length >= 3, undefined, { timeout: 15_000 });
    await saveScreenshot(page, 'dashboard');
    assert.ok(!watched.requestUrls.some((u) => u.includes(stack.gateway.adminToken)), 'the admin token never travels in a URL');
    assert.deepEqual(watched.problems, []);
  });

  await t.test('dashboard: draining a worker shows in the table and in the pool', async () => {
    const { page, problems } = await openPage(browser, t, `${stack.adminUrl}/ui/dashboard.html`);
    await signIn(page, TOKEN_LABEL, stack.gateway.adminToken);
    const id = (await adminApi<{ workers: Array<{ id: string }> }>('/admin/workers')).workers[0]!.id;
    const row = page.locator(`#worker-rows tr[data-worker="${id}"]`);
    await row.getByRole('button', { name: `Drain worker ${id}` }).click();
    await row.getByText('draining').waitFor({ timeout: 10_000 });
    await waitFor(async () => (await adminApi<{ workers: Array<{ id: string; draining: boolean }> }>('/admin/workers')).workers.find((w) => w.id === id)!.draining, 5000);
    await row.getByRole('button', { name: `Undrain worker ${id}` }).click();
    await waitFor(async () => !(await adminApi<{ workers: Array<{ id: string; draining: boolean }> }>('/admin/workers')).workers.find((w) => w.id === id)!.draining, 5000);
    assert.deepEqual(problems, []);
  });

  await t.test('dashboard: a wrong admin token is refused with a message', async () => {
    const { page } = await openPage(browser, t, `${stack.adminUrl}/ui/dashboard.html`);
    await signIn(page, TOKEN_LABEL, 'not-the-admin-token-000000');
    await page.locator('#connection', { hasText: 'refused' }).waitFor({ timeout: 10_000 });
  });

  await t.test('keys: create (shown once), then revoke and see the key refused by the API', async () => {
    const watched = await openPage(browser, t, `${stack.adminUrl}/ui/keys.html`);
    const { page } = watched;
    await signIn(page, TOKEN_LABEL, stack.gateway.adminToken);
    const name = `browser <b>key</b> ${Date.now()}`;
    await page.getByLabel('Name').fill(name);
    await page.getByLabel('Models').fill('iris');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.locator('#new-secret').waitFor();
    const secret = (await page.locator('#new-secret-value').innerText()).trim();
    assert.match(secret, /^igk_/);
    const infer = (): Promise<Response> => fetch(`${stack.publicUrl}/v2/models/iris/infer`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [6.3, 3.3, 6.0, 2.5] }] }),
    });
    assert.equal((await infer()).status, 200, 'the new key works');

    const { keys } = await adminApi<{ keys: Array<{ id: string; name: string }> }>('/admin/keys');
    const record = keys.find((k) => k.name === name)!;
    const row = page.locator(`#key-rows tr[data-key-id="${record.id}"]`);
    assert.equal(await row.getByRole('rowheader').innerText(), name, 'the name is shown as text, markup and all');
    assert.equal(await row.locator('b').count(), 0);
    await saveScreenshot(page, 'keys');

    await page.getByRole('button', { name: 'Done' }).click();
    assert.equal(await page.locator('#new-secret-value').innerText(), '', 'the secret leaves the page');
    page.once('dialog', (dialog) => void dialog.accept());
    await row.getByRole('button', { name: /^Revoke key/ }).click();
    await row.locator('.key-status', { hasText: 'revoked' }).waitFor();
    await waitFor(async () => (await infer()).status === 401, 10_000);
    assert.ok(!watched.requestUrls.some((u) => u.includes(secret) || u.includes(stack.gateway.adminToken)), 'no secret in any URL');
    const logged = stack.gateway.logs.map((entry) => JSON.stringify(entry)).filter((line) => line.includes(secret) || line.includes(stack.gateway.adminToken));
    assert.deepEqual(logged, [], 'neither the key nor the admin token is in the gateway log');
    assert.deepEqual(watched.problems, []);
  });

  await t.test('admin pages on a phone-width screen never scroll sideways', async () => {
    for (const path of ['dashboard.html', 'keys.html']) {
      const { page, problems } = await openPage(browser, t, `${stack.adminUrl}/ui/${path}`, { viewport: { width: 375, height: 740 } });
      await signIn(page, TOKEN_LABEL, stack.gateway.adminToken);
      await page.locator(path === 'keys.html' ? '#key-rows tr' : '#worker-rows tr').first().waitFor();
      assert.equal(await scrollsSideways(page), false, path);
      await saveScreenshot(page, `${path.replace('.html', '')}-phone`);
      assert.deepEqual(problems, []);
    }
  });
});
