//! `upsert_via_staging` of a small batch (one that says it holds fewer than 2,000 rows), bound
//! as arrays instead of staged: no staging table, the same counts, and everything it cannot do
//! itself handed to the staging path — a bad value is still named by row, field and column,
//! nothing of a failed call stays, and a caller's transaction stays usable — on every async
//! client (`on_every_client!`).

use crate::unsized_rows;
use crate::upsert::counts;
use pgbulk::{BulkExt, CopyRow, ErrorKind};
use tokio_postgres::error::SqlState;

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "members")]
struct Member {
    #[copy(key)]
    id: i64,
    handle: String,
    nickname: Option<String>,
    score: i32,
}

/// `handle` is at most 8 characters: a longer one is refused by the column's type modifier,
/// which only the server applies.
const MEMBERS: &str = "CREATE TABLE members (id int8 PRIMARY KEY, handle varchar(8) NOT NULL, \
                       nickname text, score int4 NOT NULL CHECK (score >= 0))";

fn member(id: i64, version: i32) -> Member {
    Member {
        id,
        handle: format!("m{id}"),
        nickname: (id % 3 != 0).then(|| format!("nick {id} v{version}")),
        score: version,
    }
}

/// A row with an enum, a domain and an array column: always staged.
#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "moods")]
struct Feeling {
    #[copy(key)]
    id: i64,
    mood: String,
    weight: i32,
    tags: Vec<String>,
}

/// This session's staging tables.
const STAGES: &str = "SELECT count(*) FROM pg_class WHERE relname LIKE 'pgbulk\\_stage\\_%' \
                      AND relnamespace = pg_my_temp_schema()";

async fn members(db: &pgbulk::testkit::TestDb) -> Vec<Member> {
    let mut rows = db
        .client()
        .bulk()
        .copy_out::<Member>()
        .collect_vec()
        .await
        .unwrap();
    rows.sort_by_key(|m| m.id);
    rows
}

