//! Whole 64x64 tiles through the client's bitmap cache: a tile the client already holds costs
//! one MemBlt order (21 bytes); a new one is sent once as a Cache Bitmap Rev2 order with the
//! same planar stream a bitmap update would carry, then drawn with MemBlt. Repeated content
//! (a background flipped back, a window returning) then costs almost nothing. The rest of a
//! rectangle (its partial tiles) goes as bitmap updates, as without a cache.

use ironrdp_pdu::fast_path::UpdateCode;
use xxhash_rust::xxh3::xxh3_128;

use super::bitmap_cache::{BitmapCache, Lookup, Slot};
use super::convert::Converter;
use super::damage::TILE;
use super::encode::{BitmapEncoder, EncodeError, fragment, pieces};
use super::frame::{Frame, PixelFormat, Rect};
use super::orders::{
    CACHE_BITMAP_OVERHEAD, CacheBitmap, MEMBLT_LEN, cache_bitmap, mem_blt, orders_update,
};
use crate::rdp::caps::CacheCells;

/// One Orders update carries at most this much (a big one would hold back input echo).
const MAX_ORDERS_UPDATE: usize = 64 * 1024;
const TILE_PIXELS: usize = TILE as usize * TILE as usize;

/// The client's bitmap cache as this connection filled it, and the tile path's buffers.
pub(super) struct TileCache {
    cache: BitmapCache,
    no_header: bool,
    /// Keys are of pixels in this format; another one empties the table.
    format: Option<PixelFormat>,
    /// One tile as read from the frame (read once: the hash and the bitmap are the same bytes).
    tile: Vec<u8>,
    orders: Vec<u8>,
    count: u16,
    pub(super) hits: u64,
    pub(super) misses: u64,
}

impl BitmapEncoder {
    /// Sends whole tiles through the client's Revision 2 bitmap caches from now on, or not
    /// (None). Call at each activation: a new table, since the client's caps may differ.
    pub fn set_bitmap_cache(&mut self, cells: Option<&CacheCells>, no_compression_header: bool) {
        self.cache = cells
            .and_then(BitmapCache::for_client)
            .map(|cache| TileCache {
                cache,
                no_header: no_compression_header,
                format: None,
                tile: Vec::new(),
                orders: Vec::new(),
                count: 0,
                hits: 0,
                misses: 0,
            });
    }

    /// The cache slots tiles go to, when the cache is on and a tile's orders fit one of the
    /// client's updates.
    pub fn bitmap_cache_slots(&self) -> Option<usize> {
        let cache = self.cache.as_ref()?;
        self.cache_fits().then(|| cache.cache.slots())
    }

    /// Tiles drawn from the client's cache, and tiles sent into it.
    pub fn bitmap_cache_counts(&self) -> (u64, u64) {
        self.cache.as_ref().map_or((0, 0), |c| (c.hits, c.misses))
    }

    /// The output of the failed `encode` is dropped: what it cached, the client never got.
    pub(super) fn forget_cached(&mut self) {
        if let Some(cache) = self.cache.as_mut() {
            cache.cache.forget_all();
        }
    }

    fn cache_fits(&self) -> bool {
        let worst = 2 + CACHE_BITMAP_OVERHEAD + self.worst_stream(TILE_PIXELS) + MEMBLT_LEN;
        self.max_pixels_of_one() >= TILE_PIXELS && self.max_update_len() >= worst
    }

    /// `area` (inside the frame) as bitmap updates, its whole tiles through the cache if on.
    pub(super) fn area(
        &mut self,
        frame: &Frame,
        conv: &Converter,
        area: Rect,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let block = if self.cache.is_some() && self.cache_fits() {
            whole_tiles(area, frame.width, frame.height)
        } else {
            None
        };
        let Some(block) = block else {
            return pieces(area, self.max_pixels_of_one())
                .try_for_each(|p| self.piece(frame, conv, p, out));
        };
        for rest in around(area, block) {
            for p in pieces(rest, self.max_pixels_of_one()) {
                self.piece(frame, conv, p, out)?;
            }
        }
        let Some(mut cache) = self.cache.take() else {
            return Ok(());
        };
        let result = self.tiles(&mut cache, frame, conv, block, out);
        self.cache = Some(cache);
        result
    }

