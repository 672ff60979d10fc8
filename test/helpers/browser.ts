/**
 * Browser tests of the web UI: a real stack (workers serving the demo models behind a gateway that
 * requires credentials and keeps API keys in a file store) and Debian's Chromium driven by
 * playwright-core. Every page opened through {@link openPage} is watched for what must never
 * happen — a Content-Security-Policy violation, an uncaught script error, a failed asset — and every
 * request URL is recorded so tests can prove no credential ever travels in one.
 *
 * @example
 *   test('playground', async (t) => {
 *     if (skipWithoutChromium(t)) return;
 *     const stack = await startUiStack(t);
 *     const browser = await launchBrowser(t);
 *     const { page, problems } = await openPage(browser, t, `${stack.publicUrl}/ui/`);
 *     ...
 *     assert.deepEqual(problems, []);
 *   });
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import jwt from 'jsonwebtoken';
import { chromium, type Browser, type Page } from 'playwright-core';
import { DEMO_MODELS, REPO_ROOT, startGateway, startWorker, type RunningGateway, type RunningProcess } from './processes.ts';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOT_DIR = join(REPO_ROOT, 'artifacts', 'screenshots');

/** Flags for a quiet, offline, headless Chromium in a container (no sandbox, no GPU, no phoning home). */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Skips the test with the reason when Chromium is not installed; returns true when skipped. */
export function skipWithoutChromium(t: TestContext): boolean {
  if (existsSync(CHROMIUM_PATH)) return false;
  t.skip(`${CHROMIUM_PATH} is missing: install Debian's chromium (apt-get install chromium) to run the browser tests`);
  return true;
}

export async function launchBrowser(t: TestContext): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: 60_000 });
  t.after(() => browser.close());
  return browser;
}

export interface CreatedKey {
  key: string;
  record: { id: string; name: string; displayPrefix: string };
}

export interface UiStack {
  gateway: RunningGateway;
  workers: RunningProcess[];
  /** Origin of the public port (playground, API reference). */
  publicUrl: string;
  /** Origin of the admin port (dashboard, keys, API reference). */
  adminUrl: string;
  /** Creates an API key through the admin API. */
  createKey(body: { name: string; models?: string[] | '*' }): Promise<CreatedKey>;
  /** Signs a JWT the gateway accepts (HS256, 5 minutes), e.g. `{ sub: 'alice', models: ['iris'] }`. */
  signJwt(claims: object): string;
}

/** The gateway's JWT secret in these tests (INFERGATE_JWT_SECRET). */
const JWT_SECRET = 'browser-test-jwt-secret-0123456789abcdef';

/**
 * Starts `workers` workers on the demo models (or `models`) and a gateway in front of them that requires a
 * credential (no anonymous access) and stores API keys in a temporary file, with a short key cache
 * so a revocation shows within a second.
 */
