//! The threads an in-process model runs on, and the handle the async side calls them through:
//! inference takes whole milliseconds of CPU, so it never runs on the async threads. Each thread runs
//! its own copy of the model and takes the next job from one queue; a call's texts are split into one
//! job per thread, run side by side. Dropping the handle ends the threads once the jobs they run
//! finish.

use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread;

use tokio::sync::oneshot;

use crate::EmbedError;

type Answer = Result<Vec<Vec<f32>>, EmbedError>;

struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Answer>,
}

/// A model's threads, by the texts they are sent.
pub(crate) struct ModelThreads {
    jobs: mpsc::Sender<Job>,
    threads: usize,
}

impl ModelThreads {
    /// Starts one thread per `embedders` entry; each turns the texts of the jobs it takes into their
    /// vectors.
    pub(crate) fn spawn<E>(embedders: Vec<E>) -> Result<Self, EmbedError>
    where
        E: FnMut(&[String]) -> Answer + Send + 'static,
    {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let threads = embedders.len();
        for (i, mut embed) in embedders.into_iter().enumerate() {
            let queue = Arc::clone(&queue);
            thread::Builder::new()
                .name(format!("embed-worker-{i}"))
                .spawn(move || {
                    // The lock is held while waiting for a job, not while running one. Ends when
                    // every sender is gone, that is when the handle is dropped.
                    loop {
                        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(job) = next else { break };
                        if job.reply.is_closed() {
                            // The caller gave up (timeout, shutdown): spend no CPU on an answer
                            // nobody reads.
                            continue;
                        }
                        // A caller that stopped waiting meanwhile is not an error.
                        let _ = job.reply.send(embed(&job.texts));
                    }
                    tracing::debug!("embedding worker stopped");
                })
                .map_err(EmbedError::Spawn)?;
        }
        Ok(Self { jobs, threads })
    }

    /// The vectors of `texts`, in order: one job per thread, queued behind the jobs sent before.
    pub(crate) async fn embed(&self, texts: Vec<String>) -> Answer {
        let part = texts.len().div_ceil(self.threads.max(1)).max(1);
        let mut texts = texts.into_iter().peekable();
        let mut answers = Vec::new();
        while texts.peek().is_some() {
            let (reply, answer) = oneshot::channel();
            let job = Job {
                texts: texts.by_ref().take(part).collect(),
                reply,
            };
            self.jobs.send(job).map_err(|_| EmbedError::Stopped)?;
            answers.push(answer);
        }
        let mut vectors = Vec::new();
        for answer in answers {
            vectors.extend(answer.await.map_err(|_| EmbedError::Stopped)??);
        }
        Ok(vectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each thread tags its vectors with its own number; the texts' vectors come back in order.
    #[tokio::test]
    async fn a_call_is_split_over_the_threads_and_answered_in_order() {
        let embedders = (0..3)
            .map(|worker| {
                move |texts: &[String]| -> Answer {
                    Ok(texts
                        .iter()
                        .map(|t| vec![t.parse::<f32>().unwrap_or(-1.0), worker as f32])
                        .collect())
                }
            })
            .collect();
        let threads = ModelThreads::spawn(embedders).unwrap();
        let texts: Vec<String> = (0..7).map(|i| i.to_string()).collect();
        let vectors = threads.embed(texts).await.unwrap();
        let order: Vec<f32> = vectors.iter().map(|v| v[0]).collect();
        assert_eq!(order, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let workers: std::collections::BTreeSet<u32> =
            vectors.iter().map(|v| v[1] as u32).collect();
        assert!(!workers.is_empty() && workers.len() <= 3);
        assert!(threads.embed(Vec::new()).await.unwrap().is_empty());
    }
}
