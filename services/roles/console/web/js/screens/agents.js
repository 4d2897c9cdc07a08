// Agents and their work. Supervisors and admins see every agent: status, load against capacity and
// the tickets each holds in their work order; an agent sees their own record, sets their status and
// picks up tickets in that order. The work order is the server's (GET /v1/agents/{id}: what can still
// be started within its priority's target first, soonest due first, late tickets after), so the
// console shows it as given and never sorts it again.

import { el, fill, select } from '../dom.js';
import { t, lang } from '../i18n.js';
import { api, ApiError } from '../api.js';
import { session, can } from '../session.js';
import { subscribe, throttle } from '../live.js';
import { number } from '../format.js';

const STATUSES = ['online', 'away', 'offline'];

function clock(ms) {
  return new Intl.DateTimeFormat(lang(), { hour: '2-digit', minute: '2-digit' }).format(new Date(Number(ms)));
}

export function render(main) {
  const me = session().name;
  const body = el('tbody', { id: 'agents-rows' });
  const message = el('p', { role: 'status', id: 'agents-status' });

  // Everyone's when the reader may read every department's work, otherwise their own record.
  async function views() {
    if (can('read_all')) return (await api('/v1/agents')).agents;
    try {
      return [await api(`/v1/agents/${encodeURIComponent(me)}`)];
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return [];
      throw e;
    }
  }

  async function load() {
    try {
      const agents = (await views()).sort((a, b) => a.agent.id.localeCompare(b.agent.id));
      if (!agents.length) fill(message, can('read_all') ? t('agents.none') : t('agents.no_record', { name: me }));
      fill(body, agents.map(row));
    } catch (e) {
      fill(message, e.message);
    }
  }

  function row(view) {
    const { agent, load: held, work_order: order } = view;
    const own = agent.id === me;
    const status = own || can('reassign')
      ? select({ class: 'agent-status', 'aria-label': t('agents.status'), data: { id: agent.id }, on: { change: (e) => setStatus(agent.id, e.target.value) } },
        STATUSES.map((s) => [s, t(`agents.${s}`)]), agent.status)
      : t(`agents.${agent.status}`);
    return el('tr', { data: { id: agent.id } },
      el('td', {}, agent.name || agent.id, el('span', { class: 'muted' }, ` ${agent.id}`)),
      el('td', {}, agent.departments.join(', ')),
      el('td', {}, agent.tier),
      el('td', {}, status),
      el('td', { class: 'num load' }, `${number(view.open, 0)} / ${number(agent.capacity, 0)}`),
      el('td', {}, order.length
        ? el('ol', { class: 'work-order' }, order.map((id) => item(id, held.tickets[id], own)))
        : el('span', { class: 'muted' }, t('agents.nothing'))));
  }

  function item(id, held, own) {
    const due = held.start_by_ms ?? held.since_ms;
    const late = !held.started && due < Date.now();
    return el('li', { data: { id }, class: late ? 'late' : '' },
      el('a', { href: `#/ticket/${encodeURIComponent(id)}` }, id.slice(-8)),
      held.started
        ? el('span', { class: 'tag s-routed' }, t('agents.in_progress'))
        : el('span', { class: late ? 'tag warn' : 'tag' }, t(late ? 'agents.late' : 'agents.start_by', { time: clock(due) })),
      own && !held.started
        ? el('button', { type: 'button', class: 'accept', data: { id }, on: { click: () => accept(id) } }, t('agents.accept'))
        : null);
  }

  async function setStatus(id, status) {
    try {
      await api(`/v1/agents/${encodeURIComponent(id)}/status`, { method: 'POST', body: { status } });
      fill(message, t('agents.status_saved', { name: id, status: t(`agents.${status}`) }));
      load();
    } catch (e) {
      fill(message, e.message);
    }
  }

  async function accept(id) {
    try {
      await api(`/v1/tickets/${encodeURIComponent(id)}/accept`, { method: 'POST' });
      fill(message, t('agents.accepted', { id: id.slice(-8) }));
      load();
    } catch (e) {
      fill(message, e.message);
    }
  }

  const unsubscribe = subscribe(throttle(load, 2000), load);
  const timer = setInterval(load, 10000);
  fill(main, el('section', { class: 'agents', id: 'agents' },
    el('div', { class: 'heading' }, el('h1', {}, t('agents.title'))),
    el('p', { class: 'muted' }, t('agents.order_explained')),
    message,
    el('div', { class: 'table-wrap' }, el('table', { class: 'rows' },
      el('thead', {}, el('tr', {}, ['agents.agent', 'agents.departments', 'agents.tier', 'agents.status', 'agents.load', 'agents.work_order']
        .map((k) => el('th', {}, t(k))))),
      body))));
  load();
  return () => {
    unsubscribe();
    clearInterval(timer);
  };
}
