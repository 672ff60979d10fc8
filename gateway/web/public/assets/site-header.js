/**
 * The site header, one definition for every page: the brand and the navigation of the port the
 * page is served on. The public port has the playground and the API reference; the admin port the
 * dashboard, the keys and the API reference. A page names its site in `data-site` ("public",
 * "admin", or "either" for docs.html, which both ports serve) and itself in `data-current`.
 */
import { h, replaceChildren } from './dom.js';

const PAGES = {
  public: [['index.html', 'Playground'], ['docs.html', 'API reference']],
  admin: [['dashboard.html', 'Pool dashboard'], ['keys.html', 'API keys'], ['docs.html', 'API reference']],
};

/** Fills `header.site-header`; for data-site="either" it first asks which port this is. */
export async function renderSiteHeader() {
  const header = document.querySelector('header.site-header');
  if (header === null) return;
  const site = header.dataset.site === 'either' ? await whichSite() : header.dataset.site;
  const current = header.dataset.current;
  replaceChildren(header,
    h('span', { className: 'brand' }, site === 'admin' ? 'infergate admin' : 'infergate'),
    h('nav', { 'aria-label': 'Pages' }, h('ul', {}, PAGES[site].map(([href, text]) => h('li', {},
      h('a', { href, 'aria-current': href === current ? 'page' : undefined }, text))))));
}

/** Only the admin port serves /admin/* (401 without a token); the public port answers 404. */
async function whichSite() {
  try {
    const response = await fetch('/admin/strategy', { cache: 'no-store', credentials: 'omit' });
    return response.status === 404 ? 'public' : 'admin';
  } catch {
    return 'public';
  }
}
