// The decision board: the newest decisions, filtered on the server (/v1/board), kept live by the
// event stream: a changed ticket already shown is redrawn in place; a new one is put on top when no
// filter is set, and otherwise the first page is asked for again, so the server's filter is the
// only one.

import { el, fill, select } from '../dom.js';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { subscribe, throttle } from '../live.js';
import { age, percent, priorityLabel, stateLabel } from '../format.js';

const WINDOWS = [['', 'board.window.all'], ['3600000', 'board.window.hour'], ['86400000', 'board.window.day'], ['604800000', 'board.window.week']];

// What the board showed last, so returning from a ticket keeps the reader's filters.
let filters = { department: '', outcome: '', priority: '', escalated: '', channel: '', window: '', state: '', q: '' };

export function render(main) {
  const body = el('tbody', { id: 'board-rows' });
  const more = el('button', { type: 'button', id: 'board-more', hidden: true, on: { click: () => load(next) } }, t('board.more'));
  const count = el('span', { class: 'muted', id: 'board-count' });
  const error = el('p', { class: 'error', role: 'alert' });
  const shown = new Map();
  let next = null;
  let firstPaint = true;

  const departmentSelect = select({ name: 'department', 'aria-label': t('board.department') }, [['', t('board.any_department')]], '');
  api('/v1/departments', { query: { limit: 1000 } }).then((page) => {
    for (const d of page.departments) departmentSelect.append(el('option', { value: d.id }, d.id));
    departmentSelect.value = filters.department;
  }).catch((e) => fill(error, e.message));

  const form = el('form', { class: 'filters', id: 'board-filters', on: { submit: (e) => { e.preventDefault(); apply(); }, change: apply } },
    departmentSelect,
    select({ name: 'outcome', 'aria-label': t('board.outcome') }, [['', t('board.any_outcome')], ['routed', t('outcome.routed')], ['review', t('outcome.review')]], filters.outcome),
    select({ name: 'priority', 'aria-label': t('board.priority') }, [['', t('board.any_priority')], ...['urgent', 'high', 'normal', 'low'].map((p) => [p, t(`priority.${p}`)])], filters.priority),
    select({ name: 'escalated', 'aria-label': t('board.escalated') }, [['', t('board.any_escalation')], ['true', t('board.escalated')], ['false', t('board.not_escalated')]], filters.escalated),
    select({ name: 'state', 'aria-label': t('board.state') }, [['', t('board.any_state')], ...['received', 'routed', 'in_review', 'assigned', 'in_progress', 'resolved', 'reopened'].map((s) => [s, t(`state.${s}`)])], filters.state),
    el('input', { name: 'channel', placeholder: t('board.channel'), 'aria-label': t('board.channel'), value: filters.channel, size: 8 }),
    select({ name: 'window', 'aria-label': t('board.window') }, WINDOWS.map(([v, k]) => [v, t(k)]), filters.window),
    el('input', { name: 'q', type: 'search', id: 'board-search', placeholder: t('board.search'), 'aria-label': t('board.search'), value: filters.q }),
    el('button', { type: 'submit' }, t('board.apply')));

  function apply() {
    filters = Object.fromEntries(new FormData(form).entries());
    load(null);
  }

  function query(cursor) {
    const since = filters.window ? Date.now() - Number(filters.window) : '';
    return { ...filters, window: undefined, since_ms: since, limit: 50, cursor };
  }

  const unfiltered = () => Object.values(filters).every((v) => !v);

  async function load(cursor) {
    fill(error);
    try {
      const page = await api('/v1/board', { query: query(cursor) });
      if (!cursor) {
        body.replaceChildren();
        shown.clear();
      }
      for (const r of page.rows) {
        const tr = row(r);
        shown.set(r.ticket_id, tr);
        body.append(tr);
      }
      next = page.next;
      more.hidden = !next;
      fill(count, t('board.count', { shown: shown.size, matched: page.matched }));
      if (firstPaint) markPainted();
    } catch (e) {
      fill(error, e.message);
    }
  }

  // The benchmark and the browser test read this mark: the first rows are on screen once the frame
  // after the one they were added in has started.
  function markPainted() {
    firstPaint = false;
    requestAnimationFrame(() => requestAnimationFrame(() => {
      performance.mark('board:rows-painted');
      main.dataset.painted = 'true';
    }));
  }

  const reload = throttle(() => load(null), 1000);

  const unsubscribe = subscribe((r) => {
    const old = shown.get(r.ticket_id);
    if (old) {
      const tr = row(r);
      old.replaceWith(tr);
      shown.set(r.ticket_id, tr);
    } else if (unfiltered()) {
      const tr = row(r);
      tr.classList.add('fresh');
      shown.set(r.ticket_id, tr);
      body.prepend(tr);
    } else {
      reload();
    }
  }, reload);

  // Ages grow while the board is open.
  const ticking = setInterval(() => {
    for (const cell of body.querySelectorAll('td.age')) fill(cell, age(Number(cell.dataset.at)));
  }, 15000);

  fill(main,
    el('section', { class: 'board' },
      el('div', { class: 'heading' }, el('h1', {}, t('board.title')), count),
      form, error,
      el('div', { class: 'table-wrap' },
        el('table', { class: 'rows', id: 'board' },
          el('thead', {}, el('tr', {}, ['board.age', 'board.text', 'board.department', 'board.confidence', 'board.priority', 'board.assignee', 'board.state']
            .map((k) => el('th', {}, t(k))))),
          body)),
      more));
  load(null);
  return () => {
    unsubscribe();
    clearInterval(ticking);
  };
}

function row(r) {
  const open = () => { location.hash = `#/ticket/${encodeURIComponent(r.ticket_id)}`; };
  return el('tr', { data: { id: r.ticket_id }, tabindex: 0, class: r.outcome === 'review' ? 'review' : '', on: { click: open, keydown: (e) => { if (e.key === 'Enter') open(); } } },
    el('td', { class: 'age', data: { at: r.received_at_ms } }, age(r.received_at_ms)),
    el('td', { class: 'text' }, el('span', { class: 'masked' }, r.text || t('board.pending')),
      r.escalated ? el('span', { class: 'tag warn' }, t('board.escalated')) : null,
      r.corrected ? el('span', { class: 'tag' }, t('board.corrected')) : null),
    el('td', { class: 'department' }, r.department || '—'),
    el('td', { class: 'num confidence' }, percent(r.confidence)),
    el('td', { class: `priority p-${r.priority}` }, priorityLabel(r.priority)),
    el('td', { class: 'assignee' }, r.assignee || '—'),
    el('td', { class: 'state' }, el('span', { class: `tag s-${r.state}` }, stateLabel(r.state)),
      r.outcome ? el('span', { class: 'outcome muted' }, t(`outcome.${r.outcome}`)) : null));
}
