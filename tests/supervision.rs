//! A process that cannot do its work says so: a role that dies is reported (and `switchboard run` ends
//! with a non-zero status on the report), and `/readyz` answers not ready while the bus is gone, ready
//! again once it is back. A process started while NATS is down waits for it, for as long as
//! `bus.nats.connect_within_secs` says.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use switchboard_tests::{Kind, bus, eventually, settings, start};

/// Kills its server when dropped, so a failing assertion leaves none behind.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A JetStream nats-server of this test's own, on `port`, storing under `dir`: the shared one must not
/// be stopped.
fn nats_server(port: u16, dir: &std::path::Path) -> Server {
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (scripts/ensure-nats.sh installs it)");
    Server(child)
}

async fn readyz(addr: SocketAddr) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return (0, String::new());
    };
    let request = "GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let mut out = String::new();
    if stream.write_all(request.as_bytes()).await.is_err()
        || stream.read_to_string(&mut out).await.is_err()
    {
        return (0, out);
    }
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, out)
}

#[tokio::test]
async fn a_role_that_dies_is_reported_naming_it() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let settings = settings(Kind::Memory, &data);
    let mut running = start(&settings, "intake,parser,metrics", bus(&settings).await?).await?;
    let quiet = tokio::time::timeout(Duration::from_millis(200), running.failed()).await;
    assert!(quiet.is_err(), "nothing has failed yet: {quiet:?}");
    assert!(running.abort_role("parser"));
    let failure = tokio::time::timeout(Duration::from_secs(5), running.failed())
        .await
        .expect("the dead role is reported");
    assert_eq!(failure.task, "role parser");
    assert_eq!(failure.why, "it was aborted");
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn readyz_is_not_ready_while_the_bus_is_gone() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let store = tempfile::tempdir()?;
    let port = free_port();
    let mut settings = settings(Kind::Nats, &data);
    settings.bus.nats.url = format!("nats://127.0.0.1:{port}");
    let server = nats_server(port, store.path());
    let connected = {
        let settings = settings.clone();
        eventually(
            Duration::from_secs(20),
            "the test's nats-server",
            move || {
                let settings = settings.clone();
                async move { switchboard::connect_bus(&settings).await.is_ok() }
            },
        )
    };
    connected.await?;
    let running = start(&settings, "intake,router", bus(&settings).await?).await?;
    let addr = running.http_addr;
    assert_eq!(readyz(addr).await.0, 200);

    drop(server);
    eventually(Duration::from_secs(20), "/readyz to say not ready", || {
        let answer = readyz(addr);
        async move { answer.await.0 == 503 }
    })
    .await?;
    let (_, why) = readyz(addr).await;
    assert!(why.contains("not ready: bus"), "{why}");

    let _server = nats_server(port, store.path());
    eventually(
        Duration::from_secs(30),
        "/readyz ready once the bus is back",
        || {
            let answer = readyz(addr);
            async move { answer.await.0 == 200 }
        },
    )
    .await?;
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_process_started_while_nats_is_down_waits_for_it() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let store = tempfile::tempdir()?;
    // Until the server starts, its port is held by a listener that hangs up on every connection, so
    // the test sees each try: two mean one failed and was tried again.
    let down = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = down.local_addr()?.port();
    let mut settings = settings(Kind::Nats, &data);
    settings.bus.nats.url = format!("nats://127.0.0.1:{port}");
    settings.bus.nats.connect_within_secs = 60;
    let connecting = {
        let settings = settings.clone();
        tokio::spawn(async move { switchboard::connect_bus(&settings).await })
    };
    for _ in 0..2 {
        let (hung_up, _) = tokio::time::timeout(Duration::from_secs(20), down.accept())
            .await
            .expect("a try to connect")?;
        drop(hung_up);
    }
    assert!(
        !connecting.is_finished(),
        "it gave up on a server that is not there yet"
    );

    drop(down);
    let _server = nats_server(port, store.path());
    let bus = tokio::time::timeout(Duration::from_secs(30), connecting)
        .await
        .expect("connected once the server was up")??;
    bus.reachable().await?;

    // With no time to wait, the same absence is an error at once, naming the server.
    drop(_server);
    settings.bus.nats.connect_within_secs = 0;
    let started = std::time::Instant::now();
    let Err(e) = switchboard::connect_bus(&settings).await else {
        panic!("connected to a server that is gone");
    };
    assert!(started.elapsed() < Duration::from_secs(10));
    let chain = switchboard_runtime::error_chain(&e);
    assert!(chain.contains(&settings.bus.nats.url), "{chain}");
    Ok(())
}
