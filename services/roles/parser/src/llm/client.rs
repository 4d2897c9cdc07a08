//! One chat-completions request to an OpenAI-compatible provider, asking for a JSON object.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde::{Deserialize, Serialize};

use crate::llm::{LlmConfig, LlmError};

pub(crate) struct ChatClient {
    http: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<String>,
}

/// Hand-written so the key never shows.
impl fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatClient")
            .field("url", &self.url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    messages: [Message<'a>; 2],
    response_format: ResponseFormat,
    /// Extraction, not writing: the same ticket should parse the same way each time.
    temperature: f32,
    stream: bool,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct ResponseFormat {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Deserialize)]
struct Reply {
    choices: Vec<Choice>,
    /// What the answer cost, when the provider says (OpenAI's schema; DeepSeek, vLLM and Ollama send it).
    #[serde(default)]
    usage: Option<Usage>,
}

/// Tokens one answer used, as the provider counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct Usage {
    #[serde(default)]
    pub(crate) prompt_tokens: u64,
    #[serde(default)]
    pub(crate) completion_tokens: u64,
}

#[derive(Deserialize)]
struct Choice {
    message: ReplyMessage,
}

#[derive(Deserialize)]
struct ReplyMessage {
    /// DeepSeek's JSON mode sometimes answers with no content at all.
    #[serde(default)]
    content: Option<String>,
}

impl ChatClient {
    pub(crate) fn new(config: &LlmConfig, api_key: Option<String>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout())
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            url: format!("{}{}", config.base_url.trim_end_matches('/'), config.path),
            model: config.model.clone(),
            api_key,
        })
    }

    /// The model's answer text, and the tokens it used when the provider says. The caller bounds the
    /// time: a dropped future aborts the request.
    pub(crate) async fn complete(
        &self,
        system: &str,
        user: &str,
    ) -> Result<(String, Option<Usage>), LlmError> {
        let body = Request {
            model: &self.model,
            messages: [
                Message {
                    role: "system",
                    content: system,
                },
                Message {
                    role: "user",
                    content: user,
                },
            ],
            response_format: ResponseFormat {
                kind: "json_object",
            },
            temperature: 0.0,
            stream: false,
        };
        let mut request = self.http.post(&self.url).json(&body);
        if let Some(key) = &self.api_key {
            // Marks the header sensitive, so reqwest's own debug output hides it.
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(LlmError::Transport)?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(LlmError::RateLimited { retry_after });
        }
        if !status.is_success() {
            return Err(LlmError::Status {
                status: status.as_u16(),
            });
        }
        let bytes = response.bytes().await.map_err(LlmError::Transport)?;
        let reply: Reply = serde_json::from_slice(&bytes).map_err(LlmError::Envelope)?;
        let usage = reply.usage;
        let content = reply
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .unwrap_or_default();
        if content.trim().is_empty() {
            return Err(LlmError::Empty);
        }
        Ok((content, usage))
    }
}
