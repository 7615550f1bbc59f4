//! Screen-to-screen copies as fast-path Orders updates: one ScrBlt primary drawing order
//! (MS-RDPEGDI 2.2.2.2.1.1.2.7) per copy, with every field present and no bounds, so nothing
//! depends on the order state earlier PDUs left in the client.

use ironrdp_pdu::fast_path::{FastPathUpdatePdu, Fragmentation, UpdateCode};

use super::damage::CopyRect;
use super::encode::{EncodeError, MAX_FRAGMENT_PAYLOAD, write_pdu};
use super::frame::Rect;

const TS_STANDARD: u8 = 0x01;
const TS_TYPE_CHANGE: u8 = 0x08;
const TS_ENC_SCRBLT_ORDER: u8 = 0x02;
/// All seven fields: nLeftRect, nTopRect, nWidth, nHeight, bRop, nXSrc, nYSrc.
const ALL_FIELDS: u8 = 0x7f;
/// The raster operation "source copy".
const SRCCOPY: u8 = 0xcc;
/// controlFlags, orderType, fieldFlags, four coordinates, bRop, two coordinates.
pub const ORDER_LEN: usize = 3 + 4 * 2 + 1 + 2 * 2;
/// Orders per PDU, so each PDU is one unfragmented update.
const ORDERS_PER_PDU: usize = (MAX_FRAGMENT_PAYLOAD - 2) / ORDER_LEN;

/// Appends fast-path Orders updates doing `copies` in order.
pub fn encode_copies(copies: &[CopyRect], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let mut data = Vec::with_capacity(2 + ORDERS_PER_PDU.min(copies.len()) * ORDER_LEN);
    for chunk in copies.chunks(ORDERS_PER_PDU) {
        data.clear();
        // chunk.len() <= ORDERS_PER_PDU < u16::MAX.
        data.extend_from_slice(&(chunk.len() as u16).to_le_bytes());
        for copy in chunk {
            scr_blt(copy, &mut data);
        }
        let pdu = FastPathUpdatePdu {
            fragmentation: Fragmentation::Single,
            update_code: UpdateCode::Orders,
            compression_flags: None,
            compression_type: None,
            data: &data,
        };
        write_pdu(&pdu, out)?;
    }
    Ok(())
}

fn scr_blt(copy: &CopyRect, data: &mut Vec<u8>) {
    let d = copy.dst;
    data.extend_from_slice(&[
        TS_STANDARD | TS_TYPE_CHANGE,
        TS_ENC_SCRBLT_ORDER,
        ALL_FIELDS,
    ]);
    // Coordinates are signed 16-bit fields; screen positions are below 32768.
    for v in [d.x, d.y, d.w, d.h] {
        data.extend_from_slice(&(v as i16).to_le_bytes());
    }
    data.push(SRCCOPY);
    for v in [copy.src_x, copy.src_y] {
        data.extend_from_slice(&(v as i16).to_le_bytes());
    }
}

/// TS_STANDARD | TS_SECONDARY.
const SECONDARY: u8 = 0x03;
const TS_CACHE_BITMAP_UNCOMPRESSED_REV2: u8 = 0x04;
const TS_CACHE_BITMAP_COMPRESSED_REV2: u8 = 0x05;
/// bitsPerPixelId of 32 bpp.
const CBR2_32BPP: u16 = 0x6;
const CBR2_HEIGHT_SAME_AS_WIDTH: u16 = 0x01;
const CBR2_PERSISTENT_KEY_PRESENT: u16 = 0x02;
const CBR2_NO_BITMAP_COMPRESSION_HDR: u16 = 0x08;
const TS_ENC_MEMBLT_ORDER: u8 = 0x0D;
/// All nine MemBlt fields, in two field bytes.
const MEMBLT_FIELDS: u16 = 0x01FF;
/// controlFlags, orderType, two field bytes, cacheId, four coordinates, bRop, two
/// coordinates, cacheIndex.
pub const MEMBLT_LEN: usize = 4 + 2 + 4 * 2 + 1 + 2 * 2 + 2;
/// A Cache Bitmap Rev2 order's bytes besides its bitmap: header 6, keys 8, width and height
/// 2 + 2, length 4, index 2, compression header 8.
pub const CACHE_BITMAP_OVERHEAD: usize = 6 + 8 + 4 + 4 + 2 + 8;

