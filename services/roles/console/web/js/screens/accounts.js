// Accounts and API tokens (admin): add and remove users, create and revoke tokens. A generated
// password or a token's secret is shown once, as the server returns it once.

import { el, fill, select } from '../dom.js';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { dateTime } from '../format.js';

const ROLES = ['agent', 'supervisor', 'admin', 'connector', 'viewer'];

export function render(main) {
  const users = el('tbody', { id: 'users-rows' });
  const tokens = el('tbody', { id: 'tokens-rows' });
  const secret = el('div', { id: 'account-secret', role: 'status' });
  const error = el('p', { class: 'error', role: 'alert' });
  const roleOptions = ROLES.map((r) => [r, t(`role.${r}`)]);

  async function load() {
    try {
      const [u, k] = await Promise.all([api('/v1/users'), api('/v1/tokens')]);
      fill(users, u.map((user) => el('tr', { data: { name: user.name } },
        el('td', {}, user.name), el('td', {}, t(`role.${user.role}`)),
        el('td', {}, el('button', { type: 'button', class: 'danger', on: { click: () => act(() => api(`/v1/users/${encodeURIComponent(user.name)}`, { method: 'DELETE' })) } }, t('accounts.remove'))))));
      fill(tokens, k.map((token) => el('tr', { data: { id: token.id } },
        el('td', {}, token.name), el('td', {}, t(`role.${token.role}`)), el('td', {}, dateTime(token.created_at_ms)),
        el('td', {}, el('button', { type: 'button', class: 'danger', on: { click: () => act(() => api(`/v1/tokens/${encodeURIComponent(token.id)}`, { method: 'DELETE' })) } }, t('accounts.revoke'))))));
    } catch (e) {
      fill(error, e.message);
    }
  }

  async function act(f, shown) {
    fill(error);
    try {
      const reply = await f();
      fill(secret, shown ? shown(reply) : null);
      load();
    } catch (e) {
      fill(error, e.message);
    }
  }

  const userName = el('input', { id: 'user-name', required: true, 'aria-label': t('accounts.name'), placeholder: t('accounts.name') });
  const userRole = select({ id: 'user-role', 'aria-label': t('accounts.role') }, roleOptions, 'agent');
  const tokenName = el('input', { id: 'token-name', required: true, 'aria-label': t('accounts.name'), placeholder: t('accounts.name') });
  const tokenRole = select({ id: 'token-role', 'aria-label': t('accounts.role') }, roleOptions, 'connector');
  const once = (label, value) => el('p', { class: 'ok' }, label, ' ', el('code', { class: 'secret' }, value));

  fill(main, el('section', { class: 'accounts' },
    el('h1', {}, t('accounts.title')), error, secret,
    el('div', { class: 'columns' },
      el('section', { class: 'card' }, el('h2', {}, t('accounts.users')),
        el('form', { class: 'row', on: { submit: (e) => { e.preventDefault(); act(() => api('/v1/users', { method: 'POST', body: { name: userName.value, role: userRole.value } }), (r) => once(t('accounts.password_once', { name: r.name }), r.password)); } } },
          userName, userRole, el('button', { type: 'submit', id: 'user-add' }, t('accounts.add'))),
        el('table', { class: 'rows' }, el('thead', {}, el('tr', {}, ['accounts.name', 'accounts.role', ''].map((k) => el('th', {}, k ? t(k) : '')))), users)),
      el('section', { class: 'card' }, el('h2', {}, t('accounts.tokens')),
        el('form', { class: 'row', on: { submit: (e) => { e.preventDefault(); act(() => api('/v1/tokens', { method: 'POST', body: { name: tokenName.value, role: tokenRole.value } }), (r) => once(t('accounts.token_once', { name: r.name }), r.token)); } } },
          tokenName, tokenRole, el('button', { type: 'submit', id: 'token-add' }, t('accounts.create'))),
        el('table', { class: 'rows' }, el('thead', {}, el('tr', {}, ['accounts.name', 'accounts.role', 'accounts.created', ''].map((k) => el('th', {}, k ? t(k) : '')))), tokens)))));
  load();
}
