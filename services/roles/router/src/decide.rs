//! The decision itself, a pure function of the ticket, the rules and the configuration, so it can be
//! tested and replayed.
//!
//! The knowledge base's evidence (the similar tickets' votes blended with its classifier's
//! probabilities: see [`switchboard_knowledge::evidence`]) gives each department a probability. A fired
//! rule then adds its weight to its department's, and the confidence is the department's part of the
//! total, so a rule of weight 3 outweighs any evidence. Nothing similar in the knowledge base means
//! review whatever the classifier says: it has no evidence to stand on. So does a ticket unlike the
//! chosen department's known tickets (its typicality, from the classifier, below `min_typicality`, or
//! low enough that `confidence × typicality^w` with `w = typicality_weight` falls below the threshold),
//! unless a rule named the department. Where the history's answer is weak and the ticket reads most
//! like the duty description of a department without history, that department takes its share of the
//! decision (see [`crate::duty`]).

use std::collections::BTreeMap;

use switchboard_knowledge::evidence;
use switchboard_policy::Lang;
use switchboard_proto::{
    Assessment, Decision, DepartmentEvidence, DepartmentScore, FiredRule, Matches, Outcome,
    PolicyPassage, PriorityStep, Rule, SimilarTicket, Ticket,
};

use crate::config::{Gate, RouterConfig};
use crate::duty::{DutyEvidence, duty_evidence};
use crate::mixing::mix_in;
use crate::policy::policy_shares;
use crate::rules::RuleSet;

/// Names the method behind a decision, recorded on every decision with the classifier's version.
pub const MODEL_VERSION: &str = "knn-model-blend-2";

const DAY_MS: f64 = 86_400_000.0;

#[derive(Debug, Default)]
struct Tally {
    /// Similar tickets in the window, and the resolution times among them.
    count: u32,
    resolution_minutes: Vec<i64>,
    /// The knowledge base's blended probability.
    evidence: f32,
    rule_weight: f32,
}

/// Whether a decision with this department, confidence and typicality is routed automatically: the
/// one test [`decide`] applies, so anyone replaying decisions at another gate gets the same outcomes.
pub fn routes(department: &str, confidence: f32, typicality: Option<f32>, gate: Gate) -> bool {
    !department.is_empty()
        && confidence >= gate.threshold
        && typicality.is_none_or(|t| {
            t >= gate.min_typicality && discounted(confidence, t, gate) >= gate.threshold
        })
}

/// The confidence discounted by the ticket's typicality for the department (see
/// `RouterConfig::typicality_weight`); a weight of 0 leaves it whole.
fn discounted(confidence: f32, typicality: f32, gate: Gate) -> f32 {
    if gate.typicality_weight == 0.0 {
        confidence
    } else {
        confidence * typicality.powf(gate.typicality_weight)
    }
}

/// Which of the tests for routing alone a decision failed, with the numbers behind it.
enum Review<'d> {
    NoEvidence,
    LowConfidence {
        confidence: f32,
        threshold: f32,
    },
    Atypical {
        department: &'d str,
        typicality: f32,
        floor: f32,
    },
    Discounted {
        department: &'d str,
        typicality: f32,
        weight: f32,
        confidence: f32,
        counts_as: f32,
        threshold: f32,
    },
}

/// Why `d` goes to review at `gate`, or `None` when it routes: the tests of [`routes`], in order.
fn review(d: &Decision, gate: Gate) -> Option<Review<'_>> {
    let department = d.department.as_str();
    if department.is_empty() {
        Some(Review::NoEvidence)
    } else if d.confidence < gate.threshold {
        Some(Review::LowConfidence {
            confidence: d.confidence,
            threshold: gate.threshold,
        })
    } else if let Some(t) = d.typicality.filter(|&t| t < gate.min_typicality) {
        Some(Review::Atypical {
            department,
            typicality: t,
            floor: gate.min_typicality,
        })
    } else {
        d.typicality
            .filter(|&t| !routes(department, d.confidence, Some(t), gate))
            .map(|t| Review::Discounted {
                department,
                typicality: t,
                weight: gate.typicality_weight,
                confidence: d.confidence,
                counts_as: discounted(d.confidence, t, gate),
                threshold: gate.threshold,
            })
    }
}

