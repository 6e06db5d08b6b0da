//! `serde_json::Value` and `Json<T>` into json and jsonb.

use super::{eq, pair};
use pgbulk::Json;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Any JSON value PostgreSQL's jsonb can hold: strings without NUL (jsonb rejects `\u0000`),
/// finite numbers, nesting.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[^\u{0}]{0,10}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[^\u{0}]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn value_edges() -> Vec<Value> {
    vec![
        Value::Null,
        json!({}),
        json!([]),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(f64::MAX),
        json!(f64::MIN_POSITIVE),
        json!(5e-324),
        json!("é😀\n\"\\"),
        json!({"nested": {"deeper": [1, [2, [3]]]}}),
    ]
}

pair! {
    value_json: Value => "json";
    setup: "";
    strategy: json_value();
    edges: value_edges();
    same: eq;
    theirs: Value = Value::clone, read: "v", write: "$2", same: eq;
    golden: [
        ("'{\"a\":1,\"b\":[true,null]}'::json", json!({"a": 1, "b": [true, null]})),
        ("'\"x\\ny\"'::json", json!("x\ny")),
        ("'1.5'::json", json!(1.5)),
    ];
}

/// JSON equality as jsonb sees it: numbers by value (jsonb stores them as numeric, so serde's
/// `-1.5e17` comes back as the integer `-150000000000000000`), everything else exactly.
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                    (Some(p), Some(q), _, _) => p == q,
                    (_, _, Some(p), Some(q)) => p == q,
                    _ => x.as_f64() == y.as_f64(),
                }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, p)| y.get(k).is_some_and(|q| same_json(p, q)))
        }
        _ => a == b,
    }
}

pair! {
    value_jsonb: Value => "jsonb";
    setup: "";
    strategy: json_value();
    edges: value_edges();
    same: same_json;
    theirs: Value = Value::clone, read: "v", write: "$2", same: same_json;
    // jsonb's output puts a space after `,` and `:`, serde does not: values where they agree
    golden: [
        ("'{}'::jsonb", json!({})),
        ("'[[1]]'::jsonb", json!([[1]])),
        ("'\"x\\ny\"'::jsonb", json!("x\ny")),
        ("'-9223372036854775808'::jsonb", json!(i64::MIN)),
        ("'null'::jsonb", Value::Null),
        ("'true'::jsonb", json!(true)),
    ];
}

/// A serde type stored as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Doc {
    n: i64,
    name: String,
    tags: Vec<String>,
    flag: Option<bool>,
}

fn doc() -> impl Strategy<Value = Json<Doc>> {
    (
        any::<i64>(),
        "[^\u{0}]{0,12}",
        prop::collection::vec("[^\u{0}]{0,5}", 0..4),
        any::<Option<bool>>(),
    )
        .prop_map(|(n, name, tags, flag)| {
            Json(Doc {
                n,
                name,
                tags,
                flag,
            })
        })
}

fn doc_value(d: &Json<Doc>) -> Value {
    serde_json::to_value(&d.0).unwrap()
}

pair! {
    json_t_json: Json<Doc> => "json";
    setup: "";
    strategy: doc();
    edges: vec![Json(Doc { n: i64::MIN, name: String::new(), tags: vec![], flag: None })];
    same: eq;
    theirs: Value = doc_value, read: "v", write: "$2", same: eq;
    golden: [(
        "'{\"n\":1,\"name\":\"a\",\"tags\":[\"x\"],\"flag\":null}'::json",
        Json(Doc { n: 1, name: "a".into(), tags: vec!["x".into()], flag: None })
    )];
}

pair! {
    json_t_jsonb: Json<Doc> => "jsonb";
    setup: "";
    strategy: doc();
    edges: vec![Json(Doc { n: i64::MAX, name: "é".into(), tags: vec![String::new()], flag: Some(true) })];
    same: eq;
    theirs: Value = doc_value, read: "v", write: "$2", same: same_json;
}

/// Json<Doc> into jsonb: the server's canonical text of an object puts a space after `:` and
/// `,`, serde's compact form does not, so the bytes cannot be equal; both are the version byte
/// 1 and then the same JSON document, and each side reads the other's. (`json_vec_jsonb` has
/// byte-equal golden values.)
#[test]
fn json_t_jsonb_golden_bytes() {
    use bytes::BytesMut;
    use futures_util::TryStreamExt;
    use pgbulk::{Decode, Encode};
    let doc = Json(Doc {
        n: -3,
        name: "é".into(),
        tags: vec!["t".into()],
        flag: Some(false),
    });
    let sql = "'{\"n\": -3, \"name\": \"é\", \"tags\": [\"t\"], \"flag\": false}'::jsonb";
    let rt = super::runtime();
    rt.block_on(async {
        let db = super::fresh(&super::Pair {
            pg: "jsonb",
            setup: "",
        })
        .await;
        let chunks: Vec<bytes::Bytes> = db
            .client()
            .copy_out(&format!("COPY (SELECT {sql}) TO STDOUT (FORMAT binary)"))
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let server = super::copy_fields(&chunks.concat()).remove(0);
        let mut ours = BytesMut::new();
        doc.encode_field(&tokio_postgres::types::Type::JSONB, &mut ours)
            .unwrap();
        assert_eq!(server[4], 1, "server's jsonb version byte");
        assert_eq!(ours[4], 1, "our jsonb version byte");
        let parse = |b: &[u8]| serde_json::from_slice::<Value>(&b[5..]).unwrap();
        assert_eq!(parse(&ours), parse(&server));
        let back =
            Json::<Doc>::decode(&tokio_postgres::types::Type::JSONB, Some(&server[4..])).unwrap();
        assert_eq!(back, doc);
    });
}

pair! {
    json_vec_jsonb: Json<Vec<i64>> => "jsonb";
    setup: "";
    strategy: prop::collection::vec(any::<i64>(), 0..5).prop_map(Json);
    edges: vec![Json(vec![]), Json(vec![i64::MIN, i64::MAX])];
    same: eq;
    theirs: Value = |v| serde_json::to_value(&v.0).unwrap(), read: "v", write: "$2", same: eq;
    golden: [("'[]'::jsonb", Json(vec![])), ("'[7]'::jsonb", Json(vec![7]))];
}
