/**
 * `npm run models`: trains/builds the four demo models into models/, rewrites the mnist test
 * fixture, checks every model in onnxruntime-node and prints a summary.
 *
 * Deterministic: seeded RNGs and no timestamps, so a rebuild gives byte-identical files and the
 * committed models are exactly what this script produces (test/unit/models checks that).
 */
import { fileURLToPath } from 'node:url';
import { verifyModel } from './verify.ts';
import { writeDemoModels } from './write-models.ts';

const MODELS_DIR = fileURLToPath(new URL('../', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const started = performance.now();
const written = await writeDemoModels(MODELS_DIR, { fixturesRoot: REPO_ROOT, log: (line) => console.log(line) });

const rows: string[][] = [['model', 'size', 'build', 'onnxruntime vs TS', 'quality']];
for (const { model, modelPath, bytes, buildSeconds } of written) {
  const { maxAbsDiff } = await verifyModel(modelPath, model);
  const check = maxAbsDiff === undefined ? 'shapes ok' : `max |diff| ${maxAbsDiff.toExponential(1)}`;
  const quality = Object.entries(model.metrics).map(([key, value]) => `${key} ${value}`).join('; ');
  rows.push([model.name, `${(bytes / 1024).toFixed(0)} KiB`, `${buildSeconds.toFixed(1)} s`, check, quality]);
}

const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
console.log();
for (const row of rows) console.log(row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
console.log(`\nall models written to ${MODELS_DIR} and checked in onnxruntime-node in ${((performance.now() - started) / 1000).toFixed(1)} s`);
