use switchboard_proto::{
    Assessment, DepartmentScore, Matches, Priority, PriorityCause, PriorityStep, SimilarTicket,
};

use super::*;

const DAY: i64 = 86_400_000;
const NOW: i64 = 1_000 * DAY;

fn similar(dept: &str, score: f32, minutes: Option<i64>) -> SimilarTicket {
    SimilarTicket {
        department: dept.into(),
        score,
        weight: 1.0,
        resolution_minutes: minutes,
        ..SimilarTicket::default()
    }
}

fn dated(dept: &str, score: f32, age_days: i64) -> SimilarTicket {
    SimilarTicket {
        created_at_ms: NOW - age_days * DAY,
        ..similar(dept, score, None)
    }
}

fn ticket(text: &str, similar: Vec<SimilarTicket>) -> Ticket {
    with_model(text, similar, &[])
}

fn with_model(text: &str, similar: Vec<SimilarTicket>, model: &[(&str, f32)]) -> Ticket {
    Ticket {
        text: text.into(),
        matches: Some(Matches {
            similar,
            retriever: "bm25".into(),
            model_scores: model
                .iter()
                .map(|&(department, probability)| DepartmentScore {
                    department: department.into(),
                    probability,
                    typicality: None,
                })
                .collect(),
            model_version: if model.is_empty() {
                String::new()
            } else {
                "m-1".into()
            },
            ..Matches::default()
        }),
        ..Ticket::default()
    }
}

fn config() -> RouterConfig {
    RouterConfig::default()
}

/// The priority of a ticket the policy left alone.
fn normal() -> (Priority, Vec<PriorityStep>) {
    (Priority::Normal, Vec::new())
}

fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "{part:?} is not in {text:?}");
}

/// The outcome always agrees with [`routes`], which replays use.
fn check_outcome(d: &Decision, config: &RouterConfig) {
    let routed = d.outcome() == Outcome::Routed;
    assert_eq!(
        routed,
        routes(&d.department, d.confidence, d.typicality, config.gate()),
        "{d:?}"
    );
}

#[test]
fn majority_evidence_routes_with_shares_and_median() {
    let t = ticket(
        "cannot log in",
        vec![
            similar("auth", 3.0, Some(300)),
            similar("auth", 2.0, Some(420)),
            similar("auth", 2.0, None),
            similar("billing", 1.0, None),
        ],
    );
    let d = decide(&t, &RuleSet::default(), &config(), normal(), NOW);
    check_outcome(&d, &config());
    assert_eq!(d.outcome(), Outcome::Routed);
    assert_eq!(d.department, "auth");
    assert!((d.confidence - 7.0 / 8.0).abs() < 1e-6, "{}", d.confidence);
    assert_eq!(d.runner_up, "billing");
    assert_eq!(d.model_version, MODEL_VERSION);
    let auth = &d.evidence[0];
    assert_eq!((auth.count, auth.share), (3, 0.75));
    assert_eq!(auth.median_resolution_hours, Some(6.0));
    assert_contains(
        &d.explanation,
        "75% of the 4 similar tickets (3) went to auth",
    );
    assert_contains(&d.explanation, "median resolution 6.0 h");
}

#[test]
fn weak_evidence_goes_to_review() {
    let t = ticket(
        "x",
        vec![
            similar("a", 1.0, None),
            similar("b", 1.0, None),
            similar("c", 1.0, None),
        ],
    );
    let d = decide(&t, &RuleSet::default(), &config(), normal(), NOW);
    check_outcome(&d, &config());
    assert_eq!(d.outcome(), Outcome::Review);
    assert_contains(&d.review_reason, "below the threshold");
    let empty = decide(
        &ticket("x", vec![]),
        &RuleSet::default(),
        &config(),
        normal(),
        NOW,
    );
    assert_eq!(empty.outcome(), Outcome::Review);
    assert!(empty.review_reason.contains("nothing similar"));
}

