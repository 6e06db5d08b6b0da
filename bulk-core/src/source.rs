//! Rows from blocking sources (a file, a CSV or JSON parser) for
//! [`copy_in_stream`](crate::Bulk::copy_in_stream).

use futures_util::Stream;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Rows travel from the blocking thread in batches of this many, so the channel costs little
/// per row.
const BATCH: usize = 1024;

/// Batches in flight between the blocking thread and the stream: with [`BATCH`], at most about
/// 4,000 rows are parsed ahead of the COPY, however large the file.
const BATCHES: usize = 2;

/// Runs a blocking iterator of rows on tokio's blocking thread pool and returns its items as a
/// [`Stream`], for [`Bulk::copy_in_stream`](crate::Bulk::copy_in_stream).
///
/// Use it for sources that read files with `std::io`: the `csv` crate's
/// `Reader::into_deserialize`, `serde_json` over `BufRead::lines`, any parser of your own. The
/// iterator runs on its own thread, so parsing overlaps with encoding and sending the COPY, and
/// the async task never blocks. Items cross over through a bounded channel, in batches of
/// about a thousand rows: at most a few thousand rows are ever parsed ahead of the COPY, so
/// memory stays constant whatever the size of the file.
///
/// The stream ends after the iterator's first `Err` (`copy_in_stream` aborts the COPY on it
/// anyway). Dropping the stream stops the iterator at its next batch. If the iterator panics,
/// the panic is resumed on the task polling the stream, rather than ending the stream early
/// as if the input were complete.
///
/// ```no_run
/// # extern crate bulk_core as pgbulk;
/// # use bulk_derive::CopyRow;
/// use pgbulk::{BulkExt, CopyRow};
/// use std::io::BufRead;
///
/// #[derive(CopyRow)]
/// struct Word { line: i64, word: String }
///
/// # async fn load(client: &tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
/// let file = std::io::BufReader::new(std::fs::File::open("words.txt")?);
/// let words = file.lines().zip(1..).map(|(word, line)| word.map(|word| Word { line, word }));
/// // An I/O error aborts the COPY: nothing is written, and the error says which row.
/// let written = client.bulk().copy_in_stream(pgbulk::blocking_stream(words)).await?;
/// # Ok(()) }
/// ```
///
/// With the `csv` crate: `blocking_stream(csv::Reader::from_path(p)?.into_deserialize::<Row>())`
/// (see the `csv_load` example).
///
/// # Panics
/// When called outside a tokio runtime.
pub fn blocking_stream<I, T, E>(rows: I) -> BlockingStream<T, E>
where
    I: IntoIterator<Item = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Vec<Result<T, E>>>(BATCHES);
    let task = tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(BATCH);
        for item in rows {
            let failed = item.is_err();
            batch.push(item);
            if batch.len() == BATCH || failed {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                // An error here means the stream was dropped: stop reading.
                if tx.blocking_send(full).is_err() || failed {
                    return;
                }
            }
        }
        if !batch.is_empty() {
            // If the stream is gone there is no one left to tell.
            let _ = tx.blocking_send(batch);
        }
    });
    BlockingStream {
        rx,
        batch: Vec::new().into_iter(),
        task: Some(task),
    }
}

/// The [`Stream`] returned by [`blocking_stream`].
#[must_use = "streams do nothing unless polled"]
pub struct BlockingStream<T, E> {
    rx: mpsc::Receiver<Vec<Result<T, E>>>,
    batch: std::vec::IntoIter<Result<T, E>>,
    /// The blocking task, until it has been seen to end.
    task: Option<JoinHandle<()>>,
}

impl<T, E> std::fmt::Debug for BlockingStream<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingStream")
            .field("buffered", &self.batch.len())
            .field("ended", &self.task.is_none())
            .finish_non_exhaustive()
    }
}

// Items are only ever moved out, never pinned in place: the stream is Unpin whatever T and E are.
impl<T, E> Unpin for BlockingStream<T, E> {}

impl<T, E> Stream for BlockingStream<T, E> {
    type Item = Result<T, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(item) = this.batch.next() {
                return Poll::Ready(Some(item));
            }
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(batch)) => this.batch = batch.into_iter(),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    // The iterator is done, or it panicked: find out which.
                    let Some(task) = this.task.as_mut() else {
                        return Poll::Ready(None);
                    };
                    let ended = std::task::ready!(Pin::new(task).poll(cx));
                    this.task = None;
                    if let Err(e) = ended {
                        if e.is_panic() {
                            std::panic::resume_unwind(e.into_panic());
                        }
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn yields_every_item_in_order_and_stops_after_an_error() {
        let all: Vec<Result<u32, String>> = blocking_stream((0..5000).map(Ok)).collect().await;
        assert_eq!(all, (0..5000).map(Ok).collect::<Vec<_>>());
        let items = (0..5000).map(|i| if i == 3000 { Err(i) } else { Ok(i) });
        let cut: Vec<Result<u32, u32>> = blocking_stream(items).collect().await;
        assert_eq!(cut.len(), 3001);
        assert_eq!(cut.last(), Some(&Err(3000)));
    }

    #[tokio::test]
    async fn reads_ahead_only_a_few_batches() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let produced = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&produced);
        let items = (0..1_000_000).map(move |i| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(i)
        });
        let mut stream = blocking_stream(items);
        assert_eq!(stream.next().await, Some(Ok(0)));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let ahead = produced.load(Ordering::SeqCst);
        assert!(ahead <= (BATCHES + 3) * BATCH, "read {ahead} items ahead");
        drop(stream);
    }

    #[tokio::test]
    #[should_panic(expected = "parser exploded")]
    async fn a_panic_in_the_iterator_is_not_a_silent_end() {
        let items = (0..10).map(|i| {
            assert!(i < 5, "parser exploded");
            Ok::<_, ()>(i)
        });
        let _ = blocking_stream(items).collect::<Vec<_>>().await;
    }
}
