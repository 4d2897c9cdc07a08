//! The behaviour every [`Bus`] must show, as one suite both implementations run (the memory
//! twin in-process, NATS against a real server). Each check panics on the first deviation.
//!
//! Names derive from a caller-chosen prefix (letters, digits, `_`, `-`): subjects
//! `<prefix>.<check>.…`, durables and buckets `<prefix>_<check>`, so runs sharing one server never
//! see each other's messages. On NATS the stream must cover `<prefix>.>`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

use crate::{
    Bus, BusError, Consumer, ConsumerSpec, Created, Delivery, Entry, Headers, KvChange, OutMessage,
};

/// The longest any single expected event may take; generous so a loaded CI machine does not flake.
const WAIT: Duration = Duration::from_secs(10);
/// Ack-wait for checks that do not exercise it: far longer than any check runs.
const LONG_ACK_WAIT: Duration = Duration::from_secs(60);
const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// Runs every check in turn.
pub async fn run_all(bus: Arc<dyn Bus>, prefix: &str) {
    assert!(
        !prefix.is_empty()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "the prefix {prefix:?} must be letters, digits, _ or -"
    );
    let bus = bus.as_ref();
    round_trip(bus, prefix).await;
    dedup(bus, prefix).await;
    invalid_headers(bus, prefix).await;
    nak_redelivers(bus, prefix).await;
    ack_wait_redelivers(bus, prefix).await;
    competing_consumers(bus, prefix).await;
    replica_consumers(bus, prefix).await;
    wildcard_filters(bus, prefix).await;
    pending_counts(bus, prefix).await;
    kv_basics(bus, prefix).await;
    kv_watch(bus, prefix).await;
    kv_delete_expect_revision(bus, prefix).await;
    kv_update(bus, prefix).await;
    kv_update_races(bus, prefix).await;
    invalid_keys(bus, prefix).await;
}

