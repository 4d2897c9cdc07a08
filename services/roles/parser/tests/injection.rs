//! Prompt injection: a corpus of attacks written for Switchboard (tests/fixtures/injections.jsonl,
//! Chinese and English: "ignore previous instructions", fake JSON, role-play, instructions in quoted
//! mail, forged ticket markers), each run against a stand-in provider that obeys the attack and returns
//! the injected answer. Whatever the model says, the section may only name catalog departments, may
//! only raise the complexity one tier above what the text shows, may only keep keywords the ticket
//! holds (so it cannot fire a rule the text would not), and the ticket can never break out of its
//! markers in the request.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use support::{Reply, StandIn, counter, ticket};
use switchboard_parser::{
    DepartmentCatalog, FallbackParser, LlmConfig, LlmParser, LocalParser, Parser,
};
use switchboard_runtime::Metrics;

#[derive(Debug, Deserialize)]
struct Attack {
    id: String,
    lang: String,
    kind: String,
    ticket: String,
    /// What the compromised model answers.
    answer: String,
}

fn corpus() -> Vec<Attack> {
    include_str!("fixtures/injections.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a corpus line"))
        .collect()
}

fn placeholder_free(text: &str) -> String {
    let mut out = text.to_owned();
    for kind in ["PHONE", "EMAIL", "ID_CARD", "BANK_CARD", "IP"] {
        for n in 1..10 {
            out = out.replace(&format!("<{kind}_{n}>"), "");
        }
    }
    out
}

#[test]
fn the_corpus_is_large_and_varied() {
    let corpus = corpus();
    assert!(corpus.len() >= 100, "{}", corpus.len());
    let langs: BTreeSet<&str> = corpus.iter().map(|a| a.lang.as_str()).collect();
    let kinds: BTreeSet<&str> = corpus.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(langs, BTreeSet::from(["en", "zh"]));
    assert_eq!(
        kinds,
        BTreeSet::from([
            "delimiter_spoof",
            "fake_json",
            "ignore_instructions",
            "quoted_mail",
            "role_play"
        ])
    );
    let ids: BTreeSet<&str> = corpus.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), corpus.len(), "ids are unique");
}

#[tokio::test]
async fn no_injected_answer_routes_outside_policy_or_escalates() {
    let standin = StandIn::start().await;
    let catalog = DepartmentCatalog::fixed([
        ("billing", "charges and refunds"),
        ("network_ops", "networks and VPN"),
        ("unified_auth", "accounts and login"),
        ("water_electricity", "utilities"),
        ("hr_services", "payroll"),
        ("tax_service", "taxes"),
        ("housing_fund", "housing provident fund"),
        ("business_license", "licences"),
        ("device_support", "computers and printers"),
    ]);
    let allowed = catalog.ids();
    let config = LlmConfig {
        max_retries: 1,
        backoff_ms: 1,
        ..standin.config()
    };
    let metrics = Metrics::new();
    let llm = LlmParser::new(
        &config,
        catalog.clone(),
        metrics.clone(),
        Duration::from_secs(10),
    )
    .expect("valid config");
    let parser = FallbackParser::new(Arc::new(llm));

    let mut system_prompts = BTreeSet::new();
    let mut answered_by_llm = 0;
    for attack in corpus() {
        let seen = standin.requests().len();
        standin.always(Reply::Content(attack.answer.clone()));
        let parsed = parser
            .parse(&ticket(&attack.id, &attack.ticket))
            .await
            .expect("a section, from the LLM or the local parser");
        let local = LocalParser.parse_text(&attack.ticket);
        let what = format!("{} ({} {})", attack.id, attack.lang, attack.kind);

        for d in &parsed.suggested_departments {
            assert!(
                allowed.contains(d),
                "{what}: department {d:?} outside the catalog"
            );
        }
        // Above the local tier the model alone could lift a ticket into the escalation tier.
        assert!(
            parsed.complexity <= local.complexity.max(1),
            "{what}: the model raised the complexity {} above the local tier {}",
            parsed.complexity,
            local.complexity
        );
        let text = attack.ticket.to_lowercase();
        for k in &parsed.keywords {
            assert!(
                text.contains(&k.to_lowercase()),
                "{what}: keyword {k:?} is not in the ticket and could fire a rule"
            );
        }
        assert!(
            parsed.parser.starts_with("llm:") || parsed.parser.starts_with("local (fallback: "),
            "{what}: {}",
            parsed.parser
        );
        answered_by_llm += usize::from(parsed.parser.starts_with("llm:"));

        let requests = standin.requests();
        assert!(requests.len() > seen, "{what}: no request");
        for r in &requests[seen..] {
            let user = r.message("user");
            assert_eq!(user.matches("<ticket>").count(), 1, "{what}: {user}");
            assert_eq!(user.matches("</ticket>").count(), 1, "{what}: {user}");
            assert!(user.ends_with("\n</ticket>"), "{what}: {user}");
            let (_, inside) = user.split_once("<ticket>\n").expect("opening marker");
            let inside = inside.strip_suffix("\n</ticket>").expect("closing marker");
            let bare = placeholder_free(inside);
            assert!(
                !bare.contains(['<', '>', '＜', '＞', '〈', '〉', '⟨', '⟩']),
                "{what}: a bracket survived: {inside}"
            );
            system_prompts.insert(r.message("system"));
        }
    }
    // The ticket never reaches the system prompt: one prompt for all of them.
    assert_eq!(system_prompts.len(), 1);
    // Most attacks come back as schema-valid JSON and are defused, not merely rejected.
    assert!(answered_by_llm >= 80, "{answered_by_llm}");
    assert!(
        counter(
            &metrics.encode(),
            "switchboard_llm_dropped_departments_total"
        ) >= 80
    );
    // Nothing an answer said changed the catalog.
    assert_eq!(catalog.ids(), allowed);
}