#[test]
fn the_classifier_blends_with_the_similar_tickets() {
    let t = with_model(
        "x",
        vec![similar("a", 2.0, None)],
        &[("b", 0.8), ("a", 0.2)],
    );
    let cfg = RouterConfig {
        model_weight: Some(0.5),
        ..config()
    };
    let d = decide(&t, &RuleSet::default(), &cfg, normal(), NOW);
    check_outcome(&d, &cfg);
    // a: √(0.2 · (1 + 0.001)) = 0.4474; b, which no similar ticket went to: √(0.8 · 0.001) = 0.0283.
    // Normalised: a 0.9405, b 0.0595.
    assert_eq!(d.department, "a");
    assert!((d.confidence - 0.9405).abs() < 1e-3, "{}", d.confidence);
    assert_eq!(d.runner_up, "b");
    assert!((d.runner_up_confidence - 0.0595).abs() < 1e-3);
    assert_eq!(d.model_version, format!("{MODEL_VERSION}+m-1"));
    assert_contains(&d.explanation, "The classifier gives b 80%, a 20%");
    // b has no similar ticket: it is in the evidence with its score and a count of 0.
    let b = d.evidence.iter().find(|e| e.department == "b").expect("b");
    assert_eq!(b.count, 0);

    let only_model = RouterConfig {
        model_weight: Some(1.0),
        ..config()
    };
    let d = decide(&t, &RuleSet::default(), &only_model, normal(), NOW);
    assert_eq!(d.department, "b");
    assert!((d.confidence - 0.8).abs() < 1e-6);
}

#[test]
fn without_similar_tickets_the_classifier_alone_does_not_route() {
    let t = with_model("x", vec![], &[("b", 0.99)]);
    let d = decide(&t, &RuleSet::default(), &config(), normal(), NOW);
    check_outcome(&d, &config());
    assert_eq!(d.outcome(), Outcome::Review);
    assert!(d.department.is_empty());
    assert!(d.review_reason.contains("nothing similar"));
}

#[test]
fn older_tickets_vote_less() {
    let cfg = RouterConfig {
        half_life_days: 30.0,
        window_days: 0,
        ..config()
    };
    // Equal similarity; b's ticket is one half-life old, so a gets 1 vote to b's 0.5.
    let t = ticket("x", vec![dated("a", 1.0, 0), dated("b", 1.0, 30)]);
    let d = decide(&t, &RuleSet::default(), &cfg, normal(), NOW);
    assert_eq!(d.department, "a");
    assert!((d.confidence - 2.0 / 3.0).abs() < 1e-5, "{}", d.confidence);
    // Undated tickets are not discounted.
    let undated = ticket("x", vec![similar("a", 1.0, None), similar("b", 1.0, None)]);
    let d = decide(&undated, &RuleSet::default(), &cfg, normal(), NOW);
    assert!((d.confidence - 0.5).abs() < 1e-6);
}

#[test]
fn counts_cover_the_window_when_tickets_have_times() {
    let t = ticket(
        "x",
        vec![
            dated("a", 1.0, 10),
            dated("a", 1.0, 20),
            dated("b", 1.0, 200),
        ],
    );
    let d = decide(&t, &RuleSet::default(), &config(), normal(), NOW);
    let a = d.evidence.iter().find(|e| e.department == "a").expect("a");
    let b = d.evidence.iter().find(|e| e.department == "b").expect("b");
    assert_eq!((a.count, a.share), (2, 1.0));
    assert_eq!(b.count, 0, "outside the 90-day window");
    assert!(b.score > 0.0, "it still votes, discounted by age");
    assert_contains(
        &d.explanation,
        "Within the last 90 days, 100% of the 2 similar tickets (2) went to a",
    );
}

#[test]
fn a_fired_rule_outweighs_evidence_and_is_reported() {
    let t = with_model(
        "my LOGIN fails",
        vec![similar("billing", 5.0, None)],
        &[("billing", 1.0)],
    );
    let rules = RuleSet {
        rules: vec![
            Rule {
                id: "login".into(),
                keywords: vec!["login".into()],
                department: "auth".into(),
                weight: 3.0,
                enabled: true,
                description: String::new(),
            },
            Rule {
                id: "off".into(),
                keywords: vec!["fails".into()],
                department: "ops".into(),
                weight: 9.0,
                enabled: false,
                description: String::new(),
            },
        ],
        version: 7,
    };
    let d = decide(&t, &rules, &config(), normal(), NOW);
    check_outcome(&d, &config());
    assert_eq!(d.department, "auth");
    assert!((d.confidence - 0.75).abs() < 1e-6);
    assert_eq!(d.rules.len(), 1);
    assert_eq!(d.rules[0].matched, "login");
    assert_eq!(d.rules_version, 7);
    assert_contains(&d.explanation, "Rule login fired");
}

