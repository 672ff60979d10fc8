/**
 * The web application's routes, on both ports: the pages and assets of gateway/web/public/ under
 * `/ui/`, Swagger UI's files under `/ui/vendor/swagger-ui/`, the OpenAPI document at
 * `/openapi.json`, and redirects from `/` and `/ui` to `/ui/`. None needs a credential: the pages
 * ask for one and send it in headers to the API routes, which check it.
 *
 * `/ui/` is the playground (index.html) on the public port and the pool dashboard
 * (dashboard.html) on the admin port, where the inference API the playground calls does not exist.
 * Every answer carries the Content-Security-Policy below and `Cache-Control: no-cache` (the
 * browser revalidates with the ETag or Last-Modified each time, so a new release is seen at once).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Request, type Response } from 'express';
import { InfergateError } from '../../shared/errors.ts';
import { sendStaticFile } from './static-files.ts';

/**
 * No inline script anywhere; inline styles are allowed because Swagger UI sets style attributes;
 * images may be data: or blob: URLs (Swagger UI's icons, the playground's canvas and uploads).
 */
export const CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('./public/', import.meta.url));

/** The only files of swagger-ui-dist served: what the API reference page loads, and their source maps. */
const SWAGGER_UI_FILES = ['swagger-ui.css', 'swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js'];

export interface WebRouteOptions {
  side: 'public' | 'admin';
  /** The directory served at /ui/ (default gateway/web/public/). */
  root: string;
  /** The OpenAPI document as served on this side. */
  openApi: object;
}

const WEB_HEADERS = { 'cache-control': 'no-cache', 'content-security-policy': CONTENT_SECURITY_POLICY };

export function webRoutes(options: WebRouteOptions): express.Router {
  const router = express.Router({ strict: true }); // `/ui` redirects, `/ui/` is the page
  const indexPage = options.side === 'public' ? 'index.html' : 'dashboard.html';
  const swaggerDir = swaggerUiDir();
  const vendorFiles = new Set(SWAGGER_UI_FILES.flatMap((f) => [f, `${f}.map`]).filter((f) => existsSync(join(swaggerDir, f))));
  const openApiJson = JSON.stringify(options.openApi);

  const redirect = (_req: Request, res: Response): void => {
    res.set(WEB_HEADERS).redirect(302, '/ui/');
  };
  const send = async (res: Response, root: string, segments: readonly string[], what: string): Promise<void> => {
    if (!(await sendStaticFile(res, root, segments, WEB_HEADERS))) throw new InfergateError('ERR_NOT_FOUND', `no file ${what}`);
  };

  router.get('/', redirect);
  router.get('/ui', redirect);
  router.get('/ui/', (_req, res) => send(res, options.root, [indexPage], `/ui/${indexPage}`));
  router.get('/ui/vendor/swagger-ui/:file', async (req, res) => {
    const file = String(req.params.file);
    if (!vendorFiles.has(file)) throw new InfergateError('ERR_NOT_FOUND', 'no such Swagger UI file');
    await send(res, swaggerDir, [file], file);
  });
  router.get('/ui/*path', async (req, res) => {
    const segments = req.params.path as unknown as string[]; // express 5: a wildcard is its decoded segments
    await send(res, options.root, segments, 'at that path under /ui/');
  });
  router.get('/openapi.json', (_req, res) => {
    res.set(WEB_HEADERS).type('application/json').send(openApiJson); // express adds the ETag and answers 304
  });
  return router;
}

/** swagger-ui-dist's own answer to where its files are (without loading its 1.5 MB bundle). */
function swaggerUiDir(): string {
  const getAbsoluteFSPath = createRequire(import.meta.url)('swagger-ui-dist/absolute-path.js') as () => string;
  return getAbsoluteFSPath();
}
