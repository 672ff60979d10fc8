// Accessibility of every page of the web UI in a real Chromium, in the states a user sees (signed
// in, a model chosen, an answer shown; the dashboard live; keys listed): labelled controls, named
// buttons and links, and WCAG AA text contrast. Keyboard use is tested with the playground itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessibilityProblems, launchBrowser, openPage, signIn, skipWithoutChromium, startUiStack } from '../helpers/browser.ts';

test('every page: labels, names and contrast', async (t) => {
  if (skipWithoutChromium(t)) return;
  const stack = await startUiStack(t, { workers: 1 });
  const browser = await launchBrowser(t);
  const { key } = await stack.createKey({ name: 'accessibility', models: '*' });

  await t.test('playground, with each kind of input and an answer', async () => {
    const { page } = await openPage(browser, t, `${stack.publicUrl}/ui/`);
    assert.deepEqual(await accessibilityProblems(page), [], 'signed out');
    await signIn(page, 'API key or JWT', key);
    for (const model of ['mnist', 'cifar10', 'iris']) {
      await page.locator(`.model-button[data-model="${model}"]`).click();
      await page.locator('#model-name', { hasText: model }).waitFor();
      assert.deepEqual(await accessibilityProblems(page), [], model);
    }
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.locator('#result:not([hidden]) .class-row').first().waitFor();
    assert.deepEqual(await accessibilityProblems(page), [], 'with an answer');
    await page.locator('#request-json').fill('{');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.getByRole('alert').waitFor();
    assert.deepEqual(await accessibilityProblems(page), [], 'with an error');
  });

  await t.test('dashboard, live', async () => {
    const { page } = await openPage(browser, t, `${stack.adminUrl}/ui/dashboard.html`);
    assert.deepEqual(await accessibilityProblems(page), [], 'signed out');
    await signIn(page, 'Admin token', stack.gateway.adminToken);
    await page.locator('#worker-rows tr').first().waitFor();
    assert.deepEqual(await accessibilityProblems(page), []);
  });

  await t.test('keys, with a new key shown', async () => {
    const { page } = await openPage(browser, t, `${stack.adminUrl}/ui/keys.html`);
    await signIn(page, 'Admin token', stack.gateway.adminToken);
    await page.getByLabel('Name').fill('contrast check');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.locator('#new-secret').waitFor();
    assert.deepEqual(await accessibilityProblems(page), []);

    // The checker itself: planted faults are found, so the empty lists above mean something.
    await page.evaluate(() => {
      const main = document.querySelector('main')!;
      const faint = document.createElement('p');
      faint.textContent = 'faint text';
      faint.style.color = '#b0b0b0';
      main.append(faint, document.createElement('input'), document.createElement('button'));
    });
    const planted = await accessibilityProblems(page);
    assert.equal(planted.length, 3, planted.join('\n'));
    assert.match(planted.join('\n'), /contrast 2\.\d+:1 for p "faint text"[\s\S]*/);
  });
});
