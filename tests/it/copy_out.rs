//! `copy_out`: whole tables, queries, column order, large rows, decode errors — on every async
//! client (`on_every_client!`).

use futures_util::StreamExt;
use pgbulk::{BulkExt, CopyRow, ErrorKind};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "docs")]
struct Doc {
    id: i32,
    title: String,
    body: Vec<u8>,
    tags: Vec<String>,
    #[copy(skip)]
    cached: Option<String>,
}

#[derive(CopyRow, Debug)]
#[copy(table = "docs")]
struct Strict {
    id: i32,
    title: String,
}

on_every_client! {
    async fn query_columns_match_by_name_in_any_order(db, conn) {
        db.client()
            .batch_execute(
                "CREATE TABLE docs (id int4, title text, body bytea, tags text[], extra int8);
                 INSERT INTO docs SELECT g, 'doc ' || g, '\\x0102'::bytea, ARRAY['a', 'b'], g FROM generate_series(1, 1000) g;",
            )
            .await
            .unwrap();
        let whole = conn
            .bulk()
            .copy_out::<Doc>()
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(whole.len(), 1000);
        // Reversed column order, an extra column, computed values.
        let reordered = conn
            .bulk()
            .copy_out_query::<Doc>(
                "SELECT extra * 2 AS unused, tags, body, upper(title) AS title, id FROM docs WHERE id <= 3 ORDER BY id;",
            )
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(
            reordered,
            (1..=3)
                .map(|id| Doc {
                    id,
                    title: format!("DOC {id}"),
                    body: vec![1, 2],
                    tags: vec!["a".into(), "b".into()],
                    cached: None,
                })
                .collect::<Vec<_>>()
        );
    }

    async fn rows_larger_than_64_kib_span_messages(db, conn) {
        db.client()
            .batch_execute("CREATE TABLE docs (id int4, title text, body bytea, tags text[])")
            .await
            .unwrap();
        let rows: Vec<Doc> = (0..20)
            .map(|i| Doc {
                id: i,
                title: "t".repeat(70_000 + usize::try_from(i).unwrap()),
                body: (0..300_000u32).map(|b| (b % 251) as u8).collect(),
                tags: vec!["x".repeat(100_000)],
                cached: None,
            })
            .collect();
        conn.bulk().copy_in(&rows).await.unwrap();
        let back = conn
            .bulk()
            .copy_out_query::<Doc>("SELECT * FROM docs ORDER BY id")
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(back, rows);
    }

    async fn streams_row_by_row_and_can_stop_early(db, conn) {
        db.client()
            .batch_execute(
                "CREATE TABLE docs (id int4, title text, body bytea, tags text[]);
                 INSERT INTO docs SELECT g, 'd', '', '{}' FROM generate_series(1, 100000) g;",
            )
            .await
            .unwrap();
        // The bytes of COPY data the stream has taken in, as its progress reports say.
        let taken = AtomicU64::new(0);
        let mut stream = conn
            .bulk()
            .flush_bytes(4096)
            .on_progress(|p| taken.store(p.bytes, Ordering::SeqCst))
            .copy_out::<Doc>();
        // The size of one row of binary COPY data, from the raw COPY (less header and trailer).
        let raw: u64 = db
            .client()
            .copy_out("COPY docs TO STDOUT (FORMAT binary)")
            .await
            .unwrap()
            .map(|chunk| chunk.unwrap().len() as u64)
            .fold(0, |a, b| async move { a + b })
            .await;
        let row_bytes = (raw - 21) / 100_000;
        assert_eq!(raw, 21 + 100_000 * row_bytes);
        let mut seen = 0;
        while let Some(row) = stream.next().await {
            row.unwrap();
            seen += 1;
            if seen == 10 {
                // Rows come out as they arrive: a handful of kilobytes, not the whole result,
                // has been read to hand out the first ten.
                let early = taken.load(Ordering::SeqCst);
                assert!(early < 64 * 1024, "{early} bytes read for 10 rows");
            }
            if seen == 50_000 {
                break;
            }
        }
        // Reading on reads on, and no further than the rows handed out (give or take the
        // 4 KiB between reports): the header and 50,000 rows.
        let half = taken.load(Ordering::SeqCst);
        let expected = 19 + 50_000 * row_bytes;
        assert!(
            half.abs_diff(expected) <= 8 * 1024,
            "{half} bytes for {expected}"
        );
        drop(stream);
        // The client is still usable after the stream was dropped mid-way (sqlx: it reports
        // the lost session; see `conn.rs`).
        after_abandoned_copy(&mut conn, &db).await;
        assert_eq!(scalar(&mut conn, "SELECT count(*) FROM docs").await.unwrap(), 100_000);
    }

    async fn null_into_a_non_option_field_names_row_field_and_column(db, conn) {
        db.client()
            .batch_execute(
                "CREATE TABLE docs (id int4, title text);
                 INSERT INTO docs VALUES (1, 'a'), (2, 'b'), (3, NULL);",
            )
            .await
            .unwrap();
        let err = conn
            .bulk()
            .copy_out_query::<Strict>("SELECT id, title FROM docs ORDER BY id")
            .collect_vec()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode);
        assert_eq!(err.row(), Some(2));
        assert_eq!(err.field(), Some("title"));
        assert_eq!(err.column(), Some("title"));
        assert!(err.to_string().contains("NULL"), "{err}");
    }

    async fn query_errors_are_reported(db, conn) {
        db.client()
            .batch_execute("CREATE TABLE docs (id int4, title text)")
            .await
            .unwrap();
        let with_params = conn
            .bulk()
            .copy_out_query::<Strict>("SELECT id, title FROM docs WHERE id = $1")
            .collect_vec()
            .await
            .unwrap_err();
        assert_eq!(with_params.kind(), ErrorKind::Usage);
        let missing = conn
            .bulk()
            .copy_out_query::<Strict>("SELECT id FROM docs")
            .collect_vec()
            .await
            .unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::TypeMismatch);
        assert_eq!(missing.mismatches().len(), 1);
        assert_eq!(missing.mismatches()[0].field, "title");
        let ambiguous = conn
            .bulk()
            .copy_out_query::<Strict>("SELECT id, title, title FROM docs")
            .collect_vec()
            .await
            .unwrap_err();
        assert_eq!(ambiguous.kind(), ErrorKind::Usage);
        let bad_sql = conn
            .bulk()
            .copy_out_query::<Strict>("SELEKT 1")
            .collect_vec()
            .await
            .unwrap_err();
        // A query the server cannot parse is the caller's mistake (Usage), with the server's
        // SQLSTATE kept.
        assert_eq!(bad_sql.kind(), ErrorKind::Usage, "{bad_sql}");
        assert_eq!(
            bad_sql.code(),
            Some(&tokio_postgres::error::SqlState::SYNTAX_ERROR)
        );
    }
}
