//! The derive's attributes against the server: `rename_all`, `json`, `default`, `flatten`
//! and `try_from`, each written and read back, and each misuse's error naming row and field.

use crate::{count, db};
use pgbulk::testkit::TestDb;
use pgbulk::{BulkExt, CopyRow, Error, ErrorKind, FromCopyRow};
use serde::{Deserialize, Serialize};

/// Runs `sql` (one or more statements).
async fn exec(db: &TestDb, sql: &str) {
    db.client().batch_execute(sql).await.unwrap();
}

/// The first column of the one row `sql` returns.
async fn value<V: for<'a> pgbulk::tokio_postgres::types::FromSql<'a>>(db: &TestDb, sql: &str) -> V {
    db.client().query_one(sql, &[]).await.unwrap().get(0)
}

/// `copy_out_query::<T>(query)`, all rows.
async fn read<T: FromCopyRow + Send + 'static>(db: &TestDb, query: &str) -> Vec<T> {
    let rows = db.client().bulk().copy_out_query::<T>(query).collect_vec();
    rows.await.unwrap_or_else(|e| panic!("{query}: {e}"))
}

/// The error `copy_out_query::<T>(query)` ends with.
async fn read_err<T: FromCopyRow + Send + 'static>(db: &TestDb, query: &str) -> Error {
    let rows = db.client().bulk().copy_out_query::<T>(query).collect_vec();
    match rows.await {
        Ok(rows) => panic!("{query}: read {} rows, expected an error", rows.len()),
        Err(e) => e,
    }
}

// ---- rename_all ------------------------------------------------------------------------------

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "profiles", rename_all = "camelCase")]
struct Profile {
    user_id: i64,
    display_name: String,
    // An explicit rename wins over the rule.
    #[copy(rename = "e_mail")]
    email_address: Option<String>,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "legacy", rename_all = "SCREAMING_SNAKE_CASE")]
struct Legacy {
    item_no: i32,
    unit_price: f64,
}

#[tokio::test]
async fn rename_all_names_the_columns() {
    let db = db().await;
    db.client()
        .batch_execute(
            r#"CREATE TABLE profiles ("userId" int8, "displayName" text, e_mail text);
               CREATE TABLE legacy ("ITEM_NO" int4, "UNIT_PRICE" float8);"#,
        )
        .await
        .unwrap();
    let names: Vec<_> = pgbulk::columns_of::<Profile>()
        .iter()
        .map(pgbulk::Column::name)
        .collect();
    assert_eq!(names, ["userId", "displayName", "e_mail"]);

    let profiles = vec![
        Profile {
            user_id: 1,
            display_name: "Ada".into(),
            email_address: Some("ada@example.com".into()),
        },
        Profile {
            user_id: 2,
            display_name: "Grace".into(),
            email_address: None,
        },
    ];
    assert_eq!(db.client().bulk().copy_in(&profiles).await.unwrap(), 2);
    let name: String = value(
        &db,
        r#"SELECT "displayName" FROM profiles WHERE "userId" = 2"#,
    )
    .await;
    assert_eq!(name, "Grace");
    let back = read::<Profile>(&db, r#"SELECT * FROM profiles ORDER BY "userId""#).await;
    assert_eq!(back, profiles);

    let legacy = vec![Legacy {
        item_no: 7,
        unit_price: 2.5,
    }];
    db.client().bulk().copy_in(&legacy).await.unwrap();
    let back = db
        .client()
        .bulk()
        .copy_out::<Legacy>()
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(back, legacy);
}

// ---- json ------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Settings {
    theme: String,
    font_size: u8,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "prefs")]
struct Prefs {
    id: i32,
    #[copy(json)]
    settings: Settings,
    #[copy(json)]
    history: Vec<String>,
    #[copy(json)]
    extra: Option<Settings>,
}

