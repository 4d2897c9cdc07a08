//! The LLM parser against a stand-in provider: each of the provider's failure modes, retries with
//! backoff, fallback to the local parser with the reason recorded, the circuit breaker, the deadline,
//! the concurrency limit, and the departments it may suggest.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{API_KEY, MODEL, Reply, StandIn, answer, counter, requests_with, ticket};
use switchboard_parser::{
    DepartmentCatalog, FallbackParser, LlmConfig, LlmParser, LocalParser, ParseError, Parser,
};
use switchboard_proto::ProblemTypeSource;
use switchboard_runtime::Metrics;

const TEXT: &str = "输对密码进不去，App 登录一直失败";
const LLM_NAME: &str = "llm:standin/stand-in-model";

fn catalog() -> DepartmentCatalog {
    DepartmentCatalog::fixed([
        ("unified_auth", "accounts, login and passwords"),
        ("billing", "charges and refunds"),
    ])
}

fn llm(config: &LlmConfig, metrics: &Metrics) -> Arc<LlmParser> {
    Arc::new(
        LlmParser::new(config, catalog(), metrics.clone(), Duration::from_secs(10))
            .expect("valid config"),
    )
}

fn with_fallback(config: &LlmConfig, metrics: &Metrics) -> FallbackParser {
    FallbackParser::new(llm(config, metrics))
}

#[tokio::test]
async fn a_good_answer_fills_the_section_and_names_the_model() {
    let standin = StandIn::start().await;
    standin.script([Reply::Content(answer(&["unified_auth"], 1))]);
    let metrics = Metrics::new();
    let parsed = with_fallback(&standin.config(), &metrics)
        .parse(&ticket("t-1", TEXT))
        .await
        .expect("parsed");
    assert_eq!(parsed.parser, LLM_NAME);
    assert_eq!(parsed.suggested_departments, ["unified_auth"]);
    assert_eq!(parsed.summary, "The customer cannot log in.");
    assert_eq!(
        (parsed.problem_type.as_str(), parsed.problem_type_source()),
        ("login failure", ProblemTypeSource::Parser),
        "the model's problem type is its own reading, not a guess to replace"
    );
    assert_eq!(parsed.language, "zh");
    // "password" is not in the ticket, so it cannot be a keyword; 登录 is.
    assert_eq!(parsed.keywords, ["登录"]);
    let exposition = metrics.encode();
    assert_eq!(requests_with(&exposition, "ok"), 1);
    // The request's time and the tokens the stand-in reported (1 and 1) are counted; outcomes that
    // did not happen are there at zero.
    let provider = standin.config().provider;
    let series = |name: &str, labels: &str| format!("{name}{{provider=\"{provider}\"{labels}}}");
    assert_eq!(
        counter(
            &exposition,
            &series("switchboard_llm_request_duration_seconds_count", "")
        ),
        1
    );
    assert_eq!(
        counter(
            &exposition,
            &series("switchboard_llm_tokens_total", ",kind=\"prompt\"")
        ),
        1
    );
    assert_eq!(
        counter(
            &exposition,
            &series("switchboard_llm_tokens_total", ",kind=\"completion\"")
        ),
        1
    );
    assert!(
        exposition.contains(&format!(
            "switchboard_llm_requests_total{{provider=\"{provider}\",outcome=\"timeout\"}} 0"
        )),
        "{exposition}"
    );

    let requests = standin.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert!(
        request.head.starts_with("POST /chat/completions HTTP/1.1"),
        "{}",
        request.head
    );
    assert!(
        request
            .head
            .to_ascii_lowercase()
            .contains(&format!("authorization: bearer {API_KEY}").to_ascii_lowercase()),
        "{}",
        request.head
    );
    let body = request.json();
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["response_format"]["type"], "json_object");
    let system = request.message("system");
    assert!(
        system.contains("json") && system.contains("Example"),
        "{system}"
    );
    assert!(
        system.contains(
            "- billing: charges and refunds\n- unified_auth: accounts, login and passwords\n"
        ),
        "{system}"
    );
    let user = request.message("user");
    assert!(
        user.ends_with(&format!("<ticket>\n{TEXT}\n</ticket>")),
        "{user}"
    );
}

