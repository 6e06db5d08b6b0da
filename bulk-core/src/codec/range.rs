//! Codec: range types (`int4range`, `int8range`, `numrange`, `tsrange`, `tstzrange`,
//! `daterange`, and any other range whose subtype has a codec) as [`PgRange<T>`].
//!
//! Layout (`range_send`): one flags byte (`0x01` empty, `0x02` lower bound inclusive, `0x04`
//! upper bound inclusive, `0x08` no lower bound, `0x10` no upper bound), then each present
//! bound as `int32` length and the subtype's `*_send` bytes — the same framing as a field, so
//! a bound is written and read by the subtype's own codec. The subtype is taken from the
//! column's type (`Kind::Range`), never guessed.

use super::{
    accepted_type, begin_len, finish_len, non_null, Decode, DecodeElement, DecodeError, Encode,
    EncodeElement, EncodeError, Reader,
};
use bytes::BytesMut;
use postgres_types::{Kind, Type};
use std::ops::{Bound, Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};

/// `range_send` flag: the range is empty (no bounds follow).
const EMPTY: u8 = 0x01;
/// `range_send` flag: the lower bound is inclusive.
const LB_INC: u8 = 0x02;
/// `range_send` flag: the upper bound is inclusive.
const UB_INC: u8 = 0x04;
/// `range_send` flag: there is no lower bound (`(,x)`).
const LB_INF: u8 = 0x08;
/// `range_send` flag: there is no upper bound (`(x,)`).
const UB_INF: u8 = 0x10;

/// A PostgreSQL range value: `empty`, or a lower and an upper bound, each inclusive
/// ([`Bound::Included`]), exclusive ([`Bound::Excluded`]) or absent ([`Bound::Unbounded`]).
///
/// `PgRange<i32>` reads and writes `int4range`, `PgRange<i64>` `int8range`,
/// `PgRange<rust_decimal::Decimal>` `numrange`, `PgRange<chrono::NaiveDateTime>` `tsrange`,
/// `PgRange<chrono::DateTime<Utc>>` `tstzrange`, `PgRange<chrono::NaiveDate>` `daterange`
/// (and the `time` crate's types with the `time` feature; `Infinity<T>` bounds for
/// ±infinity). Standard ranges convert: `PgRange::from(1..5)` is `[1,5)`, `PgRange::from(..=9)`
/// is `(,9]`.
///
/// The server normalizes what it stores, so a value can read back in another, equal form:
/// discrete ranges (`int4range`, `int8range`, `daterange`) come back as `[lower, upper)`
/// (`[1,5]` reads back as `[1,6)`), a range with no values (`[3,3)`) as [`PgRange::Empty`].
/// A lower bound above the upper bound is refused by the server, naming row and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PgRange<T> {
    /// `empty`: contains no value.
    Empty,
    /// The values between `lower` and `upper`.
    Bounds {
        /// The lower bound.
        lower: Bound<T>,
        /// The upper bound.
        upper: Bound<T>,
    },
}

impl<T> PgRange<T> {
    /// The range between `lower` and `upper`.
    pub fn new(lower: Bound<T>, upper: Bound<T>) -> Self {
        PgRange::Bounds { lower, upper }
    }

    /// Whether this is [`PgRange::Empty`] (a `Bounds` value the server would normalize to
    /// `empty`, such as `[3,3)`, is not).
    pub fn is_empty(&self) -> bool {
        matches!(self, PgRange::Empty)
    }

    /// The lower bound; `None` for `Empty`.
    pub fn lower(&self) -> Option<Bound<&T>> {
        match self {
            PgRange::Empty => None,
            PgRange::Bounds { lower, .. } => Some(lower.as_ref()),
        }
    }

    /// The upper bound; `None` for `Empty`.
    pub fn upper(&self) -> Option<Bound<&T>> {
        match self {
            PgRange::Empty => None,
            PgRange::Bounds { upper, .. } => Some(upper.as_ref()),
        }
    }

    /// Whether `value` lies in the range (PostgreSQL's `@>`).
    pub fn contains(&self, value: &T) -> bool
    where
        T: PartialOrd,
    {
        match self {
            PgRange::Empty => false,
            PgRange::Bounds { lower, upper } => {
                let above = match lower {
                    Bound::Included(l) => l <= value,
                    Bound::Excluded(l) => l < value,
                    Bound::Unbounded => true,
                };
                let below = match upper {
                    Bound::Included(u) => value <= u,
                    Bound::Excluded(u) => value < u,
                    Bound::Unbounded => true,
                };
                above && below
            }
        }
    }
}

