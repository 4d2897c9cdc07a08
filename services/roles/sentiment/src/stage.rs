use std::sync::Arc;

use async_trait::async_trait;
use switchboard_bus::Kv;
use switchboard_policy::{PolicyConfig, open_round};
use switchboard_proto::{Stage, Ticket};
use switchboard_runtime::{HandlerError, TicketStage};

use crate::assess::assess;
use crate::{ConfigError, Model, ModelError, SentimentConfig, score};

#[derive(Debug, thiserror::Error)]
pub enum SentimentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Policy(#[from] switchboard_policy::ConfigError),
    #[error("sentiment.model_path: cannot load the sentiment model {path}")]
    Model {
        path: String,
        #[source]
        source: ModelError,
    },
}

/// The sentiment role's stage: scores the ticket's tone, counts its thread's unresolved rounds and fills
/// `ticket.assessment`.
#[derive(Debug, Clone)]
pub struct SentimentStage {
    policy: PolicyConfig,
    /// The trained model of `sentiment.model_path`, shared by the stage's concurrent tasks.
    model: Option<Arc<Model>>,
    /// The [`switchboard_policy::THREADS_BUCKET`] bucket.
    threads: Arc<dyn Kv>,
}

impl SentimentStage {
    /// Refuses a configuration that [`SentimentConfig::validate`] or [`PolicyConfig::validate`] rejects,
    /// or a model file that cannot be read, so a bad setting stops the role at start instead of
    /// misjudging every ticket.
    pub fn new(
        config: SentimentConfig,
        policy: PolicyConfig,
        threads: Arc<dyn Kv>,
    ) -> Result<Self, SentimentError> {
        config.validate()?;
        policy.validate()?;
        let model = match &config.model_path {
            Some(path) => {
                let model = Model::load(path).map_err(|source| SentimentError::Model {
                    path: path.display().to_string(),
                    source,
                })?;
                tracing::info!(path = %path.display(), "sentiment model loaded");
                Some(Arc::new(model))
            }
            None => None,
        };
        Ok(Self {
            policy,
            model,
            threads,
        })
    }
}

#[async_trait]
impl TicketStage for SentimentStage {
    const INPUT: Stage = Stage::Parsed;

    async fn process(&self, ticket: &mut Ticket) -> Result<Stage, HandlerError> {
        if !ticket.thread_id.is_empty() {
            let earlier = open_round(self.threads.as_ref(), &ticket.thread_id, &ticket.id)
                .await
                .map_err(HandlerError::transient)?;
            // A connector may know of rounds from before Switchboard: keep the larger count.
            ticket.unresolved_rounds = ticket.unresolved_rounds.max(earlier);
        }
        let mut signals = score(&ticket.text);
        if let Some(model) = &self.model {
            signals.sentiment = model.sentiment(&ticket.text);
        }
        let assessment = assess(signals, ticket, &self.policy);
        tracing::debug!(
            ticket = %ticket.id,
            escalate = assessment.escalate,
            anger = assessment.anger,
            urgency = assessment.urgency,
            "ticket assessed"
        );
        ticket.assessment = Some(assessment);
        Ok(Stage::Assessed)
    }
}

#[cfg(test)]
mod tests {
    use switchboard_bus::Bus;
    use switchboard_bus::memory::MemoryBus;
    use switchboard_policy::{THREADS_BUCKET, prioritise, resolve_thread};
    use switchboard_proto::{Assessment, Priority};
    use switchboard_runtime::now_ms;

    use super::*;

    async fn threads() -> Arc<dyn Kv> {
        MemoryBus::new().kv(THREADS_BUCKET).await.expect("bucket")
    }

    async fn stage_with(config: SentimentConfig) -> Result<SentimentStage, SentimentError> {
        SentimentStage::new(config, PolicyConfig::default(), threads().await)
    }

    async fn assessed_by(stage: &SentimentStage, ticket: Ticket) -> Assessment {
        let mut ticket = ticket;
        assert_eq!(stage.process(&mut ticket).await.ok(), Some(Stage::Assessed));
        ticket.assessment.expect("the stage sets the assessment")
    }

    async fn assessed(ticket: Ticket) -> Assessment {
        let stage = stage_with(SentimentConfig::default())
            .await
            .expect("defaults are valid");
        assessed_by(&stage, ticket).await
    }

    /// The priority the policy gives the ticket with this assessment, as the router will apply it, and
    /// the causes of its steps.
    fn priority(assessment: &Assessment) -> (Priority, Vec<switchboard_proto::PriorityCause>) {
        let ticket = Ticket {
            assessment: Some(assessment.clone()),
            ..Ticket::default()
        };
        let (p, steps) = prioritise(&ticket, &PolicyConfig::default(), now_ms());
        (p, steps.iter().map(|s| s.cause()).collect())
    }

    fn ticket(text: &str) -> Ticket {
        Ticket {
            id: "t-1".to_owned(),
            text: text.to_owned(),
            ..Ticket::default()
        }
    }

    fn anger_reason(a: &Assessment) -> bool {
        a.escalation_reasons.iter().any(|r| r.starts_with("anger "))
    }