#[tokio::test]
async fn the_path_is_configurable() {
    let standin = StandIn::start().await;
    standin.script([Reply::Content(answer(&[], 1))]);
    let config = LlmConfig {
        path: "/v1/chat/completions".into(),
        ..standin.config()
    };
    let parsed = with_fallback(&config, &Metrics::new())
        .parse(&ticket("t-1", TEXT))
        .await
        .expect("parsed");
    assert_eq!(parsed.parser, LLM_NAME);
    assert!(
        standin.requests()[0]
            .head
            .starts_with("POST /v1/chat/completions ")
    );
}

#[tokio::test]
async fn unknown_departments_are_dropped_and_counted() {
    let standin = StandIn::start().await;
    standin.script([Reply::Content(answer(
        &["root_admin", "billing", "Billing ", "finance_secret"],
        1,
    ))]);
    let metrics = Metrics::new();
    let parsed = with_fallback(&standin.config(), &metrics)
        .parse(&ticket("t-1", TEXT))
        .await
        .expect("parsed");
    assert_eq!(parsed.suggested_departments, ["billing"]);
    assert_eq!(
        counter(
            &metrics.encode(),
            "switchboard_llm_dropped_departments_total"
        ),
        3
    );
}

#[tokio::test]
async fn rate_limits_are_retried_after_a_backoff() {
    let standin = StandIn::start().await;
    standin.script([
        Reply::RateLimited(None),
        Reply::RateLimited(Some(0)),
        Reply::Content(answer(&["billing"], 1)),
    ]);
    let metrics = Metrics::new();
    let parsed = with_fallback(&standin.config(), &metrics)
        .parse(&ticket("t-1", TEXT))
        .await
        .expect("parsed");
    assert_eq!(parsed.parser, LLM_NAME);
    assert_eq!(standin.requests().len(), 3);
    let exposition = metrics.encode();
    assert_eq!(requests_with(&exposition, "rate_limited"), 2);
    assert_eq!(requests_with(&exposition, "ok"), 1);
}

#[tokio::test]
async fn empty_content_null_content_and_a_dropped_connection_are_retried() {
    let standin = StandIn::start().await;
    standin.script([
        Reply::Content(String::new()),
        Reply::NullContent,
        Reply::Drop,
        Reply::Content(answer(&["billing"], 1)),
    ]);
    let config = LlmConfig {
        max_retries: 3,
        ..standin.config()
    };
    let metrics = Metrics::new();
    let parsed = with_fallback(&config, &metrics)
        .parse(&ticket("t-1", TEXT))
        .await
        .expect("parsed");
    assert_eq!(parsed.parser, LLM_NAME);
    let exposition = metrics.encode();
    assert_eq!(requests_with(&exposition, "empty"), 2);
    assert_eq!(requests_with(&exposition, "transport"), 1);
    assert_eq!(requests_with(&exposition, "ok"), 1);
}

