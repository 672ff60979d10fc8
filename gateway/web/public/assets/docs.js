/**
 * The API reference (docs.html): Swagger UI from the swagger-ui-dist package, served locally at
 * /ui/vendor/swagger-ui/, rendering the gateway's /openapi.json. The base layout has no box for
 * loading another document, and the online validator is off (machines may have no internet, and
 * the CSP allows no other origin anyway).
 */
import { byId, showMessage } from './dom.js';

/**
 * The same page is served on the public and the admin port; the navigation shows the pages of the
 * port it is on. Only the admin port answers /admin/* (401 without a token); the public one says 404.
 */
async function showNavigationForPort() {
  try {
    const response = await fetch('/admin/strategy', { cache: 'no-store', credentials: 'omit' });
    const admin = response.status !== 404;
    byId('nav-admin').hidden = !admin;
    byId('nav-public').hidden = admin;
    if (admin) byId('brand').textContent = 'infergate admin';
  } catch {
    // the public navigation stays
  }
}

function startSwaggerUi() {
  if (typeof window.SwaggerUIBundle !== 'function') {
    showMessage(byId('docs-message'), 'Swagger UI did not load; the raw document is at /openapi.json.', 'error');
    return;
  }
  window.SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    layout: 'BaseLayout',
    presets: [window.SwaggerUIBundle.presets.apis],
    validatorUrl: null,
    persistAuthorization: false,
    onComplete: () => byId('swagger-ui').setAttribute('data-loaded', 'true'),
  });
}

void showNavigationForPort();
startSwaggerUi();
