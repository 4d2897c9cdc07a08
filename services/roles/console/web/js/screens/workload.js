// The cockpit's view of the desk's load and SLA risk, from the assign role (/v1/agents, /v1/queue):
// each department's agents online, the open tickets its agents hold against the capacity of those
// online, and the tickets waiting in its queue; each agent's load; and the tickets not yet started,
// held or waiting in a queue, whose start-by time (assign.start_within) has passed (late) or comes
// within RISK_MINUTES (at risk). Supervisors and admins only: the agents API answers no one else.

import { el, fill } from '../dom.js';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { number, startBy } from '../format.js';

/** How close a start-by time must be for a ticket to count as at risk. */
export const RISK_MINUTES = 15;

/** Of tickets not started (`{start_by_ms, since_ms}`), how many are late and how many at risk at `now`. */
export function timing(tickets, now) {
  let late = 0;
  let risk = 0;
  for (const ticket of tickets) {
    const due = startBy(ticket);
    if (due < now) late += 1;
    else if (due < now + RISK_MINUTES * 60_000) risk += 1;
  }
  return { late, risk };
}

/** Per agent: open tickets, and of those not started, how many are late and how many at risk at `now`. */
export function agentLoad(view, now) {
  const waiting = Object.values(view.load.tickets).filter((held) => !held.started);
  return { id: view.agent.id, status: view.agent.status, open: view.open, capacity: view.agent.capacity, ...timing(waiting, now) };
}

/** Per department: agents online, capacity online, open tickets its agents hold, tickets in its queue. */
export function departmentLoad(views, waiting) {
  const by = new Map();
  const entry = (d) => {
    if (!by.has(d)) by.set(d, { department: d, online: 0, capacity: 0, open: 0, waiting: 0 });
    return by.get(d);
  };
  for (const v of views) {
    for (const d of v.agent.departments) {
      const e = entry(d);
      e.open += v.open;
      if (v.agent.status === 'online') {
        e.online += 1;
        e.capacity += v.agent.capacity;
      }
    }
  }
  for (const w of waiting) entry(w.department).waiting += 1;
  return [...by.values()].sort((a, b) => a.department.localeCompare(b.department));
}

export function workload() {
  const tiles = el('div', { class: 'tiles' });
  const departments = el('tbody', { id: 'department-load' });
  const agents = el('tbody', { id: 'agent-load' });
  const head = (keys) => el('thead', {}, el('tr', {}, keys.map((k) => el('th', {}, t(k)))));
  const node = el('section', { class: 'card', id: 'workload' },
    el('h2', {}, t('cockpit.workload')),
    el('p', { class: 'muted' }, t('cockpit.risk_explained', { n: RISK_MINUTES })),
    tiles,
    el('div', { class: 'columns' },
      el('table', { class: 'rows' },
        head(['departments.id', 'cockpit.online', 'cockpit.open_capacity', 'cockpit.queue_waiting']), departments),
      el('table', { class: 'rows' },
        head(['agents.agent', 'agents.status', 'agents.load', 'cockpit.sla_late', 'cockpit.sla_at_risk']), agents)));

  /** Fetches and shows the figures; returns them as CSV rows of [section, name, value]. */
  async function load(now = Date.now()) {
    const [{ agents: views }, { waiting }] = await Promise.all([api('/v1/agents'), api('/v1/queue')]);
    const perAgent = views.map((v) => agentLoad(v, now)).sort((a, b) => a.id.localeCompare(b.id));
    const perDepartment = departmentLoad(views, waiting);
    const queued = timing(waiting, now);
    const totals = {
      sla_late: perAgent.reduce((n, a) => n + a.late, queued.late),
      sla_at_risk: perAgent.reduce((n, a) => n + a.risk, queued.risk),
      queue_waiting: waiting.length,
    };
    fill(tiles, Object.entries(totals).map(([name, value]) =>
      el('div', { class: 'tile', id: `cockpit-${name}` }, el('span', { class: 'label' }, t(`cockpit.${name}`)), el('strong', {}, number(value, 0)))));
    const meter = (open, capacity) => [el('meter', { min: 0, max: Math.max(1, capacity), value: open }), ` ${number(open, 0)} / ${number(capacity, 0)}`];
    fill(departments, perDepartment.map((d) => el('tr', { data: { id: d.department } },
      el('td', {}, d.department),
      el('td', { class: 'num' }, number(d.online, 0)),
      el('td', { class: 'load' }, meter(d.open, d.capacity)),
      el('td', { class: 'num' }, number(d.waiting, 0)))));
    fill(agents, perAgent.map((a) => el('tr', { data: { id: a.id } },
      el('td', {}, a.id),
      el('td', {}, t(`agents.${a.status}`)),
      el('td', { class: 'load' }, meter(a.open, a.capacity)),
      el('td', { class: 'num late' }, number(a.late, 0)),
      el('td', { class: 'num risk' }, number(a.risk, 0)))));
    return [
      ...Object.entries(totals).map(([name, value]) => ['summary', name, value]),
      ...perDepartment.flatMap((d) => [['department_open', d.department, d.open], ['department_waiting', d.department, d.waiting]]),
      ...perAgent.flatMap((a) => [['agent_open', a.id, a.open], ['agent_late', a.id, a.late], ['agent_at_risk', a.id, a.risk]]),
    ];
  }

  return { node, load };
}
