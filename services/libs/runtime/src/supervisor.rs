//! Supervision: the tasks a process cannot run without (each role's consumer, the listeners, the
//! knowledge base's change feed) report when they end, whether they returned, failed, panicked or were
//! aborted. The binary ends the process with a non-zero status on the first report, so a role that
//! died is noticed (and, in Kubernetes, restarted) instead of leaving a process that looks alive and
//! handles nothing. Once the process stops on purpose, ends are expected and not reported.

use std::future::Future;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::BoxError;

/// A supervised task that ended while the process was not stopping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `role parser`, `HTTP server`, …
    pub task: String,
    /// How it ended, with the error's causes.
    pub why: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ended: {}", self.task, self.why)
    }
}

/// Hands out supervised tasks; clones report to the same [`Failures`].
#[derive(Debug, Clone)]
pub struct Supervisor {
    failures: mpsc::UnboundedSender<Failure>,
    stopping: CancellationToken,
}

/// Where the failures of a [`Supervisor`]'s tasks arrive.
#[derive(Debug)]
pub struct Failures(mpsc::UnboundedReceiver<Failure>);

impl Failures {
    /// The next failure. Pending forever once every supervisor is gone without one.
    pub async fn next(&mut self) -> Failure {
        match self.0.recv().await {
            Some(failure) => failure,
            None => std::future::pending().await,
        }
    }
}

impl Supervisor {
    pub fn new() -> (Self, Failures) {
        let (failures, receiver) = mpsc::unbounded_channel();
        let supervisor = Self {
            failures,
            stopping: CancellationToken::new(),
        };
        (supervisor, Failures(receiver))
    }

    /// From now on tasks end on purpose: their ends are not failures.
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// Spawns `task`; its end, however it comes, is reported unless the process is stopping.
    pub fn spawn<F>(&self, name: impl Into<String>, task: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let mut report = Report {
            task: name.into(),
            why: None,
            supervisor: self.clone(),
        };
        tokio::spawn(async move {
            let why = match task.await {
                Ok(()) => "it returned".to_owned(),
                Err(e) => format!("it failed: {}", crate::error_chain(e.as_ref())),
            };
            report.ended(why);
        })
    }
}

/// Reports its task's end when dropped: after it returned, or when it panicked or was aborted, which
/// drop the future (and this with it) without returning.
struct Report {
    task: String,
    why: Option<String>,
    supervisor: Supervisor,
}

impl Report {
    fn ended(&mut self, why: String) {
        self.why = Some(why);
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        if self.supervisor.stopping.is_cancelled() {
            return;
        }
        let why = self.why.take().unwrap_or_else(|| {
            if std::thread::panicking() {
                "it panicked".to_owned()
            } else {
                "it was aborted".to_owned()
            }
        });
        tracing::error!(task = %self.task, %why, "a supervised task ended");
        let _ = self.supervisor.failures.send(Failure {
            task: std::mem::take(&mut self.task),
            why,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_way_of_ending_is_reported_until_the_process_stops() {
        let (supervisor, mut failures) = Supervisor::new();
        supervisor.spawn("returns", async { Ok(()) });
        assert_eq!(failures.next().await.why, "it returned");
        supervisor.spawn("fails", async { Err("the bus closed".into()) });
        assert_eq!(failures.next().await.why, "it failed: the bus closed");
        supervisor.spawn("panics", async { panic!("a bug") });
        assert_eq!(failures.next().await.why, "it panicked");
        let forever = supervisor.spawn("aborted", std::future::pending());
        forever.abort();
        assert_eq!(
            failures.next().await,
            Failure {
                task: "aborted".into(),
                why: "it was aborted".into()
            }
        );
        supervisor.stop();
        supervisor
            .spawn("after stop", async { Ok(()) })
            .await
            .expect("joined");
        let quiet =
            tokio::time::timeout(std::time::Duration::from_millis(50), failures.next()).await;
        assert!(quiet.is_err(), "no report once stopping: {quiet:?}");
    }
}
