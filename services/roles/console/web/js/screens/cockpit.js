// The data cockpit: the metrics role's figures (/v1/stats) as tiles, charts and tables (accuracy,
// review rate, counts, decisions by hour, handling time overall and by department, hot problem
// types, those rising against the same hour a week before, incidents, corrections by reason),
// beside each department's hot keywords mined from the history by the router (/v1/stats/keywords),
// fetched again whenever the live feed reports a change (at most every two seconds) and every ten
// seconds, and the same figures as a CSV download. Supervisors and admins also see the desk's load and
// the tickets at SLA risk ([`workload`]).

import { el, fill } from '../dom.js';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { can } from '../session.js';
import { workload } from './workload.js';
import { subscribe, throttle } from '../live.js';
import { bars, columns, legend } from '../chart.js';
import { clock, dateTime, duration, number, percent, reasonLabel, shortName } from '../format.js';

/** The figures as rows of [section, name, value]: what the tiles show and the CSV holds. */
export function figures(s) {
  const decided = s.routed + s.review;
  // No ticket judged yet (none resolved uncorrected, none corrected) reads as 0 from the server;
  // shown as unknown rather than as a 0% accuracy.
  const judged = s.corrected > 0 || s.dispatch_accuracy > 0;
  const rows = [
    ['summary', 'dispatch_accuracy', judged ? s.dispatch_accuracy : null],
    ['summary', 'review_rate', decided ? s.review / decided : null],
    ['summary', 'received', s.received],
    ['summary', 'routed', s.routed],
    ['summary', 'review', s.review],
    ['summary', 'corrected', s.corrected],
    ['summary', 'resolved', s.resolved],
    ['summary', 'dead_lettered', s.dead_lettered],
    ['summary', 'median_handling_minutes', s.resolved ? s.median_handling_minutes : null],
    ['summary', 'p90_handling_minutes', s.resolved ? s.p90_handling_minutes : null],
  ];
  for (const h of s.hot_issues ?? []) rows.push(['hot_issues', h.problem_type, h.count]);
  for (const r of s.rising_issues ?? []) rows.push(['rising_issues', r.problem_type, r.this_hour], ['rising_issues_last_week', r.problem_type, r.same_hour_last_week]);
  for (const c of s.corrections_by_reason ?? []) rows.push(['corrections_by_reason', shortName(c.reason, 'CORRECTION_REASON_'), c.count]);
  for (const h of s.handling ?? []) {
    rows.push(['handling_median_minutes', h.department, h.median_minutes], ['handling_p90_minutes', h.department, h.p90_minutes]);
  }
  for (const i of s.incidents ?? []) {
    rows.push(['incident_tickets', i.problem_type, i.tickets], ['incident_customers', i.problem_type, i.customers]);
  }
  for (const h of s.decisions_by_hour ?? []) {
    const hour = new Date(h.hour_start_ms).toISOString();
    rows.push(['decisions_by_hour_routed', hour, h.routed], ['decisions_by_hour_review', hour, h.review]);
  }
  return rows;
}

/** Each department's hot keywords as rows of [section, name, value], for the CSV. */
export function keywordFigures(k) {
  return (k.departments ?? []).flatMap((d) => d.keywords.map((w) => ['hot_keywords', `${d.department}: ${w.keyword}`, w.tickets]));
}

/** Keywords shown per department. */
const HOT_KEYWORDS = 5;

const RATIOS = new Set(['dispatch_accuracy', 'review_rate']);

function shown(name, value) {
  if (value === null) return '—';
  if (RATIOS.has(name)) return percent(value, 1);
  if (name.endsWith('_handling_minutes')) return duration(value);
  return number(value, 0);
}

function csv(rows) {
  const quote = (v) => `"${String(v ?? '').replaceAll('"', '""')}"`;
  return ['section,name,value', ...rows.map((r) => r.map(quote).join(','))].join('\n') + '\n';
}