impl Review<'_> {
    /// The reason as `review_reason` and `review_reason_zh` carry it; typicalities in percent.
    fn describe(&self, lang: Lang) -> String {
        match (self, lang) {
            (Review::NoEvidence, Lang::En) => {
                "nothing similar in the knowledge base and no rule fired".to_owned()
            }
            (Review::NoEvidence, Lang::Zh) => "知识库中没有相似工单，也没有规则命中".to_owned(),
            (
                Review::LowConfidence {
                    confidence,
                    threshold,
                },
                Lang::En,
            ) => format!("confidence {confidence:.2} is below the threshold {threshold:.2}"),
            (
                Review::LowConfidence {
                    confidence,
                    threshold,
                },
                Lang::Zh,
            ) => format!("置信度 {confidence:.2} 低于阈值 {threshold:.2}"),
            (
                Review::Atypical {
                    department,
                    typicality,
                    floor,
                },
                Lang::En,
            ) => format!(
                "the ticket is unlike {department}'s known tickets: only {:.1}% of the knowledge \
                 base lies as far from its own department's centre, below the floor of {:.1}%",
                typicality * 100.0,
                floor * 100.0
            ),
            (
                Review::Atypical {
                    department,
                    typicality,
                    floor,
                },
                Lang::Zh,
            ) => format!(
                "工单与 {department} 的已知工单不相像：知识库中只有 {:.1}% 的工单离本部门中心这么远，\
                 低于下限 {:.1}%",
                typicality * 100.0,
                floor * 100.0
            ),
            (
                Review::Discounted {
                    department,
                    typicality,
                    weight,
                    confidence,
                    counts_as,
                    threshold,
                },
                Lang::En,
            ) => format!(
                "the ticket is rather unlike {department}'s known tickets: at a typicality of \
                 {:.1}% (weight {weight:.2}) its confidence {confidence:.2} counts as \
                 {counts_as:.2}, below the threshold {threshold:.2}",
                typicality * 100.0
            ),
            (
                Review::Discounted {
                    department,
                    typicality,
                    weight,
                    confidence,
                    counts_as,
                    threshold,
                },
                Lang::Zh,
            ) => format!(
                "工单与 {department} 的已知工单不太相像：典型度 {:.1}%（权重 {weight:.2}）下，\
                 置信度 {confidence:.2} 折算为 {counts_as:.2}，低于阈值 {threshold:.2}",
                typicality * 100.0
            ),
        }
    }
}