#[test]
fn escalation_and_priority_steps_are_in_the_explanation() {
    let assessment = Assessment {
        escalate: true,
        escalation_reasons: vec!["anger 0.80 ≥ 0.60".into()],
        ..Assessment::default()
    };
    let t = Ticket {
        assessment: Some(assessment),
        ..ticket("x", vec![similar("a", 0.9, None), similar("a", 0.8, None)])
    };
    let mut waited = PriorityStep {
        value: 90.0,
        limit: 60.0,
        ..PriorityStep::default()
    };
    waited.set_cause(PriorityCause::Wait);
    waited.set_from(Priority::High);
    waited.set_to(Priority::Urgent);
    let d = decide(
        &t,
        &RuleSet::default(),
        &config(),
        (Priority::Urgent, vec![waited.clone()]),
        NOW,
    );
    assert_eq!(d.priority(), Priority::Urgent);
    assert_eq!(d.priority_steps, [waited]);
    assert_contains(
        &d.explanation,
        "Escalated to a person: anger 0.80 ≥ 0.60. Priority urgent: waited 90 min ≥ 60 (high → urgent).",
    );
    let calm = decide(
        &ticket("x", vec![similar("a", 0.9, None)]),
        &RuleSet::default(),
        &config(),
        normal(),
        NOW,
    );
    assert!(
        !calm.explanation.contains("Escalated") && !calm.explanation.contains("Priority"),
        "{}",
        calm.explanation
    );
}

/// Two similar tickets of a and a classifier 95% sure of a, with the ticket's typicality for a as given
/// (0.5 for b).
fn sure_of_a(typicality: f32) -> Ticket {
    let evidence = vec![similar("a", 2.0, None), similar("a", 1.5, None)];
    let mut t = with_model("x", evidence, &[("a", 0.95), ("b", 0.05)]);
    let matches = t.matches.as_mut().expect("matches");
    for (m, typical) in matches.model_scores.iter_mut().zip([typicality, 0.5]) {
        m.typicality = Some(typical);
    }
    t
}

#[test]
fn a_ticket_unlike_the_departments_tickets_goes_to_review_however_confident() {
    let atypical = sure_of_a(0.004);
    let d = decide(&atypical, &RuleSet::default(), &config(), normal(), NOW);
    check_outcome(&d, &config());
    assert_eq!(d.department, "a");
    assert!(d.confidence > 0.9, "{}", d.confidence);
    assert_eq!(d.typicality, Some(0.004));
    assert_eq!(d.outcome(), Outcome::Review);
    assert_contains(
        &d.review_reason,
        "unlike a's known tickets: only 0.4% of the knowledge base",
    );
    assert_contains(&d.explanation, "a 95% (typicality 0.4%)");

    // The same ticket, typical of a, routes; so does the atypical one with the test off.
    let typical = sure_of_a(0.3);
    let d = decide(&typical, &RuleSet::default(), &config(), normal(), NOW);
    check_outcome(&d, &config());
    assert_eq!(d.outcome(), Outcome::Routed);
    let off = RouterConfig {
        min_typicality: 0.0,
        ..config()
    };
    let d = decide(&atypical, &RuleSet::default(), &off, normal(), NOW);
    check_outcome(&d, &off);
    assert_eq!(d.outcome(), Outcome::Routed);

    // A rule naming the department routes it, whatever the history looks like.
    let rules = RuleSet {
        rules: vec![Rule {
            id: "x".into(),
            keywords: vec!["x".into()],
            department: "a".into(),
            weight: 3.0,
            enabled: true,
            description: String::new(),
        }],
        version: 1,
    };
    let d = decide(&atypical, &rules, &config(), normal(), NOW);
    check_outcome(&d, &config());
    assert_eq!(d.typicality, None);
    assert_eq!(d.outcome(), Outcome::Routed);
}

