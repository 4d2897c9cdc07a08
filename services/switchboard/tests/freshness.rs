//! The chart's layout: feedback in one process, the retriever (with the rest of the pipeline) in
//! another, sharing one NATS and one Qdrant collection. A correction feedback applies must change the
//! next decision of the retriever's classifier within seconds, without a restart: the knowledge base's
//! change feed carries it. Runs against the Qdrant server in `../shared/tools` and skips, saying so,
//! where there is none (two processes cannot share an embedded store).

mod support;

use std::time::{Duration, Instant};

use cluster::{Cluster, channel, decided};
use switchboard_proto::decisions_client::DecisionsClient;
use switchboard_proto::{Corrected, CorrectionReason, Ticket};

#[path = "support/cluster.rs"]
mod cluster;

fn classifier_top(ticket: &Ticket) -> String {
    ticket
        .matches
        .as_ref()
        .and_then(|m| m.model_scores.first())
        .map(|s| s.department.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_correction_in_the_feedback_process_reaches_the_retrievers_classifier() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some((_qdrant, qdrant)) = cluster::qdrant(dir.path()) else {
        eprintln!("skipped: no Qdrant server at ../shared/tools/qdrant");
        return;
    };
    let cluster = Cluster {
        id: format!("fresh{}", std::process::id()),
        nats: cluster::nats_url(),
        qdrant,
        data: dir.path(),
    };
    cluster.import_demo_history();
    let (_pipeline, pipeline) = cluster.run(
        "intake,parser,sentiment,retriever,router",
        &dir.path().join("a"),
        &[],
    );
    let (_feedback, feedback) = cluster.run("feedback", &dir.path().join("b"), &[]);
    let token = cluster.admin_token();

    let text = "电脑用起来特别卡，想申请换一台新的。";
    let first = decided(pipeline, feedback, &token, text).await;
    let before = classifier_top(&first);
    let scores = &first.matches.as_ref().expect("matches").model_scores;
    assert!(
        scores.len() >= 2,
        "the classifier ranks departments: {first:?}"
    );
    // The department the classifier thinks least likely: a correction it cannot have guessed.
    let to = scores.last().expect("scores").department.clone();
    assert_ne!(before, to);

    let mut decisions = DecisionsClient::new(channel(feedback, &token).await);
    let corrected_at = Instant::now();
    decisions
        .correct(Corrected {
            ticket_id: first.id.clone(),
            to_department: to.clone(),
            reason: CorrectionReason::PolicyUpdated as i32,
            agent: "agent-7".into(),
            ..Corrected::default()
        })
        .await
        .expect("corrected");

    // The pipeline process never restarts; its classifier must learn the correction from the feed.
    let deadline = corrected_at + Duration::from_secs(20);
    let after = loop {
        let next = decided(pipeline, feedback, &token, text).await;
        if classifier_top(&next) == to {
            break next;
        }
        assert!(
            Instant::now() < deadline,
            "the retriever's classifier still ranks {} first 20 s after the correction to {to}",
            classifier_top(&next)
        );
    };
    eprintln!(
        "correction to {to} reached the other process's classifier in {:.2} s",
        corrected_at.elapsed().as_secs_f64()
    );
    let version = |t: &Ticket| t.matches.as_ref().map(|m| m.model_version.clone());
    assert_ne!(version(&first), version(&after), "the model moved on");

    cluster.clean_up().await;
}
