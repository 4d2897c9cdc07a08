//! `switchboard route "<text>"`: one ticket through the embedded pipeline over the local knowledge base,
//! printing the decision and everything behind it. The rules are the configured bus's, copied in.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context;
use prost::Message;
use std::sync::Arc;

use switchboard_bus::memory::MemoryBus;
use switchboard_bus::{Bus, ConsumerSpec, Entry};
use switchboard_intake::Submission;
use switchboard_policy::Lang;
use switchboard_proto::{Outcome, ProblemTypeSource, Ticket};
use switchboard_runtime::{Subjects, buckets};

use crate::roles::Roles;
use crate::settings::{BusKind, Settings};

pub async fn run(mut settings: Settings, text: &str) -> anyhow::Result<Ticket> {
    let rules = configured_rules(&settings).await?;
    settings.bus.kind = BusKind::Memory;
    settings.http.addr = ([127, 0, 0, 1], 0).into();
    settings.grpc.addr = ([127, 0, 0, 1], 0).into();
    // A volatile bus of its own: this one ticket leaves no trace in the configured bus, and the
    // command works while a `switchboard run` holds the embedded store.
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    // Copied before the router starts, so its first decision already has them. Revisions start afresh
    // in the copy: the decision's `rules_version` is the copy's, not the configured bucket's.
    let seeded = bus.kv(buckets::RULES).await?;
    for (id, entry) in rules {
        seeded.put(&id, entry.value).await?;
    }
    let running = crate::app::start(&settings, &Roles::all(), bus.clone()).await?;
    let subjects = Subjects::new(&settings.subject_prefix);
    // Decisions land on `<prefix>.routed` or `<prefix>.review`; one wildcard catches both.
    let consumer = bus
        .consumer(ConsumerSpec {
            durable: "route-command".into(),
            filter: format!("{}.*", subjects.prefix()),
            ack_wait: Duration::from_secs(30),
        })
        .await?;
    let intake = running.intake.clone().context("intake is not running")?;
    let submitted = intake
        .submit(Submission {
            text: text.as_bytes().to_vec(),
            channel: "api".into(),
            ..Submission::default()
        })
        .await?;
    let ticket = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let d = consumer.next().await?;
            d.acker.ack().await?;
            let t = Ticket::decode(d.payload.clone()).context("decoding a pipeline event")?;
            if t.id == submitted.ticket_id && t.decision.is_some() {
                return anyhow::Ok(t);
            }
        }
    })
    .await
    .context("no decision within 30 s")??;
    running.shutdown().await;
    Ok(ticket)
}

/// The admin rules of the configured bus, which the in-process pipeline must decide by as the deployed
/// router would. An embedded bus that was never started has none; a stored one is read, which fails
/// while a running `switchboard` holds it (one process owns the store).
async fn configured_rules(settings: &Settings) -> anyhow::Result<Vec<(String, Entry)>> {
    let location = match settings.bus.kind {
        BusKind::Memory if !settings.bus_dir().exists() => return Ok(Vec::new()),
        BusKind::Memory => format!("the embedded bus in {}", settings.bus_dir().display()),
        BusKind::Nats => format!("the bus at {}", settings.bus.nats.url),
    };
    let read = async {
        let bus = crate::app::connect_bus(settings).await?;
        anyhow::Ok(bus.kv(buckets::RULES).await?.entries().await?)
    };
    read.await
        .with_context(|| format!("reading the rules from {location}"))
}