#[test]
fn a_low_typicality_discounts_the_confidence_when_weighted() {
    // Typicality 6.25%: above the default floor of 1%, and 0.0625^0.5 = 0.25.
    let strange = sure_of_a(0.0625);
    let d = decide(&strange, &RuleSet::default(), &config(), normal(), NOW);
    check_outcome(&d, &config());
    assert_eq!(d.outcome(), Outcome::Routed, "no discount by default");

    let weighted = RouterConfig {
        typicality_weight: 0.5,
        ..config()
    };
    let d = decide(&strange, &RuleSet::default(), &weighted, normal(), NOW);
    check_outcome(&d, &weighted);
    assert_eq!(d.outcome(), Outcome::Review);
    let counts_as = format!("counts as {:.2}", d.confidence * 0.25);
    assert_contains(&d.review_reason, "rather unlike a's known tickets");
    assert_contains(&d.review_reason, &counts_as);

    // A typical ticket keeps nearly all of its confidence: 0.95 × 0.81^0.5 ≈ 0.86.
    let usual = sure_of_a(0.81);
    let d = decide(&usual, &RuleSet::default(), &weighted, normal(), NOW);
    check_outcome(&d, &weighted);
    assert_eq!(d.outcome(), Outcome::Routed);
}

#[test]
fn the_knowledge_bases_blend_weight_applies_unless_configured() {
    let mut t = with_model(
        "x",
        vec![similar("a", 2.0, None)],
        &[("b", 0.8), ("a", 0.2)],
    );
    t.matches.as_mut().expect("matches").model_weight = Some(1.0);
    let d = decide(&t, &RuleSet::default(), &config(), normal(), NOW);
    assert_eq!(
        d.department, "b",
        "the classifier alone, as the ticket says"
    );
    let configured = RouterConfig {
        model_weight: Some(0.5),
        ..config()
    };
    assert_eq!(
        decide(&t, &RuleSet::default(), &configured, normal(), NOW).department,
        "a"
    );
    // Neither: the default blend, where one similar ticket outweighs a 0.8 to 0.2 classifier.
    t.matches.as_mut().expect("matches").model_weight = None;
    assert_eq!(
        decide(&t, &RuleSet::default(), &config(), normal(), NOW).department,
        "a"
    );
}

/// The Chinese wording says what the English one says: the same numbers, and each of the decision's
/// departments as often, in the explanation and in the review reason.
fn assert_same_facts(d: &Decision) {
    fn numbers(text: &str) -> Vec<&str> {
        let mut found: Vec<&str> = text
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map(|w| w.trim_matches('.'))
            .filter(|w| !w.is_empty())
            .collect();
        found.sort_unstable();
        found
    }
    fn mentions(text: &str, department: &str) -> usize {
        text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| *w == department)
            .count()
    }
    let han = |c: char| ('\u{4E00}'..='\u{9FFF}').contains(&c);
    assert!(d.explanation_zh.chars().any(han), "{}", d.explanation_zh);
    for (en, zh) in [
        (&d.explanation, &d.explanation_zh),
        (&d.review_reason, &d.review_reason_zh),
    ] {
        assert_eq!(numbers(en), numbers(zh), "\n{en}\n{zh}");
        let departments = d
            .evidence
            .iter()
            .map(|e| e.department.as_str())
            .chain(d.rules.iter().map(|r| r.department.as_str()));
        for department in departments {
            assert_eq!(
                mentions(en, department),
                mentions(zh, department),
                "{department}\n{en}\n{zh}"
            );
        }
    }
}

#[test]
fn a_routed_decision_reads_the_same_in_chinese() {
    let t = ticket(
        "停水了",
        vec![
            dated("water_supply", 3.0, 10),
            dated("water_supply", 2.0, 20),
            dated("water_supply", 2.0, 30),
            dated("billing", 1.0, 40),
        ],
    );
    let t = Ticket {
        matches: t.matches.map(|mut m| {
            for (s, minutes) in m.similar.iter_mut().zip([300, 420, 360, 60]) {
                s.resolution_minutes = Some(minutes);
            }
            m
        }),
        ..t
    };
    let d = decide(&t, &RuleSet::default(), &config(), normal(), NOW);
    assert_eq!(d.outcome(), Outcome::Routed);
    assert!(d.review_reason_zh.is_empty());
    assert_contains(&d.explanation, "Routed to water_supply with confidence ");
    assert_contains(
        &d.explanation,
        "Within the last 90 days, 75% of the 4 similar tickets (3) went to water_supply; \
         median resolution 6.0 h.",
    );
    let confidence = format!("{:.0}%", d.confidence * 100.0);
    assert!(
        d.explanation_zh
            .starts_with(&format!("已自动分派至 water_supply，置信度 {confidence}。")),
        "{}",
        d.explanation_zh
    );
    assert_contains(
        &d.explanation_zh,
        "近 90 天内 4 张相似工单中 75%（3 张）分派至 water_supply；中位处理时长 6.0 小时。",
    );
    assert_contains(&d.explanation_zh, "次选：billing（");
    assert_same_facts(&d);
}

