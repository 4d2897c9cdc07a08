//! Reaching a dependency at start: a process started while NATS or the Qdrant server restarts waits
//! for it, instead of exiting into a crash loop, for as long as its settings allow.

use std::future::Future;
use std::time::{Duration, Instant};

use switchboard_runtime::error_chain;

const FIRST_PAUSE: Duration = Duration::from_millis(200);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// Runs `attempt` until it succeeds, fails in a way `retryable` says waiting cannot mend, or `within`
/// has passed; between tries it pauses 200 ms, doubling up to 5 s, and warns (at tries 1, 2, 4, 8…)
/// naming `what` at `url` and the error. The last answer is returned as it is.
pub async fn reach<T, E, F>(
    what: &str,
    url: &str,
    within: Duration,
    retryable: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> F,
) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
    E: std::error::Error + 'static,
{
    let deadline = Instant::now() + within;
    let mut pause = FIRST_PAUSE;
    let mut tries: u32 = 0;
    loop {
        match attempt().await {
            Err(e) if retryable(&e) && Instant::now() + pause < deadline => {
                tries += 1;
                if tries.is_power_of_two() {
                    tracing::warn!(
                        url,
                        error = %error_chain(&e),
                        tries,
                        "{what} cannot be reached yet; trying again"
                    );
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
            other => return other,
        }
    }
}
