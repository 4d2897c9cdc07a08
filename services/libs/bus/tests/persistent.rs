//! The in-process bus with its store ([`MemoryBus::open`]): the shared conformance suite, a reopen
//! from the same directory, and a writer killed with SIGKILL whose acknowledged writes must all be
//! there afterwards.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::{
    Bus, ConsumerSpec, Created, Delivery, Entry, Headers, OutMessage, conformance,
};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_bus_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let bus = MemoryBus::open(dir.path()).unwrap();
    assert!(bus.durable(), "a bus with a store outlives the process");
    conformance::run_all(Arc::new(bus), "conformance").await;
}

fn spec(durable: &str, filter: &str, ack_wait: Duration) -> ConsumerSpec {
    ConsumerSpec {
        durable: durable.to_owned(),
        filter: filter.to_owned(),
        ack_wait,
    }
}

fn message(subject: &str, payload: &str, msg_id: Option<&str>) -> OutMessage {
    let mut headers = Headers::new();
    headers.insert("x-test".to_owned(), payload.to_owned());
    OutMessage {
        subject: subject.to_owned(),
        msg_id: msg_id.map(str::to_owned),
        headers,
        payload: Bytes::copy_from_slice(payload.as_bytes()),
    }
}

fn entry(value: &str, revision: u64) -> Entry {
    Entry {
        value: Bytes::copy_from_slice(value.as_bytes()),
        revision,
    }
}

async fn next(consumer: &dyn switchboard_bus::Consumer) -> Delivery {
    timeout(WAIT, consumer.next())
        .await
        .expect("a delivery within the deadline")
        .unwrap()
}

