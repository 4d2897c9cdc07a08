//! An HTTP client of the intake, as a connector: it sends a ticket with its key again, after
//! `Retry-After` or a moment, until it is told the ticket was accepted.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A client gives up on a ticket it could not get accepted in this long.
const GIVE_UP: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    /// `POST /v1/tickets` of the intake.
    pub url: String,
    pub token: String,
}

impl Client {
    /// The accepted ticket's id.
    pub async fn submit(&self, key: String, text: String) -> anyhow::Result<String> {
        let give_up = Instant::now() + GIVE_UP;
        let body = serde_json::json!({ "text": text, "channel": "web", "idempotency_key": key });
        let mut last = String::new();
        while Instant::now() < give_up {
            let answer = self
                .http
                .post(&self.url)
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await;
            let mut wait = Duration::from_millis(250);
            match answer {
                Ok(response) if response.status() == reqwest::StatusCode::ACCEPTED => {
                    let accepted: serde_json::Value = response.json().await?;
                    return accepted["ticket_id"]
                        .as_str()
                        .map(str::to_owned)
                        .with_context(|| format!("no ticket_id in {accepted}"));
                }
                Ok(response) => {
                    let status = response.status();
                    if !(status.is_server_error()
                        || status == reqwest::StatusCode::TOO_MANY_REQUESTS)
                    {
                        bail!("{status}: {}", response.text().await.unwrap_or_default());
                    }
                    if let Some(secs) = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()?.parse().ok())
                    {
                        wait = Duration::from_secs(secs);
                    }
                    last = format!("{status}: {}", response.text().await.unwrap_or_default());
                }
                Err(e) => last = format!("{e:#}"),
            }
            tokio::time::sleep(wait).await;
        }
        bail!("not accepted within {GIVE_UP:?}; last answer {last}")
    }
}
