//! Coalescing many small embedding calls into few large ones.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use crate::{EmbedError, Embedder};

/// How much [`Batcher`] gathers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatcherOptions {
    /// Texts per call to the wrapped embedder (0 counts as 1). A single call with more texts is
    /// passed on whole, never split: the wrapped embedder batches it itself.
    pub max_batch: usize,
}

impl Default for BatcherOptions {
    fn default() -> Self {
        Self { max_batch: 32 }
    }
}

/// Wraps an embedder so that concurrent calls from many tasks share its calls. The pipeline
/// embeds one ticket at a time per task; a BERT pass over 32 texts costs far less than 32
/// passes over one, so gathering them is where the throughput comes from.
///
/// Calls to the wrapped embedder are made one after another by a task this value owns. Nothing
/// waits for a batch to fill: a call goes out at once with whatever is queued, and while it runs
/// the next batch gathers. So a lone ticket on an idle system pays no batching delay, and batches
/// grow with the load by themselves. Dropping the `Batcher` ends that task once its current call
/// finishes.
pub struct Batcher {
    inner: Arc<dyn Embedder>,
    requests: mpsc::UnboundedSender<Request>,
}

struct Request {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<Vec<f32>>, EmbedError>>,
}

impl Batcher {
    /// Starts the batching task; call it from within a Tokio runtime.
    pub fn new(inner: Arc<dyn Embedder>, options: BatcherOptions) -> Batcher {
        let (requests, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(Arc::clone(&inner), queue, options));
        Batcher { inner, requests }
    }
}

impl fmt::Debug for Batcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batcher")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Embedder for Batcher {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request { texts, reply })
            .map_err(|_| EmbedError::Stopped)?;
        answer.await.map_err(|_| EmbedError::Stopped)?
    }
}

async fn run(
    inner: Arc<dyn Embedder>,
    mut queue: mpsc::UnboundedReceiver<Request>,
    options: BatcherOptions,
) {
    let max_batch = options.max_batch.max(1);
    // A request that would have overflowed the last batch; it starts the next one.
    let mut held: Option<Request> = None;
    loop {
        let first = match held.take() {
            Some(request) => request,
            None => match queue.recv().await {
                Some(request) => request,
                // The Batcher was dropped.
                None => return,
            },
        };
        let mut size = first.texts.len();
        let mut batch = vec![first];
        while size < max_batch {
            let Ok(next) = queue.try_recv() else { break };
            if size + next.texts.len() > max_batch {
                held = Some(next);
                break;
            }
            size += next.texts.len();
            batch.push(next);
        }
        dispatch(inner.as_ref(), batch).await;
    }
}

