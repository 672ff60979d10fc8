// The API reference in a real Chromium: Swagger UI, served locally from swagger-ui-dist, renders
// every path of the gateway's /openapi.json on both the public and the admin port, under the
// strict Content-Security-Policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, openPage, saveScreenshot, scrollsSideways, skipWithoutChromium, startUiStack } from '../helpers/browser.ts';

interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, unknown>>;
}

const CSP_DIRECTIVES = ["default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"];

test('the API reference in a real browser', async (t) => {
  if (skipWithoutChromium(t)) return;
  const stack = await startUiStack(t, { workers: 1 });
  const browser = await launchBrowser(t);

  for (const [port, origin] of [['public', stack.publicUrl], ['admin', stack.adminUrl]] as const) {
    await t.test(`${port} port: every path of /openapi.json is rendered, and the CSP blocks nothing`, async () => {
      const document = (await (await fetch(`${origin}/openapi.json`)).json()) as OpenApiDocument;
      assert.match(document.openapi, /^3\./);
      const { page, problems } = await openPage(browser, t, `${origin}/ui/docs.html`);
      await page.locator('#swagger-ui[data-loaded="true"]').waitFor();
      await page.locator('.opblock').first().waitFor();
      const rendered = new Set(await page.locator('.opblock-summary-path').evaluateAll((els) => els.map((e) => e.getAttribute('data-path') ?? e.textContent?.trim() ?? '')));
      const missing = Object.keys(document.paths).filter((path) => !rendered.has(path));
      assert.deepEqual(missing, [], 'Swagger UI shows every documented path');
      const operations = Object.values(document.paths).reduce((n, item) => n + Object.keys(item).filter((k) => /^(get|put|post|delete|patch|head|options)$/.test(k)).length, 0);
      assert.equal(await page.locator('.opblock').count(), operations, 'one block per operation');
      const nav = page.getByRole('navigation', { name: 'Pages' });
      await nav.getByRole('link', { name: 'API reference' }).waitFor();
      assert.deepEqual(await nav.getByRole('link').allInnerTexts(), port === 'admin' ? ['Pool dashboard', 'API keys', 'API reference'] : ['Playground', 'API reference'], 'the navigation of this port');
      assert.equal(await scrollsSideways(page), false);
      await saveScreenshot(page, `docs-${port}`);
      assert.deepEqual(problems, []);
    });
  }

  await t.test('every page is served with the strict Content-Security-Policy', async () => {
    for (const url of [`${stack.publicUrl}/ui/`, `${stack.publicUrl}/ui/docs.html`, `${stack.adminUrl}/ui/dashboard.html`, `${stack.adminUrl}/ui/keys.html`, `${stack.adminUrl}/ui/docs.html`]) {
      const res = await fetch(url);
      assert.equal(res.status, 200, url);
      const csp = res.headers.get('content-security-policy') ?? '';
      for (const directive of CSP_DIRECTIVES) assert.ok(csp.includes(directive), `${url}: ${directive} in "${csp}"`);
      assert.doesNotMatch(await res.text(), /<script(?![^>]*\bsrc=)[^>]*>/i, `${url} has no inline script`);
    }
  });
});