/// A published message arrives once, on its subject, with its payload and headers (plus the
/// `Nats-Msg-Id` header when it had an id), as attempt 1; acked, it is no longer pending.
async fn round_trip(bus: &dyn Bus, prefix: &str) {
    let consumer = consumer(bus, prefix, "rt", &format!("{prefix}.rt.>"), LONG_ACK_WAIT).await;
    let mut headers = Headers::new();
    headers.insert(
        "traceparent".to_owned(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
    );
    headers.insert("x-switchboard-stage".to_owned(), "parser".to_owned());
    let id = format!("{prefix}-rt-1");
    publish(
        bus,
        OutMessage {
            subject: format!("{prefix}.rt.one"),
            msg_id: Some(id.clone()),
            headers: headers.clone(),
            payload: Bytes::from_static(b"first"),
        },
    )
    .await;
    publish(bus, message(&format!("{prefix}.rt.two"), "second")).await;

    let first = next(consumer.as_ref()).await;
    assert_eq!(first.subject, format!("{prefix}.rt.one"));
    assert_eq!(first.payload, Bytes::from_static(b"first"));
    let mut expected = headers;
    expected.insert(MSG_ID_HEADER.to_owned(), id);
    assert_eq!(first.headers, expected);
    assert_eq!(first.attempt, 1);
    ack(&first).await;

    let second = next(consumer.as_ref()).await;
    assert_eq!(second.subject, format!("{prefix}.rt.two"));
    assert_eq!(second.payload, Bytes::from_static(b"second"));
    assert_eq!(second.headers, Headers::new());
    assert_eq!(second.attempt, 1);
    ack(&second).await;
    assert_eq!(pending(consumer.as_ref()).await, 0);
}

/// A second publish with the same id is accepted but not stored: one delivery, of the first
/// payload, and the next message after it is the next distinct one.
async fn dedup(bus: &dyn Bus, prefix: &str) {
    let consumer = consumer(bus, prefix, "dd", &format!("{prefix}.dd.*"), LONG_ACK_WAIT).await;
    let subject = format!("{prefix}.dd.ticket");
    let id = format!("{prefix}-dd-1");
    publish(bus, with_id(message(&subject, "original"), &id)).await;
    publish(bus, with_id(message(&subject, "copy"), &id)).await;
    assert_eq!(pending(consumer.as_ref()).await, 1);

    let delivery = next(consumer.as_ref()).await;
    assert_eq!(delivery.payload, Bytes::from_static(b"original"));
    ack(&delivery).await;
    assert_eq!(pending(consumer.as_ref()).await, 0);

    // Had the copy been stored, it would come before this one.
    let other = format!("{prefix}-dd-2");
    publish(bus, with_id(message(&subject, "sentinel"), &other)).await;
    let delivery = next(consumer.as_ref()).await;
    assert_eq!(delivery.payload, Bytes::from_static(b"sentinel"));
    ack(&delivery).await;
    assert_eq!(pending(consumer.as_ref()).await, 0);
}

/// Header names or values NATS cannot carry are refused at publish, not mangled.
async fn invalid_headers(bus: &dyn Bus, prefix: &str) {
    let subject = format!("{prefix}.hd.bad");
    for (name, value) in [
        ("bad name", "v"),
        ("bad:name", "v"),
        ("name", "line\r\nbreak"),
    ] {
        let mut msg = message(&subject, "x");
        msg.headers.insert(name.to_owned(), value.to_owned());
        let result = bus.publish(msg).await;
        assert!(
            matches!(result, Err(BusError::Publish { .. })),
            "header {name:?}: {value:?} was accepted: {result:?}"
        );
    }
}

/// A nak redelivers the message after the delay, as attempt 2.
async fn nak_redelivers(bus: &dyn Bus, prefix: &str) {
    let consumer = consumer(bus, prefix, "nk", &format!("{prefix}.nk.>"), LONG_ACK_WAIT).await;
    publish(bus, message(&format!("{prefix}.nk.one"), "retry me")).await;
    let first = next(consumer.as_ref()).await;
    assert_eq!(first.attempt, 1);

    let delay = Duration::from_millis(300);
    let naked = Instant::now();
    first.acker.nak(delay).await.expect("nak");
    let second = next(consumer.as_ref()).await;
    assert!(
        naked.elapsed() >= delay,
        "redelivered after {:?}, before the nak delay {delay:?}",
        naked.elapsed()
    );
    assert_eq!(second.payload, Bytes::from_static(b"retry me"));
    assert_eq!(second.attempt, 2);
    ack(&second).await;
    assert_eq!(pending(consumer.as_ref()).await, 0);
}

/// An unacknowledged message comes back once its ack-wait expires, to a `next` already waiting;
/// `in_progress` pushes that moment back by a whole ack-wait.
async fn ack_wait_redelivers(bus: &dyn Bus, prefix: &str) {
    let ack_wait = Duration::from_secs(1);
    let consumer = consumer(bus, prefix, "aw", &format!("{prefix}.aw.>"), ack_wait).await;
    publish(bus, message(&format!("{prefix}.aw.one"), "slow")).await;
    let first = next(consumer.as_ref()).await;
    assert_eq!(first.attempt, 1);
    let delivered = Instant::now();

    let second = next(consumer.as_ref()).await;
    assert!(
        delivered.elapsed() >= ack_wait / 2,
        "redelivered after {:?}, well before the ack-wait",
        delivered.elapsed()
    );
    assert_eq!(second.payload, Bytes::from_static(b"slow"));
    assert_eq!(second.attempt, 2);
    let delivered = Instant::now();

    // Simulated work, part-way through the ack-wait, then a progress report.
    let working = Duration::from_millis(600);
    tokio::time::sleep(working).await;
    second.acker.in_progress().await.expect("in_progress");
    let third = next(consumer.as_ref()).await;
    let earliest = working + ack_wait * 4 / 5;
    assert!(
        delivered.elapsed() >= earliest,
        "redelivered after {:?} despite in_progress at {working:?}",
        delivered.elapsed()
    );
    assert_eq!(third.attempt, 3);
    ack(&third).await;
    assert_eq!(pending(consumer.as_ref()).await, 0);
}

/// Two handles on one durable share it: a message in flight on one is not given to the other,
/// and together they receive every message exactly once.
async fn competing_consumers(bus: &dyn Bus, prefix: &str) {
    let filter = format!("{prefix}.cc.>");
    let a = consumer(bus, prefix, "cc", &filter, LONG_ACK_WAIT).await;
    let b = consumer(bus, prefix, "cc", &filter, LONG_ACK_WAIT).await;

    publish(bus, message(&format!("{prefix}.cc.x"), "held")).await;
    publish(bus, message(&format!("{prefix}.cc.x"), "free")).await;
    let held = next(a.as_ref()).await;
    let free = next(b.as_ref()).await;
    assert_eq!(held.payload, Bytes::from_static(b"held"));
    assert_eq!(free.payload, Bytes::from_static(b"free"));
    ack(&held).await;
    ack(&free).await;

    const N: usize = 20;
    let (sender, mut received) = mpsc::unbounded_channel();
    let workers =
        [a.clone(), b.clone()].map(|consumer| tokio::spawn(drain(consumer, sender.clone())));
    drop(sender);
    for i in 0..N {
        publish(bus, message(&format!("{prefix}.cc.{i}"), &i.to_string())).await;
    }
    let mut seen = BTreeSet::new();
    while seen.len() < N {
        let payload = timeout(WAIT, received.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {N} messages arrived", seen.len()))
            .expect("a worker stopped");
        assert!(
            seen.insert(payload.clone()),
            "{payload:?} was delivered twice"
        );
    }
    // Every message is acked, so nothing can come again.
    assert_eq!(pending(a.as_ref()).await, 0);
    assert_eq!(pending(b.as_ref()).await, 0);
    for worker in workers {
        worker.abort();
    }
    if let Ok(extra) = received.try_recv() {
        panic!("{extra:?} was delivered again after all were acked");
    }
}

/// Replica consumers of the same name share nothing: each reads every matching message from the
/// stream's start, whatever a durable of that name or another replica has taken, and one made later
/// still starts at the first; acked, a message is no longer pending for that replica alone.
async fn replica_consumers(bus: &dyn Bus, prefix: &str) {
    let filter = format!("{prefix}.rc.>");
    let durable = consumer(bus, prefix, "rc", &filter, LONG_ACK_WAIT).await;
    let spec = ConsumerSpec {
        durable: format!("{prefix}_rc"),
        filter: filter.clone(),
        ack_wait: LONG_ACK_WAIT,
    };
    let a = bus.replica_consumer(spec.clone()).await.expect("replica a");
    for payload in ["one", "two"] {
        publish(bus, message(&format!("{prefix}.rc.x"), payload)).await;
    }
    publish(bus, message(&format!("{prefix}.other.x"), "unmatched")).await;
    ack(&next(durable.as_ref()).await).await;
    let b = bus.replica_consumer(spec).await.expect("replica b");
    for consumer in [&a, &b] {
        for expected in ["one", "two"] {
            let delivery = next(consumer.as_ref()).await;
            assert_eq!(delivery.payload, bytes(expected));
            assert_eq!(delivery.attempt, 1);
            ack(&delivery).await;
        }
        assert_eq!(pending(consumer.as_ref()).await, 0);
    }
    // The durable took "one" only; the replicas' acks settled nothing of its.
    assert_eq!(pending(durable.as_ref()).await, 1);
    publish(bus, message(&format!("{prefix}.rc.x"), "three")).await;
    for consumer in [&a, &b] {
        let delivery = next(consumer.as_ref()).await;
        assert_eq!(delivery.payload, bytes("three"));
        ack(&delivery).await;
    }
    ack(&next(durable.as_ref()).await).await;
    ack(&next(durable.as_ref()).await).await;
    assert_eq!(pending(durable.as_ref()).await, 0);
}

/// Takes, acks and reports deliveries until aborted.
async fn drain(consumer: Arc<dyn Consumer>, sender: mpsc::UnboundedSender<String>) {
    loop {
        let delivery = consumer.next().await.expect("next");
        ack(&delivery).await;
        let payload = String::from_utf8_lossy(&delivery.payload).into_owned();
        if sender.send(payload).is_err() {
            return;
        }
    }
}

/// `*` matches one token and `>` the rest; a durable created after the messages were published
/// starts at the first matching message still stored; each sees its matches in stream order.
async fn wildcard_filters(bus: &dyn Bus, prefix: &str) {
    let subjects = ["eu.created", "us.created", "eu.ticket.closed", "us.deleted"]
        .map(|tail| format!("{prefix}.wc.{tail}"));
    let expectations = [
        ("star", "*.created", vec![0, 1]),
        ("tail", "eu.>", vec![0, 2]),
        ("short", "*", vec![]),
        ("us", "us.*", vec![1, 3]),
    ];
    let mut consumers = Vec::new();
    for (name, filter, expected) in &expectations[..2] {
        let durable = format!("wc_{name}");
        let filter = format!("{prefix}.wc.{filter}");
        consumers.push((
            consumer(bus, prefix, &durable, &filter, LONG_ACK_WAIT).await,
            expected,
        ));
    }
    for subject in &subjects {
        publish(bus, message(subject, subject)).await;
    }
    for (name, filter, expected) in &expectations[2..] {
        let durable = format!("wc_{name}");
        let filter = format!("{prefix}.wc.{filter}");
        consumers.push((
            consumer(bus, prefix, &durable, &filter, LONG_ACK_WAIT).await,
            expected,
        ));
    }

    for (consumer, expected) in consumers {
        let expected: Vec<&String> = expected.iter().map(|&i| &subjects[i]).collect();
        assert_eq!(pending(consumer.as_ref()).await, expected.len() as u64);
        let mut got = Vec::new();
        for _ in 0..expected.len() {
            let delivery = next(consumer.as_ref()).await;
            ack(&delivery).await;
            got.push(delivery.subject);
        }
        assert_eq!(got.iter().collect::<Vec<_>>(), expected);
        assert_eq!(pending(consumer.as_ref()).await, 0);
    }
}

/// Pending counts messages waiting and in flight, and drops with each ack; the bus reads the same
/// count by the durable's name, and `None` for a durable that does not exist.
async fn pending_counts(bus: &dyn Bus, prefix: &str) {
    let durable = format!("{prefix}_pd");
    let backlog = || async { bus.backlog(&durable).await.expect("backlog") };
    assert_eq!(backlog().await, None, "no consumer yet");
    let consumer = consumer(bus, prefix, "pd", &format!("{prefix}.pd.>"), LONG_ACK_WAIT).await;
    assert_eq!(pending(consumer.as_ref()).await, 0);
    assert_eq!(backlog().await, Some(0));
    for i in 0..3 {
        publish(bus, message(&format!("{prefix}.pd.{i}"), "p")).await;
    }
    assert_eq!(pending(consumer.as_ref()).await, 3);
    let first = next(consumer.as_ref()).await;
    let second = next(consumer.as_ref()).await;
    assert_eq!(
        pending(consumer.as_ref()).await,
        3,
        "in-flight messages are pending"
    );
    assert_eq!(backlog().await, Some(3));
    ack(&first).await;
    assert_eq!(pending(consumer.as_ref()).await, 2);
    assert_eq!(backlog().await, Some(2));
    ack(&second).await;
    assert_eq!(pending(consumer.as_ref()).await, 1);
    let third = next(consumer.as_ref()).await;
    ack(&third).await;
    assert_eq!(pending(consumer.as_ref()).await, 0);
}

/// get, put, create (new and existing), delete and entries, with revisions rising per bucket;
/// the same name opens the same bucket and another name a different one.
async fn kv_basics(bus: &dyn Bus, prefix: &str) {
    let kv = bus.kv(&format!("{prefix}_kv")).await.expect("open bucket");
    assert_eq!(kv.get("rules.a").await.expect("get"), None);

    let r1 = kv.put("rules.a", bytes("1")).await.expect("put");
    assert_eq!(kv.get("rules.a").await.expect("get"), Some(entry("1", r1)));
    let r2 = kv.put("rules.a", bytes("2")).await.expect("put");
    assert!(r2 > r1, "revision {r2} after {r1}");

    let existing = kv.create("rules.a", bytes("3")).await.expect("create");
    assert_eq!(existing, Created::Exists(entry("2", r2)));
    let Created::Created { revision: r3 } = kv.create("rules.b", bytes("1")).await.expect("create")
    else {
        panic!("rules.b did not exist, so create must store it");
    };
    assert!(r3 > r2, "revision {r3} after {r2}");
    assert_eq!(kv.get("rules.b").await.expect("get"), Some(entry("1", r3)));
    assert_eq!(
        sorted(kv.entries().await.expect("entries")),
        vec![
            ("rules.a".to_owned(), entry("2", r2)),
            ("rules.b".to_owned(), entry("1", r3)),
        ]
    );

    kv.delete("rules.a").await.expect("delete");
    assert_eq!(kv.get("rules.a").await.expect("get"), None);
    assert_eq!(
        sorted(kv.entries().await.expect("entries")),
        vec![("rules.b".to_owned(), entry("1", r3))]
    );
    let Created::Created { revision: r4 } = kv.create("rules.a", bytes("4")).await.expect("create")
    else {
        panic!("a deleted key can be created again");
    };
    assert!(r4 > r3, "revision {r4} after {r3}");

    let unusual = "tenant/agents=eu.a-b_c";
    let r5 = kv.put(unusual, bytes("ok")).await.expect("put");
    assert_eq!(kv.get(unusual).await.expect("get"), Some(entry("ok", r5)));

    let again = bus
        .kv(&format!("{prefix}_kv"))
        .await
        .expect("reopen bucket");
    assert_eq!(
        again.get("rules.b").await.expect("get"),
        Some(entry("1", r3))
    );
    let other = bus
        .kv(&format!("{prefix}_kv_other"))
        .await
        .expect("open bucket");
    assert_eq!(other.get("rules.b").await.expect("get"), None);
}

/// A watch yields every live key once (deleted ones not at all), then each later put and delete
/// in order, with nothing lost or repeated in between.
async fn kv_watch(bus: &dyn Bus, prefix: &str) {
    let kv = bus
        .kv(&format!("{prefix}_watch"))
        .await
        .expect("open bucket");
    let ra = kv.put("a", bytes("1")).await.expect("put");
    let rb = kv.put("b", bytes("2")).await.expect("put");
    kv.put("c", bytes("3")).await.expect("put");
    kv.delete("c").await.expect("delete");

    let mut watch = kv.watch().await.expect("watch");
    let mut snapshot = BTreeMap::new();
    for _ in 0..2 {
        let change = next_change(&mut watch).await;
        snapshot.insert(change.key, (change.value, change.revision));
    }
    let expected = BTreeMap::from([
        ("a".to_owned(), (Some(bytes("1")), ra)),
        ("b".to_owned(), (Some(bytes("2")), rb)),
    ]);
    assert_eq!(snapshot, expected);

    let rd = kv.put("d", bytes("4")).await.expect("put");
    assert_eq!(next_change(&mut watch).await, change("d", Some("4"), rd));
    let ra2 = kv.put("a", bytes("5")).await.expect("put");
    assert_eq!(next_change(&mut watch).await, change("a", Some("5"), ra2));
    kv.delete("b").await.expect("delete");
    let deleted = next_change(&mut watch).await;
    assert_eq!((deleted.key.as_str(), deleted.value), ("b", None));
    assert!(
        deleted.revision > ra2,
        "revision {} after {ra2}",
        deleted.revision
    );

    let empty = bus
        .kv(&format!("{prefix}_watch_empty"))
        .await
        .expect("open bucket");
    let mut watch = empty.watch().await.expect("watch");
    // Both land before the watch delivers either: the delete must still come through.
    let rx = empty.put("x", bytes("first")).await.expect("put");
    empty.delete("x").await.expect("delete");
    assert_eq!(
        next_change(&mut watch).await,
        change("x", Some("first"), rx)
    );
    let deleted = next_change(&mut watch).await;
    assert_eq!((deleted.key.as_str(), deleted.value), ("x", None));
}

/// A conditional delete removes the key only at the revision given, returns its own revision (the
/// one the watch reports), and otherwise fails naming the revision the key is at, changing nothing.
async fn kv_delete_expect_revision(bus: &dyn Bus, prefix: &str) {
    let kv = bus.kv(&format!("{prefix}_cas")).await.expect("open bucket");
    let r1 = kv.put("a", bytes("1")).await.expect("put");
    let r2 = kv.put("a", bytes("2")).await.expect("put");
    let mut watch = kv.watch().await.expect("watch");
    assert_eq!(next_change(&mut watch).await, change("a", Some("2"), r2));

    let stale = kv.delete_expect_revision("a", r1).await;
    assert!(
        matches!(
            &stale,
            Err(BusError::WrongRevision { key, expected, current: Some(current), .. })
                if key == "a" && *expected == r1 && *current == r2
        ),
        "deleting at the superseded revision {r1}: {stale:?}"
    );
    assert_eq!(kv.get("a").await.expect("get"), Some(entry("2", r2)));

    let deleted = kv.delete_expect_revision("a", r2).await.expect("delete");
    assert!(deleted > r2, "delete revision {deleted} after {r2}");
    assert_eq!(kv.get("a").await.expect("get"), None);
    assert_eq!(next_change(&mut watch).await, change("a", None, deleted));

    for missing in ["a", "never"] {
        let result = kv.delete_expect_revision(missing, deleted).await;
        assert!(
            matches!(&result, Err(BusError::WrongRevision { current: None, .. })),
            "deleting {missing:?}, which holds no value: {result:?}"
        );
    }
}

/// A conditional update stores the value only at the revision given and returns the new revision
/// (the one a watch reports); at a superseded revision, on a deleted key or on one that never held a
/// value (revision 0 included) it fails naming the revision the key is at, changing nothing.
async fn kv_update(bus: &dyn Bus, prefix: &str) {
    let kv = bus
        .kv(&format!("{prefix}_update"))
        .await
        .expect("open bucket");
    let r1 = kv.put("a", bytes("1")).await.expect("put");
    let mut watch = kv.watch().await.expect("watch");
    assert_eq!(next_change(&mut watch).await, change("a", Some("1"), r1));

    let r2 = kv.update("a", bytes("2"), r1).await.expect("update");
    assert!(r2 > r1, "revision {r2} after {r1}");
    assert_eq!(kv.get("a").await.expect("get"), Some(entry("2", r2)));
    assert_eq!(next_change(&mut watch).await, change("a", Some("2"), r2));

    let stale = kv.update("a", bytes("stale"), r1).await;
    assert!(
        matches!(
            &stale,
            Err(BusError::WrongRevision { key, expected, current: Some(current), .. })
                if key == "a" && *expected == r1 && *current == r2
        ),
        "updating at the superseded revision {r1}: {stale:?}"
    );
    assert_eq!(kv.get("a").await.expect("get"), Some(entry("2", r2)));

    // Another key's write moves the bucket's revision, not this key's.
    let rb = kv.put("b", bytes("b")).await.expect("put");
    let r3 = kv.update("a", bytes("3"), r2).await.expect("update");
    assert!(r3 > rb, "revision {r3} after {rb}");
    assert_eq!(next_change(&mut watch).await, change("b", Some("b"), rb));
    assert_eq!(next_change(&mut watch).await, change("a", Some("3"), r3));

    kv.delete("a").await.expect("delete");
    let deleted = next_change(&mut watch).await;
    assert_eq!((deleted.key.as_str(), deleted.value), ("a", None));
    for (key, revision) in [
        ("a", deleted.revision),
        ("a", r3),
        ("never", 0),
        ("never", 1),
    ] {
        let result = kv.update(key, bytes("x"), revision).await;
        assert!(
            matches!(&result, Err(BusError::WrongRevision { current: None, .. })),
            "updating {key:?} at {revision}, which holds no value: {result:?}"
        );
        assert_eq!(kv.get(key).await.expect("get"), None, "{key:?}");
    }
}

/// Writers that all read the same revision and update from it: exactly one succeeds, the others
/// are told the winner's revision; over rounds of that, no update is lost.
async fn kv_update_races(bus: &dyn Bus, prefix: &str) {
    const WRITERS: usize = 4;
    const ROUNDS: usize = 10;
    let kv = bus
        .kv(&format!("{prefix}_race"))
        .await
        .expect("open bucket");
    let mut revision = kv.put("n", bytes("0")).await.expect("put");
    for round in 1..=ROUNDS {
        let attempts = (0..WRITERS).map(|writer| {
            let kv = Arc::clone(&kv);
            tokio::spawn(async move {
                kv.update("n", bytes(&format!("{round}.{writer}")), revision)
                    .await
            })
        });
        let mut won = Vec::new();
        for attempt in futures::future::join_all(attempts).await {
            match attempt.expect("writer task") {
                Ok(new) => won.push(new),
                Err(BusError::WrongRevision {
                    expected,
                    current: Some(current),
                    ..
                }) => {
                    assert_eq!(expected, revision);
                    assert!(current > revision, "told {current}, read {revision}");
                }
                Err(err) => panic!("round {round}: {err:?}"),
            }
        }
        assert_eq!(
            won.len(),
            1,
            "round {round}: exactly one writer wins: {won:?}"
        );
        let stored = kv.get("n").await.expect("get").expect("a value");
        assert_eq!(stored.revision, won[0]);
        assert!(
            std::str::from_utf8(&stored.value)
                .expect("utf8")
                .starts_with(&format!("{round}.")),
            "round {round} stored {:?}",
            stored.value
        );
        revision = won[0];
    }
}

/// Keys outside the NATS KV alphabet are refused by every operation, and bucket names outside
/// the stream-name alphabet by `kv`, on every bus.
async fn invalid_keys(bus: &dyn Bus, prefix: &str) {
    let kv = bus
        .kv(&format!("{prefix}_keys"))
        .await
        .expect("open bucket");
    for key in ["", ".a", "a.", "a b", "a*", "a>", "ü", "a:b"] {
        let is_invalid =
            |result: Result<(), BusError>| matches!(result, Err(BusError::InvalidKey { .. }));
        assert!(is_invalid(kv.get(key).await.map(drop)), "get {key:?}");
        assert!(
            is_invalid(kv.put(key, bytes("v")).await.map(drop)),
            "put {key:?}"
        );
        assert!(
            is_invalid(kv.create(key, bytes("v")).await.map(drop)),
            "create {key:?}"
        );
        assert!(
            is_invalid(kv.update(key, bytes("v"), 1).await.map(drop)),
            "update {key:?}"
        );
        assert!(is_invalid(kv.delete(key).await), "delete {key:?}");
        assert!(
            is_invalid(kv.delete_expect_revision(key, 1).await.map(drop)),
            "delete_expect_revision {key:?}"
        );
    }
    assert_eq!(kv.entries().await.expect("entries"), Vec::new());

    for bucket in ["has.dot", "has space", "star*"] {
        let result = bus.kv(&format!("{prefix}_{bucket}")).await;
        assert!(
            matches!(result, Err(BusError::Kv { .. })),
            "bucket {bucket:?}: {result:?}"
        );
    }
}

async fn consumer(
    bus: &dyn Bus,
    prefix: &str,
    check: &str,
    filter: &str,
    ack_wait: Duration,
) -> Arc<dyn Consumer> {
    let spec = ConsumerSpec {
        durable: format!("{prefix}_{check}"),
        filter: filter.to_owned(),
        ack_wait,
    };
    bus.consumer(spec).await.expect("create consumer")
}

fn message(subject: &str, payload: &str) -> OutMessage {
    OutMessage {
        subject: subject.to_owned(),
        msg_id: None,
        headers: Headers::new(),
        payload: bytes(payload),
    }
}

fn with_id(msg: OutMessage, id: &str) -> OutMessage {
    OutMessage {
        msg_id: Some(id.to_owned()),
        ..msg
    }
}

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn entry(value: &str, revision: u64) -> Entry {
    Entry {
        value: bytes(value),
        revision,
    }
}

fn change(key: &str, value: Option<&str>, revision: u64) -> KvChange {
    KvChange {
        key: key.to_owned(),
        value: value.map(bytes),
        revision,
    }
}

fn sorted(mut entries: Vec<(String, Entry)>) -> Vec<(String, Entry)> {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

async fn publish(bus: &dyn Bus, msg: OutMessage) {
    let subject = msg.subject.clone();
    bus.publish(msg)
        .await
        .unwrap_or_else(|err| panic!("publish to {subject}: {err:?}"));
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
}

async fn next(consumer: &dyn Consumer) -> Delivery {
    within("next delivery", consumer.next())
        .await
        .expect("next delivery")
}

async fn next_change(watch: &mut BoxStream<'static, Result<KvChange, BusError>>) -> KvChange {
    within("next watch change", watch.next())
        .await
        .expect("the watch ended")
        .expect("watch change")
}

async fn ack(delivery: &Delivery) {
    delivery.acker.ack().await.expect("ack");
}

async fn pending(consumer: &dyn Consumer) -> u64 {
    consumer.pending().await.expect("pending")
}
