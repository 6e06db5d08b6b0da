//! [`KeyScan`]: what the encoder learns about an upsert batch's keys while it stages them.

use postgres_types::Type;

/// Distinct keys [`KeyScan`] remembers before it stops looking and assumes duplicates
/// (bounds its memory: 8 bytes a key).
const KEY_SCAN_LIMIT: usize = 1 << 21;

/// What the encoder learnt about the batch's keys, to choose the merge's plan: whether any key
/// can repeat (else no dedupe), whether the keys arrive in ascending order (else the merge sorts
/// them: rows are locked in key order, which avoids deadlocks between concurrent upserts), and
/// the first input row with a NULL in each key column (named if the column is `NOT NULL`).
///
/// Keys are compared by their binary encoding. Equal bytes are equal keys; unequal bytes can
/// still be equal keys (a case-insensitive collation, numeric `1.0` and `1.00`, a
/// `NULLS NOT DISTINCT` index): the server then refuses the merge (cardinality violation) and it
/// is retried, in the same transaction, with the next
/// [`Dedupe`](crate::sql::upsert::Dedupe).
pub(crate) struct KeyScan {
    /// Per staged column: its key number, if it is a key column.
    key_of: Vec<Option<usize>>,
    /// Width of the one integer key column (big-endian, signed), when that is the whole key.
    int_width: Option<usize>,
    /// Ascending so far (only tracked for an integer key): the first and the last key.
    ascending: Option<(i64, i64)>,
    /// Once the ascending run ended: its range (a later key inside it may repeat one).
    run: Option<(i64, i64)>,
    seen: std::collections::HashSet<u64, std::hash::BuildHasherDefault<KeyHasher>>,
    /// A key may occur twice.
    pub(crate) duplicates: bool,
    /// Every key arrived in strictly ascending order (and none was NULL).
    pub(crate) ordered: bool,
    /// Per key column: the first input row with a NULL in it.
    pub(crate) first_null: Vec<Option<u64>>,
}

impl KeyScan {
    /// A scan for a merge's conflict key over tuples of `types` (the staged columns, ordinal
    /// excluded): `key_at` are the key columns' positions among them
    /// ([`Merge::key_at`](crate::sql::upsert::Merge::key_at)); `None` for a staged insert:
    /// nothing to learn.
    pub(crate) fn new(key_at: Option<Vec<usize>>, types: &[Type]) -> KeyScan {
        let mut key_of = vec![None; types.len()];
        let mut first_null = Vec::new();
        let mut int_width = None;
        if let Some(key_at) = key_at {
            for (k, &at) in key_at.iter().enumerate() {
                key_of[at] = Some(k);
            }
            first_null = vec![None; key_at.len()];
            if let [at] = key_at[..] {
                int_width = match types[at] {
                    Type::INT2 => Some(2),
                    Type::INT4 => Some(4),
                    Type::INT8 => Some(8),
                    _ => None,
                };
            }
        }
        KeyScan {
            key_of,
            int_width,
            ascending: None,
            run: None,
            seen: std::collections::HashSet::default(),
            duplicates: false,
            ordered: int_width.is_some(),
            first_null,
        }
    }

    /// Looks at the keys of one staged tuple (from its field count on, as the engine's
    /// [`Encoder`](crate::engine::Encoder) writes it), input row `row`.
    #[inline]
    pub(crate) fn observe(&mut self, tuple: &[u8], row: u64) {
        if self.first_null.is_empty() {
            return;
        }
        let mut hasher = KeyHasher::default();
        let mut null = false;
        let mut int = None;
        let mut at = 2;
        for key in &self.key_of {
            let len = i32::from_be_bytes([tuple[at], tuple[at + 1], tuple[at + 2], tuple[at + 3]]);
            at += 4;
            let len = usize::try_from(len).ok();
            if let Some(k) = *key {
                match len {
                    None => {
                        null = true;
                        self.first_null[k].get_or_insert(row);
                    }
                    Some(len) => {
                        let bytes = &tuple[at..at + len];
                        if self.int_width == Some(len) {
                            int = Some(match len {
                                2 => i64::from(i16::from_be_bytes([bytes[0], bytes[1]])),
                                4 => i64::from(i32::from_be_bytes([
                                    bytes[0], bytes[1], bytes[2], bytes[3],
                                ])),
                                _ => i64::from_be_bytes(bytes.try_into().unwrap_or([0; 8])),
                            });
                        }
                        std::hash::Hasher::write_usize(&mut hasher, len);
                        std::hash::Hasher::write(&mut hasher, bytes);
                    }
                }
            }
            at += len.unwrap_or(0);
        }
        if null {
            // NULLs are distinct in a plain unique index: such a row never repeats a key.
            self.ordered = false;
            return;
        }
        if self.duplicates {
            return;
        }
        if let Some(v) = int {
            match self.ascending {
                _ if !self.ordered => {}
                None => {
                    self.ascending = Some((v, v));
                    return;
                }
                Some((first, last)) if v > last => {
                    self.ascending = Some((first, v));
                    return;
                }
                Some(run) => {
                    self.ordered = false;
                    self.run = Some(run);
                }
            }
            if matches!(self.run, Some((first, last)) if (first..=last).contains(&v)) {
                self.duplicates = true;
                return;
            }
        }
        self.ordered = false;
        if !self.seen.insert(std::hash::Hasher::finish(&hasher)) || self.seen.len() > KEY_SCAN_LIMIT
        {
            self.duplicates = true;
            self.seen = std::collections::HashSet::default();
        }
    }

    pub(crate) fn has_nulls(&self) -> bool {
        self.first_null.iter().any(Option::is_some)
    }
}

/// `FxHash`'s mixing step: fast, and collisions only cost a dedupe the batch did not need.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.write_u64(u64::from_le_bytes(last));
    }

    #[inline]
    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}
