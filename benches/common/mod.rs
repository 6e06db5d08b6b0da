//! The benchmark shapes, shared by the micro-benchmarks (`benches/codec.rs`) and the end-to-end
//! harness (`benches/e2e.rs`): the row structs, their tables, deterministic data, and the
//! peers' way of writing and reading the same rows through postgres-types (`ToSql`/`FromSql`).

// Not every bench target uses every item.
#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use pgbulk::CopyRow;
use rust_decimal::Decimal;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

/// `narrow`: three columns.
#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "bench_narrow")]
pub struct Narrow {
    pub id: i64,
    pub value: f64,
    pub name: String,
}

/// `users`: a serial key, two texts (one unique), a timestamp.
#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "bench_users")]
pub struct User {
    #[copy(key)]
    pub id: i64,
    pub name: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// `wide`: ten columns of varied types, jsonb through `serde_json::Value`, 10% NULL notes.
#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "bench_wide")]
pub struct Wide {
    pub id: i64,
    pub uid: Uuid,
    pub amount: Decimal,
    pub tags: Vec<String>,
    pub scores: Vec<i32>,
    pub payload: serde_json::Value,
    pub created: DateTime<Utc>,
    pub day: NaiveDate,
    pub flag: bool,
    pub note: Option<String>,
}

/// `narrow` read borrowing its text (`copy_out_each`): nothing allocated per row.
#[derive(CopyRow, Debug)]
#[copy(table = "bench_narrow")]
pub struct NarrowRef<'r> {
    pub id: i64,
    pub value: f64,
    pub name: &'r str,
}

/// `users` read borrowing its texts.
#[derive(CopyRow, Debug)]
#[copy(table = "bench_users")]
pub struct UserRef<'r> {
    pub id: i64,
    pub name: &'r str,
    pub email: &'r str,
    pub created_at: DateTime<Utc>,
}

/// `wide` read the way a reader that forwards rows takes it: texts borrowed, the JSON payload
/// as its text (not parsed); arrays, numbers and dates decoded as in `Wide`.
#[derive(CopyRow, Debug)]
#[copy(table = "bench_wide")]
pub struct WideRef<'r> {
    pub id: i64,
    pub uid: Uuid,
    pub amount: Decimal,
    pub tags: Vec<String>,
    pub scores: Vec<i32>,
    pub payload: &'r str,
    pub created: DateTime<Utc>,
    pub day: NaiveDate,
    pub flag: bool,
    pub note: Option<&'r str>,
}

pub const NARROW_DDL: &str =
    "CREATE TABLE bench_narrow (id bigint, value double precision, name varchar)";
pub const USERS_DDL: &str = "CREATE TABLE bench_users (id bigserial primary key, name text, \
     email text unique, created_at timestamptz)";
pub const WIDE_DDL: &str = "CREATE TABLE bench_wide (id bigint, uid uuid, amount numeric(18,4), \
     tags text[], scores int4[], payload jsonb, created timestamptz, day date, flag bool, \
     note text null)";

pub const NARROW_TYPES: &[Type] = &[Type::INT8, Type::FLOAT8, Type::VARCHAR];
pub const USERS_TYPES: &[Type] = &[Type::INT8, Type::TEXT, Type::TEXT, Type::TIMESTAMPTZ];
pub const WIDE_TYPES: &[Type] = &[
    Type::INT8,
    Type::UUID,
    Type::NUMERIC,
    Type::TEXT_ARRAY,
    Type::INT4_ARRAY,
    Type::JSONB,
    Type::TIMESTAMPTZ,
    Type::DATE,
    Type::BOOL,
    Type::TEXT,
];

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

pub fn narrow(i: i64) -> Narrow {
    Narrow {
        id: i,
        #[allow(clippy::cast_precision_loss)]
        value: i as f64 * 0.25,
        name: format!("name-{i:08}"),
    }
}

/// A user; `version` changes the name only (the upsert's "changed" rows).
pub fn user(i: i64, version: u32) -> User {
    User {
        id: i,
        name: format!("User Number {i} v{version}"),
        email: format!("user{i}@example.com"),
        created_at: base_time() + chrono::Duration::seconds(i),
    }
}

pub fn wide(i: i64) -> Wide {
    Wide {
        id: i,
        uid: Uuid::from_u128(
            0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834_u128
                .wrapping_mul(u128::try_from(i).unwrap() + 1),
        ),
        amount: Decimal::new(i * 7919 % 100_000_000, 4),
        tags: vec![format!("t{}", i % 17), format!("group-{}", i % 5)],
        scores: vec![
            i32::try_from(i % 1000).unwrap(),
            7,
            i32::try_from(i % 31).unwrap(),
        ],
        payload: serde_json::json!({"k": i, "src": "bench", "ok": i % 2 == 0}),
        created: base_time() + chrono::Duration::milliseconds(i * 37),
        day: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Duration::days(i % 3650),
        flag: i % 3 == 0,
        note: (i % 10 != 0).then(|| format!("note for row {i}")),
    }
}

pub fn narrows(n: usize) -> Vec<Narrow> {
    (0..i64::try_from(n).unwrap()).map(narrow).collect()
}