/// A bitmap for the client to keep (Cache Bitmap Revision 2, MS-RDPEGDI 2.2.2.2.1.2.3).
pub struct CacheBitmap<'a> {
    pub cache_id: u8,
    pub index: u16,
    /// The tile's content key, sent for a persistent cache.
    pub key: Option<u64>,
    /// Of the bitmap: a multiple of 4, below 128.
    pub width: u16,
    pub height: u16,
    /// 32 bpp, rows bottom-up: a planar stream (`compressed`) or B, G, R, X pixels.
    pub data: &'a [u8],
    pub compressed: bool,
    /// The client takes compressed bitmaps without the compression header.
    pub no_header: bool,
}

/// Appends one Cache Bitmap Revision 2 secondary order.
pub fn cache_bitmap(bitmap: &CacheBitmap<'_>, data: &mut Vec<u8>) {
    let start = data.len();
    let with_header = bitmap.compressed && !bitmap.no_header;
    let mut flags = 0;
    if bitmap.width == bitmap.height {
        flags |= CBR2_HEIGHT_SAME_AS_WIDTH;
    }
    if bitmap.key.is_some() {
        flags |= CBR2_PERSISTENT_KEY_PRESENT;
    }
    if bitmap.compressed && bitmap.no_header {
        flags |= CBR2_NO_BITMAP_COMPRESSION_HDR;
    }
    let extra = u16::from(bitmap.cache_id & 0x7) | (CBR2_32BPP << 3) | (flags << 7);
    let kind = if bitmap.compressed {
        TS_CACHE_BITMAP_COMPRESSED_REV2
    } else {
        TS_CACHE_BITMAP_UNCOMPRESSED_REV2
    };
    data.extend_from_slice(&[SECONDARY, 0, 0]);
    data.extend_from_slice(&extra.to_le_bytes());
    data.push(kind);
    if let Some(key) = bitmap.key {
        data.extend_from_slice(&key.to_le_bytes());
    }
    two_byte_unsigned(bitmap.width, data);
    if bitmap.width != bitmap.height {
        two_byte_unsigned(bitmap.height, data);
    }
    // The length covers the compression header too.
    let header_len = if with_header { 8 } else { 0 };
    four_byte_unsigned((bitmap.data.len() + header_len) as u32, data);
    two_byte_unsigned(bitmap.index, data);
    if with_header {
        let (w, h) = (usize::from(bitmap.width), usize::from(bitmap.height));
        // cbCompFirstRowSize (always 0), cbCompMainBodySize, cbScanWidth, cbUncompressedSize.
        for v in [0, bitmap.data.len(), w, w * h * 4] {
            data.extend_from_slice(&(v as u16).to_le_bytes());
        }
    }
    data.extend_from_slice(bitmap.data);
    // orderLength: the order's length less 13, for historical reasons (2.2.2.2.1.2.1.1).
    let order_len = (data.len() - start - 13) as u16;
    data[start + 1..start + 3].copy_from_slice(&order_len.to_le_bytes());
}

/// Appends one MemBlt primary order drawing cache slot (`cache_id`, `index`) at `dst`, from
/// the bitmap's top left, with every field present and no bounds.
pub fn mem_blt(cache_id: u8, index: u16, dst: Rect, data: &mut Vec<u8>) {
    data.extend_from_slice(&[TS_STANDARD | TS_TYPE_CHANGE, TS_ENC_MEMBLT_ORDER]);
    data.extend_from_slice(&MEMBLT_FIELDS.to_le_bytes());
    // The low byte is the cache, the high one a colour table (none at 32 bpp).
    data.extend_from_slice(&u16::from(cache_id).to_le_bytes());
    for v in [dst.x, dst.y, dst.w, dst.h] {
        data.extend_from_slice(&(v as i16).to_le_bytes());
    }
    data.push(SRCCOPY);
    data.extend_from_slice(&[0, 0, 0, 0]);
    data.extend_from_slice(&index.to_le_bytes());
}

