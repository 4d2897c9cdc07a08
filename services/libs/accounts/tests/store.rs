//! Accounts, sessions, API tokens, the first-start admin and the authenticator, on each bus: the
//! in-process one and a real nats-server at `SWITCHBOARD_TEST_NATS_URL` (default
//! `nats://127.0.0.1:4222`, from two connections where a race is checked).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{bearer, clean_up, cookie, nats_buses, unique};
use switchboard_accounts::{
    ACCOUNTS_BUCKET, Accounts, AuthError, Authenticator, CredentialKind, Principal, Role, Via,
    bootstrap_admin,
};
use switchboard_bus::Bus;
use switchboard_bus::memory::MemoryBus;
use switchboard_errors::{ErrorKind, ServiceError};

const TTL: Duration = Duration::from_secs(3600);

async fn accounts(bus: &Arc<dyn Bus>) -> Accounts {
    Accounts::open(bus, TTL).await.expect("open accounts")
}

/// Every raw value in the bucket, for checking what is and is not stored.
async fn raw(bus: &Arc<dyn Bus>) -> Vec<(String, String)> {
    let kv = bus.kv(ACCOUNTS_BUCKET).await.expect("bucket");
    kv.entries()
        .await
        .expect("entries")
        .into_iter()
        .map(|(key, entry)| (key, String::from_utf8_lossy(&entry.value).into_owned()))
        .collect()
}

fn is_bad(err: &AuthError, kind: CredentialKind) -> bool {
    matches!(err, AuthError::BadCredential { kind: k } if *k == kind)
}

