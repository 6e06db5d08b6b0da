//! Identifiers that need quoting: mixed case, reserved words, quotes, dots, schemas.

use crate::db;
use pgbulk::{BulkExt, CopyRow};

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "My Schema.select")]
struct Odd {
    #[copy(rename = "Mixed Case")]
    mixed: i32,
    #[copy(rename = "user")]
    user: String,
    #[copy(rename = "we\"ird")]
    weird: Option<String>,
    #[copy(rename = "has.dot")]
    dotted: bool,
}

#[tokio::test]
async fn identifiers_are_quoted() {
    let db = db().await;
    db.client()
        .batch_execute(
            r#"CREATE SCHEMA "My Schema";
               CREATE TABLE "My Schema"."select" ("Mixed Case" int4, "user" text, "we""ird" text, "has.dot" bool);
               CREATE SCHEMA "odd.schema";
               CREATE TABLE "odd.schema"."Tab""le" (LIKE "My Schema"."select");"#,
        )
        .await
        .unwrap();
    let rows = vec![Odd {
        mixed: 1,
        user: "u".into(),
        weird: Some("w".into()),
        dotted: true,
    }];
    db.client().bulk().copy_in(&rows).await.unwrap();
    assert_eq!(
        db.client()
            .bulk()
            .copy_out::<Odd>()
            .collect_vec()
            .await
            .unwrap(),
        rows
    );

    let other = r#""odd.schema"."Tab""le""#;
    db.client()
        .bulk()
        .table(other)
        .copy_in(&rows)
        .await
        .unwrap();
    let back = db
        .client()
        .bulk()
        .table(other)
        .copy_out::<Odd>()
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(back, rows);
    // Names are case-sensitive: "SELECT" is not "select".
    let err = db
        .client()
        .bulk()
        .table("My Schema.SELECT")
        .copy_in(&rows)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}