#[tokio::test]
async fn server_errors_fall_back_to_local_after_the_retries() {
    let standin = StandIn::start().await;
    standin.always(Reply::Status(500));
    let metrics = Metrics::new();
    let parsed = with_fallback(&standin.config(), &metrics)
        .parse(&ticket("t-1", TEXT))
        .await
        .expect("local answers");
    assert_eq!(parsed.parser, "local (fallback: server_error)");
    // The local parser's own section: no departments, its own keywords.
    let local = LocalParser.parse_text(TEXT);
    assert_eq!(parsed.keywords, local.keywords);
    assert!(parsed.suggested_departments.is_empty());
    // The first attempt and max_retries = 2 more.
    assert_eq!(standin.requests().len(), 3);
    assert_eq!(requests_with(&metrics.encode(), "server_error"), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let standin = StandIn::start().await;
    standin.always(Reply::Status(401));
    let parsed = with_fallback(&standin.config(), &Metrics::new())
        .parse(&ticket("t-1", TEXT))
        .await
        .expect("local answers");
    assert_eq!(parsed.parser, "local (fallback: client_error)");
    assert_eq!(standin.requests().len(), 1);
}

#[tokio::test]
async fn an_answer_without_a_problem_type_keeps_the_local_guess() {
    let standin = StandIn::start().await;
    let mut blank = serde_json::from_str::<serde_json::Value>(&answer(&[], 1)).expect("json");
    blank["problem_type"] = " ".into();
    standin.script([Reply::Content(blank.to_string())]);
    let parsed = with_fallback(&standin.config(), &Metrics::new())
        .parse(&ticket("t-1", TEXT))
        .await
        .expect("parsed");
    assert_eq!(parsed.parser, LLM_NAME);
    let local = LocalParser.parse_text(TEXT);
    assert_eq!(parsed.problem_type, local.problem_type);
    assert_eq!(parsed.problem_type_source(), ProblemTypeSource::Keyword);
}

#[tokio::test]
async fn invalid_json_is_retried_then_falls_back() {
    let standin = StandIn::start().await;
    standin.always(Reply::Content(
        "Sure! Here is the JSON: {summary: login}".into(),
    ));
    let metrics = Metrics::new();
    let parser = llm(&standin.config(), &metrics);
    let err = parser
        .parse(&ticket("t-1", TEXT))
        .await
        .expect_err("never valid");
    assert!(matches!(err, ParseError::InvalidOutput { .. }), "{err:?}");
    assert_eq!(err.reason(), "invalid_json");
    assert_eq!(standin.requests().len(), 3);

    // An answer that is JSON but off the schema is invalid too.
    standin.script([Reply::Content(
        r#"{"summary":"s","problem_type":"p","complexity":42,"language":"zh"}"#.into(),
    )]);
    standin.always(Reply::Content(answer(&[], 1)));
    let parsed = FallbackParser::new(parser)
        .parse(&ticket("t-2", TEXT))
        .await
        .expect("parsed");
    assert_eq!(parsed.parser, LLM_NAME);
    assert_eq!(requests_with(&metrics.encode(), "invalid_schema"), 1);
}

#[tokio::test]
async fn a_slow_answer_times_out_and_falls_back() {
    let standin = StandIn::start().await;
    standin.always(Reply::Slow(Duration::from_secs(5), answer(&["billing"], 1)));
    let config = LlmConfig {
        max_retries: 0,
        ..standin.config()
    };
    let metrics = Metrics::new();
    let started = Instant::now();
    let parsed = with_fallback(&config, &metrics)
        .parse(&ticket("t-1", TEXT))
        .await
        .expect("local answers");
    assert_eq!(parsed.parser, "local (fallback: timeout)");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(requests_with(&metrics.encode(), "timeout"), 1);
}

#[tokio::test]
async fn a_ticket_never_outlives_its_deadline() {
    let standin = StandIn::start().await;
    standin.always(Reply::Slow(Duration::from_secs(5), answer(&[], 1)));
    // Timeout 1 s per attempt and two retries would take 3 s; the deadline allows 300 ms in all.
    let parser = LlmParser::new(
        &standin.config(),
        catalog(),
        Metrics::new(),
        Duration::from_millis(300),
    )
    .expect("valid config");
    let started = Instant::now();
    let err = parser
        .parse(&ticket("t-1", TEXT))
        .await
        .expect_err("too slow");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(800),
        "{elapsed:?}"
    );
    assert!(matches!(err, ParseError::Unavailable { .. }), "{err:?}");
    assert_eq!(
        standin.requests().len(),
        1,
        "no retry that could not finish in time"
    );
}

#[tokio::test]
async fn the_breaker_opens_then_recovers_through_a_half_open_trial() {
    let standin = StandIn::start().await;
    standin.always(Reply::Status(503));
    let config = LlmConfig {
        max_retries: 0,
        breaker_failures: 2,
        breaker_cooldown_secs: 1,
        ..standin.config()
    };
    let metrics = Metrics::new();
    let parser = with_fallback(&config, &metrics);
    for id in ["t-1", "t-2"] {
        let parsed = parser.parse(&ticket(id, TEXT)).await.expect("local");
        assert_eq!(parsed.parser, "local (fallback: server_error)");
    }
    // Open: tickets go to the local parser at once, without a request.
    let parsed = parser.parse(&ticket("t-3", TEXT)).await.expect("local");
    assert_eq!(parsed.parser, "local (fallback: breaker_open)");
    assert_eq!(standin.requests().len(), 2);
    assert_eq!(requests_with(&metrics.encode(), "breaker_open"), 1);

    // After the cooldown one trial goes out; the provider is back, so the breaker closes.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    standin.always(Reply::Content(answer(&["billing"], 1)));
    let parsed = parser.parse(&ticket("t-4", TEXT)).await.expect("trial");
    assert_eq!(parsed.parser, LLM_NAME);
    let parsed = parser.parse(&ticket("t-5", TEXT)).await.expect("closed");
    assert_eq!(parsed.parser, LLM_NAME);
    assert_eq!(standin.requests().len(), 4);
}