impl<T> From<Range<T>> for PgRange<T> {
    /// `a..b` is `[a,b)`.
    fn from(r: Range<T>) -> Self {
        PgRange::new(Bound::Included(r.start), Bound::Excluded(r.end))
    }
}

impl<T> From<RangeInclusive<T>> for PgRange<T> {
    /// `a..=b` is `[a,b]`.
    fn from(r: RangeInclusive<T>) -> Self {
        let (start, end) = r.into_inner();
        PgRange::new(Bound::Included(start), Bound::Included(end))
    }
}

impl<T> From<RangeFrom<T>> for PgRange<T> {
    /// `a..` is `[a,)`.
    fn from(r: RangeFrom<T>) -> Self {
        PgRange::new(Bound::Included(r.start), Bound::Unbounded)
    }
}

impl<T> From<RangeTo<T>> for PgRange<T> {
    /// `..b` is `(,b)`.
    fn from(r: RangeTo<T>) -> Self {
        PgRange::new(Bound::Unbounded, Bound::Excluded(r.end))
    }
}

impl<T> From<RangeToInclusive<T>> for PgRange<T> {
    /// `..=b` is `(,b]`.
    fn from(r: RangeToInclusive<T>) -> Self {
        PgRange::new(Bound::Unbounded, Bound::Included(r.end))
    }
}

impl<T> From<RangeFull> for PgRange<T> {
    /// `..` is `(,)`.
    fn from(_: RangeFull) -> Self {
        PgRange::new(Bound::Unbounded, Bound::Unbounded)
    }
}

/// The subtype of range type `ty` that `accepts` takes (through domains over the subtype).
#[inline]
fn subtype(ty: &Type, accepts: impl Fn(&Type) -> bool) -> Option<&Type> {
    match ty.kind() {
        Kind::Range(sub) => accepted_type(sub, accepts),
        _ => None,
    }
}

/// Writes one present bound with the subtype's codec (length, then bytes).
#[inline]
fn bound_send<T: Encode>(
    v: &T,
    which: &str,
    sub: &Type,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    if v.is_null() {
        return Err(EncodeError::OutOfRange(format!(
            "the range's {which} bound is NULL; a range bound cannot be NULL \
             (use Bound::Unbounded for no bound)"
        )));
    }
    v.encode_field(sub, buf).map_err(|e| match e {
        EncodeError::OutOfRange(m) => EncodeError::OutOfRange(format!("range {which} bound: {m}")),
        other => other,
    })
}

/// Writes a range field: length, flags, then the present bounds.
#[inline]
fn range_send<T: Encode>(v: &PgRange<T>, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let Some(sub) = subtype(ty, <T as Encode>::accepts) else {
        return Err(EncodeError::OutOfRange(format!(
            "column type {ty} is not a range of the field's type"
        )));
    };
    let at = begin_len(buf);
    let (lower, upper) = match v {
        PgRange::Empty => {
            buf.extend_from_slice(&[EMPTY]);
            return finish_len(buf, at);
        }
        PgRange::Bounds { lower, upper } => (lower, upper),
    };
    let flags = match lower {
        Bound::Included(_) => LB_INC,
        Bound::Excluded(_) => 0,
        Bound::Unbounded => LB_INF,
    } | match upper {
        Bound::Included(_) => UB_INC,
        Bound::Excluded(_) => 0,
        Bound::Unbounded => UB_INF,
    };
    buf.extend_from_slice(&[flags]);
    let written = [(lower, "lower"), (upper, "upper")]
        .into_iter()
        .try_for_each(|(bound, which)| match bound {
            Bound::Included(b) | Bound::Excluded(b) => bound_send(b, which, sub, buf),
            Bound::Unbounded => Ok(()),
        });
    match written {
        Ok(()) => finish_len(buf, at),
        Err(e) => {
            buf.truncate(at);
            Err(e)
        }
    }
}

/// Reads one bound: absent when `inf_flag` is set, else length, bytes, decoded as the subtype.
#[inline]
fn bound_recv<T: Decode>(
    r: &mut Reader<'_>,
    flags: u8,
    (inf_flag, inc_flag): (u8, u8),
    which: &str,
    sub: &Type,
) -> Result<Bound<T>, DecodeError> {
    if flags & inf_flag != 0 {
        return Ok(Bound::Unbounded);
    }
    let len = r.i32()?;
    let len = usize::try_from(len)
        .map_err(|_| DecodeError::Invalid(format!("range {which} bound has length {len}")))?;
    let raw = r.take(len)?;
    let v = T::decode(sub, Some(raw)).map_err(|e| match e {
        DecodeError::Invalid(m) => DecodeError::Invalid(format!("range {which} bound: {m}")),
        DecodeError::OutOfRange(m) => DecodeError::OutOfRange(format!("range {which} bound: {m}")),
        other => other,
    })?;
    Ok(if flags & inc_flag != 0 {
        Bound::Included(v)
    } else {
        Bound::Excluded(v)
    })
}