async fn users_and_passwords(bus: Arc<dyn Bus>) {
    let accounts = accounts(&bus).await;
    let added = accounts
        .add_user("ann", Role::Agent, Some("ann's secret"))
        .await
        .expect("add ann");
    assert_eq!(added.user.role, Role::Agent);
    assert_eq!(
        added.generated_password, None,
        "a given password is not echoed"
    );

    let err = accounts
        .add_user("ann", Role::Admin, Some("another one"))
        .await
        .expect_err("the name is taken");
    assert!(
        matches!(err, AuthError::UserExists(ref n) if n == "ann"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);

    let generated = accounts
        .add_user("bob", Role::Viewer, None)
        .await
        .expect("add bob")
        .generated_password
        .expect("a generated password is returned");
    assert_eq!(generated.len(), 20);
    let bob = accounts.verify("bob", &generated).await.expect("verify");
    assert_eq!(bob.map(|u| u.role), Some(Role::Viewer));

    assert_eq!(
        accounts
            .verify("ann", "ann's secreT")
            .await
            .expect("verify"),
        None
    );
    assert_eq!(
        accounts
            .verify("nobody", "ann's secret")
            .await
            .expect("verify"),
        None
    );
    assert_eq!(
        accounts
            .verify("not a name", "whatever1")
            .await
            .expect("verify"),
        None
    );

    let err = accounts
        .add_user("c d", Role::Agent, Some("long enough"))
        .await
        .expect_err("bad name");
    assert_eq!(err.field(), Some("name"), "{err}");
    let err = accounts
        .add_user("carol", Role::Agent, Some("short"))
        .await
        .expect_err("short password");
    assert_eq!(err.field(), Some("password"), "{err}");

    let users = accounts.users().await.expect("users");
    let names: Vec<(&str, Role)> = users.iter().map(|u| (u.name.as_str(), u.role)).collect();
    assert_eq!(names, [("ann", Role::Agent), ("bob", Role::Viewer)]);

    let stored = raw(&bus).await;
    let ann = stored
        .iter()
        .find(|(key, _)| key == "user.ann")
        .map(|(_, value)| value)
        .expect("ann is stored under user.ann");
    assert!(ann.contains("$argon2id$"), "{ann}");
    assert!(!ann.contains("ann's secret"), "no plain password: {ann}");
    assert!(
        !stored.iter().any(|(_, v)| v.contains(&generated)),
        "nor a generated one"
    );

    accounts
        .set_password("ann", "a new secret")
        .await
        .expect("set password");
    assert_eq!(
        accounts
            .verify("ann", "ann's secret")
            .await
            .expect("verify"),
        None
    );
    assert!(
        accounts
            .verify("ann", "a new secret")
            .await
            .expect("verify")
            .is_some()
    );
    let err = accounts
        .set_password("nobody", "a new secret")
        .await
        .expect_err("no such user");
    assert_eq!(err.kind(), ErrorKind::NotFound);

    accounts.remove_user("bob").await.expect("remove bob");
    assert_eq!(
        accounts.verify("bob", &generated).await.expect("verify"),
        None
    );
    assert_eq!(accounts.user("bob").await.expect("user"), None);
    let err = accounts.remove_user("bob").await.expect_err("gone already");
    assert!(matches!(err, AuthError::NoUser(_)), "{err:?}");
}

async fn sessions(bus: Arc<dyn Bus>) {
    let accounts = accounts(&bus).await;
    accounts
        .add_user("dora", Role::Supervisor, Some("dora's secret"))
        .await
        .expect("add dora");
    let session = accounts
        .login("dora", "dora's secret")
        .await
        .expect("login");
    assert_eq!(
        (session.name.as_str(), session.role),
        ("dora", Role::Supervisor)
    );
    assert_eq!(session.token.len(), 43, "32 random bytes, base64url");
    let principal = accounts.session(&session.token).await.expect("session");
    assert_eq!(
        principal,
        Principal {
            name: "dora".into(),
            role: Role::Supervisor,
            via: Via::Session
        }
    );
    let stored = raw(&bus).await;
    assert!(
        stored
            .iter()
            .any(|(key, _)| key.starts_with("session.") && key.len() == 8 + 64),
        "kept under its SHA-256: {stored:?}"
    );
    assert!(
        !stored
            .iter()
            .any(|(k, v)| k.contains(&session.token) || v.contains(&session.token))
    );

    for (name, password) in [("dora", "dora's secreT"), ("nobody", "dora's secret")] {
        let err = accounts.login(name, password).await.expect_err("refused");
        assert!(is_bad(&err, CredentialKind::Password), "{err:?}");
        assert_eq!(
            err.to_string(),
            "wrong name or password",
            "the same for both"
        );
        assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    }

    accounts.logout(&session.token).await.expect("logout");
    let err = accounts
        .session(&session.token)
        .await
        .expect_err("logged out");
    assert!(is_bad(&err, CredentialKind::Session), "{err:?}");

    // A password change ends the sessions opened before it.
    let before = accounts
        .login("dora", "dora's secret")
        .await
        .expect("login");
    accounts
        .set_password("dora", "dora's new one")
        .await
        .expect("set");
    accounts
        .session(&before.token)
        .await
        .expect_err("ended by the change");
    // So does removing the user, and a new user of the same name does not revive them.
    let again = accounts
        .login("dora", "dora's new one")
        .await
        .expect("login");
    accounts.remove_user("dora").await.expect("remove");
    accounts
        .session(&again.token)
        .await
        .expect_err("ended by the removal");
    accounts
        .add_user("dora", Role::Admin, Some("dora's new one"))
        .await
        .expect("re-add");
    let err = accounts
        .session(&again.token)
        .await
        .expect_err("still ended");
    assert!(is_bad(&err, CredentialKind::Session), "{err:?}");
}

async fn sessions_expire(bus: Arc<dyn Bus>) {
    let short = Accounts::open(&bus, Duration::from_millis(300))
        .await
        .expect("open");
    short
        .add_user("eve", Role::Viewer, Some("eve's secret"))
        .await
        .expect("add");
    let first = short.login("eve", "eve's secret").await.expect("login");
    let second = short.login("eve", "eve's secret").await.expect("login");
    short.session(&first.token).await.expect("fresh");
    // Until both have expired by their own word, not by a guessed pause.
    let expired = first.expires_at_ms.max(second.expires_at_ms) + 1;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    tokio::time::sleep(Duration::from_millis(expired.saturating_sub(now))).await;
    let sessions = |stored: Vec<(String, String)>| {
        stored
            .into_iter()
            .filter(|(key, _)| key.starts_with("session."))
            .count()
    };
    assert_eq!(sessions(raw(&bus).await), 2);
    let err = short.session(&first.token).await.expect_err("expired");
    assert!(is_bad(&err, CredentialKind::Session), "{err:?}");
    assert_eq!(
        sessions(raw(&bus).await),
        1,
        "the expired session presented was deleted"
    );
    assert_eq!(short.purge_expired_sessions().await.expect("purge"), 1);
    assert_eq!(sessions(raw(&bus).await), 0, "and the purge took the other");
    short.session(&second.token).await.expect_err("expired too");
}

async fn api_tokens(bus: Arc<dyn Bus>) {
    let accounts = accounts(&bus).await;
    let created = accounts
        .create_token("mail-gateway", Role::Connector)
        .await
        .expect("create");
    assert!(
        created
            .token
            .starts_with(&format!("sbt_{}_", created.info.id)),
        "{}",
        created.token
    );
    let principal = accounts.token(&created.token).await.expect("accepted");
    assert_eq!(
        principal,
        Principal {
            name: "mail-gateway".into(),
            role: Role::Connector,
            via: Via::ApiToken
        }
    );
    let other = accounts
        .create_token("report-script", Role::Viewer)
        .await
        .expect("create");

    let listed = accounts.tokens().await.expect("tokens");
    assert_eq!(listed, vec![created.info.clone(), other.info.clone()]);
    // The secret is URL-safe base64, which may itself hold `_`: everything after the id's `_`.
    let secret = created
        .token
        .strip_prefix(&format!("sbt_{}_", created.info.id))
        .expect("secret");
    let stored = raw(&bus).await;
    assert!(
        !stored.iter().any(|(_, v)| v.contains(secret)),
        "only the hash is stored"
    );

    let mut tampered = created.token.clone();
    tampered.push('x');
    let cases = [
        tampered.as_str(),
        "sbt_nothex0123456789_abc",
        "sbt_0123456789abcdef_abc",
        "sbt_",
    ];
    for bad in cases {
        let err = accounts.token(bad).await.expect_err(bad);
        assert!(is_bad(&err, CredentialKind::ApiToken), "{bad}: {err:?}");
    }

    accounts
        .revoke_token(&created.info.id)
        .await
        .expect("revoke");
    let err = accounts.token(&created.token).await.expect_err("revoked");
    assert_eq!(err.to_string(), "the API token is unknown or revoked");
    assert_eq!(
        accounts.tokens().await.expect("tokens"),
        vec![other.info.clone()]
    );
    let err = accounts
        .revoke_token(&created.info.id)
        .await
        .expect_err("gone");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    accounts
        .token(&other.token)
        .await
        .expect("the other still works");
}

/// Two processes starting at once: one creates the admin, the other finds it.
async fn one_admin_at_first_start(buses: Vec<Arc<dyn Bus>>) {
    let a = accounts(&buses[0]).await;
    let b = accounts(buses.last().expect("a bus")).await;
    let (first, second) = tokio::join!(bootstrap_admin(&a), bootstrap_admin(&b));
    let passwords: Vec<String> = [first.expect("bootstrap"), second.expect("bootstrap")]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(passwords.len(), 1, "exactly one admin was created");
    let session = a
        .login("admin", &passwords[0])
        .await
        .expect("the password works");
    assert_eq!(session.role, Role::Admin);
    assert_eq!(
        bootstrap_admin(&b).await.expect("bootstrap"),
        None,
        "once only"
    );
    assert_eq!(a.users().await.expect("users").len(), 1);
}

async fn no_admin_when_users_exist(bus: Arc<dyn Bus>) {
    let accounts = accounts(&bus).await;
    accounts
        .add_user("fay", Role::Agent, Some("fay's secret"))
        .await
        .expect("add");
    assert_eq!(bootstrap_admin(&accounts).await.expect("bootstrap"), None);
    assert_eq!(accounts.user("admin").await.expect("user"), None);
}

async fn the_authenticator(bus: Arc<dyn Bus>) {
    let accounts = accounts(&bus).await;
    accounts
        .add_user("gus", Role::Agent, Some("gus's secret"))
        .await
        .expect("add");
    let token = accounts
        .create_token("ci", Role::Connector)
        .await
        .expect("token");
    let auth = Authenticator::new(accounts, None, 3, Duration::from_secs(1));

    let err = auth
        .authenticate(&axum::http::HeaderMap::new())
        .await
        .expect_err("none");
    assert!(matches!(err, AuthError::MissingCredential), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);

    let session = auth
        .login("gus", "gus's secret", None)
        .await
        .expect("login");
    for headers in [bearer(&session.token), cookie(&session.token)] {
        let principal = auth.authenticate(&headers).await.expect("session");
        assert_eq!(
            (principal.name.as_str(), principal.via),
            ("gus", Via::Session)
        );
    }
    let principal = auth
        .authenticate(&bearer(&token.token))
        .await
        .expect("token");
    assert_eq!(
        (principal.role, principal.via),
        (Role::Connector, Via::ApiToken)
    );

    let err = auth
        .authenticate(&cookie("forged"))
        .await
        .expect_err("bad session");
    assert!(is_bad(&err, CredentialKind::Session), "{err:?}");
    let err = auth
        .authenticate(&bearer("eyJh.eyJz.c2ln"))
        .await
        .expect_err("a JWT without OIDC");
    assert!(matches!(err, AuthError::OidcNotConfigured), "{err:?}");

    // Three failures for one name use it up, from anywhere, even for the right password …
    let addr = Some("192.0.2.7".parse().expect("ip"));
    for _ in 0..3 {
        let err = auth
            .login("gus", "wrong!!!", addr)
            .await
            .expect_err("wrong");
        assert!(is_bad(&err, CredentialKind::Password), "{err:?}");
    }
    let err = auth
        .login("gus", "gus's secret", None)
        .await
        .expect_err("limited");
    assert_eq!(err.kind(), ErrorKind::TooManyRequests);
    let after = err.retry_after().expect("says when");
    assert!(
        after > Duration::ZERO && after <= Duration::from_secs(1),
        "{after:?}"
    );
    assert_eq!(err.to_string(), "too many failed logins: retry in 1 s");
    // … and the address too, for any name.
    let err = auth
        .login("hal", "whatever1", addr)
        .await
        .expect_err("limited");
    assert_eq!(err.kind(), ErrorKind::TooManyRequests);
    // As long as the refusal said, and no longer.
    tokio::time::sleep(after).await;
    auth.login("gus", "gus's secret", addr)
        .await
        .expect("the window passed");
}

async fn checks_on_one_bus(bus: Arc<dyn Bus>) {
    users_and_passwords(Arc::clone(&bus)).await;
    sessions(Arc::clone(&bus)).await;
    api_tokens(Arc::clone(&bus)).await;
    the_authenticator(Arc::clone(&bus)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_in_process_bus() {
    checks_on_one_bus(Arc::new(MemoryBus::new())).await;
    sessions_expire(Arc::new(MemoryBus::new())).await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    one_admin_at_first_start(vec![Arc::clone(&bus), bus]).await;
    no_admin_when_users_exist(Arc::new(MemoryBus::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_nats() {
    // A prefix (so a bucket) per check: the first-start checks need an empty one, the expiry count
    // a bucket of its own.
    let runs = [
        unique("acc"),
        unique("exp"),
        unique("boot"),
        unique("noboot"),
    ];
    let outcome = {
        let runs = runs.clone();
        tokio::spawn(async move {
            checks_on_one_bus(nats_buses(&runs[0], 1).await.remove(0)).await;
            sessions_expire(nats_buses(&runs[1], 1).await.remove(0)).await;
            one_admin_at_first_start(nats_buses(&runs[2], 2).await).await;
            no_admin_when_users_exist(nats_buses(&runs[3], 1).await.remove(0)).await;
        })
        .await
    };
    for run in &runs {
        clean_up(run).await;
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}
