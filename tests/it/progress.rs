//! Progress reports of `copy_out` (on every async client, `on_every_client!`), and the
//! `tracing` spans and events of every operation.

use futures_util::StreamExt;
use pgbulk::{BulkExt, CopyRow, Progress};
use std::sync::Mutex;

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "readings")]
struct Reading {
    id: i64,
    sensor: String,
    value: f64,
}

const READINGS: &str = "CREATE TABLE readings (id int8 PRIMARY KEY, sensor text, value float8)";

fn reading(id: i64) -> Reading {
    Reading {
        id,
        sensor: format!("sensor-{}", id % 97),
        // Exact in binary, so the sum below does not depend on the order of addition.
        value: f64::from(i32::try_from(id % 1000).unwrap()) / 4.0,
    }
}

#[cfg(feature = "tracing")]
pub mod tracing_capture {
    //! A minimal `tracing` subscriber that keeps every span's and event's fields, per test.
    //!
    //! Not a thread-local default (`tracing::subscriber::set_default`): `tracing` caches each
    //! callsite's interest globally, and while only one dispatcher is registered, a callsite
    //! first hit on another test's thread (which has no subscriber) is cached as "never" for
    //! every thread, so a thread-local capture misses its events. Instead a [`Router`] is
    //! installed once as the global default; it is interested in every callsite "sometimes"
    //! and hands each span and event to the capture of the thread it happens on, if any. The
    //! tokio test runtime is single-threaded, so a test's thread sees all of its operation.

    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::fmt;
    use std::sync::{Arc, Mutex, Once};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::subscriber::Interest;
    use tracing::{Event, Metadata, Subscriber};
    use tracing_core::span::Current;

    pub type Fields = BTreeMap<String, String>;

    #[derive(Default, Clone)]
    pub struct Capture {
        pub spans: Arc<Mutex<Vec<(String, Fields)>>>,
        pub events: Arc<Mutex<Vec<Fields>>>,
        /// Each span's metadata, by id - 1, and the spans entered now, innermost last (for
        /// `Span::current()`, which the library's describe step records on).
        metadata: Arc<Mutex<Vec<&'static Metadata<'static>>>>,
        entered: Arc<Mutex<Vec<Id>>>,
    }

    thread_local! {
        static CURRENT: RefCell<Option<Capture>> = const { RefCell::new(None) };
    }

    /// Capturing on this thread until dropped.
    pub struct Guard(());

    impl Drop for Guard {
        fn drop(&mut self) {
            CURRENT.with(|c| c.borrow_mut().take());
        }
    }

    struct Collect<'a>(&'a mut Fields);

    impl Visit for Collect<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    impl Capture {
        /// Captures what happens on this thread until the guard is dropped.
        pub fn on_this_thread(&self) -> Guard {
            static ROUTER: Once = Once::new();
            ROUTER.call_once(|| {
                tracing::subscriber::set_global_default(Router)
                    .expect("no other global tracing subscriber in the tests");
            });
            CURRENT.with(|c| *c.borrow_mut() = Some(self.clone()));
            // Forget any "never" cached for a callsite by a thread that registered it while
            // the router was being installed.
            tracing::callsite::rebuild_interest_cache();
            Guard(())
        }

        pub fn span(&self, name: &str) -> Vec<Fields> {
            self.spans
                .lock()
                .unwrap()
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, f)| f.clone())
                .collect()
        }

        pub fn messages(&self) -> Vec<String> {
            self.events
                .lock()
                .unwrap()
                .iter()
                .filter_map(|f| f.get("message").cloned())
                .collect()
        }

        /// The events whose message is `message`.
        pub fn events(&self, message: &str) -> Vec<Fields> {
            self.events
                .lock()
                .unwrap()
                .iter()
                .filter(|f| f.get("message").is_some_and(|m| m == message))
                .cloned()
                .collect()
        }

        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let mut fields = Fields::new();
            span.record(&mut Collect(&mut fields));
            let mut spans = self.spans.lock().unwrap();
            spans.push((span.metadata().name().to_owned(), fields));
            self.metadata.lock().unwrap().push(span.metadata());
            Id::from_u64(spans.len() as u64)
        }

        fn current_span(&self) -> Current {
            let Some(id) = self.entered.lock().unwrap().last().cloned() else {
                return Current::none();
            };
            let at = usize::try_from(id.into_u64()).unwrap() - 1;
            Current::new(id, self.metadata.lock().unwrap()[at])
        }

        fn record(&self, span: &Id, values: &Record<'_>) {
            let mut spans = self.spans.lock().unwrap();
            let at = usize::try_from(span.into_u64()).unwrap() - 1;
            if let Some((_, fields)) = spans.get_mut(at) {
                values.record(&mut Collect(fields));
            }
        }

        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields::new();
            event.record(&mut Collect(&mut fields));
            self.events.lock().unwrap().push(fields);
        }
    }

    /// The global subscriber: hands everything to the current thread's [`Capture`].
    struct Router;

    fn current() -> Option<Capture> {
        CURRENT.with(|c| c.borrow().clone())
    }

    impl Subscriber for Router {
        fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
            // Decided per thread, by `enabled`: never cached for all threads.
            Interest::sometimes()
        }
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            CURRENT.with(|c| c.borrow().is_some())
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            // Only called where `enabled` said yes, i.e. on a capturing thread.
            current().map_or(Id::from_u64(u64::MAX), |c| c.new_span(span))
        }
        fn record(&self, span: &Id, values: &Record<'_>) {
            if let Some(c) = current() {
                c.record(span, values);
            }
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            if let Some(c) = current() {
                c.event(event);
            }
        }
        fn enter(&self, span: &Id) {
            if let Some(c) = current() {
                c.entered.lock().unwrap().push(span.clone());
            }
        }
        fn exit(&self, span: &Id) {
            if let Some(c) = current() {
                let mut entered = c.entered.lock().unwrap();
                if let Some(at) = entered.iter().rposition(|s| s == span) {
                    entered.remove(at);
                }
            }
        }
        fn current_span(&self) -> Current {
            current().map_or_else(Current::none, |c| c.current_span())
        }
    }
}

