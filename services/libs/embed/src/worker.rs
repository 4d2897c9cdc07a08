//! The thread an in-process model runs on, and the handle the async side calls it through: inference
//! takes tens of milliseconds of full CPU, so it never runs on the async threads. Calls queue on the
//! thread one after another; dropping the handle ends the thread once the call it runs finishes.

use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use crate::EmbedError;

type Answer = Result<Vec<Vec<f32>>, EmbedError>;

struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Answer>,
}

/// A model's thread, by the texts it is sent.
pub(crate) struct ModelThread {
    jobs: mpsc::Sender<Job>,
}

impl ModelThread {
    /// Starts the thread; `embed` turns each call's texts into their vectors there.
    pub(crate) fn spawn(
        mut embed: impl FnMut(&[String]) -> Answer + Send + 'static,
    ) -> Result<Self, EmbedError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("embed-worker".into())
            .spawn(move || {
                // Ends when every sender is gone, that is when the handle is dropped.
                while let Ok(job) = queue.recv() {
                    if job.reply.is_closed() {
                        // The caller gave up (timeout, shutdown): spend no CPU on an answer nobody
                        // reads.
                        continue;
                    }
                    // A caller that stopped waiting meanwhile is not an error.
                    let _ = job.reply.send(embed(&job.texts));
                }
                tracing::debug!("embedding worker stopped");
            })
            .map_err(EmbedError::Spawn)?;
        Ok(Self { jobs })
    }

    /// The vectors of `texts`, in order, once the calls queued before are done.
    pub(crate) async fn embed(&self, texts: Vec<String>) -> Answer {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { texts, reply })
            .map_err(|_| EmbedError::Stopped)?;
        answer.await.map_err(|_| EmbedError::Stopped)?
    }
}