    fn tiles(
        &mut self,
        cache: &mut TileCache,
        frame: &Frame,
        conv: &Converter,
        block: Rect,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if cache.format != Some(frame.format) {
            cache.cache.forget_all();
            cache.format = Some(frame.format);
        }
        let bpp = frame.format.bytes_per_pixel();
        let row_len = usize::from(TILE) * bpp;
        let limit = self.max_update_len().min(MAX_ORDERS_UPDATE) - 2;
        let mut tile = std::mem::take(&mut cache.tile);
        cache.orders.clear();
        cache.count = 0;
        for ty in (block.y..block.y + block.h).step_by(usize::from(TILE)) {
            for tx in (block.x..block.x + block.w).step_by(usize::from(TILE)) {
                let at = Rect::new(tx, ty, TILE, TILE);
                let x0 = usize::from(tx) * bpp;
                tile.clear();
                for y in ty..ty + TILE {
                    let src = frame.row(y).and_then(|row| row.get(x0..x0 + row_len));
                    tile.extend_from_slice(src.unwrap_or_default());
                }
                if self.tracks_sent() {
                    for (i, row) in tile.chunks(row_len).enumerate() {
                        self.record_row(row, at, ty + i as u16, frame.width, bpp);
                    }
                }
                let key = xxh3_128(&tile);
                let slot = cache.cache.lookup(key);
                let need = match slot {
                    Lookup::Hit(_) => MEMBLT_LEN,
                    Lookup::Miss(_) => {
                        CACHE_BITMAP_OVERHEAD + self.worst_stream(TILE_PIXELS) + MEMBLT_LEN
                    }
                };
                if cache.orders.len() + need > limit {
                    flush(self, cache, out)?;
                }
                match slot {
                    Lookup::Hit(slot) => {
                        cache.hits += 1;
                        draw(slot, at, cache);
                    }
                    Lookup::Miss(slot) => {
                        cache.misses += 1;
                        let picture = Frame {
                            width: TILE,
                            height: TILE,
                            stride: row_len,
                            format: frame.format,
                            data: &tile,
                        };
                        let (len, compressed) =
                            self.planar(&picture, conv, Rect::new(0, 0, TILE, TILE), false)?;
                        let bitmap = CacheBitmap {
                            cache_id: slot.cache_id,
                            index: slot.index,
                            key: slot.persistent.then_some(key as u64),
                            width: TILE,
                            height: TILE,
                            data: &self.stream()[..len],
                            compressed,
                            no_header: cache.no_header,
                        };
                        cache_bitmap(&bitmap, &mut cache.orders);
                        cache.count += 1;
                        draw(slot, at, cache);
                    }
                }
            }
        }
        cache.tile = tile;
        flush(self, cache, out)
    }
}

fn draw(slot: Slot, at: Rect, cache: &mut TileCache) {
    mem_blt(slot.cache_id, slot.index, at, &mut cache.orders);
    cache.count += 1;
}

/// Sends the pending orders as one Orders update.
fn flush(
    enc: &mut BitmapEncoder,
    cache: &mut TileCache,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if cache.count == 0 {
        return Ok(());
    }
    let mut update = Vec::with_capacity(2 + cache.orders.len());
    orders_update(cache.count, &cache.orders, &mut update);
    cache.orders.clear();
    cache.count = 0;
    fragment(&update, enc.bulk_mut(), UpdateCode::Orders, out)
}

/// The largest block of whole, grid-aligned tiles inside `area` (and the screen), if any.
fn whole_tiles(area: Rect, width: u16, height: u16) -> Option<Rect> {
    let t = u32::from(TILE);
    let x0 = u32::from(area.x).div_ceil(t) * t;
    let y0 = u32::from(area.y).div_ceil(t) * t;
    let x1 = area.right().min(u32::from(width)) / t * t;
    let y1 = area.bottom().min(u32::from(height)) / t * t;
    // Coordinates stay within the area, so within u16.
    (x1 > x0 && y1 > y0)
        .then(|| Rect::new(x0 as u16, y0 as u16, (x1 - x0) as u16, (y1 - y0) as u16))
}

/// `area` less `block` (inside it): the bands above and below, the strips left and right.
fn around(area: Rect, block: Rect) -> impl Iterator<Item = Rect> {
    let (ax1, ay1) = (area.x + area.w, area.y + area.h);
    let (bx1, by1) = (block.x + block.w, block.y + block.h);
    [
        Rect::new(area.x, area.y, area.w, block.y - area.y),
        Rect::new(area.x, by1, area.w, ay1 - by1),
        Rect::new(area.x, block.y, block.x - area.x, block.h),
        Rect::new(bx1, block.y, ax1 - bx1, block.h),
    ]
    .into_iter()
    .filter(|r| r.w > 0 && r.h > 0)
}

#[cfg(test)]
#[path = "encode_cached_tests.rs"]
mod tests;
