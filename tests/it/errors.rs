//! Errors name the row, field and column, and a failed COPY leaves nothing behind.

use crate::{count, db};
use pgbulk::{BulkExt, CopyRow, ErrorKind};

#[derive(CopyRow, Debug)]
#[copy(table = "accounts")]
struct Mismatched {
    id: i64,          // column is integer
    external: String, // column is uuid
    balance: f64,     // column is numeric
    name: String,     // matches
    missing: i32,     // no such column
}

#[derive(CopyRow, Debug)]
#[copy(table = "notes")]
struct Note {
    id: i32,
    body: String,
}

#[tokio::test]
async fn tokio_postgres_errors_convert_with_question_mark() {
    async fn mixed(client: &tokio_postgres::Client) -> pgbulk::Result<u64> {
        client
            .batch_execute("CREATE TABLE notes (id int4, body text)")
            .await?;
        let n = client
            .bulk()
            .copy_in((0..3).map(|id| Note {
                id,
                body: String::new(),
            }))
            .await?;
        client.batch_execute("SELECT * FROM no_such_table").await?;
        Ok(n)
    }
    let db = db().await;
    let err = mixed(db.client()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db);
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
    );
    assert!(err.to_string().contains("no_such_table"), "{err}");
    assert_eq!(count(&db, "notes").await, 3);
}

/// The sqlx twin of `tokio_postgres_errors_convert_with_question_mark`: the client's own error
/// type differs, so the body does too.
#[tokio::test]
async fn sqlx_errors_convert_with_question_mark() {
    use pgbulk::SqlxBulkExt as _;
    use sqlx::Connection as _;
    async fn mixed(conn: &mut sqlx::PgConnection) -> pgbulk::Result<u64> {
        sqlx::raw_sql("CREATE TABLE notes (id int4, body text)")
            .execute(&mut *conn)
            .await?;
        let n = conn
            .bulk()
            .copy_in((0..3).map(|id| Note {
                id,
                body: String::new(),
            }))
            .await?;
        sqlx::raw_sql("SELECT * FROM no_such_table")
            .execute(&mut *conn)
            .await?;
        Ok(n)
    }
    let db = db().await;
    let mut conn = sqlx::PgConnection::connect_with(&db.sqlx_options())
        .await
        .unwrap();
    let err = mixed(&mut conn).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db);
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
    );
    assert!(err.to_string().contains("no_such_table"), "{err}");
    assert!(
        std::error::Error::source(&err).is_some_and(|s| s.downcast_ref::<sqlx::Error>().is_some())
    );
    assert_eq!(count(&db, "notes").await, 3);
}