/// [`sure_of_a`] with its departments named as a desk names them, so that no English word is one.
fn sure_of_permits(typicality: f32) -> Ticket {
    let mut t = sure_of_a(typicality);
    let matches = t.matches.as_mut().expect("matches");
    let rename = |d: &mut String| *d = if d == "a" { "permits" } else { "parking" }.to_owned();
    for s in &mut matches.similar {
        rename(&mut s.department);
    }
    for m in &mut matches.model_scores {
        rename(&mut m.department);
    }
    t
}

#[test]
fn a_review_decision_gives_its_reason_in_chinese() {
    let t = ticket(
        "x",
        vec![
            similar("roads", 1.0, None),
            similar("parks", 1.0, None),
            similar("water", 1.0, None),
        ],
    );
    let d = decide(&t, &RuleSet::default(), &config(), normal(), NOW);
    assert_eq!(d.outcome(), Outcome::Review);
    assert_eq!(
        d.review_reason,
        "confidence 0.33 is below the threshold 0.50"
    );
    assert_eq!(d.review_reason_zh, "置信度 0.33 低于阈值 0.50");
    assert!(
        d.explanation_zh
            .starts_with("转人工审核：置信度 0.33 低于阈值 0.50。"),
        "{}",
        d.explanation_zh
    );
    assert_same_facts(&d);

    let empty = decide(
        &ticket("x", vec![]),
        &RuleSet::default(),
        &config(),
        normal(),
        NOW,
    );
    assert_eq!(
        empty.explanation_zh,
        "转人工审核：知识库中没有相似工单，也没有规则命中。"
    );
    assert_same_facts(&empty);

    // Unlike the department's tickets, at the floor and under a weight.
    let d = decide(
        &sure_of_permits(0.004),
        &RuleSet::default(),
        &config(),
        normal(),
        NOW,
    );
    assert_contains(
        &d.review_reason_zh,
        "工单与 permits 的已知工单不相像：知识库中只有 0.4% 的工单离本部门中心这么远，低于下限 1.0%",
    );
    assert_contains(
        &d.explanation_zh,
        "分类器给出：permits 95%（典型度 0.4%），parking 5%（典型度 50.0%）。",
    );
    assert_same_facts(&d);
    let weighted = RouterConfig {
        typicality_weight: 0.5,
        ..config()
    };
    let d = decide(
        &sure_of_permits(0.0625),
        &RuleSet::default(),
        &weighted,
        normal(),
        NOW,
    );
    assert_eq!(d.outcome(), Outcome::Review);
    assert_contains(
        &d.review_reason_zh,
        "工单与 permits 的已知工单不太相像：典型度 ",
    );
    assert_contains(&d.review_reason_zh, "（权重 0.50）下，置信度 ");
    assert_same_facts(&d);
}