#[tokio::test]
async fn a_failed_trial_reopens_the_breaker() {
    let standin = StandIn::start().await;
    standin.always(Reply::Status(500));
    let config = LlmConfig {
        max_retries: 0,
        breaker_failures: 1,
        breaker_cooldown_secs: 1,
        ..standin.config()
    };
    let parser = with_fallback(&config, &Metrics::new());
    parser.parse(&ticket("t-1", TEXT)).await.expect("local");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let trial = parser.parse(&ticket("t-2", TEXT)).await.expect("local");
    assert_eq!(trial.parser, "local (fallback: server_error)");
    let after = parser.parse(&ticket("t-3", TEXT)).await.expect("local");
    assert_eq!(after.parser, "local (fallback: breaker_open)");
    assert_eq!(standin.requests().len(), 2);
}

#[tokio::test]
async fn concurrency_is_limited_per_provider() {
    let standin = StandIn::start().await;
    standin.always(Reply::Slow(Duration::from_millis(150), answer(&[], 1)));
    let config = LlmConfig {
        max_concurrency: 2,
        ..standin.config()
    };
    let parser = Arc::new(with_fallback(&config, &Metrics::new()));
    let mut tasks = Vec::new();
    for i in 0..6 {
        let parser = parser.clone();
        tasks.push(tokio::spawn(async move {
            parser.parse(&ticket(&format!("t-{i}"), TEXT)).await
        }));
    }
    for task in tasks {
        let parsed = task.await.expect("task").expect("parsed");
        assert_eq!(parsed.parser, LLM_NAME);
    }
    assert_eq!(standin.requests().len(), 6);
    assert_eq!(standin.max_in_flight(), 2);
}

#[tokio::test]
async fn the_model_may_lower_the_complexity_but_never_raise_it() {
    let text =
        "订单 8812 重复扣款 200 元。退款申请三天没有处理。客服电话一直打不通。App 也登录不了。";
    let local = LocalParser.parse_text(text).complexity;
    assert!(local >= 2, "the fixture needs a tier to lower: {local}");
    let standin = StandIn::start().await;
    standin.script([
        Reply::Content(answer(&[], 5)),
        Reply::Content(answer(&[], 1)),
    ]);
    let parser = with_fallback(&standin.config(), &Metrics::new());
    let raised = parser.parse(&ticket("t-1", text)).await.expect("parsed");
    assert_eq!(raised.parser, LLM_NAME, "the model's answer was taken");
    assert_eq!(raised.complexity, local, "no raise on the model's say-so");
    let lowered = parser.parse(&ticket("t-2", text)).await.expect("parsed");
    assert_eq!(lowered.complexity, 1);
}

#[test]
fn construction_needs_a_model() {
    let config = LlmConfig {
        enabled: true,
        ..LlmConfig::default()
    };
    let err = LlmParser::new(&config, catalog(), Metrics::new(), Duration::from_secs(1))
        .expect_err("no model");
    let chain = switchboard_runtime::error_chain(&err);
    assert!(chain.contains("llm.model"), "{chain}");
}

#[tokio::test]
async fn the_catalog_follows_the_rules_and_departments_buckets() {
    use switchboard_bus::Bus;
    use switchboard_runtime::buckets::DEPARTMENTS as DEPARTMENTS_BUCKET;

    let bus = switchboard_bus::memory::MemoryBus::new();
    let rules = bus.kv("rules").await.expect("rules bucket");
    let departments = bus
        .kv(DEPARTMENTS_BUCKET)
        .await
        .expect("departments bucket");
    rules
        .put(
            "vpn",
            br#"{"keywords":["vpn"],"department":"network_ops","weight":3,"enabled":true}"#
                .to_vec()
                .into(),
        )
        .await
        .expect("rule");
    departments
        .put("billing", b"charges and refunds".to_vec().into())
        .await
        .expect("department");
    let catalog = DepartmentCatalog::follow(rules, departments)
        .await
        .expect("follow");

    let standin = StandIn::start().await;
    standin.script([Reply::Content(answer(&["network_ops", "billing", "hr"], 1))]);
    let parser = LlmParser::new(
        &standin.config(),
        catalog,
        Metrics::new(),
        Duration::from_secs(5),
    )
    .expect("valid config");
    let parsed = parser.parse(&ticket("t-1", TEXT)).await.expect("parsed");
    assert_eq!(parsed.suggested_departments, ["network_ops", "billing"]);
    let system = standin.requests()[0].message("system");
    assert!(
        system.contains("- billing: charges and refunds\n- network_ops\n"),
        "{system}"
    );
}
