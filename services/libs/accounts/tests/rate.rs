//! A credential's request budget is one across replicas: two servers on two connections to the real
//! nats-server at `SWITCHBOARD_TEST_NATS_URL` (default `nats://127.0.0.1:4222`), sharing the accounts
//! bucket as replicas do, admit its burst once between them, not once each.

mod common;

use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{clean_up, nats_buses, unique};
use switchboard_accounts::{Auth, AuthConfig, Principal, Role};
use tower::ServiceExt;

const PER_SECOND: u32 = 2;
const BURST: u32 = 20;

async fn shared_budget(run: &str) {
    let config = AuthConfig {
        requests_per_second: PER_SECOND,
        request_burst: BURST,
        ..AuthConfig::default()
    };
    let mut replicas = Vec::new();
    for bus in nats_buses(run, 2).await {
        let auth = Auth::new(&bus, config.clone()).await.expect("auth");
        let app = axum::Router::new()
            .route(
                "/whoami",
                axum::routing::get(|p: Principal| async move { p.name }),
            )
            .layer(auth.layer());
        replicas.push((auth, app));
    }
    let token = replicas[0]
        .0
        .accounts()
        .create_token("wallboard", Role::Viewer)
        .await
        .expect("token");

    // Both replicas at once, as a load balancer would spread one caller.
    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..4 * BURST {
        let app = replicas[i as usize % 2].1.clone();
        let bearer = format!("Bearer {}", token.token);
        calls.spawn(async move {
            let request = Request::get("/whoami")
                .header("authorization", bearer)
                .body(Body::empty())
                .expect("request");
            app.oneshot(request).await.expect("answer").status()
        });
    }
    let mut admitted = 0;
    while let Some(status) = calls.join_next().await {
        match status.expect("call") {
            StatusCode::OK => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    // What refilled while the calls ran may be admitted too, and no more.
    let refilled = (started.elapsed().as_secs_f64() * f64::from(PER_SECOND)).ceil() as u32;
    assert!(
        admitted >= BURST && admitted <= BURST + refilled,
        "{admitted} admitted of {} over two replicas: the burst is {BURST}, {refilled} refilled",
        4 * BURST
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_nats_share_one_budget_per_credential() {
    let run = unique("rate");
    let outcome = {
        let run = run.clone();
        tokio::spawn(async move { shared_budget(&run).await }).await
    };
    clean_up(&run).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}
