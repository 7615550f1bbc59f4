//! Screen-to-screen copies as fast-path Orders updates: one ScrBlt primary drawing order
//! (MS-RDPEGDI 2.2.2.2.1.1.2.7) per copy, with every field present and no bounds, so nothing
//! depends on the order state earlier PDUs left in the client.

use ironrdp_pdu::fast_path::{FastPathUpdatePdu, Fragmentation, UpdateCode};

use super::damage::CopyRect;
use super::encode::{EncodeError, MAX_FRAGMENT_PAYLOAD, write_pdu};

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

#[cfg(test)]
mod tests {
    use ironrdp_core::{ReadCursor, decode_cursor};
    use ironrdp_pdu::fast_path::FastPathHeader;

    use super::*;
    use crate::screen::Rect;

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