#[tokio::test]
async fn a_reopened_bus_keeps_unacked_messages_positions_dedup_and_kv() {
    let dir = tempfile::tempdir().unwrap();
    let long = Duration::from_secs(600);
    let short = Duration::from_millis(100);
    {
        let bus = MemoryBus::open(dir.path()).unwrap();
        let consumer = bus.consumer(spec("d", "t.>", long)).await.unwrap();
        let quick = bus.consumer(spec("quick", "q.>", short)).await.unwrap();
        for i in 0..5 {
            let (payload, id) = (format!("m{i}"), format!("id{i}"));
            bus.publish(message("t.x", &payload, Some(&id)))
                .await
                .unwrap();
        }
        bus.publish(message("q.one", "q0", None)).await.unwrap();
        let m0 = next(consumer.as_ref()).await;
        let m1 = next(consumer.as_ref()).await;
        let m2 = next(consumer.as_ref()).await;
        assert_eq!(m2.payload, Bytes::from_static(b"m2"));
        m0.acker.ack().await.unwrap();
        assert_eq!(consumer.pending().await.unwrap(), 4);
        // Delivered, never acked, on a consumer with a short ack wait.
        let q0 = next(quick.as_ref()).await;
        assert_eq!((q0.payload.as_ref(), q0.attempt), (&b"q0"[..], 1));

        let kv = bus.kv("b").await.unwrap();
        assert_eq!(kv.put("a", Bytes::from_static(b"1")).await.unwrap(), 1);
        assert_eq!(kv.put("b", Bytes::from_static(b"2")).await.unwrap(), 2);
        let created = kv.create("c", Bytes::from_static(b"3")).await.unwrap();
        assert_eq!(created, Created::Created { revision: 3 });
        kv.delete("a").await.unwrap();
        assert_eq!(kv.delete_expect_revision("c", 3).await.unwrap(), 5);
        assert_eq!(kv.put("c", Bytes::from_static(b"again")).await.unwrap(), 6);
        let updated = kv.update("c", Bytes::from_static(b"updated"), 6).await;
        assert_eq!(updated.unwrap(), 7);
        let other = bus.kv("other").await.unwrap();
        assert_eq!(other.put("x", Bytes::from_static(b"x")).await.unwrap(), 1);
        // Everything holding the bus goes, as when the process stops.
        drop((m1, m2, q0, consumer, quick, kv, other, bus));
    }

    let bus = MemoryBus::open(dir.path()).unwrap();
    let consumer = bus.consumer(spec("d", "t.>", long)).await.unwrap();
    assert_eq!(
        consumer.pending().await.unwrap(),
        4,
        "m1 to m4 are not acked"
    );
    // The process that held m1 and m2 is gone: they come back at once, as redeliveries.
    let mut seen = Vec::new();
    for _ in 0..4 {
        let d = next(consumer.as_ref()).await;
        seen.push((String::from_utf8(d.payload.to_vec()).unwrap(), d.attempt));
        assert_eq!(
            d.headers.get("x-test").map(String::as_bytes),
            Some(d.payload.as_ref())
        );
        let payload = String::from_utf8(d.payload.to_vec()).unwrap();
        assert_eq!(d.headers["Nats-Msg-Id"], format!("id{}", &payload[1..]));
        d.acker.ack().await.unwrap();
    }
    let expected = [("m1", 2), ("m2", 2), ("m3", 1), ("m4", 1)].map(|(p, a)| (p.to_owned(), a));
    assert_eq!(seen, expected);
    assert_eq!(consumer.pending().await.unwrap(), 0);

    // The ack wait still applies after the reopen: unacked, the message comes back again.
    let quick = bus.consumer(spec("quick", "q.>", short)).await.unwrap();
    let again = next(quick.as_ref()).await;
    assert_eq!((again.payload.as_ref(), again.attempt), (&b"q0"[..], 2));
    let third = next(quick.as_ref()).await;
    assert_eq!((third.payload.as_ref(), third.attempt), (&b"q0"[..], 3));

    // The de-duplication window survived: m0's id is still known.
    bus.publish(message("t.x", "dup", Some("id0")))
        .await
        .unwrap();
    assert_eq!(
        consumer.pending().await.unwrap(),
        0,
        "a duplicate id is not stored again"
    );
    bus.publish(message("t.x", "m5", Some("id5")))
        .await
        .unwrap();
    assert_eq!(consumer.pending().await.unwrap(), 1);
    let m5 = next(consumer.as_ref()).await;
    assert_eq!(m5.payload, Bytes::from_static(b"m5"));

    let kv = bus.kv("b").await.unwrap();
    assert_eq!(kv.get("a").await.unwrap(), None);
    let mut entries = kv.entries().await.unwrap();
    entries.sort_by(|x, y| x.0.cmp(&y.0));
    let expected = vec![
        ("b".to_owned(), entry("2", 2)),
        ("c".to_owned(), entry("updated", 7)),
    ];
    assert_eq!(entries, expected);
    assert_eq!(
        kv.create("b", Bytes::from_static(b"no")).await.unwrap(),
        Created::Exists(entry("2", 2))
    );
    assert_eq!(
        kv.put("d", Bytes::from_static(b"4")).await.unwrap(),
        8,
        "revisions continue"
    );
    assert!(
        kv.update("c", Bytes::from_static(b"stale"), 6)
            .await
            .is_err(),
        "the update's revision survived the reopen"
    );
    assert_eq!(
        kv.update("c", Bytes::from_static(b"u2"), 7).await.unwrap(),
        9
    );
    let other = bus.kv("other").await.unwrap();
    assert_eq!(other.get("x").await.unwrap(), Some(entry("x", 1)));
    assert_eq!(other.put("y", Bytes::from_static(b"y")).await.unwrap(), 2);
}