export function render(main) {
  const tiles = el('div', { class: 'tiles', id: 'cockpit-tiles' });
  const hot = el('tbody', { id: 'hot-issues' });
  const rising = el('tbody', { id: 'rising-issues' });
  const reasons = el('tbody', { id: 'correction-reasons' });
  const handling = el('tbody', { id: 'handling' });
  const handlingChart = el('div');
  const hourly = el('div');
  const incidents = el('tbody', { id: 'incidents' });
  const noIncident = el('p', { class: 'muted', id: 'no-incident' });
  const keywords = el('tbody', { id: 'hot-keywords' });
  const keywordsError = el('p', { class: 'muted' });
  const updated = el('p', { class: 'muted', id: 'cockpit-updated' });
  const error = el('p', { class: 'error', role: 'alert' });
  const work = can('read_all') ? workload() : null;
  const workError = el('p', { class: 'error', id: 'workload-error' });
  let last = [];

  async function load() {
    try {
      const stats = await api('/v1/stats');
      last = figures(stats);
      fill(tiles, last.filter(([section]) => section === 'summary').map(([, name, value]) =>
        el('div', { class: 'tile', id: `cockpit-${name}` }, el('span', { class: 'label' }, t(`cockpit.${name}`)), el('strong', {}, shown(name, value)))));
      const top = Math.max(1, ...(stats.hot_issues ?? []).map((h) => h.count));
      fill(hot, (stats.hot_issues ?? []).map((h) => el('tr', {},
        el('td', {}, h.problem_type),
        el('td', {}, el('meter', { min: 0, max: top, value: h.count })),
        el('td', { class: 'num' }, number(h.count, 0)))));
      fill(rising, (stats.rising_issues ?? []).map((r) => el('tr', { data: { type: r.problem_type } },
        el('td', {}, r.problem_type),
        el('td', { class: 'num' }, number(r.this_hour, 0)),
        el('td', { class: 'num' }, number(r.same_hour_last_week, 0)))));
      const most = Math.max(1, ...(stats.corrections_by_reason ?? []).map((c) => c.count));
      fill(reasons, (stats.corrections_by_reason ?? []).map((c) => el('tr', {},
        el('td', {}, reasonLabel(c.reason)),
        el('td', {}, el('meter', { min: 0, max: most, value: c.count })),
        el('td', { class: 'num' }, number(c.count, 0)))));
      fill(hourly, columns({
        id: 'chart-hourly',
        title: t('cockpit.by_hour'),
        points: (stats.decisions_by_hour ?? []).map((h) => ({ label: clock(h.hour_start_ms), values: [h.routed, h.review] })),
        series: [{ name: t('cockpit.routed'), class: 'chart-routed' }, { name: t('cockpit.review'), class: 'chart-review' }],
        labelEvery: 3,
        format: (n) => number(n, 0),
      }));
      fill(handlingChart, (stats.handling ?? []).length ? bars({
        id: 'chart-handling',
        title: t('cockpit.handling'),
        rows: stats.handling.map((h) => ({ label: h.department, values: [h.median_minutes, h.p90_minutes] })),
        series: [{ name: t('cockpit.median'), class: 'chart-median' }, { name: t('cockpit.p90'), class: 'chart-p90' }],
        format: duration,
      }) : null);
      fill(incidents, (stats.incidents ?? []).map((i) => el('tr', { data: { type: i.problem_type } },
        el('td', {}, i.problem_type || '—'),
        el('td', { class: 'num' }, number(i.tickets, 0)),
        el('td', { class: 'num' }, number(i.customers, 0)),
        el('td', {}, dateTime(i.first_received_at_ms)),
        el('td', {}, dateTime(i.last_received_at_ms)))));
      fill(noIncident, (stats.incidents ?? []).length ? null : t('cockpit.no_incident'));
      fill(handling, (stats.handling ?? []).map((h) => el('tr', {},
        el('td', {}, h.department),
        el('td', { class: 'num' }, number(h.resolved, 0)),
        el('td', { class: 'num' }, duration(h.median_minutes)),
        el('td', { class: 'num' }, duration(h.p90_minutes)))));
      last.push(...await loadKeywords());
      if (work) last.push(...await loadWorkload());
      fill(updated, t('cockpit.updated', { at: dateTime(Date.now()) }));
      fill(error);
    } catch (e) {
      fill(error, e.message);
    }
  }

  // Apart from the figures: a process whose router holds no knowledge base answers 503, which leaves
  // the rest of the cockpit standing and says why in this card.
  async function loadKeywords() {
    try {
      const k = await api('/v1/stats/keywords', { query: { limit: HOT_KEYWORDS } });
      fill(keywords, (k.departments ?? []).map((d) => el('tr', {},
        el('td', {}, d.department),
        el('td', {}, d.keywords.map((w) => `${w.keyword} (${number(w.tickets, 0)}, ${percent(w.share, 0)})`).join(' · ')))));
      fill(keywordsError);
      return keywordFigures(k);
    } catch (e) {
      fill(keywords);
      fill(keywordsError, e.message);
      return [];
    }
  }

  // Apart too: the assign role's figures, which a process without it cannot give.
  async function loadWorkload() {
    try {
      const rows = await work.load();
      fill(workError);
      return rows;
    } catch (e) {
      fill(workError, e.message);
      return [];
    }
  }

  function download() {
    const link = el('a', { href: URL.createObjectURL(new Blob([csv(last)], { type: 'text/csv' })), download: 'switchboard-stats.csv' });
    link.click();
    URL.revokeObjectURL(link.href);
  }

  const unsubscribe = subscribe(throttle(load, 2000), load);
  const timer = setInterval(load, 10000);
  fill(main, el('section', { class: 'cockpit' },
    el('div', { class: 'heading' }, el('h1', {}, t('cockpit.title')),
      el('button', { type: 'button', id: 'cockpit-csv', on: { click: download } }, t('cockpit.csv'))),
    updated, error, tiles,
    el('section', { class: 'card' }, el('h2', {}, t('cockpit.by_hour')),
      legend([{ name: t('cockpit.routed'), class: 'chart-routed' }, { name: t('cockpit.review'), class: 'chart-review' }]),
      hourly),
    el('section', { class: 'card', id: 'cockpit-incidents' }, el('h2', {}, t('cockpit.incidents')),
      el('p', { class: 'muted' }, t('cockpit.incidents_explained')), noIncident,
      el('table', { class: 'rows' },
        el('thead', {}, el('tr', {}, ['cockpit.problem_type', 'cockpit.count', 'cockpit.customers', 'cockpit.first', 'cockpit.last'].map((k) => el('th', {}, t(k))))),
        incidents)),
    el('div', { class: 'columns' },
      el('section', { class: 'card' }, el('h2', {}, t('cockpit.hot_issues')),
        el('table', { class: 'rows' },
          el('thead', {}, el('tr', {}, ['cockpit.problem_type', 'cockpit.share', 'cockpit.count'].map((k) => el('th', {}, t(k))))),
          hot)),
      el('section', { class: 'card' }, el('h2', {}, t('cockpit.rising_issues')),
        el('table', { class: 'rows' },
          el('thead', {}, el('tr', {}, ['cockpit.problem_type', 'cockpit.this_hour', 'cockpit.same_hour_last_week'].map((k) => el('th', {}, t(k))))),
          rising)),
      el('section', { class: 'card' }, el('h2', {}, t('cockpit.corrections_by_reason')),
        el('table', { class: 'rows' },
          el('thead', {}, el('tr', {}, ['correct.reason', 'cockpit.share', 'cockpit.count'].map((k) => el('th', {}, t(k))))),
          reasons))),
    el('section', { class: 'card' }, el('h2', {}, t('cockpit.handling')),
      legend([{ name: t('cockpit.median'), class: 'chart-median' }, { name: t('cockpit.p90'), class: 'chart-p90' }]),
      handlingChart,
      el('table', { class: 'rows' },
        el('thead', {}, el('tr', {}, ['departments.id', 'cockpit.resolved', 'cockpit.median', 'cockpit.p90'].map((k) => el('th', {}, t(k))))),
        handling)),
    el('section', { class: 'card' }, el('h2', {}, t('cockpit.hot_keywords')), keywordsError,
      el('table', { class: 'rows' },
        el('thead', {}, el('tr', {}, ['departments.id', 'cockpit.keywords'].map((k) => el('th', {}, t(k))))),
        keywords)),
    work ? [workError, work.node] : null));
  load();
  return () => {
    unsubscribe();
    clearInterval(timer);
  };
}