/// Decides `ticket`; its priority is `priority`, the policy's level with the steps that led there.
pub fn decide(
    ticket: &Ticket,
    rules: &RuleSet,
    config: &RouterConfig,
    priority: (switchboard_proto::Priority, Vec<PriorityStep>),
    now_ms: i64,
) -> Decision {
    let no_matches = Matches::default();
    let matches = ticket.matches.as_ref().unwrap_or(&no_matches);
    let similar = matches.similar.as_slice();
    let use_model = !similar.is_empty() && !matches.model_scores.is_empty();
    let window = Window::new(similar, config.window_days, now_ms);
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for (department, p) in evidence::blend(matches, &config.weighing(), now_ms) {
        tallies.entry(department).or_default().evidence = p;
    }
    for s in similar.iter().filter(|s| window.contains(s)) {
        let t = tallies.entry(s.department.as_str()).or_default();
        t.count += 1;
        t.resolution_minutes.extend(s.resolution_minutes);
    }
    let fired = fired_rules(ticket, &rules.rules);
    for f in &fired {
        tallies
            .entry(f.1.department.as_str())
            .or_default()
            .rule_weight += f.1.weight;
    }

    let in_window: u32 = tallies.values().map(|t| t.count).sum();
    let mut evidence: Vec<DepartmentEvidence> = tallies
        .iter()
        .map(|(dept, t)| DepartmentEvidence {
            department: (*dept).to_owned(),
            count: t.count,
            share: t.count as f32 / in_window.max(1) as f32,
            score: t.evidence + t.rule_weight,
            median_resolution_hours: median(&t.resolution_minutes).map(|m| m / 60.0),
        })
        .collect();
    let total: f32 = evidence.iter().map(|e| e.score).sum();
    for e in &mut evidence {
        e.score = if total > 0.0 { e.score / total } else { 0.0 };
    }
    evidence.retain(|e| e.score > 0.0 || e.count > 0);
    evidence.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.department.cmp(&b.department))
    });
    let model = if use_model {
        matches.model_scores.as_slice()
    } else {
        &[]
    };
    let typicality_of = |department: &str| {
        model
            .iter()
            .find(|m| m.department == department)
            .and_then(|m| m.typicality)
    };
    // A rule outweighs every kind of evidence, a description included.
    let duty = fired
        .is_empty()
        .then(|| {
            let top = evidence
                .first()
                .filter(|e| e.score > 0.0)
                .map(|e| (e, typicality_of(&e.department)));
            duty_evidence(matches, top, &config.duties)
        })
        .flatten();
    if let Some(duty) = &duty {
        let shares = BTreeMap::from([(duty.department.clone(), 1.0)]);
        mix_in(&mut evidence, &shares, duty.share);
    }
    let policies = policy_shares(matches);
    if !policies.is_empty() && config.policy_weight > 0.0 {
        mix_in(&mut evidence, &policies, config.policy_weight);
    }

    let model_version = matches.model_version.as_str();
    let (level, priority_steps) = priority;
    let mut decision = Decision {
        priority: level as i32,
        priority_steps,
        rules: fired
            .iter()
            .map(|(matched, r)| FiredRule {
                id: r.id.clone(),
                department: r.department.clone(),
                matched: (*matched).to_owned(),
            })
            .collect(),
        model_version: if model_version.is_empty() {
            MODEL_VERSION.to_owned()
        } else {
            format!("{MODEL_VERSION}+{model_version}")
        },
        rules_version: rules.version,
        decided_at_ms: now_ms,
        ..Decision::default()
    };
    if let Some(top) = evidence.first().filter(|e| e.score > 0.0) {
        decision.department = top.department.clone();
        decision.confidence = top.score;
    }
    if let Some(second) = evidence.get(1).filter(|e| e.score > 0.0) {
        decision.runner_up = second.department.clone();
        decision.runner_up_confidence = second.score;
    }
    let ruled = decision
        .rules
        .iter()
        .any(|r| r.department == decision.department);
    decision.typicality = if ruled {
        None
    } else {
        typicality_of(&decision.department)
    };
    let gate = config.gate();
    // Worded now, in both languages, so the borrow of the decision ends before it is filled in.
    let review = review(&decision, gate).map(|r| (r.describe(Lang::En), r.describe(Lang::Zh)));
    decision.set_outcome(if review.is_some() {
        Outcome::Review
    } else {
        Outcome::Routed
    });
    (decision.review_reason, decision.review_reason_zh) = review.unwrap_or_default();
    decision.evidence = evidence;
    let assessment = ticket.assessment.as_ref();
    let duty = duty.filter(|d| d.department == decision.department);
    let cited = Evidence {
        similar: in_window,
        window: &window,
        model,
        duty: duty.as_ref(),
        policies: &matches.policies,
    };
    decision.explanation = explain(&decision, &cited, assessment, Lang::En);
    decision.explanation_zh = explain(&decision, &cited, assessment, Lang::Zh);
    decision
}

