// Login with a local account: the server answers a session token, kept in sessionStorage, and the
// capabilities of the role, which decide the navigation.

import { el, fill } from '../dom.js';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { remember } from '../session.js';

export function render(main, done) {
  const name = el('input', { id: 'login-name', name: 'name', autocomplete: 'username', required: true });
  const password = el('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const message = el('p', { class: 'error', id: 'login-error', role: 'alert' });
  const form = el('form', { class: 'login card', on: { submit } },
    el('h1', {}, t('login.title')),
    el('label', {}, t('login.name'), name),
    el('label', {}, t('login.password'), password),
    el('button', { type: 'submit', id: 'login-submit' }, t('login.submit')),
    message);

  async function submit(event) {
    event.preventDefault();
    fill(message);
    try {
      const reply = await api('/v1/login', { method: 'POST', body: { name: name.value, password: password.value } });
      remember({ token: reply.token, name: reply.name, role: reply.role, expires_at_ms: reply.expires_at_ms, capabilities: [] });
      const me = await api('/v1/me');
      remember({ token: reply.token, name: me.name, role: me.role, expires_at_ms: reply.expires_at_ms, capabilities: me.capabilities });
      done();
    } catch (e) {
      fill(message, e.status === 401 ? t('login.wrong') : e.status === 429 ? t('login.limited') : e.message);
    }
  }

  fill(main, form);
  name.focus();
}
