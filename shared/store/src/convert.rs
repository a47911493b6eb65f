//! Conversions between Rust values and fixed-width columns, in both directions.
//!
//! Writing, a `u64` that does not fit an `i64` is [`StoreError::ValueOutOfRange`]. Reading, a
//! column that does not decode is [`StoreError::CorruptRow`]: database contents never panic.

use crate::StoreError;

/// A `u64` as a `BIGINT` column value.
pub(crate) fn to_i64(field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::ValueOutOfRange { field, value })
}

/// Any count (a slice length, a limit) as a `u64` for an error report.
pub(crate) fn count_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// `bytes` as lowercase hexadecimal, for error messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `len` bytes of `record.field` within `min..=max`, or [`StoreError::FieldLength`].
pub(crate) fn check_len(
    record: &'static str,
    field: &'static str,
    len: usize,
    (min, max): (u32, u32),
) -> Result<(), StoreError> {
    let len = count_u64(len);
    let (min, max) = (u64::from(min), u64::from(max));
    if (min..=max).contains(&len) {
        Ok(())
    } else {
        Err(StoreError::FieldLength { record, field, len, min, max })
    }
}

/// Where a stored value came from, for [`StoreError::CorruptRow`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Column {
    pub(crate) table: &'static str,
    pub(crate) column: &'static str,
}

impl Column {
    pub(crate) const fn new(table: &'static str, column: &'static str) -> Column {
        Column { table, column }
    }

    pub(crate) fn corrupt(self, detail: String) -> StoreError {
        StoreError::CorruptRow { table: self.table, column: self.column, detail }
    }

    /// A non-negative `BIGINT` as a `u64`.
    pub(crate) fn u64(self, value: i64) -> Result<u64, StoreError> {
        u64::try_from(value).map_err(|_| self.corrupt(format!("negative value {value}")))
    }

    /// A `SMALLINT` holding a one-byte code as a `u8`.
    pub(crate) fn u8(self, value: i16) -> Result<u8, StoreError> {
        u8::try_from(value).map_err(|_| self.corrupt(format!("{value} is not a one-byte code")))
    }

    /// A fixed-length blob (a hash, an id) as an array.
    pub(crate) fn array<const N: usize>(self, bytes: &[u8]) -> Result<[u8; N], StoreError> {
        <[u8; N]>::try_from(bytes)
            .map_err(|_| self.corrupt(format!("{} bytes, expected {N}", bytes.len())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMN: Column = Column::new("blocks", "hash");

    #[test]
    fn u64_above_i64_max_is_out_of_range() {
        assert_eq!(to_i64("height", 7).unwrap(), 7);
        assert_eq!(to_i64("height", i64::MAX as u64).unwrap(), i64::MAX);
        let error = to_i64("height", 1 << 63).unwrap_err();
        assert!(matches!(
            error,
            StoreError::ValueOutOfRange { field: "height", value } if value == 1 << 63
        ));
    }

    #[test]
    fn hex_is_lowercase_and_two_digits_per_byte() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn lengths_are_checked_inclusively() {
        assert!(check_len("user", "username", 1, (1, 64)).is_ok());
        assert!(check_len("user", "username", 64, (1, 64)).is_ok());
        assert!(matches!(
            check_len("user", "username", 65, (1, 64)).unwrap_err(),
            StoreError::FieldLength { record: "user", field: "username", len: 65, min: 1, max: 64 }
        ));
        assert!(matches!(
            check_len("user", "username", 0, (1, 64)),
            Err(StoreError::FieldLength { len: 0, .. })
        ));
    }

    #[test]
    fn stored_values_that_do_not_decode_are_corrupt_rows() {
        assert_eq!(COLUMN.u64(5).unwrap(), 5);
        assert!(matches!(COLUMN.u64(-1), Err(StoreError::CorruptRow { .. })));
        assert_eq!(COLUMN.u8(255).unwrap(), 255);
        assert!(matches!(COLUMN.u8(256), Err(StoreError::CorruptRow { .. })));
        assert!(matches!(COLUMN.u8(-1), Err(StoreError::CorruptRow { .. })));
        assert_eq!(COLUMN.array::<2>(&[1, 2]).unwrap(), [1, 2]);
        assert!(matches!(COLUMN.array::<32>(&[0; 31]), Err(StoreError::CorruptRow { .. })));
    }
}
