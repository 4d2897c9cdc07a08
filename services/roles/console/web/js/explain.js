// The decision in words, made from its structured fields in the reader's language, with what the
// console knows beyond the router (an incident, a correction). The router's own texts come in English
// and Chinese (`explanation_zh`, `review_reason_zh`); the detail screen shows its review reason in the
// reader's language as the router's note.

import { t } from './i18n.js';
import { percent, number, priorityLabel, reasonLabel, shortName } from './format.js';

/** Sentences explaining `ticket.decision`, most important first. */
export function explain(ticket) {
  const d = ticket.decision;
  if (!d) return [t('explain.undecided')];
  const out = [];
  const routed = d.outcome === 'OUTCOME_ROUTED';
  if (!d.department) out.push(t('explain.nothing_similar'));
  else if (routed) out.push(t('explain.routed', { department: d.department, confidence: percent(d.confidence) }));
  else out.push(t('explain.review', { department: d.department, confidence: percent(d.confidence) }));
  if (!routed && d.typicality !== null && d.typicality !== undefined) {
    out.push(t('explain.typicality', { department: d.department, typicality: percent(d.typicality, 1) }));
  }
  // The evidence counts the similar tickets that counted as evidence, not every one retrieved.
  const counted = (d.evidence ?? []).reduce((sum, e) => sum + e.count, 0);
  const top = (d.evidence ?? []).find((e) => e.department === d.department);
  if (top && counted) {
    out.push(t('explain.evidence', { n: top.count, total: counted, department: d.department, share: percent(top.share) }));
  }
  // A department without history chosen by its duty description: nothing else in the evidence says so.
  const duty = (ticket.matches?.duties ?? []).find((m) => m.department === d.department && !m.known);
  if (duty && top && !top.count) {
    out.push(t('explain.duty', { department: d.department, similarity: number(duty.similarity, 2) }));
  }
  const policy = ticket.matches?.policies?.[0];
  if (policy) out.push(t('explain.policy', { document: policy.document, position: policy.position }));
  for (const rule of d.rules ?? []) {
    out.push(t('explain.rule', { id: rule.id, matched: rule.matched, department: rule.department }));
  }
  if (d.runner_up) out.push(t('explain.runner_up', { department: d.runner_up, confidence: percent(d.runner_up_confidence) }));
  for (const step of d.priority_steps ?? []) out.push(priorityStep(step));
  const incident = ticket.matches?.incident;
  if (incident && incident.customers > 1) {
    out.push(t('explain.incident', { customers: incident.customers, minutes: incident.window_minutes }));
  }
  if (d.correction) {
    const c = d.correction;
    out.push(t('explain.corrected', { agent: c.agent, from: c.from_department || '—', to: c.to_department, reason: reasonLabel(c.reason) }));
  }
  return out;
}

/** One step of the priority policy: its cause, the move, and the measure against its limit. */
export function priorityStep(step) {
  return t(`explain.priority.${shortName(step.cause, 'PRIORITY_CAUSE_')}`, {
    from: priorityLabel(step.from),
    to: priorityLabel(step.to),
    value: number(step.value, 2),
    limit: number(step.limit, 2),
  });
}
