// One decision in full: the ticket as masked, the parsed problem, the decision and its runner-up,
// the similar tickets, each department's share of them, the rules that fired, escalation and
// priority, versions and history; and, for those who work tickets, the correction panel.

import { el, fill } from '../dom.js';
import { t, localized } from '../i18n.js';
import { api } from '../api.js';
import { can } from '../session.js';
import { subscribe, throttle } from '../live.js';
import { explain, priorityStep } from '../explain.js';
import { age, dateTime, duration, number, percent, priorityLabel, stateLabel, shortName } from '../format.js';
import { panel } from './correction.js';

export function render(main, [id]) {
  let catalog = [];
  const reload = throttle(() => load(), 300);

  async function load() {
    try {
      const [view, departments] = await Promise.all([
        api(`/v1/tickets/${encodeURIComponent(id)}`),
        catalog.length ? null : api('/v1/departments', { query: { limit: 1000 } }),
      ]);
      if (departments) catalog = departments.departments.map((d) => d.id);
      fill(main, page(id, view, catalog, () => reload()));
    } catch (e) {
      fill(main, el('p', { class: 'error', role: 'alert' }, e.message));
    }
  }

  const unsubscribe = subscribe((row) => { if (row.ticket_id === id) reload(); }, reload);
  fill(main, el('p', { class: 'muted' }, t('detail.loading')));
  load();
  return unsubscribe;
}

/**
 * The whole detail view of `view` ({state, ticket}); `changed` runs after a confirm or correction.
 * The review queue shows its own keyboard-driven panel, so it asks for none here.
 */
export function page(id, { state, ticket }, catalog, changed, { actions = true } = {}) {
  const d = ticket?.decision;
  const working = actions && can('work') && state && shortName(state.state, 'TICKET_STATE_') !== 'resolved';
  return el('article', { class: 'detail', id: 'detail', data: { id } },
    el('div', { class: 'heading' },
      el('h1', {}, t('detail.title')),
      el('a', { href: '#/board', class: 'back' }, t('detail.back'))),
    el('blockquote', { class: 'masked', id: 'ticket-text' }, ticket?.text ?? ''),
    facts([
      ['detail.state', state ? stateLabel(state.state) : '—'],
      ['detail.priority', priorityLabel(state?.priority ?? d?.priority)],
      ['detail.channel', ticket?.channel || state?.channel || '—'],
      ['detail.received', `${dateTime(ticket?.received_at_ms ?? state?.received_at_ms)} (${age(ticket?.received_at_ms ?? state?.received_at_ms)})`],
      ['detail.assignee', state?.assignee || '—'],
      ['detail.claimed', state?.claimed_by ? t('detail.claimed_by', { name: state.claimed_by, until: dateTime(state.claim_expires_at_ms) }) : '—'],
    ]),
    el('div', { class: 'columns' },
      el('div', {},
        el('section', { class: 'card', id: 'explanation' }, el('h2', {}, t('detail.why')),
          el('ul', {}, explain(ticket ?? {}).map((s) => el('li', {}, s)))),
        decision(d),
        parsed(ticket?.parsed),
        escalation(ticket?.assessment, d)),
      el('div', {},
        working ? panel(id, ticket, state, catalog, changed).node : null,
        similar(ticket?.matches?.similar ?? []),
        policies(ticket?.matches?.policies ?? []),
        duties(ticket?.matches?.duties ?? []),
        shares(d))),
    versions(ticket),
    history(state));
}

function facts(pairs) {
  return el('dl', { class: 'facts' }, pairs.map(([k, v]) => [el('dt', {}, t(k)), el('dd', {}, v)]));
}

