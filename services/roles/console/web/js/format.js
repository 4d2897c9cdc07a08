// Numbers, times and names as the reader's language writes them.

import { lang, t } from './i18n.js';

export function percent(x, digits = 0) {
  if (x === undefined || x === null || Number.isNaN(x)) return '—';
  return new Intl.NumberFormat(lang(), { style: 'percent', maximumFractionDigits: digits }).format(x);
}

export function number(x, digits = 1) {
  if (x === undefined || x === null || Number.isNaN(x)) return '—';
  return new Intl.NumberFormat(lang(), { maximumFractionDigits: digits }).format(x);
}

export function dateTime(ms) {
  if (!ms) return '—';
  return new Intl.DateTimeFormat(lang(), { dateStyle: 'short', timeStyle: 'medium' }).format(new Date(Number(ms)));
}

/** The clock time of `ms`, hours and minutes: an hour's label on a chart. */
export function clock(ms) {
  return new Intl.DateTimeFormat(lang(), { hour: '2-digit', minute: '2-digit' }).format(new Date(Number(ms)));
}

/** How long ago `ms` was, in the largest whole unit. */
export function age(ms, now = Date.now()) {
  if (!ms) return '—';
  const s = Math.max(0, Math.round((now - Number(ms)) / 1000));
  if (s < 60) return t('age.seconds', { n: s });
  if (s < 3600) return t('age.minutes', { n: Math.floor(s / 60) });
  if (s < 86400) return t('age.hours', { n: Math.floor(s / 3600) });
  return t('age.days', { n: Math.floor(s / 86400) });
}

/** Minutes as hours or days when that reads better. */
export function duration(minutes) {
  if (minutes === undefined || minutes === null) return '—';
  if (minutes < 120) return t('duration.minutes', { n: number(minutes, 0) });
  if (minutes < 2880) return t('duration.hours', { n: number(minutes / 60, 1) });
  return t('duration.days', { n: number(minutes / 1440, 1) });
}

// The server's enum names (PRIORITY_HIGH, TICKET_STATE_IN_REVIEW) and the filters' (high,
// in_review) name the same values; the dictionaries key them by the short form.
export function shortName(value, prefix) {
  return String(value ?? '').replace(prefix, '').toLowerCase();
}

export function priorityLabel(p) {
  const short = shortName(p, 'PRIORITY_');
  return short && short !== 'unspecified' ? t(`priority.${short}`) : '—';
}

export function stateLabel(s) {
  const short = shortName(s, 'TICKET_STATE_');
  return short && short !== 'unspecified' ? t(`state.${short}`) : '—';
}

export function reasonLabel(code) {
  return t(`reason.${shortName(code, 'CORRECTION_REASON_')}`);
}

/** When a ticket an agent holds or a queue keeps should be started by: its `start_by_ms`, or for an
 * older record that has none, the moment it was given or queued (as the server's work order counts). */
export function startBy(ticket) {
  return ticket.start_by_ms ?? ticket.since_ms;
}
