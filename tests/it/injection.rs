//! SQL injection through `copy_out_query` and table names: input that would end the
//! `COPY (..)` early, add a statement or COPY options is rejected with a clear error, and nothing
//! runs — on every async client (`on_every_client!`; sqlx sends a COPY as a simple query, where a
//! second statement would run if it got through) and the blocking one.

use crate::{count, db};
use pgbulk::{BulkExt, CopyRow, ErrorKind};
use tokio_postgres::error::SqlState;

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "victims")]
struct Victim {
    id: i32,
    s: String,
}

/// A marker file a `TO PROGRAM` would create if it ever ran (as the server's user); one per
/// client, as their tests run at once.
fn marker(client: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("pgbulk-injection-{client}-{}", std::process::id()))
}

/// The blocking client rejects the same input (its own test: it is neither async client).
#[tokio::test]
async fn copy_out_query_through_the_blocking_client_cannot_end_the_copy_early() {
    let db = db().await;
    db.client()
        .batch_execute(
            "CREATE TABLE victims (id int4, s text);
             INSERT INTO victims VALUES (1, 'a'), (2, 'b')",
        )
        .await
        .unwrap();
    let config = db.config().clone();
    let sync_err = tokio::task::spawn_blocking(move || {
        use pgbulk::sync::BulkExt as _;
        let mut client = postgres::Config::from(config)
            .connect(postgres::NoTls)
            .unwrap();
        client
            .bulk()
            .copy_out_query::<Victim>(
                "SELECT id, s FROM victims) TO STDOUT; DROP TABLE victims; --",
            )
            .unwrap_err()
    })
    .await
    .unwrap();
    assert_eq!(sync_err.kind(), ErrorKind::Usage, "{sync_err}");
    assert_eq!(count(&db, "victims").await, 2);
}

on_every_client! {
    async fn copy_out_query_takes_one_query_and_cannot_end_the_copy_early(db, conn) {
        db.client()
            .batch_execute(
                "CREATE TABLE victims (id int4, s text);
                 INSERT INTO victims VALUES (1, 'a'), (2, 'b')",
            )
            .await
            .unwrap();
        let _ = std::fs::remove_file(marker(CLIENT));
        let touch = format!("touch {}", marker(CLIENT).display());
        let attacks = [
            format!("SELECT 1 AS id, 'x' AS s) TO PROGRAM '{touch}' --"),
            format!("SELECT 1 AS id, 'x' AS s) TO PROGRAM '{touch}' (FORMAT binary) --"),
            format!("SELECT 1 AS id, 'x' AS s) TO STDOUT; COPY victims TO PROGRAM '{touch}' --"),
            "SELECT id, s FROM victims; DROP TABLE victims".to_owned(),
            "SELECT id, s FROM victims; DROP TABLE victims; --".to_owned(),
            "SELECT id, s FROM victims /* never closed".to_owned(),
            "SELECT id, s FROM victims WHERE s = 'never closed".to_owned(),
            ") TO STDOUT --".to_owned(),
            String::new(),
        ];
        for attack in &attacks {
            let err = conn
                .bulk()
                .copy_out_query::<Victim>(attack.as_str())
                .collect_vec()
                .await
                .unwrap_err();
            if attack.is_empty() {
                // An empty query is not a syntax error to the server; it has no columns.
                assert_eq!(err.kind(), ErrorKind::TypeMismatch, "{attack:?}: {err}");
                continue;
            }
            assert_eq!(err.kind(), ErrorKind::Usage, "{attack:?}: {err}");
            assert!(
                err.to_string()
                    .starts_with("copy_out_query takes exactly one query"),
                "{attack:?}: {err}"
            );
            // The server's own words are kept.
            assert!(err.code().is_some(), "{attack:?}: {err}");
        }
        assert_eq!(count(&db, "victims").await, 2, "a DROP ran");
        assert!(!marker(CLIENT).exists(), "a TO PROGRAM ran");

        // Queries that merely look odd still work: a trailing `--` comment, a `;`, a `)` inside a
        // string or a quoted identifier, a block comment.
        let fine = [
            "SELECT id, s FROM victims ORDER BY id -- the comment swallows nothing",
            "SELECT id, s FROM victims ORDER BY id;",
            "SELECT id, s FROM victims ORDER BY id /* ) TO PROGRAM 'x' */",
            "SELECT id, s FROM (SELECT id, s FROM victims) AS \") TO STDOUT --\" ORDER BY id",
        ];
        for query in fine {
            let rows = conn
                .bulk()
                .copy_out_query::<Victim>(query)
                .collect_vec()
                .await
                .unwrap_or_else(|e| panic!("{query:?}: {e}"));
            assert_eq!(rows.len(), 2, "{query:?}");
        }
        let odd = conn
            .bulk()
            .copy_out_query::<Victim>("SELECT 7 AS id, ') TO PROGRAM ''x'' --' AS s")
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(
            odd,
            [Victim {
                id: 7,
                s: ") TO PROGRAM 'x' --".into()
            }]
        );
    }

    async fn table_names_are_identifiers_never_sql(db, conn) {
        db.client()
            .batch_execute("CREATE TABLE victims (id int4, s text)")
            .await
            .unwrap();
        let rows = [Victim {
            id: 1,
            s: "x".into(),
        }];
        for table in [
            "victims (id, s) FROM STDIN; DROP TABLE victims; --",
            "victims\" (id) FROM PROGRAM 'id' --",
            "victims; DROP TABLE victims",
        ] {
            let err = conn
                .bulk()
                .table(table)
                .copy_in(&rows)
                .await
                .unwrap_err();
            // The whole text is one (quoted) table name that does not exist: the server says
            // "undefined table". Spliced in raw, it would be a syntax error (or worse) instead.
            assert_eq!(err.kind(), ErrorKind::Db, "{table:?}: {err}");
            assert_eq!(
                err.code(),
                Some(&SqlState::UNDEFINED_TABLE),
                "{table:?}: {err}"
            );
            let out = conn
                .bulk()
                .table(table)
                .copy_out::<Victim>()
                .collect_vec()
                .await
                .unwrap_err();
            assert_eq!(out.kind(), ErrorKind::Db, "{table:?}: {out}");
            assert_eq!(
                out.code(),
                Some(&SqlState::UNDEFINED_TABLE),
                "{table:?}: {out}"
            );
        }
        assert_eq!(count(&db, "victims").await, 0);
    }
}