function decision(d) {
  if (!d) return null;
  return el('section', { class: 'card', id: 'decision' }, el('h2', {}, t('detail.decision')),
    facts([
      ['detail.department', d.department || '—'],
      ['detail.outcome', t(`outcome.${shortName(d.outcome, 'OUTCOME_')}`)],
      ['detail.confidence', el('span', {}, el('meter', { min: 0, max: 1, value: d.confidence }), ' ', percent(d.confidence))],
      ['detail.runner_up', d.runner_up ? `${d.runner_up} (${percent(d.runner_up_confidence)})` : '—'],
      ['detail.typicality', d.typicality === null || d.typicality === undefined ? '—' : percent(d.typicality, 1)],
      ['detail.rules', (d.rules ?? []).length ? d.rules.map((r) => `${r.id} → ${r.department} (“${r.matched}”)`).join('; ') : t('detail.no_rules')],
    ]),
    d.review_reason
      ? el('p', { class: 'muted', id: 'router-note' }, t('detail.router_note'), ' ', el('q', {}, localized(d.review_reason, d.review_reason_zh)))
      : null);
}

function parsed(p) {
  if (!p) return null;
  return el('section', { class: 'card', id: 'parsed' }, el('h2', {}, t('detail.parsed')),
    facts([
      ['detail.summary', p.summary || '—'],
      ['detail.problem_type', p.problem_type ? `${p.problem_type} (${t(`source.${shortName(p.problem_type_source, 'PROBLEM_TYPE_SOURCE_')}`)})` : '—'],
      ['detail.keywords', (p.keywords ?? []).join(', ') || '—'],
      ['detail.entities', (p.entities ?? []).map((e) => `${e.kind}: ${e.value}`).join(', ') || '—'],
      ['detail.language', p.language || '—'],
      ['detail.parser', p.parser || '—'],
    ]));
}

function escalation(a, d) {
  if (!a && !d) return null;
  return el('section', { class: 'card', id: 'escalation' }, el('h2', {}, t('detail.escalation')),
    facts([
      ['detail.escalated', a?.escalate ? t('common.yes') : t('common.no')],
      ['detail.anger', number(a?.anger, 2)],
      ['detail.urgency', number(a?.urgency, 2)],
      ['detail.escalation_reasons', localized(a?.escalation_reasons ?? [], a?.escalation_reasons_zh).join(t('common.list_separator')) || '—'],
    ]),
    el('h3', {}, t('detail.priority_steps')),
    (d?.priority_steps ?? []).length
      ? el('ul', { id: 'priority-steps' }, d.priority_steps.map((s) => el('li', {}, priorityStep(s))))
      : el('p', { class: 'muted' }, t('detail.no_priority_steps')));
}

// The retriever hands the router more neighbours than a person reads; the nearest five are shown.
const SHOWN_SIMILAR = 5;

function similar(found) {
  const list = [...found].sort((a, b) => b.score - a.score).slice(0, SHOWN_SIMILAR);
  return el('section', { class: 'card', id: 'similar' }, el('h2', {}, t('detail.similar', { n: list.length })),
    found.length > list.length ? el('p', { class: 'muted' }, t('detail.similar_found', { n: found.length })) : null,
    el('div', { class: 'table-wrap' }, el('table', { class: 'rows' },
      el('thead', {}, el('tr', {}, ['detail.similar_text', 'detail.similarity', 'detail.department', 'detail.resolution'].map((k) => el('th', {}, t(k))))),
      el('tbody', { id: 'similar-rows' }, list.map((s) => el('tr', {},
        el('td', { class: 'text' }, s.text, s.source === 'correction' ? el('span', { class: 'tag' }, t('detail.learnt')) : null),
        el('td', { class: 'num' }, number(s.score, 3)),
        el('td', {}, s.department),
        el('td', { class: 'num' }, duration(s.resolution_minutes))))))));
}

// The policy passages the retriever found most relevant, with where each comes from.
function policies(found) {
  if (found.length === 0) return null;
  return el('section', { class: 'card', id: 'policies' }, el('h2', {}, t('detail.policies')),
    el('div', { class: 'table-wrap' }, el('table', { class: 'rows' },
      el('thead', {}, el('tr', {}, ['detail.policy_text', 'detail.policy_source', 'detail.department'].map((k) => el('th', {}, t(k))))),
      el('tbody', { id: 'policy-rows' }, found.map((p) => el('tr', {},
        el('td', { class: 'text' }, p.text),
        el('td', {}, `${p.document} · ${p.position}`),
        el('td', {}, (p.departments ?? []).join(', ') || '—')))))));
}

