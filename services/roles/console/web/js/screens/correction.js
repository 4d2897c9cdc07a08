// One-click correction: the reason is chosen first (wrong department unless the reader picks
// another), then one click on a department sends the correction; the runner-up comes first, then
// the departments the evidence named, then the rest of the catalog. "Confirm" accepts the decision;
// "Resolved" closes the ticket where it is.

import { el, fill } from '../dom.js';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { reasonLabel } from '../format.js';

export const REASONS = ['wrong_department', 'policy_updated', 'system_upgraded', 'responsibility_changed', 'other'];

/** The departments to offer for `ticket`, best alternative first, never the current one. */
export function choices(ticket, state, catalog) {
  const current = state?.department ?? ticket?.decision?.department;
  const d = ticket?.decision;
  const ordered = [d?.runner_up, ...(d?.evidence ?? []).map((e) => e.department), ...catalog];
  return [...new Set(ordered.filter((x) => x && x !== current))];
}

/**
 * The correction panel; `done(state)` runs after the server accepted a confirm or a correction.
 * With `keys`, the buttons show the review queue's keyboard shortcuts.
 */
export function panel(id, ticket, state, catalog, done, { keys = false } = {}) {
  const key = (label) => (keys ? el('kbd', {}, label) : null);
  let reason = REASONS[0];
  const message = el('p', { class: 'error', role: 'alert', id: 'correction-error' });
  const note = el('input', { id: 'correction-note', placeholder: t('correct.note'), 'aria-label': t('correct.note') });
  const reasons = el('div', { class: 'chips', role: 'radiogroup', 'aria-label': t('correct.reason') },
    REASONS.map((r) => el('label', { class: 'chip' },
      el('input', { type: 'radio', name: 'reason', value: r, checked: r === reason, data: { reason: r }, on: { change: () => { reason = r; } } }),
      reasonLabel(r))));
  const departments = choices(ticket, state, catalog).map((d, i) =>
    el('button', { type: 'button', class: i === 0 ? 'dept primary' : 'dept', data: { department: d }, title: keys && i < 9 ? t('correct.key', { n: i + 1 }) : false, on: { click: () => correct(d) } },
      i < 9 ? key(String(i + 1)) : null, d));

  async function send(path, body) {
    fill(message);
    try {
      done(await api(`/v1/tickets/${encodeURIComponent(id)}/${path}`, { method: 'POST', body }));
    } catch (e) {
      fill(message, e.message);
    }
  }
  const correct = (department) => send('correction', { department, reason, note: note.value });
  const confirm = () => send('confirm', { note: note.value });
  const resolve = () => send('resolution', { note: note.value });

  const node = el('section', { class: 'card correction', id: 'correction' },
    el('h2', {}, t('correct.title')),
    el('div', { class: 'row' },
      el('button', { type: 'button', id: 'confirm', class: 'primary', disabled: !state?.department, on: { click: confirm } }, key('c'), t('correct.confirm', { department: state?.department || '—' })),
      el('button', { type: 'button', id: 'resolve', on: { click: resolve } }, t('correct.resolve')),
      note),
    el('h3', {}, t('correct.reason')), reasons,
    el('h3', {}, t('correct.department')), el('div', { class: 'departments' }, departments),
    message);
  // The review queue drives the same panel from the keyboard.
  return { node, confirm, correctNth: (n) => departments[n] && departments[n].click() };
}