on_every_client! {
    /// The counts and the stored rows equal the staging path's, NULLs included, and no
    /// staging table is made.
    async fn bound_and_staged_agree(db, conn) {
        db.client().batch_execute(MEMBERS).await.unwrap();
        let stored: Vec<Member> = (0..400).filter(|i| i % 4 != 0).map(|i| member(i, 0)).collect();
        conn.bulk().upsert_via_staging(&stored).await.unwrap();
        // 25% new, 25% changed (a NULL nickname among them), 50% identical.
        let batch: Vec<Member> = (0..400).map(|i| member(i, i32::from(i % 4 == 1))).collect();
        let bound = conn.bulk().upsert_via_staging(&batch).await.unwrap();
        assert_eq!(bound, counts(100, 100, 200, 0));
        assert_eq!(scalar(&mut conn, STAGES).await.unwrap(), 0);
        assert_eq!(members(&db).await, batch);

        let again: Vec<Member> = (0..400).map(|i| member(i, i32::from(i % 4 == 2))).collect();
        let staged = conn.bulk().upsert_via_staging(unsized_rows(&again)).await.unwrap();
        assert_eq!(scalar(&mut conn, STAGES).await.unwrap(), 1);
        let back = conn.bulk().upsert_via_staging(&batch).await.unwrap();
        assert_eq!(staged, back);
        assert_eq!(staged, counts(0, 200, 200, 0));
        assert_eq!(members(&db).await, batch);
    }

    /// An empty batch: nothing written, every count zero, no staging table.
    async fn an_empty_batch_counts_nothing(db, conn) {
        db.client().batch_execute(MEMBERS).await.unwrap();
        let none: Vec<Member> = Vec::new();
        let c = conn.bulk().upsert_via_staging(&none).await.unwrap();
        assert_eq!(c, counts(0, 0, 0, 0));
        let c = conn.bulk().upsert_via_staging(unsized_rows(&none)).await.unwrap();
        assert_eq!(c, counts(0, 0, 0, 0));
        assert_eq!(crate::count(&db, "members").await, 0);
    }

    /// A value only the server refuses (too long for `varchar(8)`): the error names the row,
    /// field and column as the stage's COPY does, and nothing is written.
    async fn a_value_the_server_refuses_is_named(db, conn) {
        db.client().batch_execute(MEMBERS).await.unwrap();
        let mut batch: Vec<Member> = (0..50).map(|i| member(i, 1)).collect();
        batch[37].handle = "far too long".to_owned();
        let err = conn.bulk().upsert_via_staging(&batch).await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::STRING_DATA_RIGHT_TRUNCATION), "{err}");
        assert_eq!(err.row(), Some(37), "{err}");
        assert_eq!(err.field(), Some("handle"), "{err}");
        assert_eq!(err.column(), Some("handle"), "{err}");
        assert_eq!(crate::count(&db, "members").await, 0);
        // The connection is usable and the next call succeeds.
        batch[37].handle = "ok".to_owned();
        let c = conn.bulk().upsert_via_staging(&batch).await.unwrap();
        assert_eq!(c, counts(50, 0, 0, 0));
    }

    /// A failed call inside a caller's transaction leaves the transaction usable and unchanged
    /// by the call.
    async fn a_failure_in_a_transaction_leaves_it_usable(db, conn) {
        db.client().batch_execute(MEMBERS).await.unwrap();
        let mut tx = begin(&mut conn).await;
        let first: Vec<Member> = (0..10).map(|i| member(i, 1)).collect();
        tx.bulk().upsert_via_staging(&first).await.unwrap();
        let mut bad: Vec<Member> = (5..15).map(|i| member(i, 2)).collect();
        bad[3].score = -1;
        let err = tx.bulk().upsert_via_staging(&bad).await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::CHECK_VIOLATION), "{err}");
        assert_eq!(scalar(&mut tx, "SELECT count(*) FROM members").await.unwrap(), 10);
        let c = tx.bulk().upsert_via_staging(&(10..12).map(|i| member(i, 1)).collect::<Vec<_>>()).await.unwrap();
        assert_eq!(c, counts(2, 0, 0, 0));
        tx.commit().await.unwrap();
        assert_eq!(members(&db).await, (0..12).map(|i| member(i, 1)).collect::<Vec<_>>());
    }

    /// A row the encoder refuses: named, and nothing is sent (no transaction was opened).
    async fn an_encode_error_sends_nothing(db, conn) {
        db.client().batch_execute(MEMBERS).await.unwrap();
        let mut batch: Vec<Member> = (0..20).map(|i| member(i, 1)).collect();
        batch[12].nickname = Some("nul \0 inside".to_owned());
        let err = conn.bulk().upsert_via_staging(&batch).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Encode, "{err}");
        assert_eq!(err.row(), Some(12));
        assert_eq!(err.field(), Some("nickname"));
        assert_eq!(crate::count(&db, "members").await, 0);
        assert_eq!(scalar(&mut conn, "SELECT 2::int8").await.unwrap(), 2);
    }

    /// Columns whose array type only the server knows (an enum, a domain) and array columns go
    /// through the staging table, with the same results.
    async fn enums_domains_and_arrays_are_staged(db, conn) {
        db.client()
            .batch_execute(
                "CREATE TYPE mood AS ENUM ('calm', 'busy'); \
                 CREATE DOMAIN positive AS int4 CHECK (VALUE > 0); \
                 CREATE TABLE moods (id int8 PRIMARY KEY, mood mood NOT NULL, \
                 weight positive NOT NULL, tags text[])",
            )
            .await
            .unwrap();
        let rows: Vec<Feeling> = (0..30)
            .map(|id| Feeling {
                id,
                mood: if id % 2 == 0 { "calm" } else { "busy" }.to_owned(),
                weight: 1 + i32::try_from(id).unwrap(),
                tags: vec![format!("t{id}")],
            })
            .collect();
        let c = conn.bulk().upsert_via_staging(&rows).await.unwrap();
        assert_eq!(c, counts(30, 0, 0, 0));
        let c = conn.bulk().upsert_via_staging(&rows[..10]).await.unwrap();
        assert_eq!(c, counts(0, 0, 10, 0));
        let mut bad = rows[..5].to_vec();
        bad[4].weight = 0;
        let err = conn.bulk().upsert_via_staging(&bad).await.unwrap_err();
        assert_eq!(err.row(), Some(4), "{err}");
        assert_eq!(err.column(), Some("weight"), "{err}");
    }
}