// The departments whose duty descriptions read most like the ticket; those without history are marked,
// since only they can be chosen by their description.
function duties(found) {
  if (found.length === 0) return null;
  return el('section', { class: 'card', id: 'duties' }, el('h2', {}, t('detail.duties')),
    el('table', { class: 'rows' },
      el('thead', {}, el('tr', {}, ['detail.department', 'detail.similarity'].map((k) => el('th', {}, t(k))))),
      el('tbody', { id: 'duty-rows' }, found.map((m) => el('tr', {},
        el('td', {}, m.department, m.known ? null : el('span', { class: 'tag' }, t('detail.no_history'))),
        el('td', { class: 'num' }, number(m.similarity, 2)))))));
}

function shares(d) {
  const evidence = d?.evidence ?? [];
  const mine = evidence.find((e) => e.department === d?.department);
  return el('section', { class: 'card', id: 'shares' }, el('h2', {}, t('detail.shares')),
    el('table', { class: 'rows' },
      el('thead', {}, el('tr', {}, ['detail.department', 'detail.count', 'detail.share', 'detail.median'].map((k) => el('th', {}, t(k))))),
      el('tbody', {}, evidence.map((e) => el('tr', {},
        el('td', {}, e.department),
        el('td', { class: 'num' }, e.count),
        el('td', {}, el('meter', { min: 0, max: 1, value: e.share }), ' ', percent(e.share)),
        el('td', { class: 'num' }, e.median_resolution_hours === null || e.median_resolution_hours === undefined ? '—' : duration(e.median_resolution_hours * 60)))))),
    el('p', { id: 'median-resolution' }, t('detail.median_resolution', {
      department: d?.department || '—',
      time: mine && mine.median_resolution_hours !== null && mine.median_resolution_hours !== undefined ? duration(mine.median_resolution_hours * 60) : '—',
    })));
}

function versions(ticket) {
  const d = ticket?.decision;
  return el('section', { class: 'card', id: 'versions' }, el('h2', {}, t('detail.versions')),
    facts([
      ['detail.model_version', d?.model_version || ticket?.matches?.model_version || '—'],
      ['detail.rules_version', d ? String(d.rules_version) : '—'],
      ['detail.retriever', ticket?.matches?.retriever || '—'],
      ['detail.decided_at', dateTime(d?.decided_at_ms)],
    ]));
}

function history(state) {
  const moves = state?.history ?? [];
  return el('section', { class: 'card', id: 'history' }, el('h2', {}, t('detail.history')),
    state?.dropped ? el('p', { class: 'muted' }, t('detail.dropped', { n: state.dropped })) : null,
    el('div', { class: 'table-wrap' }, el('table', { class: 'rows' },
      el('thead', {}, el('tr', {}, ['detail.when', 'detail.move', 'detail.actor', 'detail.department', 'detail.why_moved'].map((k) => el('th', {}, t(k))))),
      el('tbody', { id: 'history-rows' }, moves.map((m) => el('tr', {},
        el('td', {}, dateTime(m.at_ms)),
        el('td', {}, `${stateLabel(m.from)} → ${stateLabel(m.to)}`, m.kind ? el('span', { class: 'muted' }, ` (${t(`kind.${m.kind}`)})`) : null),
        el('td', {}, m.actor),
        el('td', {}, m.department || '—'),
        el('td', {}, why(m))))))));
}

// The system's own moves are put in words from their fields; a person's act shows their note as
// typed (its `reason` repeats the act in English, for logs).
function why(m) {
  if (m.kind === 'decided') return t('detail.decided_move', { confidence: percent(m.confidence) });
  if (m.actor === 'intake' || m.kind === 'claimed') return '—';
  return m.note || '—';
}
