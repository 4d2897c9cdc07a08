// The rules editor (admin): the live rules; a form to create or edit one; every save, disable or
// delete first shows the what-if preview (how many recent tickets would be decided otherwise, and
// examples), and Save stays off until the preview shown is of exactly what would be saved. Each
// rule's history says who changed what.

import { el, fill } from '../dom.js';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { dateTime, number, percent } from '../format.js';

export function render(main) {
  const list = el('tbody', { id: 'rules-rows' });
  const editor = el('div', { id: 'rule-editor' });
  const error = el('p', { class: 'error', role: 'alert' });
  const catalog = el('datalist', { id: 'rule-departments' });

  async function loadList() {
    try {
      const [page, departments] = await Promise.all([api('/v1/rules', { query: { limit: 1000 } }), api('/v1/departments', { query: { limit: 1000 } })]);
      fill(catalog, departments.departments.map((d) => el('option', { value: d.id })));
      fill(list, page.rules.map((r) => el('tr', { data: { id: r.id }, class: r.enabled ? '' : 'disabled' },
        el('td', {}, r.id),
        el('td', {}, r.keywords.join(', ')),
        el('td', {}, r.department),
        el('td', { class: 'num' }, number(r.weight, 2)),
        el('td', {}, r.enabled ? t('rules.on') : t('rules.off')),
        el('td', { class: 'actions' },
          el('button', { type: 'button', on: { click: () => edit(r.id) } }, t('rules.edit')),
          el('button', { type: 'button', on: { click: () => edit(r.id, { toggle: true }) } }, r.enabled ? t('rules.disable') : t('rules.enable')),
          el('button', { type: 'button', class: 'danger', on: { click: () => remove(r.id) } }, t('rules.delete')),
          el('button', { type: 'button', on: { click: () => history(r.id) } }, t('rules.history'))))));
    } catch (e) {
      fill(error, e.message);
    }
  }

  async function edit(id, { toggle = false } = {}) {
    const stored = id ? await api(`/v1/rules/${encodeURIComponent(id)}`) : { rule: { id: '', keywords: [], department: '', weight: 1, enabled: true, description: '' }, revision: 0 };
    if (toggle) stored.rule.enabled = !stored.rule.enabled;
    form(stored, Boolean(id));
    if (toggle) document.getElementById('rule-preview').click();
  }

  function form(stored, existing) {
    const r = stored.rule;
    const fields = {
      id: el('input', { id: 'rule-id', value: r.id, required: true, readonly: existing }),
      keywords: el('input', { id: 'rule-keywords', value: r.keywords.join(', '), required: true }),
      department: el('input', { id: 'rule-department', value: r.department, list: 'rule-departments', required: true }),
      weight: el('input', { id: 'rule-weight', type: 'number', step: '0.1', min: '0', value: r.weight }),
      description: el('input', { id: 'rule-description', value: r.description }),
    };
    const enabled = el('input', { id: 'rule-enabled', type: 'checkbox', checked: r.enabled });
    const report = el('div', { id: 'rule-report' });
    const message = el('p', { class: 'error', role: 'alert', id: 'rule-error' });
    let previewed = null;
    const save = el('button', { type: 'button', id: 'rule-save', class: 'primary', disabled: true, on: { click: saveRule } }, t('rules.save'));

    const rule = () => ({
      id: fields.id.value.trim(),
      keywords: fields.keywords.value.split(/[,，]/).map((k) => k.trim()).filter(Boolean),
      department: fields.department.value.trim(),
      weight: Number(fields.weight.value),
      enabled: enabled.checked,
      description: fields.description.value,
    });
    // Any edit after the preview asks for a new one before saving.
    const stale = () => { save.disabled = true; previewed = null; };

    async function preview() {
      fill(message);
      const proposed = rule();
      try {
        const result = await api('/v1/rules/preview', { method: 'POST', body: { put: [proposed], examples: 5 } });
        fill(report, previewReport(result));
        previewed = JSON.stringify(proposed);
        save.disabled = false;
      } catch (e) {
        fill(message, e.message);
      }
    }

    async function saveRule() {
      const proposed = rule();
      if (JSON.stringify(proposed) !== previewed) return stale();
      try {
        if (existing) await api(`/v1/rules/${encodeURIComponent(proposed.id)}`, { method: 'PUT', query: { expected_revision: stored.revision }, body: proposed });
        else await api('/v1/rules', { method: 'POST', body: proposed });
        fill(editor, el('p', { class: 'ok', id: 'rule-saved' }, t('rules.saved', { id: proposed.id })));
        loadList();
      } catch (e) {
        fill(message, e.status === 409 ? t('rules.conflict') : e.message);
      }
    }

    fill(editor, el('form', { class: 'card rule-form', on: { input: stale, change: stale, submit: (e) => e.preventDefault() } },
      el('h2', {}, existing ? t('rules.editing', { id: r.id }) : t('rules.new')),
      el('label', {}, t('rules.id'), fields.id),
      el('label', {}, t('rules.keywords'), fields.keywords),
      el('label', {}, t('rules.department'), fields.department),
      el('label', {}, t('rules.weight'), fields.weight),
      el('label', {}, t('rules.description'), fields.description),
      el('label', { class: 'inline' }, enabled, t('rules.enabled')),
      el('div', { class: 'row' }, el('button', { type: 'button', id: 'rule-preview', on: { click: preview } }, t('rules.preview')), save),
      message, report));
  }

  async function remove(id) {
    try {
      const stored = await api(`/v1/rules/${encodeURIComponent(id)}`);
      const result = await api('/v1/rules/preview', { method: 'POST', body: { delete: [id], examples: 5 } });
      const confirm = el('button', { type: 'button', class: 'danger', id: 'rule-confirm-delete', on: { click: async () => {
        try {
          await api(`/v1/rules/${encodeURIComponent(id)}`, { method: 'DELETE', query: { expected_revision: stored.revision } });
          fill(editor, el('p', { class: 'ok' }, t('rules.deleted', { id })));
          loadList();
        } catch (e) {
          fill(error, e.status === 409 ? t('rules.conflict') : e.message);
        }
      } } }, t('rules.confirm_delete', { id }));
      fill(editor, el('section', { class: 'card' }, el('h2', {}, t('rules.deleting', { id })), previewReport(result), confirm));
    } catch (e) {
      fill(error, e.message);
    }
  }

  async function history(id) {
    try {
      const page = await api(`/v1/rules/${encodeURIComponent(id)}/history`);
      fill(editor, el('section', { class: 'card', id: 'rule-history' }, el('h2', {}, t('rules.history_of', { id })),
        el('table', { class: 'rows' },
          el('thead', {}, el('tr', {}, ['rules.revision', 'rules.action', 'rules.by', 'rules.at', 'rules.keywords', 'rules.department', 'rules.enabled'].map((k) => el('th', {}, t(k))))),
          el('tbody', {}, page.versions.map((v) => el('tr', {},
            el('td', { class: 'num' }, v.revision),
            el('td', {}, t(`rules.action.${String(v.action).toLowerCase()}`)),
            el('td', {}, v.by),
            el('td', {}, dateTime(v.at_ms)),
            el('td', {}, v.rule.keywords.join(', ')),
            el('td', {}, v.rule.department),
            el('td', {}, v.rule.enabled ? t('rules.on') : t('rules.off'))))))));
    } catch (e) {
      fill(error, e.message);
    }
  }

  fill(main, el('section', { class: 'rules' },
    el('div', { class: 'heading' }, el('h1', {}, t('rules.title')),
      el('button', { type: 'button', id: 'rule-new', class: 'primary', on: { click: () => edit(null) } }, t('rules.new'))),
    error, catalog,
    el('div', { class: 'table-wrap' }, el('table', { class: 'rows', id: 'rules' },
      el('thead', {}, el('tr', {}, ['rules.id', 'rules.keywords', 'rules.department', 'rules.weight', 'rules.enabled', ''].map((k) => el('th', {}, k ? t(k) : '')))),
      list)),
    editor));
  loadList();
}

/** What the preview found: replayed and changed counts, the moves, and examples with their text. */
function previewReport(r) {
  const where = (v) => (v.to === 'review' ? t('outcome.review') : v.department);
  return el('section', { class: 'preview', id: 'preview-report' },
    el('p', { id: 'preview-summary' }, t('rules.preview_summary', { replayed: r.replayed, changed: r.changed, days: r.days })),
    r.left_out ? el('p', { class: 'muted' }, t('rules.preview_left_out', { n: r.left_out })) : null,
    r.moves.length ? el('ul', { id: 'preview-moves' }, r.moves.map((m) => el('li', {}, t('rules.move', { from: m.from, to: m.to, n: m.count })))) : null,
    r.examples.length ? el('table', { class: 'rows' },
      el('thead', {}, el('tr', {}, ['board.text', 'rules.before', 'rules.after'].map((k) => el('th', {}, t(k))))),
      el('tbody', { id: 'preview-examples' }, r.examples.map((x) => el('tr', {},
        el('td', { class: 'text' }, x.text),
        el('td', {}, `${where(x.before)} (${percent(x.before.confidence)})`),
        el('td', {}, `${where(x.after)} (${percent(x.after.confidence)})`))))) : null);
}