export async function startUiStack(t: TestContext, options: { workers?: number; models?: string } = {}): Promise<UiStack> {
  const dir = await mkdtemp(join(tmpdir(), 'infergate-ui-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'gateway.yaml');
  await writeFile(config, `auth:\n  apiKeys: { file: ${JSON.stringify(join(dir, 'keys.json'))}, cacheTtlMs: 300 }\n`);
  const workers = await Promise.all(Array.from({ length: options.workers ?? 2 }, () => startWorker(t, options.models ?? DEMO_MODELS, { readyTimeoutMs: 120_000 })));
  const gateway = await startGateway(t, workers.map((w) => w.url), { requireAuth: true, args: ['--config', config], env: { INFERGATE_JWT_SECRET: JWT_SECRET } });
  return {
    gateway,
    workers,
    publicUrl: gateway.url,
    adminUrl: gateway.adminUrl,
    async createKey(body) {
      const res = await gateway.admin('/admin/keys', { method: 'POST', body: JSON.stringify(body) });
      if (res.status !== 201) throw new Error(`creating a key answered ${res.status}: ${await res.text()}`);
      return (await res.json()) as CreatedKey;
    },
    signJwt: (claims) => jwt.sign({ exp: Math.floor(Date.now() / 1000) + 300, ...claims }, JWT_SECRET, { algorithm: 'HS256' }),
  };
}

export interface WatchedPage {
  page: Page;
  /** CSP violations, uncaught errors and failed same-origin loads seen so far, as readable lines. */
  problems: string[];
  /** Every URL the page requested, in order (navigation, assets, fetches). */
  requestUrls: string[];
}

/** Opens `url` in a fresh browser context (its own session storage) and watches it. */
export async function openPage(browser: Browser, t: TestContext, url: string, options: { viewport?: { width: number; height: number }; hasTouch?: boolean } = {}): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1280, height: 900 }, hasTouch: options.hasTouch ?? false });
  t.after(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const problems: string[] = [];
  const requestUrls: string[] = [];
  page.on('console', (message) => {
    const text = message.text();
    if (/Content[- ]Security[- ]Policy|Refused to (load|execute|apply|evaluate|connect|frame)/i.test(text)) problems.push(`CSP: ${text}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('request', (request) => requestUrls.push(request.url()));
  page.on('requestfailed', (request) => {
    // A stream the page aborts itself (leaving the page, switching views) is not a failure.
    if (request.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
  });
  page.on('response', (response) => {
    const type = response.request().resourceType();
    if (response.status() >= 400 && ['document', 'script', 'stylesheet', 'image', 'font'].includes(type)) problems.push(`${response.status()} for ${type} ${response.url()}`);
  });
  await page.goto(url);
  return { page, problems, requestUrls };
}

/** Saves a full-page screenshot as artifacts/screenshots/<name>.png (git-ignored). */
export async function saveScreenshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

/** Types a credential into a page's credential form and submits it, as a user would. */
export async function signIn(page: Page, label: RegExp | string, secret: string): Promise<void> {
  await page.getByLabel(label).fill(secret);
  await page.getByLabel(label).press('Enter');
}

/** True when the page scrolls sideways (content wider than the viewport). */
export function scrollsSideways(page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
}

/**
 * What an automated pass can check of WCAG 2.1 AA on the page as it is now: every form control has
 * a label (1.3.1, 4.1.2), every button and link has a name (4.1.2), and all visible text contrasts
 * with its background at least 4.5:1, or 3:1 when large (1.4.3; disabled controls are exempt).
 * Returns one readable line per problem.
 */
export async function accessibilityProblems(page: Page): Promise<string[]> {
  // tsx (esbuild keepNames) wraps named inner functions in __name(); give the page a stand-in.
  await page.evaluate('globalThis.__name ??= (target) => target');
  return page.evaluate(() => {
    const problems: string[] = [];
    const describe = (el: Element): string => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className && typeof el.className === 'string' ? `.${el.className.split(' ').join('.')}` : ''} "${(el.textContent ?? '').trim().slice(0, 40)}"`;
    const visible = (el: Element): boolean => (el as HTMLElement).checkVisibility?.({ visibilityProperty: true, opacityProperty: true }) ?? true;
    const named = (el: Element): boolean => (el.textContent ?? '').trim() !== '' || el.hasAttribute('aria-label') || el.hasAttribute('aria-labelledby') || el.hasAttribute('title');

    for (const control of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
      const labelled = ((control as HTMLInputElement).labels?.length ?? 0) > 0 || control.hasAttribute('aria-label') || control.hasAttribute('aria-labelledby');
      if (!labelled) problems.push(`no label: ${describe(control)}`);
    }
    for (const el of document.querySelectorAll('button, a[href], [role=tab]')) {
      if (visible(el) && !named(el)) problems.push(`no accessible name: ${describe(el)}`);
    }

    const parse = (colour: string): [number, number, number, number] => {
      const m = colour.match(/rgba?\(([^)]+)\)/);
      if (m === null) return [0, 0, 0, 0];
      const parts = m[1]!.split(/[ ,/]+/).filter(Boolean).map(Number);
      return [parts[0]!, parts[1]!, parts[2]!, parts[3] ?? 1];
    };
    const luminance = ([r, g, b]: number[]): number => {
      const lin = (c: number): number => {
        const s = c / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * lin(r!) + 0.7152 * lin(g!) + 0.0722 * lin(b!);
    };
    const backgroundOf = (el: Element | null): [number, number, number] => {
      for (let node = el; node !== null; node = node.parentElement) {
        const bg = parse(getComputedStyle(node).backgroundColor);
        if (bg[3] > 0.5) return [bg[0], bg[1], bg[2]];
      }
      return [255, 255, 255];
    };
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const checked = new Set<Element>();
    for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
      const el = node.parentElement;
      if (el === null || checked.has(el) || (node.textContent ?? '').trim() === '' || !visible(el)) continue;
      checked.add(el);
      if (el.closest(':disabled, [aria-disabled=true], svg, .sr-only, .skip-link')) continue;
      const style = getComputedStyle(el);
      const fg = parse(style.color);
      const l1 = luminance(fg);
      const l2 = luminance(backgroundOf(el));
      const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) problems.push(`contrast ${ratio.toFixed(2)}:1 for ${describe(el)}`);
    }
    return problems;
  });
}