pub fn users(range: std::ops::Range<i64>, version: u32) -> Vec<User> {
    range.map(|i| user(i, version)).collect()
}

pub fn wides(n: usize) -> Vec<Wide> {
    (0..i64::try_from(n).unwrap()).map(wide).collect()
}

/// The peers' view of a row: its values as `&dyn ToSql`, in column order, in a stack array
/// (as a caller of `BinaryCopyInWriter::write` or `execute` writes them).
pub trait Params {
    fn with_params<R>(&self, f: impl FnOnce(&[&(dyn ToSql + Sync)]) -> R) -> R;

    /// Appends the row's values to a statement's parameter list.
    fn extend_params<'a>(&'a self, out: &mut Vec<&'a (dyn ToSql + Sync)>);
}

impl Params for Narrow {
    fn extend_params<'a>(&'a self, out: &mut Vec<&'a (dyn ToSql + Sync)>) {
        out.push(&self.id);
        out.push(&self.value);
        out.push(&self.name);
    }

    fn with_params<R>(&self, f: impl FnOnce(&[&(dyn ToSql + Sync)]) -> R) -> R {
        f(&[&self.id, &self.value, &self.name])
    }
}

impl Params for User {
    fn extend_params<'a>(&'a self, out: &mut Vec<&'a (dyn ToSql + Sync)>) {
        out.push(&self.id);
        out.push(&self.name);
        out.push(&self.email);
        out.push(&self.created_at);
    }

    fn with_params<R>(&self, f: impl FnOnce(&[&(dyn ToSql + Sync)]) -> R) -> R {
        f(&[&self.id, &self.name, &self.email, &self.created_at])
    }
}

impl Params for Wide {
    fn extend_params<'a>(&'a self, out: &mut Vec<&'a (dyn ToSql + Sync)>) {
        out.push(&self.id);
        out.push(&self.uid);
        out.push(&self.amount);
        out.push(&self.tags);
        out.push(&self.scores);
        out.push(&self.payload);
        out.push(&self.created);
        out.push(&self.day);
        out.push(&self.flag);
        out.push(&self.note);
    }

    fn with_params<R>(&self, f: impl FnOnce(&[&(dyn ToSql + Sync)]) -> R) -> R {
        f(&[
            &self.id,
            &self.uid,
            &self.amount,
            &self.tags,
            &self.scores,
            &self.payload,
            &self.created,
            &self.day,
            &self.flag,
            &self.note,
        ])
    }
}

/// Builds a struct from a row of the peers (`BinaryCopyOutRow` or `Row`), by column index.
macro_rules! from_peer_row {
    (Narrow, $row:expr) => {
        Narrow {
            id: $row.get(0),
            value: $row.get(1),
            name: $row.get(2),
        }
    };
    (Wide, $row:expr) => {
        Wide {
            id: $row.get(0),
            uid: $row.get(1),
            amount: $row.get(2),
            tags: $row.get(3),
            scores: $row.get(4),
            payload: $row.get(5),
            created: $row.get(6),
            day: $row.get(7),
            flag: $row.get(8),
            note: $row.get(9),
        }
    };
}

/// This benchmark binary's own run under valgrind (`cachegrind`, no cache simulation) with the
/// environment variable `var` set to `spec`: its instruction count. Exact and repeatable where
/// timings on a shared host drift.
pub fn instructions_of_self(var: &str, spec: &str) -> u64 {
    let exe = std::env::current_exe().expect("own path");
    let out = std::process::Command::new("valgrind")
        .args([
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
        ])
        .arg(&exe)
        .env(var, spec)
        .output()
        .expect("valgrind (apt install valgrind) runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("I   refs:"))
        .unwrap_or_else(|| panic!("{err}"));
    line.rsplit(' ')
        .next()
        .and_then(|n| n.replace(',', "").parse().ok())
        .expect("an instruction count")
}

/// The length of the binary COPY header with no extension (signature, flags, extension length).
const COPY_HEADER: usize = 19;

/// A hand-written decoder of one narrow tuple (`bigint`, `double precision`, `varchar`) from
/// one of tokio-postgres' `copy_out` messages: the least a reader on that transport does to
/// get an owned struct — bounds-checked reads of the three lengths and values, `from_utf8`
/// and a `String` — with none of a library's checks (field count, NULLs, types, row numbers
/// in errors). `None` for the trailer. The reference for what owned reads can reach.
///
/// # Panics
/// On data that is not a narrow tuple (a benchmark reads its own table).
pub fn hand_decode_narrow(mut message: &[u8], first: bool) -> Option<Narrow> {
    if first {
        message = &message[COPY_HEADER..];
    }
    if message.starts_with(&[0xff, 0xff]) {
        return None;
    }
    let mut at = 2;
    let mut field = || {
        let len = i32::from_be_bytes(message[at..at + 4].try_into().unwrap());
        let len = usize::try_from(len).expect("no NULLs in the benchmark table");
        at += 4 + len;
        &message[at - len..at]
    };
    let id = i64::from_be_bytes(field().try_into().unwrap());
    let value = f64::from_be_bytes(field().try_into().unwrap());
    let name = std::str::from_utf8(field()).unwrap().to_owned();
    Some(Narrow { id, value, name })
}
