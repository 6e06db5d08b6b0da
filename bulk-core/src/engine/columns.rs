//! Encoded tuples turned column-wise: each column of a batch as one array value, for binding a
//! batch as parameters (`unnest($1, $2, ..)`) instead of copying it.

use postgres_types::Type;

/// Length of a one-dimensional array's header in `array_send` layout: `ndim`, the has-null
/// flag, the element type, the dimension's length and its lower bound.
const HEADER: usize = 5 * 4;

/// The first `elements.len()` fields of every tuple of `tuples` (binary COPY tuples as the
/// [`Encoder`](super::Encoder) writes them, `rows` of them, no header or trailer), each column
/// as one array value in `array_send` layout: one dimension of `rows` elements, lower bound 1,
/// of element type `elements[c]`. A COPY field and an array element are framed alike (an
/// `int32` length, -1 for NULL, then the bytes), so each field is copied as it is. Fields after
/// the first `elements.len()` (an upsert's ordinal) are skipped.
///
/// The tuples must be well formed (this module's own encoder wrote them): a malformed one
/// would end the walk early, and the arrays would then say more elements than they hold,
/// which the server refuses.
pub(crate) fn tuples_to_arrays(tuples: &[u8], rows: usize, elements: &[Type]) -> Vec<Vec<u8>> {
    // Each column's array, its header left to fill in, and whether it holds a NULL.
    let mut columns: Vec<(Vec<u8>, bool)> = elements
        .iter()
        .map(|_| {
            // Each column's share of the bytes, roughly: one allocation per column mostly.
            let mut c = Vec::with_capacity(HEADER + tuples.len() / elements.len().max(1));
            c.resize(HEADER, 0);
            (c, false)
        })
        .collect();
    let mut pos = 0;
    let field_len = |at: usize| -> Option<i32> {
        Some(i32::from_be_bytes(tuples.get(at..at + 4)?.try_into().ok()?))
    };
    for _ in 0..rows {
        let Some(count) = tuples.get(pos..pos + 2) else {
            break;
        };
        let count = usize::try_from(i16::from_be_bytes([count[0], count[1]])).unwrap_or(0);
        pos += 2;
        for f in 0..count {
            let Some(len) = field_len(pos) else { break };
            let end = pos + 4 + usize::try_from(len).unwrap_or(0);
            if let Some((column, has_null)) = columns.get_mut(f) {
                column.extend_from_slice(&tuples[pos..end.min(tuples.len())]);
                *has_null |= len < 0;
            }
            pos = end;
        }
    }
    let rows = i32::try_from(rows).unwrap_or(i32::MAX);
    columns
        .into_iter()
        .zip(elements)
        .map(|((mut column, has_null), element)| {
            // An empty array has no dimensions: `ndim` 0, the flag and the element type only.
            let words: &[i32] = if rows == 0 {
                column.truncate(12);
                &[0, 0]
            } else {
                &[1, i32::from(has_null)]
            };
            column[0..4].copy_from_slice(&words[0].to_be_bytes());
            column[4..8].copy_from_slice(&words[1].to_be_bytes());
            column[8..12].copy_from_slice(&element.oid().to_be_bytes());
            if rows > 0 {
                column[12..16].copy_from_slice(&rows.to_be_bytes());
                column[16..20].copy_from_slice(&1i32.to_be_bytes());
            }
            column
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::put_be;
    use bytes::BytesMut;

    fn tuple(buf: &mut BytesMut, fields: &[Option<&[u8]>]) {
        put_be(buf, i16::try_from(fields.len()).unwrap().to_be_bytes());
        for f in fields {
            match f {
                None => put_be(buf, (-1i32).to_be_bytes()),
                Some(b) => {
                    put_be(buf, i32::try_from(b.len()).unwrap().to_be_bytes());
                    buf.extend_from_slice(b);
                }
            }
        }
    }

    #[test]
    fn columns_become_arrays_in_array_send_layout() {
        let mut buf = BytesMut::new();
        tuple(
            &mut buf,
            &[Some(&1i64.to_be_bytes()), Some(b"a"), Some(&[9])],
        );
        tuple(&mut buf, &[Some(&2i64.to_be_bytes()), None, Some(&[9])]);
        let arrays = tuples_to_arrays(&buf, 2, &[Type::INT8, Type::TEXT]);
        assert_eq!(arrays.len(), 2);
        let mut ids = Vec::new();
        for word in [1i32, 0, 20, 2, 1] {
            ids.extend_from_slice(&word.to_be_bytes());
        }
        for v in [1i64, 2] {
            ids.extend_from_slice(&8i32.to_be_bytes());
            ids.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(arrays[0], ids);
        let mut names = Vec::new();
        for word in [1i32, 1, 25, 2, 1] {
            names.extend_from_slice(&word.to_be_bytes());
        }
        names.extend_from_slice(&1i32.to_be_bytes());
        names.push(b'a');
        names.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(arrays[1], names);
    }

    #[test]
    fn no_rows_are_empty_arrays() {
        let arrays = tuples_to_arrays(&[], 0, &[Type::INT4]);
        let mut empty = Vec::new();
        for word in [0i32, 0, 23] {
            empty.extend_from_slice(&word.to_be_bytes());
        }
        assert_eq!(arrays, vec![empty]);
    }
}
