//! Strings into the text types, enums and json/jsonb (raw text); bytes into bytea.

use super::json::same_json;
use super::{eq, pair};
use crate::db;
use pgbulk::{BulkExt, CopyRow};
use proptest::prelude::*;
use std::borrow::Cow;

/// Any text PostgreSQL can store: every Unicode scalar value but NUL.
const TEXT: &str = "[^\u{0}]{0,40}";

/// Strings for jsonb compare as JSON: the server normalizes whitespace and key order.
#[allow(clippy::ptr_arg)] // the pair's element type is String
pub fn same_json_text(a: &String, b: &String) -> bool {
    same_json(
        &serde_json::from_str(a).unwrap(),
        &serde_json::from_str(b).unwrap(),
    )
}

/// JSON text written by serde (what the json/jsonb pairs are fed).
fn json_text() -> impl Strategy<Value = String> {
    super::json::json_value().prop_map(|v| v.to_string())
}

fn text_edges() -> Vec<String> {
    vec![
        String::new(),
        " ".into(),
        "é😀\u{10FFFF}\u{FFFE}\u{7f}\u{1}".into(),
        "line\nbreak\ttab\\backslash'quote\"".into(),
        "x".repeat(100_000),
    ]
}

pair! {
    string_text: String => "text";
    setup: "";
    strategy: TEXT;
    edges: text_edges();
    same: eq;
    theirs: String = String::clone, read: "v", write: "$2", same: eq;
    golden: [("'hello'::text", "hello".into()), ("''::text", String::new()), ("'é😀'::text", "é😀".into())];
}

pair! {
    string_varchar: String => "varchar";
    setup: "";
    strategy: TEXT;
    edges: text_edges();
    same: eq;
    theirs: String = String::clone, read: "v", write: "$2", same: eq;
    golden: [("'x'::varchar(3)", "x".into()), ("''::varchar", String::new())];
}

pair! {
    string_bpchar: String => "char(8)";
    setup: "";
    strategy: "[^\u{0}]{8}";
    edges: vec!["        ".into(), "abc     ".into(), "😀😀😀😀😀😀😀😀".into()];
    same: eq;
    theirs: String = String::clone, read: "v", write: "$2", same: eq;
    golden: [("'abc'::char(8)", "abc     ".into()), ("'é'::char(1)", "é".into())];
}

pair! {
    string_name: String => "name";
    setup: "";
    strategy: "[^\u{0}]{0,15}";
    edges: vec![String::new(), "n".repeat(63), "Ünïcödé".into()];
    same: eq;
    theirs: String = String::clone, read: "v", write: "$2", same: eq;
    golden: [("'a_name'::name", "a_name".into()), ("''::name", String::new())];
}

pair! {
    string_citext: String => "citext";
    setup: "CREATE EXTENSION citext";
    strategy: TEXT;
    edges: text_edges();
    same: eq;
    theirs: String = String::clone, read: "v", write: "$2", same: eq;
    golden: [("'MiXeD'::citext", "MiXeD".into())];
}

pair! {
    string_enum: String => "mood";
    setup: "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'très bien', 'with space', 'Q''uote')";
    strategy: prop::sample::select(vec!["sad", "ok", "happy", "très bien", "with space", "Q'uote"]).prop_map(String::from);
    edges: vec!["sad".into(), "Q'uote".into()];
    same: eq;
    // tokio-postgres has no String for an enum type: the server's text I/O is the other side.
    theirs: String = String::clone, read: "v::text", write: "$2::text::mood", same: eq;
    golden: [("'happy'::mood", "happy".into()), ("'très bien'::mood", "très bien".into())];
}

pair! {
    string_json: String => "json";
    setup: "";
    strategy: json_text();
    // json keeps its text as written, whitespace and duplicate keys included
    edges: vec![" { \"b\" : 1 , \"a\" : [ ] , \"b\" : 2 } ".into(), "null".into(), "\"\\u0000\"".into()];
    same: eq;
    theirs: String = String::clone, read: "v::text", write: "$2::text::json", same: eq;
    golden: [("'{\"a\":1}'::json", "{\"a\":1}".into()), ("' [ 1 , 2 ] '::json", " [ 1 , 2 ] ".into())];
}

pair! {
    string_jsonb: String => "jsonb";
    setup: "";
    strategy: json_text();
    edges: vec![" { \"b\" : 1 , \"a\" : [ ] } ".into(), "null".into(), "1e300".into(), "-0.0".into()];
    same: same_json_text;
    theirs: serde_json::Value = |s| serde_json::from_str(s).unwrap(), read: "v", write: "$2", same: same_json;
    golden: [
        ("'{\"b\": 1, \"a\": [1]}'::jsonb", "{\"a\": [1], \"b\": 1}".into()),
        ("'\"x\"'::jsonb", "\"x\"".into()),
    ];
}

pair! {
    vec_u8_bytea: Vec<u8> => "bytea";
    setup: "";
    strategy: prop::collection::vec(any::<u8>(), 0..64);
    edges: vec![vec![], vec![0], vec![0xff; 3], (0..=255).collect(), vec![7; 200_000]];
    same: eq;
    theirs: Vec<u8> = Vec::clone, read: "v", write: "$2", same: eq;
    golden: [("'\\x'::bytea", vec![]), ("'\\x00ff10'::bytea", vec![0, 0xff, 0x10])];
}

#[derive(CopyRow, Debug)]
#[copy(table = "borrowed")]
struct Borrowed<'a> {
    id: i32,
    s: &'a str,
    b: Box<str>,
    c: Cow<'a, str>,
    bytes: &'a [u8],
    boxed: Box<[u8]>,
}

#[derive(CopyRow, Debug, PartialEq)]
#[copy(table = "borrowed")]
struct Owned {
    id: i32,
    s: String,
    b: Box<str>,
    c: Cow<'static, str>,
    bytes: Vec<u8>,
    boxed: Box<[u8]>,
}

/// `&str`, `Box<str>`, `Cow<str>`, `&[u8]` and `Box<[u8]>` use the `String`/`Vec<u8>` codecs
/// tested above; here they go through the server once.
#[tokio::test]
async fn borrowed_and_boxed_str_bytes_text_bytea_round_trip() {
    let db = db().await;
    db.client()
        .batch_execute(
            "CREATE TABLE borrowed (id int4, s text, b varchar, c text, bytes bytea, boxed bytea)",
        )
        .await
        .unwrap();
    let owned = String::from("owned é");
    let rows = vec![Borrowed {
        id: 1,
        s: "borrowed 😀",
        b: "boxed".into(),
        c: Cow::Borrowed(&owned),
        bytes: &[0, 1, 2],
        boxed: vec![9u8; 3].into_boxed_slice(),
    }];
    db.client().bulk().copy_in(&rows).await.unwrap();
    let back = db
        .client()
        .bulk()
        .copy_out::<Owned>()
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(
        back,
        vec![Owned {
            id: 1,
            s: "borrowed 😀".into(),
            b: "boxed".into(),
            c: Cow::Owned(owned.clone()),
            bytes: vec![0, 1, 2],
            boxed: vec![9u8; 3].into_boxed_slice(),
        }]
    );
}
