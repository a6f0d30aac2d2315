//! Group commit: many concurrent callers' items written together, each caller answered with its
//! own result.
//!
//! A database transaction costs a sync of the write-ahead log (about a millisecond on SQLite and
//! PostgreSQL here), and writes queue on one connection, so one transaction per item caps a
//! write path near a thousand items a second however many callers there are. A [`Batcher`] takes
//! whatever items arrived while the previous batch was being written and hands them to its writer
//! in one call, so the cost of a sync is shared by every caller waiting on it. Nobody is answered
//! before the batch holding its item is written.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// A queue in front of a writer of batches. Cheap to clone; the writer task ends when the last
/// clone is dropped.
#[derive(Debug)]
pub struct Batcher<T, R> {
    /// Where callers put their item and the way back to them.
    submit: mpsc::Sender<(T, oneshot::Sender<R>)>,
}

impl<T, R> Clone for Batcher<T, R> {
    fn clone(&self) -> Self {
        Self {
            submit: self.submit.clone(),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts the task that calls `write` with up to `max_batch` waiting items at a time; `write`
    /// returns one result per item, in order. At most `queue` items wait (callers beyond that
    /// wait for room), so memory stays bounded under any load.
    pub fn start<F, Fut>(queue: usize, max_batch: usize, mut write: F) -> Self
    where
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send,
    {
        let (submit, mut waiting) = mpsc::channel::<(T, oneshot::Sender<R>)>(queue.max(1));
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max_batch);
            while waiting.recv_many(&mut batch, max_batch.max(1)).await > 0 {
                let (items, callers): (Vec<T>, Vec<_>) = batch.drain(..).unzip();
                let results = write(items).await;
                debug_assert_eq!(results.len(), callers.len(), "one result per item");
                for (caller, result) in callers.into_iter().zip(results) {
                    // A caller that gave up (its request was dropped) no longer listens.
                    let _ = caller.send(result);
                }
            }
        });
        Self { submit }
    }

    /// Queues `item` and waits until the batch holding it is written; `None` if the writer task
    /// is gone (the runtime is shutting down).
    pub async fn submit(&self, item: T) -> Option<R> {
        let (answer, answered) = oneshot::channel();
        self.submit.send((item, answer)).await.ok()?;
        answered.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    /// Items that arrive while a batch is being written go together into the next one, and each
    /// caller gets its own item's result.
    #[tokio::test]
    async fn concurrent_items_share_a_batch_and_get_their_own_results() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&sizes);
        let batcher = Batcher::start(100, 10, move |items: Vec<u32>| {
            seen.lock().unwrap().push(items.len());
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                items.into_iter().map(|item| item * 2).collect::<Vec<_>>()
            }
        });
        let callers: Vec<_> = (0..25)
            .map(|item| {
                let batcher = batcher.clone();
                tokio::spawn(async move { (item, batcher.submit(item).await) })
            })
            .collect();
        for caller in callers {
            let (item, result) = caller.await.unwrap();
            assert_eq!(result, Some(item * 2));
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 25);
        assert!(sizes.iter().all(|&size| size <= 10), "{sizes:?}");
        assert!(sizes.len() < 25, "items were batched: {sizes:?}");
    }
}
