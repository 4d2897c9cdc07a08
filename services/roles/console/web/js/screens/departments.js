// The department catalog (admin): each department's duty description, which the retriever embeds as
// evidence (a department without history receives tickets by it) and the LLM parser puts in its prompt,
// and the rules that route to it. Saving sends only the descriptions that changed.

import { el, fill } from '../dom.js';
import { t } from '../i18n.js';
import { api } from '../api.js';

export function render(main) {
  const body = el('tbody', { id: 'departments-rows' });
  const message = el('p', { role: 'status', id: 'departments-status' });
  let loaded = new Map();

  async function load() {
    try {
      const page = await api('/v1/departments', { query: { limit: 1000 } });
      loaded = new Map(page.departments.map((d) => [d.id, d.description]));
      fill(body, page.departments.map((d) => el('tr', { data: { id: d.id } },
        el('td', {}, d.id, d.in_catalog ? null : el('span', { class: 'tag warn' }, t('departments.rules_only'))),
        el('td', {}, el('textarea', { class: 'description', rows: 2, maxlength: 4000, value: d.description, 'aria-label': t('departments.description'), data: { id: d.id } })),
        el('td', {}, d.rules.join(', ') || '—'))));
    } catch (e) {
      fill(message, e.message);
    }
  }

  async function save() {
    const changed = [...body.querySelectorAll('textarea.description')]
      .filter((input) => input.value !== loaded.get(input.dataset.id))
      .map((input) => ({ id: input.dataset.id, description: input.value }));
    if (!changed.length) return fill(message, t('departments.unchanged'));
    try {
      await api('/v1/departments', { method: 'PUT', body: { departments: changed } });
      fill(message, t('departments.saved', { n: changed.length }));
      load();
    } catch (e) {
      fill(message, e.message);
    }
  }

  fill(main, el('section', { class: 'departments' },
    el('div', { class: 'heading' }, el('h1', {}, t('departments.title')),
      el('button', { type: 'button', class: 'primary', id: 'departments-save', on: { click: save } }, t('departments.save'))),
    message,
    el('div', { class: 'table-wrap' }, el('table', { class: 'rows' },
      el('thead', {}, el('tr', {}, ['departments.id', 'departments.description', 'departments.rules'].map((k) => el('th', {}, t(k))))),
      body))));
  load();
}
