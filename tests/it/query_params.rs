//! `copy_out_query_params`: values for a `copy_out` query's `$n` parameters, written into the
//! COPY statement by pgbulk (COPY binds none). Hostile values, backslashes under both
//! `standard_conforming_strings` settings, dollar quotes, NUL bytes, unicode, arrays, NULLs and
//! `$n` hidden in strings and comments, on every client.

// Row indexes of a 14-entry fixture as ids.
#![allow(clippy::cast_possible_wrap)]

use crate::{count, db};
use chrono::{DateTime, Utc};
use pgbulk::{BulkExt, CopyRow, ErrorKind};
use postgres_types::ToSql;
use rust_decimal::Decimal;

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "notes")]
struct Note {
    id: i64,
    body: Option<String>,
}

#[derive(CopyRow, Debug, PartialEq)]
struct Echo {
    t: DateTime<Utc>,
    n: Decimal,
    f: f64,
    g: f32,
    b: Vec<u8>,
}

const NOTES: &str = "CREATE TABLE notes (id int8 PRIMARY KEY, body text, tags text[]);
     CREATE TABLE canary (id int4); INSERT INTO canary VALUES (1)";

/// Values that would break out of a naively quoted literal one way or another.
const HOSTILE: &[&str] = &[
    "'; DROP TABLE canary; --",
    "\\'; DROP TABLE canary; --",
    "\\",
    "a\\' OR '1'='1",
    "$$; DROP TABLE canary; $$",
    "$q$ $1 $q$",
    "it''s",
    "E'\\x41'",
    "*/ DROP TABLE canary; /*",
    "-- comment",
    "\"quoted\"",
    "é 日本 🦀 \u{202e}",
    "$1",
    "",
];

async fn setup(db: &pgbulk::testkit::TestDb) {
    db.client().batch_execute(NOTES).await.unwrap();
    for (i, body) in HOSTILE.iter().enumerate() {
        db.client()
            .execute(
                "INSERT INTO notes (id, body) VALUES ($1, $2)",
                &[&(i as i64), body],
            )
            .await
            .unwrap();
    }
    db.client()
        .execute("INSERT INTO notes (id, body) VALUES (100, NULL)", &[])
        .await
        .unwrap();
}

/// Each hostile value finds exactly its own row, and the canary table is untouched. (A macro:
/// the bodies run on connections of two clients, whose `bulk()` handles are different types.)
macro_rules! finds_each_hostile_value {
    ($conn:expr) => {
        for (i, body) in HOSTILE.iter().enumerate() {
            let rows = $conn
                .bulk()
                .copy_out_query_params::<Note>(
                    "SELECT id, body FROM notes WHERE body = $1",
                    &[body],
                )
                .collect_vec()
                .await
                .unwrap_or_else(|e| panic!("{body:?}: {e}"));
            assert_eq!(
                rows,
                [Note {
                    id: i as i64,
                    body: Some((*body).to_owned())
                }],
                "{body:?}"
            );
        }
    };
}

#[tokio::test]
async fn on_the_sync_client_and_sqlx_the_same() {
    use pgbulk::sync::BulkExt as _;
    use pgbulk::SqlxBulkExt as _;
    use sqlx::Connection as _;
    let db = db().await;
    setup(&db).await;
    let hostile: Vec<(i64, &str)> = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, b)| (i as i64, *b))
        .collect();

    let conninfo = db.connection_string();
    let sync_hostile = hostile.clone();
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        client
            .batch_execute("SET standard_conforming_strings = off")
            .unwrap();
        for (id, body) in &sync_hostile {
            let params: [&(dyn ToSql + Sync); 1] = [body];
            let rows = client
                .bulk()
                .copy_out_query_params::<Note>(
                    "SELECT id, body FROM notes WHERE body = $1",
                    &params,
                )
                .unwrap();
            assert_eq!(
                rows,
                [Note {
                    id: *id,
                    body: Some((*body).to_owned())
                }]
            );
        }
        let err = client
            .bulk()
            .copy_out_query_params::<Note>("SELECT id, body FROM notes WHERE body = $1", &[&"\0"])
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Db, "{err}");
        let none: Option<String> = None;
        let rows = client
            .bulk()
            .copy_out_query_params_iter::<Note>(
                "SELECT id, body FROM notes WHERE body IS NOT DISTINCT FROM $1",
                &[&none],
            )
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [Note {
                id: 100,
                body: None
            }]
        );
    })
    .await
    .unwrap();

    let mut conn = sqlx::PgConnection::connect_with(&db.sqlx_options())
        .await
        .unwrap();
    for (id, body) in &hostile {
        let rows = (&mut conn)
            .bulk()
            .copy_out_query_params::<Note>("SELECT id, body FROM notes WHERE body = $1", &[body])
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(
            rows,
            [Note {
                id: *id,
                body: Some((*body).to_owned())
            }]
        );
    }
    let ids: Vec<i64> = vec![2, 100];
    let rows = (&mut conn)
        .bulk()
        .copy_out_query_params::<Note>(
            "SELECT id, body FROM notes WHERE id = ANY($1) ORDER BY id",
            &[&ids],
        )
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(rows.iter().map(|n| n.id).collect::<Vec<_>>(), ids);
    let err = (&mut conn)
        .bulk()
        .copy_out_query_params::<Note>("SELECT id, body FROM notes WHERE body = $1", &[&"\0"])
        .collect_vec()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db, "{err}");
    // The connection is still in step after the refused value.
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    assert_eq!(count(&db, "canary").await, 1);
}

