// Agents and their work. Supervisors and admins see every agent: status, load against capacity and
// the tickets each holds in their work order; an agent sees their own record, sets their status and
// picks up tickets in that order. Admins also add, edit and remove agents here; the server checks
// every field and the one at fault is marked. The work order is the server's (GET /v1/agents/{id}: what can still
// be started within its priority's target first, soonest due first, late tickets after), so the
// console shows it as given and never sorts it again.

import { el, fill, select } from '../dom.js';
import { t, lang } from '../i18n.js';
import { api, ApiError } from '../api.js';
import { session, can } from '../session.js';
import { subscribe, throttle } from '../live.js';
import { number, startBy } from '../format.js';

const STATUSES = ['online', 'away', 'offline'];
const TIERS = ['L1', 'L2', 'L3'];

const list = (text) => text.split(',').map((v) => v.trim()).filter(Boolean);

/** `登录认证:4, billing:3` as {skill: level}; a piece without a whole level is kept as typed, for the server to name. */
function skills(text) {
  return Object.fromEntries(list(text).map((piece) => {
    const at = piece.lastIndexOf(':');
    const level = at < 0 ? NaN : Number(piece.slice(at + 1));
    return Number.isInteger(level) ? [piece.slice(0, at).trim(), level] : [piece, 0];
  }));
}

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

  // The admin's editor: one form for a new agent or the one being edited.
  const form = can('admin') ? editor() : null;

  function editor() {
    // Each input names the agent's field it edits (`data-field`), as the server's errors name it.
    const input = (id, field, attrs = {}) => el('input', { id: `agent-${id}`, data: { field }, ...attrs });
    const fields = {
      id: input('id', 'id', { required: true }),
      name: input('name', 'name', { required: true }),
      departments: input('departments', 'departments', { placeholder: 'billing, unified_auth' }),
      skills: input('skills', 'skills', { placeholder: '登录认证:4, billing:3' }),
      languages: input('languages', 'languages', { placeholder: 'zh, en' }),
      channels: input('channels', 'channels', { placeholder: 'web, email' }),
      tier: select({ id: 'agent-tier', data: { field: 'tier' } }, TIERS.map((x) => [x, x]), 'L1'),
      capacity: input('capacity', 'capacity', { type: 'number', min: 1, value: '5' }),
      time_zone: input('time-zone', 'shift.time_zone', { value: '+08:00' }),
      hours: input('hours', 'shift.hours', { value: 'mon-fri 09:00-18:00' }),
    };
    const label = (key, node) => el('label', {}, t(`agents.field_${key}`), node);
    const node = el('form', { id: 'agent-form', class: 'card', on: { submit: (e) => { e.preventDefault(); save(); } } },
      el('h2', {}, t('agents.editor')),
      Object.entries(fields).map(([key, f]) => label(key, f)),
      el('div', {},
        el('button', { type: 'submit', class: 'primary', id: 'agent-save' }, t('agents.save')),
        el('button', { type: 'button', id: 'agent-new', on: { click: () => edit(null) } }, t('agents.new'))));

    function edit(agent) {
      for (const f of Object.values(fields)) f.classList.remove('invalid');
      fields.id.value = agent?.id ?? '';
      fields.id.readOnly = Boolean(agent);
      fields.name.value = agent?.name ?? '';
      fields.departments.value = (agent?.departments ?? []).join(', ');
      fields.skills.value = Object.entries(agent?.skills ?? {}).map(([k, l]) => `${k}:${l}`).join(', ');
      fields.languages.value = (agent?.languages ?? []).join(', ');
      fields.channels.value = (agent?.channels ?? []).join(', ');
      fields.tier.value = agent?.tier ?? 'L1';
      fields.capacity.value = String(agent?.capacity ?? 5);
      fields.time_zone.value = agent?.shift?.time_zone ?? '+08:00';
      fields.hours.value = agent?.shift?.hours ?? 'mon-fri 09:00-18:00';
      node.dataset.status = agent?.status ?? 'offline';
      fields.id.focus();
    }

    async function save() {
      for (const f of Object.values(fields)) f.classList.remove('invalid');
      const id = fields.id.value.trim();
      const agent = {
        id,
        name: fields.name.value.trim(),
        departments: list(fields.departments.value),
        skills: skills(fields.skills.value),
        languages: list(fields.languages.value),
        channels: list(fields.channels.value),
        tier: fields.tier.value,
        capacity: Number(fields.capacity.value),
        shift: { time_zone: fields.time_zone.value.trim(), hours: fields.hours.value.trim() },
        status: node.dataset.status ?? 'offline',
      };
      try {
        await api(`/v1/agents/${encodeURIComponent(id)}`, { method: 'PUT', body: agent });
        fill(message, t('agents.saved', { name: id }));
        edit(null);
        load();
      } catch (e) {
        // The server names the field at fault (`skills.登录认证`, `departments[1]`, `shift.hours`).
        const field = e.field ?? '';
        const at = node.querySelector(`[data-field="${CSS.escape(field)}"]`)
          ?? node.querySelector(`[data-field="${CSS.escape(field.split(/[.[]/)[0])}"]`);
        if (at) at.classList.add('invalid');
        fill(message, e.message);
      }
    }

    return { node, edit };
  }

  async function remove(id, button) {
    if (!button.classList.contains('confirm')) {
      button.classList.add('confirm');
      fill(button, t('agents.confirm_remove'));
      return;
    }
    try {
      await api(`/v1/agents/${encodeURIComponent(id)}`, { method: 'DELETE' });
      fill(message, t('agents.removed', { name: id }));
      load();
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
        : el('span', { class: 'muted' }, t('agents.nothing'))),
      form ? el('td', { class: 'actions' },
        el('button', { type: 'button', class: 'edit', on: { click: () => form.edit(agent) } }, t('agents.edit')),
        el('button', { type: 'button', class: 'danger remove', on: { click: (e) => remove(agent.id, e.currentTarget) } }, t('agents.remove'))) : null);
  }

  function item(id, held, own) {
    const due = startBy(held);
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
        .map((k) => el('th', {}, t(k))), form ? el('th', {}) : null)),
      body)),
    form?.node));
  load();
  return () => {
    unsubscribe();
    clearInterval(timer);
  };
}
