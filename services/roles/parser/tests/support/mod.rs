//! A stand-in for an OpenAI-compatible chat-completions provider on 127.0.0.1:0. It speaks just enough
//! HTTP/1.1 to serve reqwest, records every request, and answers from a script, so each test can
//! reproduce one of the provider's failure modes: a slow answer, 429, 500, empty content, invalid JSON,
//! a department that does not exist, a dropped connection.

#![allow(dead_code)] // Each test binary uses its own part of the support module.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_parser::LlmConfig;
use switchboard_proto::Ticket;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const MODEL: &str = "stand-in-model";
pub const PROVIDER: &str = "standin";
pub const API_KEY: &str = "sk-stand-in-key";

/// What the stand-in does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A chat completion whose message content is this text.
    Content(String),
    /// The same, after a delay.
    Slow(Duration, String),
    /// A chat completion with `"content": null`.
    NullContent,
    /// An error status with a JSON error body.
    Status(u16),
    /// 429, with `Retry-After` in seconds when given.
    RateLimited(Option<u64>),
    /// Reads the request, then closes the socket without a word.
    Drop,
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub head: String,
    pub body: String,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("request bodies are JSON")
    }

    /// The content of the message with this role.
    pub fn message(&self, role: &str) -> String {
        self.json()["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .find(|m| m["role"] == role)
            .and_then(|m| m["content"].as_str())
            .expect("a message with that role")
            .to_owned()
    }
}

#[derive(Debug, Default)]
struct State {
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Option<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

#[derive(Debug, Clone)]
pub struct StandIn {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl StandIn {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State::default());
        let serving = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, serving.clone()));
            }
        });
        Self { addr, state }
    }

    /// Replies for the next requests, in order; after them, the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().expect("lock").extend(replies);
    }

    /// The reply once the script is used up (a 500 if never set).
    pub fn always(&self, reply: Reply) {
        *self.state.default.lock().expect("lock") = Some(reply);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().expect("lock").clone()
    }

    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// A configuration pointing at this stand-in: short timeout and backoff, no rate limit, a breaker
    /// that only opens when a test asks for it.
    pub fn config(&self) -> LlmConfig {
        LlmConfig {
            enabled: true,
            provider: PROVIDER.into(),
            base_url: format!("http://{}", self.addr),
            model: MODEL.into(),
            api_key: Some(API_KEY.into()),
            timeout_secs: 1,
            max_retries: 2,
            backoff_ms: 10,
            max_concurrency: 8,
            requests_per_second: 0.0,
            breaker_failures: 1000,
            breaker_cooldown_secs: 1,
            ..LlmConfig::default()
        }
    }
}

async fn serve(mut socket: TcpStream, state: Arc<State>) {
    let Some(recorded) = read_request(&mut socket).await else {
        return;
    };
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    state.requests.lock().expect("lock").push(recorded);
    let reply = state.script.lock().expect("lock").pop_front();
    let reply = reply
        .or_else(|| state.default.lock().expect("lock").clone())
        .unwrap_or(Reply::Status(500));
    let response = match reply {
        Reply::Content(content) => Some(completion(200, &serde_json::json!(content), "")),
        Reply::Slow(delay, content) => {
            tokio::time::sleep(delay).await;
            Some(completion(200, &serde_json::json!(content), ""))
        }
        Reply::NullContent => Some(completion(200, &serde_json::Value::Null, "")),
        Reply::Status(status) => Some(raw(
            status,
            r#"{"error":{"message":"stand-in failure","type":"server_error"}}"#,
            "",
        )),
        Reply::RateLimited(after) => Some(raw(
            429,
            r#"{"error":{"message":"rate limited","type":"rate_limit"}}"#,
            &after.map_or(String::new(), |s| format!("Retry-After: {s}\r\n")),
        )),
        Reply::Drop => None,
    };
    // Before answering: the client may start its next request as soon as it has the answer.
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    if let Some(response) = response {
        // The client may have given up already; that is what some tests are about.
        let _ = socket.write_all(response.as_bytes()).await;
        let _ = socket.shutdown().await;
    }
}

fn completion(status: u16, content: &serde_json::Value, extra_headers: &str) -> String {
    let body = serde_json::json!({
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    });
    raw(status, &body.to_string(), extra_headers)
}

fn raw(status: u16, body: &str, extra_headers: &str) -> String {
    format!(
        "HTTP/1.1 {status} Stand-in\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

/// Reads one request: the head up to the blank line, then Content-Length bytes of body.
async fn read_request(socket: &mut TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8(buf[head_end..head_end + length].to_vec()).ok()?;
    Some(Recorded { head, body })
}

/// A valid answer naming these departments, with this complexity.
pub fn answer(departments: &[&str], complexity: u32) -> String {
    serde_json::json!({
        "summary": "The customer cannot log in.",
        "problem_type": "login failure",
        "keywords": ["登录", "password"],
        "entities": [],
        "complexity": complexity,
        "language": "zh",
        "suggested_departments": departments,
    })
    .to_string()
}

pub fn ticket(id: &str, text: &str) -> Ticket {
    Ticket {
        id: id.to_owned(),
        text: text.to_owned(),
        ..Ticket::default()
    }
}

/// The value of one counter series in the OpenMetrics text, 0 when absent.
pub fn counter(exposition: &str, series: &str) -> u64 {
    exposition
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// `switchboard_llm_requests_total` for the stand-in provider and one outcome.
pub fn requests_with(exposition: &str, outcome: &str) -> u64 {
    counter(
        exposition,
        &format!(r#"switchboard_llm_requests_total{{provider="{PROVIDER}",outcome="{outcome}"}}"#),
    )
}