#[tokio::test]
async fn json_fields_round_trip_through_json_and_jsonb() {
    let db = db().await;
    exec(
        &db,
        "CREATE TABLE prefs (id int4, settings jsonb, history json, extra jsonb)",
    )
    .await;
    let rows = vec![
        Prefs {
            id: 1,
            settings: Settings {
                theme: "dark".into(),
                font_size: 14,
            },
            history: vec!["a".into(), "b\"c".into()],
            extra: Some(Settings {
                theme: "light".into(),
                font_size: 9,
            }),
        },
        Prefs {
            id: 2,
            settings: Settings {
                theme: "solarized".into(),
                font_size: 12,
            },
            history: vec![],
            extra: None,
        },
    ];
    db.client().bulk().copy_in(&rows).await.unwrap();
    // The server holds real JSON: it can look inside.
    let row = db
        .client()
        .query_one(
            "SELECT settings->>'theme', (settings->>'font_size')::int, history->>1, \
             jsonb_typeof(extra) FROM prefs WHERE id = 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "dark");
    assert_eq!(row.get::<_, i32>(1), 14);
    assert_eq!(row.get::<_, String>(2), "b\"c");
    assert_eq!(row.get::<_, String>(3), "object");
    let back = read::<Prefs>(&db, "SELECT * FROM prefs ORDER BY id").await;
    assert_eq!(back, rows);

    // SQL NULL reads as `None` into an `Option`, and is an error naming the row and field
    // for a type that cannot be null.
    exec(
        &db,
        "INSERT INTO prefs VALUES (3, '{\"theme\": \"x\", \"font_size\": 1}', '[]', NULL)",
    )
    .await;
    let third = read::<Prefs>(&db, "SELECT * FROM prefs WHERE id = 3").await;
    assert_eq!(third[0].extra, None);
    exec(&db, "UPDATE prefs SET settings = NULL WHERE id = 2").await;
    let err = read_err::<Prefs>(&db, "SELECT * FROM prefs ORDER BY id").await;
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!((err.row(), err.field()), (Some(1), Some("settings")));

    // A json field against a column of another type is a mismatch before anything is sent.
    exec(
        &db,
        "CREATE TABLE prefs_text (id int4, settings text, history json, extra jsonb)",
    )
    .await;
    let err = db
        .client()
        .bulk()
        .table("prefs_text")
        .copy_in(&rows)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TypeMismatch);
    let mismatch = &err.mismatches()[0];
    assert_eq!(
        (mismatch.field, mismatch.rust_type),
        ("settings", "Settings (as json)")
    );
}

// ---- default ---------------------------------------------------------------------------------

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "notes")]
struct Note {
    id: i32,
    #[copy(default)]
    body: String,
    #[copy(default)]
    score: Option<i32>,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "notes")]
struct StrictNote {
    id: i32,
    body: String,
}

