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

/// Schema, table and columns each named with double quotes, spaces, mixed case and a reserved
/// word at once.
#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = r#""Select ""From"" Where"."Order ""By"" Table""#)]
struct Worst {
    #[copy(key, rename = "Group \"By\" Key")]
    key: i32,
    #[copy(rename = "Insert Into \"Values\"")]
    value: String,
}

#[tokio::test]
async fn schema_table_and_columns_with_quotes_spaces_mixed_case_and_reserved_words() {
    let db = db().await;
    db.client()
        .batch_execute(
            r#"CREATE SCHEMA "Select ""From"" Where";
               CREATE TABLE "Select ""From"" Where"."Order ""By"" Table" (
                   "Group ""By"" Key" int4 PRIMARY KEY,
                   "Insert Into ""Values""" text NOT NULL
               );"#,
        )
        .await
        .unwrap();
    let rows: Vec<Worst> = (0..100)
        .map(|key| Worst {
            key,
            value: format!("v{key}"),
        })
        .collect();
    assert_eq!(db.client().bulk().copy_in(&rows).await.unwrap(), 100);
    let mut back = db
        .client()
        .bulk()
        .copy_out::<Worst>()
        .collect_vec()
        .await
        .unwrap();
    back.sort_by_key(|w| w.key);
    assert_eq!(back, rows);
    // Upsert (staging table, conflict target, update list) and quarantine (savepoints) too.
    let changed: Vec<Worst> = (50..150)
        .map(|key| Worst {
            key,
            value: format!("w{key}"),
        })
        .collect();
    let counts = db
        .client()
        .bulk()
        .upsert_via_staging(&changed)
        .await
        .unwrap();
    assert_eq!((counts.inserted, counts.updated), (50, 50));
    let outcome = db
        .client()
        .bulk()
        .quarantine()
        .copy_in(&changed[40..60])
        .await
        .unwrap();
    assert_eq!(outcome.written, 0);
    assert_eq!(outcome.rejected.len(), 20);
    assert_eq!(
        outcome.rejected[0].error.column(),
        Some("Group \"By\" Key"),
        "{}",
        outcome.rejected[0].error
    );
    let n: i64 = db
        .client()
        .query_one(
            r#"SELECT count(*) FROM "Select ""From"" Where"."Order ""By"" Table" WHERE "Insert Into ""Values""" LIKE 'w%'"#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 100);
}