/// Reads a range value.
#[inline]
fn range_recv<T: Decode>(ty: &Type, raw: &[u8]) -> Result<PgRange<T>, DecodeError> {
    let Some(sub) = subtype(ty, <T as Decode>::accepts) else {
        return Err(DecodeError::Invalid(format!(
            "column type {ty} is not a range of the field's type"
        )));
    };
    let mut r = Reader::new(raw, "range");
    let flags = r.take(1)?[0];
    let range = if flags & EMPTY != 0 {
        PgRange::Empty
    } else {
        let lower = bound_recv(&mut r, flags, (LB_INF, LB_INC), "lower", sub)?;
        let upper = bound_recv(&mut r, flags, (UB_INF, UB_INC), "upper", sub)?;
        PgRange::Bounds { lower, upper }
    };
    r.finish()?;
    Ok(range)
}

impl<T: Encode> Encode for PgRange<T> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        subtype(ty, <T as Encode>::accepts).is_some()
    }

    #[inline]
    fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        range_send(self, ty, buf)
    }
}

impl<T: Decode> Decode for PgRange<T> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        subtype(ty, <T as Decode>::accepts).is_some()
    }

    #[inline]
    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        range_recv(ty, non_null(raw)?)
    }
}

impl<T: Encode> EncodeElement for PgRange<T> {}
impl<T: Decode> DecodeElement for PgRange<T> {}

/// Without a server: the layout, bounds through the subtype's codec, and no input bytes make
/// the decoder panic. (The server-side checks are in the integration tests.)
#[cfg(test)]
mod tests {
    use super::{Decode, Encode, PgRange};
    use bytes::BytesMut;
    use postgres_types::Type;
    use proptest::prelude::*;
    use std::ops::Bound::{Excluded, Included, Unbounded};

    fn value<T: Encode>(v: &T, ty: &Type) -> Vec<u8> {
        let mut buf = BytesMut::new();
        v.encode_field(ty, &mut buf).unwrap();
        buf[4..].to_vec()
    }

    #[test]
    fn range_send_layout() {
        // '[1,5)'::int4range, '(,5]', 'empty', as the server's binary COPY writes them
        let one_five = [2, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 5];
        assert_eq!(value(&PgRange::from(1..5), &Type::INT4_RANGE), one_five);
        assert_eq!(
            value(&PgRange::from(..=5), &Type::INT4_RANGE),
            [0x08 | 0x04, 0, 0, 0, 4, 0, 0, 0, 5]
        );
        assert_eq!(value(&PgRange::<i32>::Empty, &Type::INT4_RANGE), [1]);
        assert_eq!(
            PgRange::<i32>::decode(&Type::INT4_RANGE, Some(&one_five)).unwrap(),
            PgRange::new(Included(1), Excluded(5))
        );
        assert!(<PgRange<i32> as Encode>::accepts(&Type::INT4_RANGE));
        assert!(!<PgRange<i32> as Encode>::accepts(&Type::INT8_RANGE));
        assert!(!<PgRange<i32> as Encode>::accepts(&Type::INT4));
        assert!(!<PgRange<i32> as Encode>::accepts(&Type::INT4MULTI_RANGE));
    }

    #[test]
    fn contains_follows_the_bounds() {
        let r = PgRange::new(Excluded(1), Included(3));
        assert!(!r.contains(&1) && r.contains(&2) && r.contains(&3) && !r.contains(&4));
        assert!(PgRange::<i32>::from(..).contains(&i32::MIN));
        assert!(!PgRange::<i32>::Empty.contains(&0));
        assert_eq!(PgRange::<i32>::from(..).lower(), Some(Unbounded));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(raw in proptest::collection::vec(any::<u8>(), 0..24)) {
            let _ = PgRange::<i32>::decode(&Type::INT4_RANGE, Some(&raw));
            let _ = PgRange::<i64>::decode(&Type::INT8_RANGE, Some(&raw));
        }

        #[test]
        fn int8_ranges_round_trip(a in any::<i64>(), b in any::<i64>(), inc in any::<(bool, bool)>()) {
            let bound = |v, i| if i { Included(v) } else { Excluded(v) };
            let r = PgRange::new(bound(a.min(b), inc.0), bound(a.max(b), inc.1));
            let bytes = value(&r, &Type::INT8_RANGE);
            prop_assert_eq!(PgRange::<i64>::decode(&Type::INT8_RANGE, Some(&bytes)).unwrap(), r);
        }
    }
}
