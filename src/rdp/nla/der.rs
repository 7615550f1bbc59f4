//! The little DER that CredSSP and SPNEGO need: one TLV at a time, every length checked
//! against the bytes that are really there. Single-byte tags only; no indefinite lengths.

use super::NlaError;

pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const OID: u8 = 0x06;
pub const ENUMERATED: u8 = 0x0a;
pub const SEQUENCE: u8 = 0x30;
/// `[APPLICATION 0]`, constructed: the GSS-API InitialContextToken.
pub const APPLICATION_0: u8 = 0x60;

/// Context-specific constructed tag `[n]`.
pub const fn ctx(n: u8) -> u8 {
    0xa0 | n
}

/// One element: its tag, its contents, and the whole encoding (tag + length + contents).
#[derive(Clone, Copy, Debug)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

/// Header length and content length of the element at the start of `buf`, or `Ok(None)`
/// while the header itself is incomplete. The contents may still be missing.
pub fn header(buf: &[u8]) -> Result<Option<(usize, usize)>, NlaError> {
    let Some(&tag) = buf.first() else {
        return Ok(None);
    };
    if tag & 0x1f == 0x1f {
        return Err(NlaError::der("multi-byte tag"));
    }
    let Some(&first) = buf.get(1) else {
        return Ok(None);
    };
    if first < 0x80 {
        return Ok(Some((2, usize::from(first))));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 || count > 4 {
        return Err(NlaError::der("unsupported length form"));
    }
    let Some(bytes) = buf.get(2..2 + count) else {
        return Ok(None);
    };
    let len = bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Ok(Some((2 + count, len)))
}

/// Splits the element at the start of `buf` off the rest.
pub fn read(buf: &[u8]) -> Result<(Tlv<'_>, &[u8]), NlaError> {
    let (head, len) = header(buf)?.ok_or_else(|| NlaError::der("truncated header"))?;
    let end = head
        .checked_add(len)
        .ok_or_else(|| NlaError::der("length overflow"))?;
    let raw = buf
        .get(..end)
        .ok_or_else(|| NlaError::der("length past the end"))?;
    let value = raw.get(head..).unwrap_or_default();
    let rest = buf.get(end..).unwrap_or_default();
    let tag = raw.first().copied().unwrap_or_default();
    Ok((Tlv { tag, value, raw }, rest))
}

/// The element at the start of `buf`, which must have tag `tag`; returns its contents.
pub fn expect(buf: &[u8], tag: u8) -> Result<(&[u8], &[u8]), NlaError> {
    let (tlv, rest) = read(buf)?;
    if tlv.tag != tag {
        return Err(NlaError::der("unexpected tag"));
    }
    Ok((tlv.value, rest))
}

/// All elements inside a constructed value, in order.
pub fn elements(mut buf: &[u8]) -> impl Iterator<Item = Result<Tlv<'_>, NlaError>> {
    std::iter::from_fn(move || {
        if buf.is_empty() {
            return None;
        }
        match read(buf) {
            Ok((tlv, rest)) => {
                buf = rest;
                Some(Ok(tlv))
            }
            Err(e) => {
                buf = &[];
                Some(Err(e))
            }
        }
    })
}

/// A signed INTEGER of at most 8 bytes.
pub fn integer(value: &[u8]) -> Result<i64, NlaError> {
    if value.is_empty() || value.len() > 8 {
        return Err(NlaError::der("integer size"));
    }
    let negative = value.first().is_some_and(|b| b & 0x80 != 0);
    let start = if negative { -1i64 } else { 0 };
    Ok(value
        .iter()
        .fold(start, |acc, &b| (acc << 8) | i64::from(b)))
}

/// Appends tag, DER length and contents.
pub fn write(tag: u8, value: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let used = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | used.len() as u8);
        out.extend_from_slice(used);
    }
    out.extend_from_slice(value);
}

/// The element as a new vector.
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    write(tag, value, &mut out);
    out
}

/// A minimal two's-complement INTEGER.
pub fn write_integer(value: i64, out: &mut Vec<u8>) {
    let bytes = value.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (Some(&b), Some(&next)) = (bytes.get(start), bytes.get(start + 1)) else {
            break;
        };
        let redundant = (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    write(INTEGER, bytes.get(start..).unwrap_or_default(), out);
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests index what they built")]
mod tests {
    use super::*;

    #[test]
    fn lengths_in_every_form_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 65_535, 70_000] {
            let body = vec![7u8; len];
            let enc = tlv(OCTET_STRING, &body);
            let (t, rest) = read(&enc).unwrap();
            assert_eq!((t.tag, t.value.len(), rest.len()), (OCTET_STRING, len, 0));
            assert_eq!(t.raw, &enc[..]);
        }
    }

    #[test]
    fn short_and_bad_lengths_are_errors() {
        assert!(read(&[0x04, 0x05, 1, 2]).is_err());
        assert!(read(&[0x04, 0x80]).is_err(), "indefinite");
        assert!(read(&[0x04, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(read(&[0x1f, 0x01, 0x00]).is_err());
        assert!(read(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(matches!(header(&[0x30, 0x82, 0x01]), Ok(None)));
        assert_eq!(header(&[0x30, 0x82, 0x01, 0x00]).unwrap(), Some((4, 256)));
    }

    #[test]
    fn integers_both_signs() {
        for v in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            6,
            -1,
            -128,
            -129,
            0xC000_006Du32 as i32 as i64,
        ] {
            let mut out = Vec::new();
            write_integer(v, &mut out);
            let (value, _) = expect(&out, INTEGER).unwrap();
            assert_eq!(integer(value).unwrap(), v);
        }
        let mut out = Vec::new();
        write_integer(0xC000_006Du32 as i32 as i64, &mut out);
        assert_eq!(out, [2, 4, 0xc0, 0, 0, 0x6d]);
        assert!(integer(&[]).is_err());
        assert!(integer(&[1; 9]).is_err());
    }
}