/// Which similar tickets the explanation's counts cover: those created in the last `days`, when any
/// similar ticket has a creation time. A ticket without one cannot be dated out, so it counts.
struct Window {
    days: u32,
    since_ms: Option<i64>,
}

impl Window {
    fn new(similar: &[SimilarTicket], days: u32, now_ms: i64) -> Self {
        let dated = days > 0 && similar.iter().any(|s| s.created_at_ms > 0);
        Self {
            days,
            since_ms: dated.then(|| now_ms - (f64::from(days) * DAY_MS) as i64),
        }
    }

    fn contains(&self, s: &SimilarTicket) -> bool {
        self.since_ms
            .is_none_or(|since| s.created_at_ms <= 0 || s.created_at_ms >= since)
    }
}

/// Rules whose keywords appear in the text or the parsed keywords, with the keyword that matched.
fn fired_rules<'r>(ticket: &Ticket, rules: &'r [Rule]) -> Vec<(&'r str, &'r Rule)> {
    let text = ticket.text.to_lowercase();
    let keywords: Vec<String> = ticket
        .parsed
        .as_ref()
        .map(|p| p.keywords.iter().map(|k| k.to_lowercase()).collect())
        .unwrap_or_default();
    rules
        .iter()
        .filter(|r| r.enabled)
        .filter_map(|r| {
            r.keywords
                .iter()
                .map(|k| k.trim())
                .filter(|k| !k.is_empty())
                .find(|k| {
                    let k = k.to_lowercase();
                    text.contains(&k) || keywords.contains(&k)
                })
                .map(|k| (k, r))
        })
        .collect()
}

fn median(values: &[i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) as f64 / 2.0
    } else {
        v[mid] as f64
    })
}

/// One paragraph a person can check against the evidence fields, in `lang`: the same sentences, with
/// the same departments and numbers, in either language.
/// What the explanation cites besides the decision itself.
struct Evidence<'a> {
    /// Similar tickets in the window.
    similar: u32,
    window: &'a Window,
    model: &'a [DepartmentScore],
    duty: Option<&'a DutyEvidence>,
    policies: &'a [PolicyPassage],
}