/// TWO_BYTE_UNSIGNED_ENCODING: 7 bits in one byte, else 15 in two (high byte first).
fn two_byte_unsigned(v: u16, data: &mut Vec<u8>) {
    if v < 0x80 {
        data.push(v as u8);
    } else {
        data.extend_from_slice(&[0x80 | (v >> 8) as u8 & 0x7F, v as u8]);
    }
}

/// FOUR_BYTE_UNSIGNED_ENCODING: the top two bits count the bytes after the first.
fn four_byte_unsigned(v: u32, data: &mut Vec<u8>) {
    let bytes = v.to_be_bytes();
    let extra = match v {
        0..=0x3F => 0,
        0x40..=0x3FFF => 1,
        0x4000..=0x3F_FFFF => 2,
        _ => 3,
    };
    let first = bytes[3 - extra] & 0x3F | ((extra as u8) << 6);
    data.push(first);
    data.extend_from_slice(&bytes[4 - extra..]);
}

/// Appends `orders` (whole orders, `count` of them) as one Orders update.
pub fn orders_update(count: u16, orders: &[u8], update: &mut Vec<u8>) {
    update.clear();
    update.extend_from_slice(&count.to_le_bytes());
    update.extend_from_slice(orders);
}

#[cfg(test)]
mod tests {
    use ironrdp_core::{ReadCursor, decode_cursor};
    use ironrdp_pdu::fast_path::FastPathHeader;

    use super::*;

    /// The data of each fast-path update in `out`, decoded by IronRDP.
    fn updates(out: &[u8]) -> Vec<Vec<u8>> {
        let mut cur = ReadCursor::new(out);
        let mut all = Vec::new();
        while !cur.is_empty() {
            let _: FastPathHeader = decode_cursor(&mut cur).unwrap();
            let u: FastPathUpdatePdu<'_> = decode_cursor(&mut cur).unwrap();
            assert!(matches!(u.update_code, UpdateCode::Orders));
            assert!(matches!(u.fragmentation, Fragmentation::Single));
            assert!(u.compression_flags.is_none());
            all.push(u.data.to_vec());
        }
        all
    }

    #[test]
    fn one_scr_blt_in_one_orders_update() {
        let copy = CopyRect {
            dst: Rect::new(320, 80, 512, 318),
            src_x: 320,
            src_y: 82,
        };
        let mut out = Vec::new();
        encode_copies(&[copy], &mut out).unwrap();
        // numberOrders 1; TS_STANDARD|TS_TYPE_CHANGE, ScrBlt, all fields; left 320, top 80,
        // width 512, height 318, SRCCOPY, source 320, 82.
        let want = [
            0x01, 0x00, 0x09, 0x02, 0x7f, 0x40, 0x01, 0x50, 0x00, 0x00, 0x02, 0x3e, 0x01, 0xcc,
            0x40, 0x01, 0x52, 0x00,
        ];
        assert_eq!(updates(&out), vec![want.to_vec()]);
    }

    #[test]
    fn many_copies_are_cut_into_whole_updates() {
        let copy = CopyRect {
            dst: Rect::new(0, 0, 64, 64),
            src_x: 6,
            src_y: 10,
        };
        let mut out = Vec::new();
        encode_copies(&vec![copy; ORDERS_PER_PDU + 1], &mut out).unwrap();
        let counts: Vec<(usize, usize)> = updates(&out)
            .iter()
            .map(|d| (usize::from(u16::from_le_bytes([d[0], d[1]])), d.len()))
            .collect();
        assert_eq!(
            counts,
            vec![
                (ORDERS_PER_PDU, 2 + ORDERS_PER_PDU * ORDER_LEN),
                (1, 2 + ORDER_LEN)
            ]
        );
    }
}