/// The decision as a person reads it, its review reason and explanation in English and in Chinese.
pub fn render(t: &Ticket) -> String {
    let mut out = String::new();
    let d = t.decision.clone().unwrap_or_default();
    let typicality = d
        .typicality
        .map(|t| format!(", typicality {t:.3}"))
        .unwrap_or_default();
    let _ = writeln!(out, "ticket       {}", t.id);
    let _ = writeln!(out, "text         {}", t.text);
    match d.outcome() {
        Outcome::Routed => {
            let _ = writeln!(
                out,
                "decision     routed to {} (confidence {:.2}{typicality})",
                d.department, d.confidence
            );
        }
        _ => {
            let _ = writeln!(out, "decision     human review: {}", d.review_reason);
            let _ = writeln!(out, "             转人工审核：{}", d.review_reason_zh);
            if !d.department.is_empty() {
                let _ = writeln!(
                    out,
                    "best guess   {} (confidence {:.2}{typicality})",
                    d.department, d.confidence
                );
            }
        }
    }
    if !d.runner_up.is_empty() {
        let _ = writeln!(
            out,
            "runner-up    {} ({:.2})",
            d.runner_up, d.runner_up_confidence
        );
    }
    let _ = writeln!(
        out,
        "priority     {}（{}）",
        switchboard_policy::level(d.priority(), Lang::En),
        switchboard_policy::level(d.priority(), Lang::Zh)
    );
    for step in &d.priority_steps {
        let _ = writeln!(
            out,
            "             {}",
            switchboard_policy::describe(step, Lang::En)
        );
        let _ = writeln!(
            out,
            "             {}",
            switchboard_policy::describe(step, Lang::Zh)
        );
    }
    if let Some(a) = &t.assessment {
        let _ = writeln!(
            out,
            "sentiment    {:.2} (anger {:.2}, urgency {:.2})",
            a.sentiment, a.anger, a.urgency
        );
        for (i, r) in a.escalation_reasons.iter().enumerate() {
            let _ = writeln!(out, "             escalate: {r}");
            if let Some(zh) = a.escalation_reasons_zh.get(i) {
                let _ = writeln!(out, "             转人工：{zh}");
            }
        }
    }
    if let Some(p) = &t.parsed {
        let _ = writeln!(
            out,
            "parsed       [{}] keywords: {}",
            p.parser,
            p.keywords.join(", ")
        );
        let source = match p.problem_type_source() {
            ProblemTypeSource::Parser => "read by the parser".to_owned(),
            ProblemTypeSource::Neighbours => {
                format!(
                    "from similar tickets {}",
                    p.problem_type_neighbours.join(", ")
                )
            }
            ProblemTypeSource::Keyword => {
                "the top keyword: no similar ticket has a problem type".to_owned()
            }
            ProblemTypeSource::Unspecified => "source not recorded".to_owned(),
        };
        let _ = writeln!(out, "problem type {} ({source})", p.problem_type);
    }
    // Both wordings, one under the other: the Chinese one is what Chinese readers of the console and
    // the API get, so whoever checks a decision here sees it too.
    let _ = writeln!(out, "explanation  {}", d.explanation);
    let _ = writeln!(out, "             {}", d.explanation_zh);
    if let Some(m) = &t.matches {
        let _ = writeln!(out, "similar tickets ({}):", m.retriever);
        for s in m.similar.iter().take(5) {
            let _ = writeln!(out, "  {:>7.3}  {:<20} {}", s.score, s.department, s.text);
        }
        if !m.policies.is_empty() {
            let _ = writeln!(out, "relevant policy:");
        }
        for p in &m.policies {
            let _ = writeln!(
                out,
                "  {:>7.3}  {} ({}) [{}]: {}",
                p.score,
                p.document,
                p.position,
                p.departments.join(", "),
                p.text.replace('\n', " ")
            );
        }
        if !m.duties.is_empty() {
            let _ = writeln!(out, "duty descriptions most like it:");
        }
        for duty in &m.duties {
            let history = if duty.known { "" } else { " (no history)" };
            let _ = writeln!(
                out,
                "  {:>7.3}  {}{history}",
                duty.similarity, duty.department
            );
        }
    }
    let _ = write!(
        out,
        "versions     model {}, rules {}",
        d.model_version, d.rules_version
    );
    out
}