#[tokio::test]
async fn default_fields_fill_in_columns_the_query_does_not_return() {
    let db = db().await;
    exec(&db, "CREATE TABLE notes (id int4, body text, score int4)").await;
    let notes = vec![
        Note {
            id: 1,
            body: "first".into(),
            score: Some(5),
        },
        Note {
            id: 2,
            body: "second".into(),
            score: None,
        },
    ];
    // Written as usual.
    db.client().bulk().copy_in(&notes).await.unwrap();
    let bodies: Vec<String> = db
        .client()
        .query("SELECT body FROM notes ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(bodies, ["first", "second"]);

    // Every column returned: read as usual.
    let all = read::<Note>(&db, "SELECT * FROM notes ORDER BY id").await;
    assert_eq!(all, notes);

    // Columns left out: `Default::default()`, over many rows (the absence holds per tuple).
    exec(
        &db,
        "INSERT INTO notes SELECT g, 'n', g FROM generate_series(3, 2000) g",
    )
    .await;
    let ids_only = read::<Note>(&db, "SELECT id FROM notes ORDER BY id").await;
    assert_eq!(ids_only.len(), 2000);
    assert!(ids_only
        .iter()
        .enumerate()
        .all(|(i, n)| n.id == i32::try_from(i).unwrap() + 1
            && n.body.is_empty()
            && n.score.is_none()));
    let with_score = read::<Note>(&db, "SELECT score, id FROM notes WHERE id = 1").await;
    assert_eq!(
        with_score,
        [Note {
            id: 1,
            body: String::new(),
            score: Some(5)
        }]
    );

    // A returned column is decoded as usual: NULL into a `String` is still an error.
    let err = read_err::<Note>(&db, "SELECT id, NULL::text AS body FROM notes WHERE id = 1").await;
    assert_eq!((err.kind(), err.field()), (ErrorKind::Decode, Some("body")));

    // Without the attribute, a missing column is a mismatch.
    let err = read_err::<StrictNote>(&db, "SELECT id FROM notes").await;
    assert_eq!(err.kind(), ErrorKind::TypeMismatch);
    assert_eq!(err.mismatches()[0].field, "body");

    // The blocking client reads the same way.
    let conninfo = db.connection_string();
    let blocking = tokio::task::spawn_blocking(move || {
        use pgbulk::sync::BulkExt as _;
        let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        client
            .bulk()
            .copy_out_query::<Note>("SELECT id FROM notes WHERE id <= 2 ORDER BY id")
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        blocking,
        [1, 2].map(|id| Note {
            id,
            body: String::new(),
            score: None
        })
    );
}

// ---- flatten ---------------------------------------------------------------------------------

#[derive(CopyRow, Debug, Clone, PartialEq)]
struct Address {
    street: String,
    #[copy(rename = "zip_code")]
    zip: String,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "customers")]
struct Customer {
    #[copy(key)]
    id: i64,
    #[copy(flatten)]
    address: Address,
    name: String,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
struct TenantKey {
    #[copy(key)]
    tenant: i32,
    #[copy(key)]
    id: i64,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "tenant_items")]
struct TenantItem {
    #[copy(flatten)]
    key: TenantKey,
    label: String,
}

#[tokio::test]
async fn flatten_makes_the_nested_fields_columns() {
    let db = db().await;
    db.client()
        .batch_execute(
            "CREATE TABLE customers (id int8 PRIMARY KEY, street text, zip_code text, name text);
             CREATE TABLE tenant_items (tenant int4, id int8, label text, PRIMARY KEY (tenant, id));",
        )
        .await
        .unwrap();
    let columns: Vec<_> = pgbulk::columns_of::<Customer>()
        .iter()
        .map(|c| (c.name(), c.is_key()))
        .collect();
    assert_eq!(
        columns,
        [
            ("id", true),
            ("street", false),
            ("zip_code", false),
            ("name", false)
        ]
    );
    let customer = |id: i64, street: &str| Customer {
        id,
        address: Address {
            street: street.into(),
            zip: format!("{id:05}"),
        },
        name: format!("customer {id}"),
    };
    let rows: Vec<Customer> = (1..=3).map(|id| customer(id, "Main St")).collect();
    db.client().bulk().copy_in(&rows).await.unwrap();
    let zip: String = value(&db, "SELECT zip_code FROM customers WHERE id = 3").await;
    assert_eq!(zip, "00003");
    let back = read::<Customer>(
        &db,
        "SELECT name, zip_code, street, id FROM customers ORDER BY id",
    )
    .await;
    assert_eq!(back, rows);

    // The outer key drives the upsert; the flattened columns are updated.
    let changed = vec![customer(2, "Side St"), customer(4, "New St")];
    let counts = db
        .client()
        .bulk()
        .upsert_via_staging(&changed)
        .await
        .unwrap();
    assert_eq!((counts.inserted, counts.updated), (1, 1));
    let street: String = value(&db, "SELECT street FROM customers WHERE id = 2").await;
    assert_eq!(street, "Side St");

    // Keys inside the flattened struct are the conflict target.
    let item = |tenant: i32, id: i64, label: &str| TenantItem {
        key: TenantKey { tenant, id },
        label: label.into(),
    };
    db.client()
        .bulk()
        .upsert_via_staging(vec![item(1, 1, "a"), item(2, 1, "b")])
        .await
        .unwrap();
    let counts = db
        .client()
        .bulk()
        .upsert_via_staging(vec![item(1, 1, "a2"), item(1, 2, "c")])
        .await
        .unwrap();
    assert_eq!((counts.inserted, counts.updated), (1, 1));
    let items = read::<TenantItem>(&db, "SELECT * FROM tenant_items ORDER BY tenant, id").await;
    assert_eq!(items, [item(1, 1, "a2"), item(1, 2, "c"), item(2, 1, "b")]);

    // A bad value inside the flattened struct names its row, field and column; nothing is
    // written.
    let bad = vec![customer(10, "ok"), customer(11, "nul\0byte")];
    let err = db.client().bulk().copy_in(&bad).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Encode);
    assert_eq!(
        (err.row(), err.field(), err.column()),
        (Some(1), Some("street"), Some("street"))
    );
    assert_eq!(count(&db, "customers WHERE id >= 10").await, 0);
    exec(&db, "UPDATE customers SET zip_code = NULL WHERE id = 3").await;
    let err = read_err::<Customer>(&db, "SELECT * FROM customers ORDER BY id").await;
    assert_eq!(
        (err.kind(), err.row(), err.field(), err.column()),
        (ErrorKind::Decode, Some(2), Some("zip"), Some("zip_code"))
    );
}