on_every_client! {
    async fn hostile_values_are_values_under_both_string_settings(db, conn) {
        setup(&db).await;
        finds_each_hostile_value!(conn);
        // With standard_conforming_strings off, a backslash escapes in plain '' strings: the
        // literals do not use them, and the scanner reads the query's own strings that way.
        execute(&mut conn, "SET standard_conforming_strings = off; SET escape_string_warning = off")
            .await
            .unwrap();
        finds_each_hostile_value!(conn);
        // `'a\' -- $2'` is one string when the setting is off: `$2` in it is not a parameter.
        let rows = conn
            .bulk()
            .copy_out_query_params::<Note>(
                "SELECT id, body FROM notes WHERE body <> 'a\\' -- $2' AND id = $1",
                &[&2_i64],
            )
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(count(&db, "canary").await, 1);
    }

    async fn parameters_hidden_in_strings_comments_and_identifiers_stay_text(db, conn) {
        setup(&db).await;
        let rows = conn
            .bulk()
            .copy_out_query_params::<Note>(
                "SELECT id, body FROM notes AS \"$2\" \
                 WHERE id = $1 AND '$2' = '$2' /* $3 /* $4 */ */ AND $q$ $5 $q$ <> '' -- $6\n \
                 AND E'\\'$7' <> '' AND \"$2\".body IS NOT NULL",
                &[&0_i64],
            )
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(
            rows,
            [Note {
                id: 0,
                body: Some(HOSTILE[0].to_owned())
            }]
        );
    }

    async fn nulls_arrays_and_exact_values(db, conn) {
        setup(&db).await;
        let none: Option<&str> = None;
        let rows = conn
            .bulk()
            .copy_out_query_params::<Note>(
                "SELECT id, body FROM notes WHERE body IS NOT DISTINCT FROM $1",
                &[&none],
            )
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(
            rows,
            [Note {
                id: 100,
                body: None
            }]
        );

        // Arrays: of ids, and of text with quotes, backslashes, braces, commas, "NULL" and NULL.
        let ids: Vec<i64> = vec![1, 3, 100];
        let mut rows = conn
            .bulk()
            .copy_out_query_params::<Note>("SELECT id, body FROM notes WHERE id = ANY($1)", &[&ids])
            .collect_vec()
            .await
            .unwrap();
        rows.sort_by_key(|n| n.id);
        assert_eq!(rows.iter().map(|n| n.id).collect::<Vec<_>>(), ids);
        let tags: Vec<Option<&str>> = vec![
            Some("a'b"),
            Some("c\\d"),
            Some("{x,y}"),
            Some("NULL"),
            None,
            Some(""),
            Some("\" ,"),
        ];
        db.client()
            .execute("UPDATE notes SET tags = $1 WHERE id = 5", &[&tags])
            .await
            .unwrap();
        let rows = conn
            .bulk()
            .copy_out_query_params::<Note>("SELECT id, body FROM notes WHERE tags = $1", &[&tags])
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, 5);

        // Values come back exactly: timestamps (in the session's time zone), numerics with their
        // scale, floats to the last bit, bytes.
        execute(&mut conn, "SET TimeZone = 'Asia/Kathmandu'").await.unwrap();
        let echo = Echo {
            t: DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap(),
            n: "-12345.678900".parse().unwrap(),
            f: 0.1 + 0.2,
            g: f32::MIN_POSITIVE,
            b: vec![0, b'\'', b'\\', 0xff],
        };
        let back = conn
            .bulk()
            .copy_out_query_params::<Echo>(
                "SELECT $1::timestamptz AS t, $2::numeric AS n, $3::float8 AS f, $4::float4 AS g, \
                 $5::bytea AS b",
                &[&echo.t, &echo.n, &echo.f, &echo.g, &echo.b],
            )
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(back, [echo]);
    }

    async fn refused_values_and_wrong_calls_write_nothing_and_keep_the_client(db, conn) {
        setup(&db).await;
        // A NUL byte cannot be in a text value: the server refuses it when it is bound.
        let err = conn
            .bulk()
            .copy_out_query_params::<Note>("SELECT id, body FROM notes WHERE body = $1", &[&"a\0b"])
            .collect_vec()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Db, "{err}");
        // The count and the Rust types must match the query's parameters.
        let err = conn
            .bulk()
            .copy_out_query_params::<Note>("SELECT id, body FROM notes WHERE id = $1", &[])
            .collect_vec()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
        let err = conn
            .bulk()
            .copy_out_query_params::<Note>(
                "SELECT id, body FROM notes WHERE id = $1",
                &[&1_i64, &2_i64],
            )
            .collect_vec()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
        let err = conn
            .bulk()
            .copy_out_query_params::<Note>("SELECT id, body FROM notes WHERE id = $1", &[&"1"])
            .collect_vec()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
        assert!(err.to_string().contains("$1"), "{err}");
        // copy_out_query without values points to copy_out_query_params.
        let err = conn
            .bulk()
            .copy_out_query::<Note>("SELECT id, body FROM notes WHERE id = $1")
            .collect_vec()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("copy_out_query_params"), "{err}");
        assert_eq!(count(&db, "canary").await, 1);
        assert_eq!(count(&db, "notes").await, HOSTILE.len() as i64 + 1);
    }
}