/// Makes one call for the whole batch and hands each request its own share of the answer.
async fn dispatch(inner: &dyn Embedder, batch: Vec<Request>) {
    // Callers that stopped waiting (timed out, shut down) need no vectors.
    let mut live: Vec<Request> = batch
        .into_iter()
        .filter(|request| !request.reply.is_closed())
        .collect();
    if live.is_empty() {
        return;
    }
    let counts: Vec<usize> = live.iter().map(|r| r.texts.len()).collect();
    let texts: Vec<String> = live
        .iter_mut()
        .flat_map(|r| std::mem::take(&mut r.texts))
        .collect();
    let expected = texts.len();
    let result = match inner.embed(texts).await {
        Ok(vectors) if vectors.len() != expected => Err(EmbedError::Count {
            expected,
            got: vectors.len(),
        }),
        other => other,
    };
    match result {
        Ok(vectors) => {
            let mut vectors = vectors.into_iter();
            for (request, count) in live.into_iter().zip(counts) {
                let _ = request
                    .reply
                    .send(Ok(vectors.by_ref().take(count).collect()));
            }
        }
        Err(error) if live.len() == 1 => {
            let _ = live.remove(0).reply.send(Err(error));
        }
        Err(error) => {
            let error = Arc::new(error);
            for request in live {
                let _ = request
                    .reply
                    .send(Err(EmbedError::Batch(Arc::clone(&error))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::sync::Mutex;
    use std::time::Duration;

    use tokio::time::Instant;

    use futures::future::join_all;

    use super::*;

    /// Records the size of every call it gets; answers each text "n" with the vector [n].
    #[derive(Debug, Default)]
    struct Recorder {
        calls: Mutex<Vec<usize>>,
        fail: bool,
        drop_one: bool,
        /// How long each call takes.
        takes: Duration,
    }

    #[async_trait]
    impl Embedder for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }

        fn dimension(&self) -> usize {
            1
        }

        async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
            self.calls.lock().unwrap().push(texts.len());
            tokio::time::sleep(self.takes).await;
            if self.fail {
                return Err(EmbedError::Degenerate);
            }
            let mut vectors: Vec<Vec<f32>> = texts
                .iter()
                .map(|t| vec![t.parse::<f32>().unwrap()])
                .collect();
            if self.drop_one {
                vectors.pop();
            }
            Ok(vectors)
        }
    }

    fn batcher(recorder: &Arc<Recorder>, max_batch: usize) -> Batcher {
        Batcher::new(
            Arc::clone(recorder) as Arc<dyn Embedder>,
            BatcherOptions { max_batch },
        )
    }

    fn texts(numbers: &[u32]) -> Vec<String> {
        numbers.iter().map(u32::to_string).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_single_calls_share_batches_and_get_their_own_vectors() {
        let recorder = Arc::new(Recorder::default());
        let batcher = batcher(&recorder, 4);
        let answers = join_all((0..10u32).map(|i| batcher.embed(texts(&[i])))).await;
        for (i, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer.unwrap(), vec![vec![i as f32]]);
        }
        assert_eq!(*recorder.calls.lock().unwrap(), vec![4, 4, 2]);
        assert_eq!(batcher.name(), "recorder");
        assert_eq!(batcher.dimension(), 1);
    }

    // Paused time: the runtime jumps the clock forward whenever every task waits, so any wait the
    // batcher added would show as elapsed time without costing real time.
    #[tokio::test(start_paused = true)]
    async fn a_lone_call_goes_out_at_once_and_calls_made_meanwhile_share_the_next() {
        let recorder = Arc::new(Recorder {
            takes: Duration::from_millis(10),
            ..Recorder::default()
        });
        let batcher = Arc::new(batcher(&recorder, 32));
        let started = Instant::now();
        let first = tokio::spawn({
            let batcher = Arc::clone(&batcher);
            async move { batcher.embed(texts(&[1])).await }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        let (b, c) = tokio::join!(batcher.embed(texts(&[2])), batcher.embed(texts(&[3])));
        assert_eq!(first.await.unwrap().unwrap(), vec![vec![1.0]]);
        assert_eq!(b.unwrap(), vec![vec![2.0]]);
        assert_eq!(c.unwrap(), vec![vec![3.0]]);
        // The first call ran alone from time 0 to 10 ms; the two made at 1 ms waited for it, not
        // for company, and went out together at 10 ms.
        assert_eq!(*recorder.calls.lock().unwrap(), vec![1, 2]);
        assert_eq!(started.elapsed(), Duration::from_millis(20));

        let alone = Instant::now();
        batcher.embed(texts(&[4])).await.unwrap();
        assert_eq!(alone.elapsed(), Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn calls_are_never_split_and_overflow_waits_for_the_next_batch() {
        let recorder = Arc::new(Recorder::default());
        let batcher = batcher(&recorder, 4);
        let (a, b, c) = tokio::join!(
            batcher.embed(texts(&[1, 2, 3])),
            batcher.embed(texts(&[4, 5, 6])),
            batcher.embed(texts(&[7, 8, 9, 10, 11, 12])),
        );
        assert_eq!(a.unwrap(), vec![vec![1.0], vec![2.0], vec![3.0]]);
        assert_eq!(b.unwrap(), vec![vec![4.0], vec![5.0], vec![6.0]]);
        assert_eq!(c.unwrap().len(), 6);
        assert_eq!(*recorder.calls.lock().unwrap(), vec![3, 3, 6]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_batch_fails_each_caller_with_the_cause() {
        let recorder = Arc::new(Recorder {
            fail: true,
            ..Recorder::default()
        });
        let batcher = batcher(&recorder, 4);
        let (a, b) = tokio::join!(batcher.embed(texts(&[1])), batcher.embed(texts(&[2])));
        for error in [a.unwrap_err(), b.unwrap_err()] {
            assert!(matches!(error, EmbedError::Batch(_)), "{error:?}");
            // Every caller shares the one cause.
            let cause = error.source().unwrap();
            let cause = cause.downcast_ref::<Arc<EmbedError>>().unwrap();
            assert!(matches!(**cause, EmbedError::Degenerate), "{cause:?}");
        }
        // Alone in its batch, a caller gets the cause itself.
        let alone = batcher.embed(texts(&[3])).await.unwrap_err();
        assert!(matches!(alone, EmbedError::Degenerate), "{alone:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_answer_is_an_error_not_a_misaligned_result() {
        let recorder = Arc::new(Recorder {
            drop_one: true,
            ..Recorder::default()
        });
        let batcher = batcher(&recorder, 4);
        let error = batcher.embed(texts(&[1, 2])).await.unwrap_err();
        assert!(
            matches!(
                error,
                EmbedError::Count {
                    expected: 2,
                    got: 1
                }
            ),
            "{error:?}"
        );
    }
}
