//! The on-disk frame around a postcard payload: magic, format version, length, CRC-32.
//!
//! ```text
//! "TSHD" | version u16 LE | payload length u32 LE | crc32 of payload u32 LE | payload
//! ```
//! A blob that fails any check is rejected whole; nothing half-written is taken as good.

pub const MAGIC: &[u8; 4] = b"TSHD";
pub const HEADER_LEN: usize = 14;
/// State is a few hundred bytes; anything near this is not ours.
pub const MAX_PAYLOAD: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum BlobError {
    Truncated { len: usize },
    BadMagic,
    UnknownVersion(u16),
    TooLarge(usize),
    LengthMismatch { header: usize, actual: usize },
    BadChecksum,
}

impl std::fmt::Display for BlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobError::Truncated { len } => write!(f, "truncated ({len} bytes)"),
            BlobError::BadMagic => write!(f, "not a thinshadow state file"),
            BlobError::UnknownVersion(v) => write!(f, "unknown format version {v}"),
            BlobError::TooLarge(len) => write!(f, "payload of {len} bytes is too large"),
            BlobError::LengthMismatch { header, actual } => {
                write!(f, "header says {header} payload bytes, file has {actual}")
            }
            BlobError::BadChecksum => write!(f, "checksum mismatch"),
        }
    }
}

impl std::error::Error for BlobError {}

pub fn wrap(version: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks the frame of a blob of one of the `accepted` versions; returns version and payload.
pub fn unwrap<'a>(accepted: &[u16], bytes: &'a [u8]) -> Result<(u16, &'a [u8]), BlobError> {
    if bytes.len() < HEADER_LEN {
        return Err(BlobError::Truncated { len: bytes.len() });
    }
    if &bytes[..4] != MAGIC {
        return Err(BlobError::BadMagic);
    }
    let found_version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if !accepted.contains(&found_version) {
        return Err(BlobError::UnknownVersion(found_version));
    }
    let len = u32::from_le_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(BlobError::TooLarge(len));
    }
    let payload = &bytes[HEADER_LEN..];
    if payload.len() != len {
        return Err(BlobError::LengthMismatch {
            header: len,
            actual: payload.len(),
        });
    }
    let crc = u32::from_le_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]);
    if crc != crc32(payload) {
        return Err(BlobError::BadChecksum);
    }
    Ok((found_version, payload))
}

/// CRC-32 (IEEE, reflected), one table lookup per byte: the fuzzer checks every input.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc = (crc >> 8) ^ CRC_TABLE[usize::from(crc as u8 ^ byte)];
    }
    !crc
}

/// The CRC of each byte value, built at compile time (1 KiB).
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn crc32_matches_known_vectors() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"a"), 0xE8B7_BE43);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
        assert_eq!(crc32(&[0u8; 32]), 0x190A_55AD);
        assert_eq!(crc32(&[0xFFu8; 32]), 0xFF6C_AB0B);
    }

    #[test]
    fn round_trip() {
        let blob = wrap(3, b"hello");
        assert_eq!(unwrap(&[2, 3], &blob), Ok((3, &b"hello"[..])));
    }

    #[test]
    fn every_truncation_and_flip_is_rejected() {
        let blob = wrap(1, b"some state payload");
        for cut in 0..blob.len() {
            assert!(
                unwrap(&[1], &blob[..cut]).is_err(),
                "truncated at {cut} accepted"
            );
        }
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x40;
            assert!(unwrap(&[1], &bad).is_err(), "flip at {i} accepted");
        }
        assert_eq!(unwrap(&[2], &blob), Err(BlobError::UnknownVersion(1)));
    }
}
