//! Canonical binary encoding.
//!
//! Everything that is signed, hashed or stored has exactly one byte representation: fixed-width
//! big-endian integers, fixed-size byte arrays written raw, variable-length data prefixed with a
//! `u32` length, enums as a one-byte tag. Decoding is total: any byte string either decodes to a
//! value whose re-encoding is the same bytes, or yields a typed [`DecodeError`]. Lengths read from
//! the input are checked against both a per-field bound and the bytes actually remaining, so a
//! hostile length cannot make the decoder allocate.

use thiserror::Error;

/// Why a byte string is not a valid encoding.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("input ended early while reading {0}")]
    UnexpectedEnd(&'static str),
    #[error("unknown tag {tag} for {what}")]
    UnknownTag { what: &'static str, tag: u8 },
    #[error("{what} has {len} elements, more than the limit {max}")]
    TooLong { what: &'static str, len: u64, max: u64 },
    #[error("invalid value for {0}")]
    InvalidValue(&'static str),
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(u64),
}

/// Appends canonical encodings to a buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Self { buf: Vec::with_capacity(capacity) }
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    /// Raw bytes of a fixed-size field (the length is implied by the type).
    pub fn fixed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// A `u32` length prefix followed by the bytes. Callers bound the length before encoding.
    pub fn var_bytes(&mut self, bytes: &[u8]) {
        let len = u32::try_from(bytes.len());
        // Encoders only write values that passed their own bounds, all far below 4 GiB.
        assert!(len.is_ok(), "variable-length field exceeds u32");
        self.u32(len.unwrap_or(u32::MAX));
        self.buf.extend_from_slice(bytes);
    }

    /// A `u32` element count; the elements follow.
    pub fn count(&mut self, n: usize) {
        let n = u32::try_from(n);
        assert!(n.is_ok(), "collection exceeds u32 elements");
        self.u32(n.unwrap_or(u32::MAX));
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// Reads canonical encodings from a byte slice without ever panicking.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::UnexpectedEnd(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.array::<1>(what)?))
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array::<2>(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array::<4>(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array::<8>(what)?))
    }

    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidValue(what)),
        }
    }

    /// Variable-length bytes of at most `max` bytes.
    pub fn var_bytes(&mut self, max: u32, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(what)?;
        if len > max {
            return Err(DecodeError::TooLong { what, len: len.into(), max: max.into() });
        }
        let len = usize::try_from(len).map_err(|_| DecodeError::InvalidValue(what))?;
        self.take(len, what)
    }

    /// An element count of at most `max`, also bounded by the bytes left (each element takes at
    /// least `min_element_bytes`), so a hostile count cannot drive a large allocation.
    pub fn count(
        &mut self,
        max: u32,
        min_element_bytes: usize,
        what: &'static str,
    ) -> Result<usize, DecodeError> {
        let n = self.u32(what)?;
        if n > max {
            return Err(DecodeError::TooLong { what, len: n.into(), max: max.into() });
        }
        let n = usize::try_from(n).map_err(|_| DecodeError::InvalidValue(what))?;
        let needed = n.checked_mul(min_element_bytes.max(1));
        match needed {
            Some(needed) if needed <= self.rest.len() => Ok(n),
            _ => Err(DecodeError::UnexpectedEnd(what)),
        }
    }

    /// Succeeds only when every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.rest.len() as u64))
        }
    }
}

/// A type with a canonical encoding.
pub trait Encode {
    fn encode_to(&self, w: &mut Writer);

    fn encode(&self) -> Vec<u8> {
        // Room for a typical transaction without regrowing (a block still grows as needed).
        let mut w = Writer::with_capacity(256);
        self.encode_to(&mut w);
        w.into_bytes()
    }
}

/// A type that decodes from its canonical encoding.
pub trait Decode: Sized {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes a whole byte string; trailing bytes are an error.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

/// Encodes a slice as a count followed by the elements.
pub fn encode_seq<T: Encode>(w: &mut Writer, items: &[T]) {
    w.count(items.len());
    for item in items {
        item.encode_to(w);
    }
}

/// Decodes a count-prefixed sequence of at most `max` elements.
pub fn decode_seq<T: Decode>(
    r: &mut Reader<'_>,
    max: u32,
    min_element_bytes: usize,
    what: &'static str,
) -> Result<Vec<T>, DecodeError> {
    let n = r.count(max, min_element_bytes, what)?;
    let mut out = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        out.push(T::decode_from(r)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_count_is_rejected_without_allocation() {
        let mut bytes = u32::MAX.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        let mut r = Reader::new(&bytes);
        assert_eq!(r.count(u32::MAX, 8, "items"), Err(DecodeError::UnexpectedEnd("items")));
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        struct One(u8);
        impl Decode for One {
            fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(One(r.u8("one")?))
            }
        }
        assert!(matches!(One::decode(&[1, 2]), Err(DecodeError::TrailingBytes(1))));
        assert_eq!(One::decode(&[7]).map(|o| o.0), Ok(7));
    }
}