#[tokio::test]
async fn the_store_keeps_only_the_retained_messages() {
    let dir = tempfile::tempdir().unwrap();
    {
        let bus = MemoryBus::open_with_capacity(dir.path(), 3).unwrap();
        for i in 0..5 {
            bus.publish(message("t.x", &i.to_string(), None))
                .await
                .unwrap();
        }
    }
    // Reopened with room for more, only the three retained messages are there to deliver.
    let bus = MemoryBus::open_with_capacity(dir.path(), 100).unwrap();
    let consumer = bus
        .consumer(spec("d", "t.>", Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(consumer.pending().await.unwrap(), 3);
    assert_eq!(
        next(consumer.as_ref()).await.payload,
        Bytes::from_static(b"2")
    );
}

/// A replica's own consumer is not stored: after a reopen the next one reads the whole stream again,
/// its acks before the reopen notwithstanding, and no durable of its name was left behind.
#[tokio::test]
async fn a_replica_consumer_starts_at_the_stream_start_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ack_wait = Duration::from_secs(60);
    {
        let bus = MemoryBus::open(dir.path()).unwrap();
        for i in 0..2 {
            bus.publish(message("v.x", &i.to_string(), None))
                .await
                .unwrap();
        }
        let replica = bus
            .replica_consumer(spec("view", "v.>", ack_wait))
            .await
            .unwrap();
        for _ in 0..2 {
            next(replica.as_ref()).await.acker.ack().await.unwrap();
        }
        assert_eq!(replica.pending().await.unwrap(), 0);
    }
    let bus = MemoryBus::open(dir.path()).unwrap();
    assert_eq!(bus.backlog("view").await.unwrap(), None);
    let replica = bus
        .replica_consumer(spec("view", "v.>", ack_wait))
        .await
        .unwrap();
    assert_eq!(replica.pending().await.unwrap(), 2);
    assert_eq!(
        next(replica.as_ref()).await.payload,
        Bytes::from_static(b"0")
    );
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = MemoryBus::open(dir.path()).unwrap();
    let second = MemoryBus::open(dir.path());
    let err = second.expect_err("one process owns the store");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

/// Set in the child process [`writes_acknowledged_before_sigkill_survive`] starts: the directory
/// the child writes to.
const CHILD_DIR: &str = "SWITCHBOARD_TEST_BUS_CHILD_DIR";
/// More writes than the child can make before it is killed.
const CHILD_WRITES: usize = 1_000_000;
/// How many acknowledged writes the parent waits for before the kill.
const KILL_AFTER: usize = 40;
/// Starts each line the child writes about its progress; libtest may print before it on a line.
const ACK: &str = "ack:";

/// The child's side: writes until killed, one line on stdout per acknowledged write. Without the
/// variable (a normal test run) it does nothing.
#[test]
fn sigkill_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bus = MemoryBus::open(Path::new(&dir)).unwrap();
        let kv = bus.kv("state").await.unwrap();
        for i in 0..CHILD_WRITES {
            bus.publish(message("t.x", &format!("p{i}"), Some(&format!("id{i}"))))
                .await
                .unwrap();
            println!("{ACK}published p{i}");
            let revision = kv
                .put(&format!("k{i}"), Bytes::from(format!("v{i}")))
                .await
                .unwrap();
            println!("{ACK}put k{i} {revision}");
        }
        println!("{ACK}done");
    });
}

#[tokio::test]
async fn writes_acknowledged_before_sigkill_survive() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigkill_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                break;
            }
        }
    });

    // What the child said after the marker, for the lines that carry one.
    let said = |line: String| line.split_once(ACK).map(|(_, said)| said.to_owned());
    let mut acknowledged = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.len() < KILL_AFTER {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = received
            .recv_timeout(left)
            .expect("the child acknowledges writes before the deadline");
        if let Some(said) = said(line) {
            acknowledged.push(said);
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush runs in the child.
    let status = child.wait().unwrap();
    // What the child printed before it died still counts as acknowledged.
    reader.join().unwrap();
    acknowledged.extend(received.try_iter().filter_map(said));
    assert!(
        !acknowledged.iter().any(|l| l == "done"),
        "the child finished before the kill"
    );
    assert!(!status.success(), "the child was killed mid-way: {status}");

    let bus = MemoryBus::open(dir.path()).unwrap();
    let consumer = bus
        .consumer(spec("check", "t.>", Duration::from_secs(60)))
        .await
        .unwrap();
    let stored = consumer.pending().await.unwrap();
    let mut payloads = std::collections::BTreeSet::new();
    for _ in 0..stored {
        let d = next(consumer.as_ref()).await;
        payloads.insert(String::from_utf8(d.payload.to_vec()).unwrap());
        d.acker.ack().await.unwrap();
    }
    let kv = bus.kv("state").await.unwrap();
    for line in &acknowledged {
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["published", payload] => {
                assert!(
                    payloads.contains(payload),
                    "{payload} was acknowledged but is lost"
                );
                // Its id is still inside the window: publishing it again stores nothing.
                let id = format!("id{}", &payload[1..]);
                bus.publish(message("t.x", payload, Some(&id)))
                    .await
                    .unwrap();
            }
            ["put", key, revision] => {
                let value = format!("v{}", &key[1..]);
                let revision: u64 = revision.parse().unwrap();
                assert_eq!(
                    kv.get(key).await.unwrap(),
                    Some(entry(&value, revision)),
                    "{key}"
                );
            }
            _ => panic!("unexpected line from the child: {line}"),
        }
    }
    assert_eq!(
        consumer.pending().await.unwrap(),
        0,
        "no acknowledged message was stored twice"
    );
}