#[derive(CopyRow, Debug)]
#[copy(table = "customers")]
struct Clashing {
    street: String,
    #[copy(flatten)]
    address: Address,
}

#[tokio::test]
async fn flatten_reports_a_column_named_twice() {
    let db = db().await;
    exec(
        &db,
        "CREATE TABLE customers (id int8, street text, zip_code text, name text)",
    )
    .await;
    let row = Clashing {
        street: "a".into(),
        address: Address {
            street: "b".into(),
            zip: "c".into(),
        },
    };
    let err = db.client().bulk().copy_in([&row]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage);
    assert!(err.to_string().contains("\"street\""), "{err}");
    let err = db
        .client()
        .bulk()
        .copy_out::<Clashing>()
        .collect_vec()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage);
    assert_eq!(count(&db, "customers").await, 0);
}

// ---- try_from --------------------------------------------------------------------------------

/// An email address that is checked when it is built.
#[derive(Debug, Clone, PartialEq)]
struct Email(String);

impl TryFrom<String> for Email {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        if s.contains('@') {
            Ok(Email(s))
        } else {
            Err(format!("`{s}` is not an email address"))
        }
    }
}

impl From<Email> for String {
    fn from(email: Email) -> String {
        email.0
    }
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "counters")]
struct Counter {
    #[copy(try_from = "i64")]
    hits: u64,
    #[copy(try_from = "String")]
    owner: Email,
}

