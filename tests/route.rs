//! `switchboard route` on a deployment whose bus is a real nats-server: the command runs the pipeline
//! in-process, but decides by the admin rules stored in that bus.

use anyhow::Context;
use bytes::Bytes;
use switchboard_runtime::buckets;
use switchboard_tests::{Kind, bus, clean_up, settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_decides_by_the_rules_stored_on_nats() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let settings = settings(Kind::Nats, &data);
    let outcome = async {
        let nats = bus(&settings).await?;
        // As the `Rules` service stores it (and an operator with the `nats` CLI would).
        let rule = br#"{"id":"quantum","keywords":["quantum"],"department":"device_support","weight":3.0,"enabled":true}"#;
        nats.kv(buckets::RULES)
            .await?
            .put("quantum", Bytes::from_static(rule))
            .await?;

        let ticket = switchboard::route::run(
            settings.clone(),
            "The quantum terminal in room 4 will not take my invoice",
        )
        .await?;
        let decision = ticket.decision.context("route gave no decision")?;
        let fired: Vec<&str> = decision.rules.iter().map(|r| r.id.as_str()).collect();
        anyhow::ensure!(
            fired == ["quantum"],
            "the rule stored on NATS did not fire: fired {fired:?}, decision {decision:?}"
        );
        assert_eq!(decision.department, "device_support");
        Ok(())
    }
    .await;
    clean_up(&settings).await?;
    outcome
}
