// The console's shell: the header with the navigation the logged-in role may use, the language
// switch and the live status, and a hash router that shows one screen at a time.

import { el, fill, select } from './dom.js';
import { t, lang, languages, setLang, onLangChange } from './i18n.js';
import { session, forget, can } from './session.js';
import { api, whenUnauthorized } from './api.js';
import * as live from './live.js';
import * as login from './screens/login.js';
import * as board from './screens/board.js';
import * as detail from './screens/detail.js';
import * as review from './screens/review.js';
import * as cockpit from './screens/cockpit.js';
import * as rules from './screens/rules.js';
import * as departments from './screens/departments.js';
import * as accounts from './screens/accounts.js';
import * as agents from './screens/agents.js';

// Each screen, the capability it needs, and whether the navigation lists it. The server checks
// every request again; this only keeps people from links that would answer 403.
const SCREENS = {
  board: { screen: board, needs: 'read', nav: true },
  review: { screen: review, needs: 'work', nav: true },
  cockpit: { screen: cockpit, needs: 'read', nav: true },
  agents: { screen: agents, needs: 'work', nav: true },
  rules: { screen: rules, needs: 'admin', nav: true },
  departments: { screen: departments, needs: 'admin', nav: true },
  accounts: { screen: accounts, needs: 'admin', nav: true },
  ticket: { screen: detail, needs: 'read', nav: false },
};

const top = document.getElementById('top');
const main = document.getElementById('screen');
let cleanup = null;
let liveStatus = 'closed';

live.onStatus((status) => {
  liveStatus = status;
  const badge = document.getElementById('live');
  if (badge) fill(badge, t(`live.${status}`)).dataset.status = status;
});

function route() {
  const [name, ...params] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  return { name: name || 'board', params };
}

function header() {
  const s = session();
  const current = route().name;
  const languageSwitch = select({ id: 'lang', 'aria-label': t('nav.language'), on: { change: (e) => setLang(e.target.value) } },
    languages().map((l) => [l, t(`lang.${l}`)]), lang());
  if (!s) return fill(top, el('span', { class: 'brand' }, 'Switchboard'), el('span', { class: 'spacer' }), languageSwitch);
  const links = Object.entries(SCREENS)
    .filter(([, s]) => s.nav && can(s.needs))
    .map(([name]) => el('a', { href: `#/${name}`, class: name === current ? 'active' : '', id: `nav-${name}` }, t(`nav.${name}`)));
  return fill(top,
    el('span', { class: 'brand' }, 'Switchboard'),
    el('nav', {}, links),
    el('span', { class: 'spacer' }),
    el('span', { id: 'live', class: 'live', data: { status: liveStatus } }, t(`live.${liveStatus}`)),
    languageSwitch,
    el('span', { class: 'who', id: 'who' }, `${s.name} · ${t(`role.${s.role}`)}`),
    el('button', { type: 'button', id: 'logout', on: { click: logout } }, t('nav.logout')));
}

async function logout() {
  try {
    await api('/v1/logout', { method: 'POST' });
  } finally {
    forget();
    live.disconnect();
    show();
  }
}

/** Shows the screen the address names, or the login when nobody is logged in. */
export function show() {
  if (cleanup) cleanup();
  cleanup = null;
  header();
  if (!session()) {
    cleanup = login.render(main, () => {
      live.connect();
      show();
    });
    return;
  }
  live.connect();
  const { name, params } = route();
  const entry = SCREENS[name] ?? SCREENS.board;
  if (!can(entry.needs)) {
    fill(main, el('p', { class: 'error', id: 'forbidden' }, t('error.forbidden')));
    return;
  }
  cleanup = entry.screen.render(main, params) ?? null;
}

whenUnauthorized(show);
window.addEventListener('hashchange', show);
onLangChange(show);
show();
