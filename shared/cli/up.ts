/**
 * `infergate up` (what `npm start` runs). Until the gateway lands this starts one worker serving the
 * demo models on port 8080 (or --port), so the README's curl works from a fresh clone.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runWorker } from '../../worker/main.ts';

export async function runUp(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { port: { type: 'string', default: '8080' }, host: { type: 'string', default: '127.0.0.1' }, models: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log('infergate up [--port 8080] [--host 127.0.0.1] [--models <dir>]\n  Serves the demo models (models/) on one local port.');
    return 0;
  }
  const models = values.models ?? fileURLToPath(new URL('../../models/', import.meta.url));
  return runWorker(['--models', models, '--port', values.port!, '--host', values.host!]);
}
