/**
 * The API reference (docs.html): Swagger UI from the swagger-ui-dist package, served locally at
 * /ui/vendor/swagger-ui/, rendering the gateway's /openapi.json. The base layout has no box for
 * loading another document, and the online validator is off (machines may have no internet, and
 * the CSP allows no other origin anyway).
 */
import { byId, showMessage } from './dom.js';
import { renderSiteHeader } from './site-header.js';

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

void renderSiteHeader();
startSwaggerUi();
