// Login with a local account, or through the identity provider when the server offers it. Either
// way the server answers a session token, kept in sessionStorage, and the capabilities of the role,
// which decide the navigation. The provider's login comes back to the console's address with a
// one-time code (?sso=…), redeemed here for the session, or with why it failed: a reason word this
// screen words in the reader's language (?sso_reason=…) and the server's own message (?sso_error=…).

import { el, fill } from '../dom.js';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { remember } from '../session.js';

/** The reasons the server gives for a failed login through the identity provider. */
const SSO_REASONS = ['flow', 'refused', 'no_role', 'unavailable', 'invalid'];

export function render(main, done) {
  const name = el('input', { id: 'login-name', name: 'name', autocomplete: 'username', required: true });
  const password = el('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const message = el('p', { class: 'error', id: 'login-error', role: 'alert' });
  const sso = el('p', { class: 'sso' });
  const form = el('form', { class: 'login card', on: { submit } },
    el('h1', {}, t('login.title')),
    el('label', {}, t('login.name'), name),
    el('label', {}, t('login.password'), password),
    el('button', { type: 'submit', id: 'login-submit' }, t('login.submit')),
    sso,
    message);

  async function submit(event) {
    event.preventDefault();
    fill(message);
    try {
      await opened(await api('/v1/login', { method: 'POST', body: { name: name.value, password: password.value } }));
    } catch (e) {
      fill(message, e.status === 401 ? t('login.wrong') : e.status === 429 ? t('login.limited') : e.message);
    }
  }

  async function opened(reply) {
    remember({ token: reply.token, name: reply.name, role: reply.role, expires_at_ms: reply.expires_at_ms, capabilities: [] });
    const me = await api('/v1/me');
    remember({ token: reply.token, name: me.name, role: me.role, expires_at_ms: reply.expires_at_ms, capabilities: me.capabilities });
    done();
  }

  async function offerSso() {
    const info = await api('/v1/sso');
    if (info.enabled) fill(sso, el('a', { href: '/v1/sso/start', id: 'login-sso', class: 'button' }, t('login.sso', { label: info.label })));
  }

  // What the identity provider's login came back with, taken out of the address so a reload or a
  // bookmark does not replay it.
  async function returned() {
    const params = new URLSearchParams(location.search);
    const code = params.get('sso');
    const error = params.get('sso_error');
    const reason = params.get('sso_reason');
    if (code === null && error === null) return;
    history.replaceState(null, '', location.pathname + location.hash);
    if (error !== null) {
      const worded = SSO_REASONS.includes(reason) ? t(`login.sso_${reason}`) : t('login.sso_failed', { reason: error });
      fill(message, worded, el('small', { class: 'detail', id: 'login-sso-detail' }, error));
      return;
    }
    try {
      await opened(await api('/v1/sso/redeem', { method: 'POST', body: { code } }));
    } catch (e) {
      fill(message, t('login.sso_failed', { reason: e.message }));
    }
  }

  fill(main, form);
  name.focus();
  offerSso().catch((e) => fill(message, e.message));
  returned();
}
