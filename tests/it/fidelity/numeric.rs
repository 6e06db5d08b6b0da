//! `Decimal` and `PgNumeric` into numeric; inet/cidr.

use super::{eq, pair};
use pgbulk::{Inet, PgNumeric};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Any `Decimal`: 96-bit mantissa, either sign, scale 0..=28.
pub fn decimal() -> impl Strategy<Value = Decimal> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
        0..=28u32,
    )
        .prop_map(|(lo, mid, hi, neg, scale)| Decimal::from_parts(lo, mid, hi, neg, scale))
}

/// Decimals compare by value and scale: `1.50` must stay `1.50`.
pub fn same_decimal(a: &Decimal, b: &Decimal) -> bool {
    a == b && a.scale() == b.scale()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn decimal_edges() -> Vec<Decimal> {
    vec![
        Decimal::ZERO,
        // (a zero with a scale, `0.00`, is in the golden values: rust_decimal's ToSql, the
        // cross-check's other side, drops the scale of zero)
        dec("1.50"),
        Decimal::MAX,
        Decimal::MIN,
        Decimal::from_parts(1, 0, 0, false, 28),
        Decimal::from_parts(1, 0, 0, true, 28),
        dec("10000"),
        dec("0.0001"),
    ]
}

pair! {
    decimal_numeric: Decimal => "numeric";
    setup: "";
    strategy: decimal();
    edges: decimal_edges();
    same: same_decimal;
    theirs: Decimal = |v| *v, read: "v", write: "$2", same: same_decimal;
    golden: [
        ("0::numeric", Decimal::ZERO),
        ("0.00::numeric", dec("0.00")),
        ("1.50::numeric", dec("1.50")),
        ("(-0.0001)::numeric", dec("-0.0001")),
        ("10000::numeric", dec("10000")),
        ("79228162514264337593543950335::numeric", Decimal::MAX),
        ("0.0000000000000000000000000001::numeric", Decimal::from_parts(1, 0, 0, false, 28)),
    ];
}

fn same_pg_numeric(a: &PgNumeric, b: &PgNumeric) -> bool {
    match (a, b) {
        (PgNumeric::Value(x), PgNumeric::Value(y)) => same_decimal(x, y),
        _ => a == b,
    }
}

/// The server's text form of a `PgNumeric`.
fn pg_numeric_text(v: &PgNumeric) -> String {
    match v {
        PgNumeric::Value(d) => d.to_string(),
        PgNumeric::NaN => "NaN".into(),
        PgNumeric::PosInfinity => "Infinity".into(),
        PgNumeric::NegInfinity => "-Infinity".into(),
    }
}

/// Whether the server's numeric holds ±Infinity (PostgreSQL 14 and later; before, pgbulk
/// refuses them on the client: `server::numeric_infinity_is_refused_before_14_and_written_from_14`).
fn numeric_infinity() -> bool {
    crate::server::version_num() >= 140_000
}

/// Any `PgNumeric` the server holds.
fn pg_numeric() -> BoxedStrategy<PgNumeric> {
    let infinity = u32::from(numeric_infinity());
    prop_oneof![
        1 => Just(PgNumeric::NaN),
        infinity => Just(PgNumeric::PosInfinity),
        infinity => Just(PgNumeric::NegInfinity),
        6 => decimal().prop_map(PgNumeric::Value),
    ]
    .boxed()
}

fn pg_numeric_edges() -> Vec<PgNumeric> {
    let mut edges = vec![PgNumeric::NaN, PgNumeric::Value(dec("-1.50"))];
    if numeric_infinity() {
        edges.extend([PgNumeric::PosInfinity, PgNumeric::NegInfinity]);
    }
    edges
}

pair! {
    pg_numeric_numeric: PgNumeric => "numeric";
    setup: "";
    strategy: pg_numeric();
    edges: pg_numeric_edges();
    same: same_pg_numeric;
    // rust_decimal's FromSql cannot read NaN/±Infinity: the server's text I/O is the other side
    theirs: String = pg_numeric_text, read: "v::text", write: "$2::text::numeric", same: eq;
    golden: [
        ("'NaN'::numeric", PgNumeric::NaN),
        ("12.345::numeric", PgNumeric::Value(dec("12.345"))),
    ];
}

/// The server's bytes for ±Infinity equal ours, from PostgreSQL 14; before, the server has no
/// numeric infinity at all (the floor the README states).
#[test]
fn pg_numeric_infinity_golden_bytes() {
    let pair = super::Pair {
        pg: "numeric",
        setup: "",
    };
    if numeric_infinity() {
        super::golden_bytes::<PgNumeric>(
            &pair,
            &[
                ("'Infinity'::numeric", PgNumeric::PosInfinity),
                ("'-Infinity'::numeric", PgNumeric::NegInfinity),
            ],
            same_pg_numeric,
        );
    } else {
        super::runtime().block_on(async {
            let db = crate::db().await;
            let err = db
                .client()
                .query_one("SELECT 'Infinity'::numeric", &[])
                .await
                .unwrap_err();
            assert_eq!(
                err.code(),
                Some(&tokio_postgres::error::SqlState::INVALID_TEXT_REPRESENTATION)
            );
        });
    }
}

/// Any IP address.
fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

fn ip_edges() -> Vec<IpAddr> {
    vec![
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V4(Ipv4Addr::BROADCAST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::from(u128::MAX)),
        IpAddr::from_str("::ffff:1.2.3.4").unwrap(),
    ]
}

pair! {
    ip_addr_inet: IpAddr => "inet";
    setup: "";
    strategy: ip();
    edges: ip_edges();
    same: eq;
    theirs: IpAddr = |v| *v, read: "v", write: "$2", same: eq;
    golden: [
        ("'1.2.3.4'::inet", IpAddr::from_str("1.2.3.4").unwrap()),
        ("'::1'::inet", IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ("'2001:db8::ff00:42:8329'::inet", IpAddr::from_str("2001:db8::ff00:42:8329").unwrap()),
    ];
}

pair! {
    ip_addr_cidr: IpAddr => "cidr";
    setup: "";
    strategy: ip();
    edges: ip_edges();
    same: eq;
    // tokio-postgres' IpAddr is inet only: the server's text I/O is the other side
    theirs: String = |v| Inet::from(*v).to_string(), read: "v::text", write: "$2::text::cidr", same: eq;
    golden: [
        ("'1.2.3.4/32'::cidr", IpAddr::from_str("1.2.3.4").unwrap()),
        ("'::1/128'::cidr", IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ];
}

/// Any address with any valid prefix length.
fn inet() -> impl Strategy<Value = Inet> {
    ip().prop_flat_map(|a| {
        let max: u8 = if a.is_ipv4() { 32 } else { 128 };
        (0..=max).prop_map(move |p| Inet::new(a, p).unwrap())
    })
}

/// The network of an `Inet`: the bits right of the prefix cleared.
fn network(v: &Inet) -> Inet {
    let host = u32::from(if v.addr().is_ipv4() { 32 } else { 128 } - v.prefix());
    let addr = match v.addr() {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(
            u32::from(a)
                .checked_shr(host)
                .unwrap_or(0)
                .checked_shl(host)
                .unwrap_or(0),
        )),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(
            u128::from(a)
                .checked_shr(host)
                .unwrap_or(0)
                .checked_shl(host)
                .unwrap_or(0),
        )),
    };
    Inet::new(addr, v.prefix()).unwrap()
}

pair! {
    inet_inet: Inet => "inet";
    setup: "";
    strategy: inet();
    edges: vec![Inet::new(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)), 0).unwrap(), Inet::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 64).unwrap()];
    same: eq;
    // text(inet) always shows the prefix length, as Inet's Display does
    theirs: String = Inet::to_string, read: "v::text", write: "$2::text::inet", same: eq;
    golden: [
        ("'192.168.1.5/24'::inet", Inet::new(IpAddr::from_str("192.168.1.5").unwrap(), 24).unwrap()),
        ("'10.0.0.1'::inet", Inet::from(IpAddr::from_str("10.0.0.1").unwrap())),
        ("'2001:db8::1/48'::inet", Inet::new(IpAddr::from_str("2001:db8::1").unwrap(), 48).unwrap()),
    ];
}

pair! {
    inet_cidr: Inet => "cidr";
    setup: "";
    strategy: inet().prop_map(|v| network(&v));
    edges: vec![Inet::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0).unwrap(), Inet::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0).unwrap()];
    same: eq;
    theirs: String = Inet::to_string, read: "v::text", write: "$2::text::cidr", same: eq;
    golden: [
        ("'192.168.1.0/24'::cidr", Inet::new(IpAddr::from_str("192.168.1.0").unwrap(), 24).unwrap()),
        ("'2001:db8::/32'::cidr", Inet::new(IpAddr::from_str("2001:db8::").unwrap(), 32).unwrap()),
    ];
}
