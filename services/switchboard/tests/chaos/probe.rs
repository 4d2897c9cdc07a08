//! A readiness probe, as Kubernetes runs one: `GET /readyz` of one process every half second, each
//! answer kept with its time (no answer, as while the process restarts, counts as not ready).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Each probe's time and status code (`None`: no answer).
pub type Answers = Arc<Mutex<Vec<(Instant, Option<u16>)>>>;

/// Probes `url` until the runtime ends.
pub fn start(url: String) -> Answers {
    let answers = Answers::default();
    let kept = answers.clone();
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("a client");
        loop {
            let status = http
                .get(&url)
                .send()
                .await
                .ok()
                .map(|r| r.status().as_u16());
            kept.lock().expect("answers").push((Instant::now(), status));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    answers
}

/// How a process answered its probe while a dependency was down, and last.
#[derive(Debug, Default, serde::Serialize)]
pub struct Readiness {
    /// Probes that answered 200 during the outage: readiness that did not see it.
    pub ready_while_down: usize,
    pub not_ready_while_down: usize,
    /// The last probe's answer was 200.
    pub ready_at_end: bool,
}

/// The answers in `(from, to)`, and the last one before `end`.
pub fn during(answers: &Answers, from: Instant, to: Instant, end: Instant) -> Readiness {
    let answers = answers.lock().expect("answers");
    let last = answers.iter().rev().find(|(at, _)| *at < end);
    let mut r = Readiness {
        ready_at_end: last.is_some_and(|(_, s)| *s == Some(200)),
        ..Readiness::default()
    };
    for (_, status) in answers.iter().filter(|(at, _)| (from..to).contains(at)) {
        if *status == Some(200) {
            r.ready_while_down += 1;
        } else {
            r.not_ready_while_down += 1;
        }
    }
    r
}