on_every_client! {
    /// Spans carry table, plan reuse, rows, bytes and duration; events say how each operation
    /// ended. The tokio test runtime is single-threaded, so the capture of the test's thread sees
    /// it all (see `tracing_capture` for why it is not a thread-local default subscriber).
    #[cfg(feature = "tracing")]
    async fn operations_are_traced(db, conn) {
        use futures_util::stream;
        db.client().batch_execute(READINGS).await.unwrap();
        let capture = tracing_capture::Capture::default();
        let _guard = capture.on_this_thread();

        assert_eq!(conn.bulk().copy_in((0..1000).map(reading)).await.unwrap(), 1000);
        let plan = conn.bulk().plan::<Reading>().await.unwrap();
        conn.bulk()
            .copy_in_with_plan(&plan, (1000..1500).map(reading))
            .await
            .unwrap();
        conn.bulk().copy_in_stream(stream::iter(
            (1500..1600).map(|i| Ok::<_, std::io::Error>(reading(i))),
        ))
        .await
        .unwrap();
        let back = conn.bulk().copy_out::<Reading>().collect_vec().await.unwrap();
        assert_eq!(back.len(), 1600);
        // Fails: no such table.
        conn.bulk()
            .table("missing")
            .copy_in((0..3).map(reading))
            .await
            .unwrap_err();
        // Dropped after the first row.
        let mut partial = conn.bulk().copy_out::<Reading>();
        partial.next().await.unwrap().unwrap();
        drop(partial);
        // sqlx: that ended the session; a new connection goes on (see `conn.rs`).
        after_abandoned_copy(&mut conn, &db).await;
        // 1,600 rows already there and unchanged, 100 new.
        let counts = conn
            .bulk()
            .upsert_via_staging((0..1700).map(reading))
            .conflict_columns(["id"])
            .await
            .unwrap();
        assert_eq!((counts.inserted, counts.unchanged), (100, 1600));

        let copy_in = capture.span("pgbulk.copy_in");
        assert_eq!(copy_in.len(), 3, "{copy_in:?}");
        let (first, planned, failed) = (&copy_in[0], &copy_in[1], &copy_in[2]);
        assert_eq!(first["table"], "readings");
        assert_eq!(first["plan_reused"], "false");
        assert_eq!(first["rows"], "1000");
        assert!(first["bytes"].parse::<u64>().unwrap() > 1000 * 20);
        assert!(first.contains_key("elapsed_ms"));
        assert_eq!(planned["plan_reused"], "true");
        assert_eq!(failed["plan_reused"], "false");
        assert_eq!(planned["table"], "\"readings\"");
        assert_eq!(planned["rows"], "500");
        assert_eq!(failed["table"], "missing");
        assert!(!failed.contains_key("rows"));
        let in_stream = capture.span("pgbulk.copy_in_stream");
        assert_eq!(in_stream.len(), 1);
        assert_eq!(in_stream[0]["rows"], "100");
        assert_eq!(in_stream[0]["plan_reused"], "false");
        let copy_out = capture.span("pgbulk.copy_out");
        assert_eq!(copy_out.len(), 2);
        assert_eq!(copy_out[0]["rows"], "1600");
        assert!(copy_out[0]["query"].contains("FROM \"readings\""));
        assert_eq!(copy_out[0]["plan_reused"], "false");
        assert!(!copy_out[1].contains_key("rows"));

        let upsert = capture.span("pgbulk.upsert_via_staging");
        assert_eq!(upsert.len(), 1, "{upsert:?}");
        assert_eq!(upsert[0]["table"], "readings");
        assert_eq!(upsert[0]["rows"], "1700");
        assert!(!upsert[0].contains_key("bytes"));
        assert_eq!(upsert[0]["plan_reused"], "false");
        // One describe round trip each: copy_in, plan, copy_in_stream, copy_out, the failed
        // copy_in, the dropped copy_out, the upsert; none for copy_in_with_plan.
        let described = capture.events("described");
        assert_eq!(described.len(), 7, "{described:?}");
        assert_eq!(described[4]["what"], "\"missing\"");

        let messages = capture.messages();
        let has = |m: &str| messages.iter().filter(|x| x.as_str() == m).count();
        assert_eq!(has("copy_in finished"), 2, "{messages:?}");
        assert_eq!(has("copy_in failed"), 1, "{messages:?}");
        assert_eq!(has("copy_in_stream finished"), 1, "{messages:?}");
        assert_eq!(has("copy_out finished"), 1, "{messages:?}");
        assert_eq!(has("upsert_via_staging finished"), 1, "{messages:?}");
        assert_eq!(
            has("copy_out dropped before it finished"),
            1,
            "{messages:?}"
        );
    }

    async fn copy_out_reports_rows_and_bytes(db, conn) {
        db.client().batch_execute(READINGS).await.unwrap();
        let n = 200_000;
        db.client()
            .bulk()
            .copy_in((0..n).map(reading))
            .await
            .unwrap();

        // The exact size of the binary COPY data, read raw.
        let raw = db
            .client()
            .copy_out("COPY (SELECT id, sensor, value FROM readings) TO STDOUT (FORMAT binary)")
            .await
            .unwrap();
        let raw_bytes: u64 = raw
            .map(|chunk| chunk.unwrap().len() as u64)
            .fold(0, |a, b| async move { a + b })
            .await;

        let seen = Mutex::new(Vec::<Progress>::new());
        let mut rows = 0u64;
        let mut sum = 0f64;
        let mut stream = conn
            .bulk()
            .flush_bytes(64 * 1024)
            .on_progress(|p| seen.lock().unwrap().push(p))
            .copy_out::<Reading>();
        while let Some(row) = stream.next().await {
            let row = row.unwrap();
            // Reports never run ahead of the rows handed out.
            let last = seen.lock().unwrap().last().copied();
            if let Some(last) = last {
                assert!(last.rows <= rows + 1, "{last:?} after {rows} rows");
            }
            rows += 1;
            sum += row.value;
        }
        drop(stream);
        let seen = seen.into_inner().unwrap();
        assert_eq!(rows, n.unsigned_abs());
        let expected: f64 = (0..n).map(|i| reading(i).value).sum();
        assert!((sum - expected).abs() < f64::EPSILON, "{sum} vs {expected}");

        // About one report per 64 KiB received, then the totals.
        let last = *seen.last().unwrap();
        assert_eq!(last.rows, rows);
        assert_eq!(last.bytes, raw_bytes);
        let expected_reports = raw_bytes / (64 * 1024);
        assert!(
            (seen.len() as u64) >= expected_reports && (seen.len() as u64) <= expected_reports + 2,
            "{} reports for {raw_bytes} bytes",
            seen.len()
        );
        for pair in seen.windows(2) {
            assert!(pair[0].rows <= pair[1].rows && pair[0].bytes < pair[1].bytes);
            assert!(pair[1].bytes - pair[0].bytes >= 64 * 1024 || pair[1] == last);
        }
    }

    async fn copy_out_without_rows_reports_once(db, conn) {
        db.client().batch_execute(READINGS).await.unwrap();
        let seen = Mutex::new(Vec::<Progress>::new());
        let rows = conn
            .bulk()
            .on_progress(|p| seen.lock().unwrap().push(p))
            .copy_out::<Reading>()
            .collect_vec()
            .await
            .unwrap();
        assert!(rows.is_empty());
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 1);
        // Header (19 bytes) and trailer (2 bytes).
        assert_eq!((seen[0].rows, seen[0].bytes), (0, 21));
    }
}
