//! A process started before the Qdrant server it needs waits for it, as a pod started while Qdrant
//! restarts must: `switchboard import` against a server that starts only once the import has said it
//! is waiting imports everything, and
//! with `qdrant.connect_within_secs = 0` the same absence is an error at once that names the server.
//! Runs against the Qdrant server in `../shared/tools` and skips, saying so, where there is none.

// Shared with the tests that run roles as processes; this one uses only part of it.
#[allow(dead_code)]
#[path = "support/cluster.rs"]
mod cluster;
#[allow(dead_code)]
mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use cluster::{Cluster, free_port};
use support::{Process, repo};

#[tokio::test]
async fn an_import_started_before_the_qdrant_server_waits_for_it() {
    let Some(server) = cluster::qdrant_server() else {
        eprintln!("skipped: no Qdrant server at ../shared/tools/qdrant");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (http, grpc) = (free_port(), free_port());
    let deployment = Cluster {
        id: format!("late{}", std::process::id()),
        nats: cluster::nats_url(),
        qdrant: format!("http://127.0.0.1:{grpc}"),
        data: dir.path(),
    };
    let history = repo().join("deploy/demo/history.csv");
    let import = || {
        let mut cmd = deployment.command(dir.path());
        cmd.args(["import", history.to_str().expect("UTF-8 path")])
            .args(["--id-column", "id"]);
        cmd
    };

    let started = Instant::now();
    let once = import()
        .env("SWITCHBOARD__QDRANT__CONNECT_WITHIN_SECS", "0")
        .output()
        .expect("import");
    assert!(!once.status.success(), "imported into no server: {once:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let said = String::from_utf8_lossy(&once.stderr);
    assert!(said.contains(&deployment.qdrant), "{said}");

    let mut waiting = import()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("import");
    // The log says when it found no server and will try again; the rest of it is read away.
    let (said_waiting, heard) = std::sync::mpsc::channel();
    let log = std::io::BufReader::new(waiting.stderr.take().expect("stderr"));
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(log).map_while(Result::ok) {
            if line.contains("cannot be reached yet; trying again") {
                let _ = said_waiting.send(());
            }
        }
    });
    heard
        .recv_timeout(Duration::from_secs(60))
        .expect("the import said it waits for the server");
    assert!(
        waiting.try_wait().expect("import").is_none(),
        "the import gave up on a server that was not there yet"
    );
    let _qdrant = Process(
        cluster::qdrant_command(&server, &dir.path().join("qdrant"), http, grpc)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start qdrant"),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = waiting.try_wait().expect("import") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the import did not end once Qdrant was up"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let report = std::io::read_to_string(waiting.stdout.take().expect("stdout")).expect("stdout");
    assert!(status.success(), "{status}: {report}");
    assert!(report.contains("imported 360 of 360 rows"), "{report}");
    deployment.clean_up().await;
}