fn explain(
    d: &Decision,
    evidence: &Evidence<'_>,
    assessment: Option<&Assessment>,
    lang: Lang,
) -> String {
    let Evidence {
        similar,
        window,
        model,
        duty,
        policies,
    } = *evidence;
    let list = lang.list_separator();
    let mut sentences: Vec<String> = Vec::new();
    let confidence = d.confidence * 100.0;
    sentences.push(match (d.outcome(), lang) {
        (Outcome::Review, Lang::En) => format!("Sent to human review: {}.", d.review_reason),
        (Outcome::Review, Lang::Zh) => format!("转人工审核：{}。", d.review_reason_zh),
        (_, Lang::En) => format!(
            "Routed to {} with confidence {confidence:.0}%.",
            d.department
        ),
        (_, Lang::Zh) => format!("已自动分派至 {}，置信度 {confidence:.0}%。", d.department),
    });
    // The sentiment stage's verdicts travel with the decision, so whoever reads it sees why a person
    // must take the ticket, and why it is more pressing than its text alone suggests.
    if let Some(a) = assessment.filter(|a| a.escalate) {
        // A sentiment role older than the Chinese wording sent English reasons only: better those
        // than none.
        let reasons = if lang == Lang::Zh && !a.escalation_reasons_zh.is_empty() {
            &a.escalation_reasons_zh
        } else {
            &a.escalation_reasons
        };
        let reasons = reasons.join(list);
        sentences.push(match lang {
            Lang::En => format!("Escalated to a person: {reasons}."),
            Lang::Zh => format!("已升级人工处理：{reasons}。"),
        });
    }
    if !d.priority_steps.is_empty() {
        let steps: Vec<String> = d
            .priority_steps
            .iter()
            .map(|s| switchboard_policy::describe(s, lang))
            .collect();
        let (level, steps) = (
            switchboard_policy::level(d.priority(), lang),
            steps.join(list),
        );
        sentences.push(match lang {
            Lang::En => format!("Priority {level}: {steps}."),
            Lang::Zh => format!("优先级为{level}：{steps}。"),
        });
    }
    if let Some(duty) = duty {
        let (department, similarity) = (&duty.department, duty.similarity);
        sentences.push(match lang {
            Lang::En => format!(
                "{department} has no history yet: its duty description reads most like this ticket \
                 (similarity {similarity:.2}), and the history gives no confident answer of its own."
            ),
            Lang::Zh => format!(
                "{department} 尚无历史工单：其职责描述与本工单最相近（相似度 {similarity:.2}），\
                 而历史工单给不出有把握的答案。"
            ),
        });
    }
    if let Some(top) = policies.first() {
        let (document, position) = (&top.document, &top.position);
        sentences.push(match lang {
            Lang::En => format!("Relevant policy: {document} ({position})."),
            Lang::Zh => format!("相关政策：{document}（{position}）。"),
        });
    }
    let dated = window.since_ms.is_some();
    for (i, e) in d
        .evidence
        .iter()
        .filter(|e| e.count > 0)
        .take(3)
        .enumerate()
    {
        let within = dated && i == 0;
        let (share, count, department) = (e.share * 100.0, e.count, &e.department);
        let mut sentence = match lang {
            Lang::En => format!(
                "{}{share:.0}% of the {similar} similar tickets ({count}) went to {department}",
                if within {
                    format!("Within the last {} days, ", window.days)
                } else {
                    String::new()
                }
            ),
            Lang::Zh => format!(
                "{}{similar} 张相似工单中 {share:.0}%（{count} 张）分派至 {department}",
                if within {
                    format!("近 {} 天内 ", window.days)
                } else {
                    String::new()
                }
            ),
        };
        if let Some(h) = e.median_resolution_hours {
            sentence.push_str(&match lang {
                Lang::En => format!("; median resolution {h:.1} h"),
                Lang::Zh => format!("；中位处理时长 {h:.1} 小时"),
            });
        }
        sentence.push_str(match lang {
            Lang::En => ".",
            Lang::Zh => "。",
        });
        sentences.push(sentence);
    }
    if !model.is_empty() {
        let top: Vec<String> = model
            .iter()
            .take(2)
            .map(|m| {
                let p = m.probability * 100.0;
                match (m.typicality, lang) {
                    (Some(t), Lang::En) => {
                        format!("{} {p:.0}% (typicality {:.1}%)", m.department, t * 100.0)
                    }
                    (Some(t), Lang::Zh) => {
                        format!("{} {p:.0}%（典型度 {:.1}%）", m.department, t * 100.0)
                    }
                    (None, _) => format!("{} {p:.0}%", m.department),
                }
            })
            .collect();
        sentences.push(match lang {
            Lang::En => format!("The classifier gives {}.", top.join(", ")),
            Lang::Zh => format!("分类器给出：{}。", top.join("，")),
        });
    }
    for r in &d.rules {
        sentences.push(match lang {
            Lang::En => format!(
                "Rule {} fired on \"{}\" for {}.",
                r.id, r.matched, r.department
            ),
            Lang::Zh => format!(
                "规则 {} 因“{}”命中，指向 {}。",
                r.id, r.matched, r.department
            ),
        });
    }
    if !d.runner_up.is_empty() {
        let c = d.runner_up_confidence * 100.0;
        sentences.push(match lang {
            Lang::En => format!("Runner-up: {} ({c:.0}%).", d.runner_up),
            Lang::Zh => format!("次选：{}（{c:.0}%）。", d.runner_up),
        });
    }
    // Chinese runs its sentences together; English spaces them.
    sentences.join(match lang {
        Lang::En => " ",
        Lang::Zh => "",
    })
}

#[cfg(test)]
mod tests;