#[tokio::test]
async fn try_from_converts_both_ways_and_names_a_failed_conversion() {
    let db = db().await;
    exec(&db, "CREATE TABLE counters (hits int8, owner text)").await;
    let rows = vec![
        Counter {
            hits: 0,
            owner: Email("a@x".into()),
        },
        Counter {
            hits: u64::try_from(i64::MAX).unwrap(),
            owner: Email("b@x".into()),
        },
    ];
    db.client().bulk().copy_in(&rows).await.unwrap();
    let max: i64 = value(&db, "SELECT max(hits) FROM counters").await;
    assert_eq!(max, i64::MAX);
    let back = read::<Counter>(&db, "SELECT * FROM counters ORDER BY hits").await;
    assert_eq!(back, rows);

    // Writing: a value the column's type cannot hold fails the whole COPY, naming row and field.
    let too_big = vec![
        Counter {
            hits: 1,
            owner: Email("c@x".into()),
        },
        Counter {
            hits: u64::MAX,
            owner: Email("d@x".into()),
        },
    ];
    let err = db.client().bulk().copy_in(&too_big).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.row(), err.field(), err.column()),
        (ErrorKind::Encode, Some(1), Some("hits"), Some("hits"))
    );
    assert!(
        err.to_string()
            .contains("cannot convert the u64 value to i64"),
        "{err}"
    );
    assert_eq!(count(&db, "counters").await, 2);

    // Reading: a value the field's type refuses, with the conversion's own message.
    exec(&db, "INSERT INTO counters VALUES (5, 'nobody')").await;
    let err = read_err::<Counter>(&db, "SELECT * FROM counters ORDER BY hits").await;
    assert_eq!(
        (err.kind(), err.row(), err.field()),
        (ErrorKind::Decode, Some(1), Some("owner"))
    );
    assert!(
        err.to_string().contains("`nobody` is not an email address"),
        "{err}"
    );
    exec(
        &db,
        "UPDATE counters SET owner = 'n@x', hits = -1 WHERE owner = 'nobody'",
    )
    .await;
    let err = read_err::<Counter>(&db, "SELECT * FROM counters ORDER BY hits").await;
    assert_eq!(
        (err.kind(), err.row(), err.field()),
        (ErrorKind::Decode, Some(0), Some("hits"))
    );

    // The plan checks the type the field goes through.
    exec(&db, "CREATE TABLE counters_narrow (hits int4, owner text)").await;
    let err = db
        .client()
        .bulk()
        .table("counters_narrow")
        .copy_in(&rows)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TypeMismatch);
    assert_eq!(err.mismatches()[0].rust_type, "u64 (as i64)");
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
struct Geo {
    lat: f64,
    #[copy(default)]
    lon: f64,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
struct Place {
    city: String,
    #[copy(skip)]
    cached: Option<String>,
    #[copy(flatten)]
    geo: Geo,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "visits", rename_all = "UPPERCASE")]
struct Visit {
    seq_no: i32,
    #[copy(flatten)]
    place: Place,
    #[copy(json)]
    tags: Vec<String>,
}

#[tokio::test]
async fn flatten_nests_and_keeps_the_inner_attributes() {
    let db = db().await;
    exec(
        &db,
        r#"CREATE TABLE visits ("SEQ_NO" int4, city text, lat float8, lon float8, "TAGS" jsonb)"#,
    )
    .await;
    // `rename_all` names the outer struct's own columns; the flattened ones keep theirs.
    let names: Vec<_> = pgbulk::columns_of::<Visit>()
        .iter()
        .map(pgbulk::Column::name)
        .collect();
    assert_eq!(names, ["SEQ_NO", "city", "lat", "lon", "TAGS"]);
    let visit = |id: i32| Visit {
        seq_no: id,
        place: Place {
            city: format!("city {id}"),
            cached: None,
            geo: Geo {
                lat: f64::from(id) / 2.0,
                lon: -f64::from(id),
            },
        },
        tags: vec![format!("t{id}")],
    };
    let rows: Vec<Visit> = (1..=300).map(visit).collect();
    db.client().bulk().copy_in(&rows).await.unwrap();
    assert_eq!(
        read::<Visit>(&db, "SELECT * FROM visits ORDER BY 1").await,
        rows
    );

    // A `default` field two levels down, left out of the query.
    let no_lon = read::<Visit>(
        &db,
        r#"SELECT "TAGS", lat, city, "SEQ_NO" FROM visits ORDER BY "SEQ_NO" LIMIT 2"#,
    )
    .await;
    let expected: Vec<Visit> = (1..=2)
        .map(|id| {
            let mut v = visit(id);
            v.place.geo.lon = 0.0;
            v
        })
        .collect();
    assert_eq!(no_lon, expected);

    // An error two levels down names the innermost field and its column, by its index in the
    // outer row's columns.
    let err = read_err::<Visit>(
        &db,
        r#"SELECT "SEQ_NO", city, NULL::float8 AS lat, lon, "TAGS" FROM visits"#,
    )
    .await;
    assert_eq!(
        (err.kind(), err.row(), err.field(), err.column()),
        (ErrorKind::Decode, Some(0), Some("lat"), Some("lat"))
    );
}