    #[tokio::test]
    async fn angry_chinese_ticket_escalates_for_anger() {
        let a = assessed(ticket(
            "你们就是骗子！扣了我两次钱还不退，我要投诉到12315！",
        ))
        .await;
        assert!(a.escalate && anger_reason(&a), "{a:?}");
        assert!(a.sentiment < 0.0, "{a:?}");
    }

    #[tokio::test]
    async fn angry_english_ticket_escalates_for_anger() {
        let a = assessed(ticket(
            "This is RIDICULOUS. Third time the app logs me out, totally unacceptable!",
        ))
        .await;
        assert!(a.escalate && anger_reason(&a), "{a:?}");
        assert!(
            matches!(priority(&a).0, Priority::High | Priority::Urgent),
            "{a:?}"
        );
    }

    #[tokio::test]
    async fn calm_ticket_does_not_escalate() {
        let a = assessed(ticket(
            "Hello, could you change the delivery address on my parcel? Thanks a lot.",
        ))
        .await;
        assert!(!a.escalate, "{a:?}");
        assert_eq!(priority(&a).0, Priority::Low, "{a:?}");
        let a = assessed(ticket("请问发票可以开电子版吗？谢谢")).await;
        assert!(!a.escalate, "{a:?}");
    }

    #[tokio::test]
    async fn urgency_raises_priority() {
        let calm = assessed(ticket("电梯坏了，请安排维修")).await;
        let pressing = assessed(ticket("电梯坏了，有老人被困，请马上安排维修")).await;
        assert_eq!(priority(&calm).0, Priority::Normal, "{calm:?}");
        assert_eq!(
            priority(&pressing),
            (
                Priority::High,
                vec![switchboard_proto::PriorityCause::Urgency]
            ),
            "{pressing:?}"
        );
        let en = assessed(ticket("Our checkout is down, please fix it ASAP")).await;
        assert!(
            matches!(priority(&en).0, Priority::High | Priority::Urgent),
            "{en:?}"
        );
    }

    #[tokio::test]
    async fn two_unresolved_rounds_escalate() {
        let a = assessed(Ticket {
            unresolved_rounds: 2,
            ..ticket("快递还是没到")
        })
        .await;
        assert!(a.escalate, "{a:?}");
        assert_eq!(a.escalation_reasons, ["unresolved rounds 2 ≥ 2"]);
        assert_eq!(a.escalation_reasons_zh, ["未解决轮次 2 ≥ 2"]);
        let once = assessed(Ticket {
            unresolved_rounds: 1,
            ..ticket("快递还是没到")
        })
        .await;
        assert!(!once.escalate, "{once:?}");
    }

    #[tokio::test]
    async fn rejects_an_invalid_policy() {
        let policy = PolicyConfig {
            anger_threshold: 2.0,
            ..PolicyConfig::default()
        };
        assert!(matches!(
            SentimentStage::new(SentimentConfig::default(), policy, threads().await),
            Err(SentimentError::Policy(_))
        ));
    }

    #[tokio::test]
    async fn a_missing_or_corrupt_model_names_the_key_and_the_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let corrupt = dir.path().join("corrupt.model");
        std::fs::write(&corrupt, b"not a model").expect("write");
        for path in [dir.path().join("missing.model"), corrupt] {
            let config = SentimentConfig {
                model_path: Some(path.clone()),
            };
            let err = stage_with(config).await.expect_err("must fail");
            let chain = switchboard_runtime::error_chain(&err);
            assert!(chain.starts_with("sentiment.model_path: "), "{chain}");
            assert!(chain.contains(&path.display().to_string()), "{chain}");
        }
    }

    #[tokio::test]
    async fn a_configured_model_gives_the_sentiment_and_the_word_lists_the_anger() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sentiment.model");
        crate::train::tests::tiny_model().save(&path).expect("save");
        let stage = stage_with(SentimentConfig {
            model_path: Some(path),
        })
        .await
        .expect("model loads");
        // No word of the lexicon's lists: only the model can tell this is praise.
        let text = "性价比高，环境安静";
        assert_eq!(score(text), crate::Signals::default());
        let praise = assessed_by(&stage, ticket(text)).await;
        assert!(praise.sentiment > 0.0, "{praise:?}");
        let complaint = assessed_by(&stage, ticket("The room was dirty, 骗子!")).await;
        assert!(complaint.sentiment < 0.0, "{complaint:?}");
        assert!(
            complaint.anger >= 0.6 && complaint.escalate,
            "{complaint:?}"
        );
    }

    #[tokio::test]
    async fn the_third_open_ticket_of_a_thread_escalates_until_it_is_resolved() {
        let kv = threads().await;
        let stage = SentimentStage::new(
            SentimentConfig::default(),
            PolicyConfig::default(),
            kv.clone(),
        )
        .expect("valid");
        let round = |id: &str| Ticket {
            id: id.to_owned(),
            thread_id: "chat-7".to_owned(),
            ..ticket("快递还是没到")
        };
        assert!(!assessed_by(&stage, round("t1")).await.escalate);
        assert!(!assessed_by(&stage, round("t2")).await.escalate);
        let third = assessed_by(&stage, round("t3")).await;
        assert_eq!(third.escalation_reasons, ["unresolved rounds 2 ≥ 2"]);
        resolve_thread(kv.as_ref(), "chat-7")
            .await
            .expect("resolve");
        assert!(!assessed_by(&stage, round("t4")).await.escalate);
    }
}