on_every_client! {
    async fn every_mismatch_is_reported_at_once_and_nothing_is_sent(db, conn) {
        db.client()
            .batch_execute("CREATE TABLE accounts (id integer, external uuid, balance numeric, name text, seq bigserial)")
            .await
            .unwrap();
        let rows = vec![Mismatched {
            id: 1,
            external: "x".into(),
            balance: 1.0,
            name: "n".into(),
            missing: 0,
        }];
        let err = conn.bulk().copy_in(&rows).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TypeMismatch);
        let fields: Vec<_> = err.mismatches().iter().map(|m| m.field).collect();
        assert_eq!(fields, ["id", "external", "balance", "missing"]);
        let m = &err.mismatches()[0];
        assert_eq!((m.rust_type, m.column.as_str()), ("i64", "id"));
        assert_eq!(m.pg_type.as_deref(), Some("integer (int4)"));
        assert_eq!(err.mismatches()[1].pg_type.as_deref(), Some("uuid"));
        assert_eq!(err.mismatches()[3].pg_type, None);
        let text = err.to_string();
        for needle in [
            "field `id` of type `i64` cannot be used with column \"id\" of type integer (int4)",
            "field `external` of type `String` cannot be used with column \"external\" of type uuid",
            "field `balance` of type `f64` cannot be used with column \"balance\" of type numeric",
            "field `missing` of type `i32` has no column \"missing\"",
            "nothing was sent",
        ] {
            assert!(text.contains(needle), "`{needle}` not in:\n{text}");
        }
        assert_eq!(count(&db, "accounts").await, 0);
        // Nothing was sent: a COPY that had reached even one row would have advanced the
        // sequence behind `seq` (sequences do not roll back).
        let called: bool = db
            .client()
            .query_one("SELECT is_called FROM accounts_seq_seq", &[])
            .await
            .unwrap()
            .get(0);
        assert!(!called, "a row reached the server");
    }

    async fn nul_in_text_is_rejected_on_the_client_with_row_and_field(db, conn) {
        db.client()
            .batch_execute("CREATE TABLE notes (id int4, body text)")
            .await
            .unwrap();
        let rows: Vec<Note> = (0..1000)
            .map(|id| Note {
                id,
                body: if id == 637 {
                    "bad\0byte".into()
                } else {
                    format!("note {id}")
                },
            })
            .collect();
        let err = conn.bulk().copy_in(&rows).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Encode);
        assert_eq!(err.row(), Some(637));
        assert_eq!(err.field(), Some("body"));
        assert_eq!(err.column(), Some("body"));
        assert!(
            err.to_string()
                .starts_with("row 637, field `body`, column \"body\": text contains a NUL byte"),
            "{err}"
        );
        assert_eq!(count(&db, "notes").await, 0);
    }

    async fn unique_violation_at_row_4999_is_reported_as_that_row_and_nothing_is_written(db, conn) {
        db.client()
            .batch_execute("CREATE TABLE notes (id int4 PRIMARY KEY, body text)")
            .await
            .unwrap();
        // Row 4,999 (0-based) repeats the id of row 10.
        let rows: Vec<Note> = (0..10_000)
            .map(|i| Note {
                id: if i == 4_999 { 10 } else { i },
                body: format!("note {i}"),
            })
            .collect();
        let err = conn.bulk().copy_in(&rows).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Db);
        assert_eq!(err.row(), Some(4_999), "{err}");
        assert_eq!(err.column(), Some("id"), "{err}");
        assert_eq!(err.field(), Some("id"), "{err}");
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
        );
        assert!(err.to_string().contains("row 4999"), "{err}");
        assert!(err.to_string().contains("no row was written"), "{err}");
        assert_eq!(count(&db, "notes").await, 0);
    }

    async fn server_side_value_errors_name_row_and_column(db, conn) {
        db.client()
            .batch_execute("CREATE TABLE notes (id int4 CHECK (id < 500), body varchar(5) NOT NULL)")
            .await
            .unwrap();
        let too_long: Vec<Note> = (0..100)
            .map(|id| Note {
                id,
                body: if id == 42 {
                    "longer than five".into()
                } else {
                    "ok".into()
                },
            })
            .collect();
        let err = conn.bulk().copy_in(&too_long).await.unwrap_err();
        assert_eq!(err.row(), Some(42), "{err}");
        assert_eq!(err.column(), Some("body"), "{err}");
        assert_eq!(err.field(), Some("body"), "{err}");

        let check: Vec<Note> = (0..1000)
            .map(|id| Note {
                id,
                body: "ok".into(),
            })
            .collect();
        let err = conn.bulk().copy_in(&check).await.unwrap_err();
        assert_eq!(err.row(), Some(500), "{err}");
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION)
        );
        assert_eq!(count(&db, "notes").await, 0);
    }

    async fn missing_table_is_a_clear_error(db, conn) {
        let err = conn
            .bulk()
            .copy_in(&[Note {
                id: 1,
                body: String::new(),
            }])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Db);
        assert!(
            err.to_string()
                .contains("relation \"notes\" does not exist"),
            "{err}"
        );
        let bad_name = conn
            .bulk()
            .table("a..b")
            .copy_in(&[Note {
                id: 1,
                body: String::new(),
            }])
            .await
            .unwrap_err();
        assert_eq!(bad_name.kind(), ErrorKind::Usage);
    }
}