#[test]
fn escalation_and_priority_steps_read_the_same_in_chinese() {
    let anger = switchboard_policy::Escalation::Anger {
        anger: 0.8,
        limit: 0.6,
    };
    let assessment = Assessment {
        escalate: true,
        escalation_reasons: vec![anger.describe(Lang::En)],
        escalation_reasons_zh: vec![anger.describe(Lang::Zh)],
        ..Assessment::default()
    };
    let t = Ticket {
        assessment: Some(assessment.clone()),
        ..ticket(
            "x",
            vec![similar("housing", 0.9, None), similar("housing", 0.8, None)],
        )
    };
    let mut waited = PriorityStep {
        value: 90.0,
        limit: 60.0,
        ..PriorityStep::default()
    };
    waited.set_cause(PriorityCause::Wait);
    waited.set_from(Priority::High);
    waited.set_to(Priority::Urgent);
    let rules = RuleSet {
        rules: vec![Rule {
            id: "rent".into(),
            keywords: vec!["x".into()],
            department: "housing".into(),
            weight: 1.0,
            enabled: true,
            description: String::new(),
        }],
        version: 1,
    };
    let d = decide(&t, &rules, &config(), (Priority::Urgent, vec![waited]), NOW);
    assert_contains(
        &d.explanation_zh,
        "已升级人工处理：愤怒度 0.80 ≥ 0.60。优先级为紧急：已等待 90 分钟 ≥ 60（高 → 紧急）。",
    );
    assert_contains(&d.explanation_zh, "规则 rent 因“x”命中，指向 housing。");
    assert_same_facts(&d);

    // From a sentiment role that sent no Chinese reasons, the English ones stand in.
    let english_only = Ticket {
        assessment: Some(Assessment {
            escalation_reasons_zh: Vec::new(),
            ..assessment
        }),
        ..t
    };
    let d = decide(&english_only, &RuleSet::default(), &config(), normal(), NOW);
    assert_contains(&d.explanation_zh, "已升级人工处理：anger 0.80 ≥ 0.60。");
}

#[test]
fn a_department_without_history_takes_the_ticket_its_description_fits() {
    // The history splits two ways and the ticket is unlike both departments' tickets.
    let mut t = with_model(
        "my passport expired abroad",
        vec![
            similar("billing", 0.4, None),
            similar("delivery", 0.4, None),
        ],
        &[("billing", 0.5), ("delivery", 0.5)],
    );
    let matches = t.matches.as_mut().expect("matches");
    for m in &mut matches.model_scores {
        m.typicality = Some(0.02);
    }
    matches.duties = vec![
        switchboard_proto::DutyMatch {
            department: "passports".into(),
            similarity: 0.5,
            known: false,
        },
        switchboard_proto::DutyMatch {
            department: "billing".into(),
            similarity: 0.2,
            known: true,
        },
    ];
    let d = decide(&t, &RuleSet::default(), &config(), normal(), NOW);
    assert_eq!(d.department, "passports");
    assert_eq!(d.outcome(), Outcome::Routed);
    assert_eq!(d.typicality, None, "no history to be typical of");
    assert_contains(&d.explanation, "passports has no history yet");
    assert_contains(&d.explanation_zh, "尚无历史工单");
    let total: f32 = d.evidence.iter().map(|e| e.score).sum();
    assert!((total - 1.0).abs() < 1e-5, "{:?}", d.evidence);

    // Turned off, the history decides alone.
    let off = RouterConfig {
        duties: crate::config::DutyConfig {
            enabled: false,
            ..crate::config::DutyConfig::default()
        },
        ..config()
    };
    let d = decide(&t, &RuleSet::default(), &off, normal(), NOW);
    assert_ne!(d.department, "passports");
    assert!(d.evidence.iter().all(|e| e.department != "passports"));
}

#[test]
fn relevant_policy_is_cited_and_weighed() {
    let mut t = ticket(
        "can I withdraw my housing fund",
        vec![
            similar("housing_fund", 0.5, None),
            similar("tax_service", 0.5, None),
        ],
    );
    t.matches.as_mut().expect("matches").policies = vec![switchboard_proto::PolicyPassage {
        document: "policies/fund.md".into(),
        position: "§ Withdrawals, passage 1".into(),
        text: "A withdrawal needs the purchase contract.".into(),
        departments: vec!["housing_fund".into()],
        score: 2.0,
    }];
    let d = decide(&t, &RuleSet::default(), &config(), normal(), NOW);
    assert_eq!(d.department, "housing_fund", "{:?}", d.evidence);
    assert!(d.confidence > 0.55, "{}", d.confidence);
    assert_contains(
        &d.explanation,
        "Relevant policy: policies/fund.md (§ Withdrawals, passage 1).",
    );
    assert_contains(&d.explanation_zh, "相关政策：policies/fund.md");
    // At weight 0 the passage is cited but does not weigh.
    let unweighed = RouterConfig {
        policy_weight: 0.0,
        ..config()
    };
    let d = decide(&t, &RuleSet::default(), &unweighed, normal(), NOW);
    assert!((d.confidence - 0.5).abs() < 1e-5, "{}", d.confidence);
    assert_contains(&d.explanation, "Relevant policy");
}
