// The review queue: the tickets the router would not route alone, most urgent first. "Claim next"
// takes the first one nobody holds; then confirm or correct it from the keyboard: n claims the
// next, c confirms, 1–9 correct to the department with that number, Escape goes back to the queue.

import { el, fill } from '../dom.js';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { subscribe, throttle } from '../live.js';
import { age, percent, priorityLabel } from '../format.js';
import { page } from './detail.js';
import { panel } from './correction.js';

export function render(main) {
  const list = el('tbody', { id: 'review-rows' });
  const status = el('p', { class: 'muted', id: 'review-status', role: 'status' }, t('review.start'));
  const count = el('p', { class: 'muted', id: 'review-count' });
  const work = el('div', { id: 'review-work' });
  let catalog = [];
  let current = null; // {id, panel} while a claimed ticket is open

  async function loadQueue() {
    try {
      const { reviews } = await api('/v1/reviews', { query: { limit: 50 } });
      fill(list, reviews.map((r) => el('tr', { data: { id: r.ticket_id } },
        el('td', {}, age(r.received_at_ms)),
        el('td', {}, priorityLabel(r.priority)),
        el('td', {}, r.department || '—'),
        el('td', {}, r.claimed_by && r.claim_expires_at_ms > Date.now() ? t('review.held', { name: r.claimed_by }) : t('review.free')),
        el('td', {}, el('a', { href: `#/ticket/${encodeURIComponent(r.ticket_id)}` }, r.ticket_id.slice(-8))))));
      fill(count, reviews.length ? t('review.waiting', { n: reviews.length }) : t('review.empty'));
    } catch (e) {
      fill(status, e.message);
    }
  }

  async function claimNext() {
    try {
      const { reviews } = await api('/v1/reviews', { query: { available: true, limit: 1 } });
      if (!reviews.length) {
        fill(status, t('review.empty'));
        return;
      }
      const id = reviews[0].ticket_id;
      await api(`/v1/reviews/${encodeURIComponent(id)}/claim`, { method: 'POST' });
      if (!catalog.length) catalog = (await api('/v1/departments', { query: { limit: 1000 } })).departments.map((d) => d.id);
      const view = await api(`/v1/tickets/${encodeURIComponent(id)}`);
      const actions = panel(id, view.ticket, view.state, catalog, finished, { keys: true });
      current = { id, actions };
      const detail = page(id, view, catalog, finished, { actions: false });
      fill(work, el('p', { class: 'muted' }, t('review.claimed', { confidence: percent(view.ticket?.decision?.confidence) })), actions.node, detail);
      fill(status, t('review.keys'));
      loadQueue();
    } catch (e) {
      fill(status, e.message);
    }
  }

  function finished() {
    fill(status, t('review.done'));
    fill(work);
    current = null;
    loadQueue();
  }

  function onKey(e) {
    if (e.target instanceof HTMLInputElement || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === 'n') claimNext();
    else if (e.key === 'Escape' && current) finished();
    else if (current && e.key === 'c') current.actions.confirm();
    else if (current && /^[1-9]$/.test(e.key)) current.actions.correctNth(Number(e.key) - 1);
    else return;
    e.preventDefault();
  }

  document.addEventListener('keydown', onKey);
  const unsubscribe = subscribe(throttle(loadQueue, 1000), loadQueue);
  fill(main, el('section', { class: 'review' },
    el('div', { class: 'heading' }, el('h1', {}, t('review.title')),
      el('button', { type: 'button', class: 'primary', id: 'claim-next', on: { click: claimNext } }, el('kbd', {}, 'n'), t('review.claim_next'))),
    status, work,
    el('h2', {}, t('review.queue')), count,
    el('div', { class: 'table-wrap' }, el('table', { class: 'rows' },
      el('thead', {}, el('tr', {}, ['board.age', 'board.priority', 'review.suggested', 'review.claim', 'review.ticket'].map((k) => el('th', {}, t(k))))),
      list))));
  loadQueue();
  return () => {
    document.removeEventListener('keydown', onKey);
    unsubscribe();
  };
}
