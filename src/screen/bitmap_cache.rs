//! What one client holds in its Revision 2 bitmap caches, as far as we put it there: tile
//! content (a 128-bit hash) to cache slot. The server picks every slot itself
//! (MS-RDPEGDI 3.3.1.1), so this table is the whole truth of what MemBlt may name; it
//! records a tile only once its Cache Bitmap order is written, and forgets everything when
//! output is dropped. Replacement is CLOCK (second chance): O(1), one bit per slot.

use std::collections::HashMap;

use crate::rdp::caps::CacheCells;

/// Slots used at most, whatever the client offers: 4096 tiles of 64x64 are 64 MiB of
/// the client's memory at 32 bpp, and this table's own memory stays near 200 KiB.
pub const MAX_SLOTS: usize = 4096;
/// Caches 0 and 1 hold bitmaps of at most 256 and 1024 pixels; 64x64 tiles need cache 2 or a
/// later one (MS-RDPEGDI 3.1.1.1.1).
const FIRST_TILE_CACHE: u8 = 2;

/// Where a tile lives in the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    pub cache_id: u8,
    pub index: u16,
    /// The cache is persistent: its Cache Bitmap orders carry the tile's key.
    pub persistent: bool,
}

struct Entry {
    slot: Slot,
    key: Option<u128>,
    /// Used since the clock hand last passed.
    referenced: bool,
}

pub struct BitmapCache {
    entries: Vec<Entry>,
    by_key: HashMap<u128, usize>,
    hand: usize,
}

/// A tile's place: already there, or just given a slot its Cache Bitmap order must fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Hit(Slot),
    Miss(Slot),
}

impl BitmapCache {
    /// The slots of the client's caches that take 64x64 tiles, up to MAX_SLOTS; None when it
    /// has none.
    pub fn for_client(cells: &CacheCells) -> Option<BitmapCache> {
        let mut entries = Vec::new();
        for (cache_id, count, persistent) in cells.iter().filter(|c| c.0 >= FIRST_TILE_CACHE) {
            // Cache indices are 15-bit; 32767 is the waiting list's.
            let count = (count as usize).min(0x7FFF).min(MAX_SLOTS - entries.len());
            entries.extend((0..count).map(|index| Entry {
                slot: Slot {
                    cache_id,
                    index: index as u16,
                    persistent,
                },
                key: None,
                referenced: false,
            }));
        }
        (!entries.is_empty()).then(|| BitmapCache {
            by_key: HashMap::with_capacity(entries.len()),
            entries,
            hand: 0,
        })
    }

    /// Where `key` is, or the slot it now takes (the slot's old tile is forgotten).
    pub fn lookup(&mut self, key: u128) -> Lookup {
        if let Some(&i) = self.by_key.get(&key) {
            self.entries[i].referenced = true;
            return Lookup::Hit(self.entries[i].slot);
        }
        let i = self.victim();
        let entry = &mut self.entries[i];
        if let Some(old) = entry.key.replace(key) {
            self.by_key.remove(&old);
        }
        // Only a second use earns the second chance.
        entry.referenced = false;
        self.by_key.insert(key, i);
        Lookup::Miss(entry.slot)
    }

    /// The output that filled slots was dropped: the client holds none of them for sure.
    pub fn forget_all(&mut self) {
        self.by_key.clear();
        for entry in &mut self.entries {
            entry.key = None;
            entry.referenced = false;
        }
    }

    pub fn slots(&self) -> usize {
        self.entries.len()
    }

    fn victim(&mut self) -> usize {
        // Every pass clears bits, so the second pass at the latest finds one.
        loop {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.entries.len();
            let entry = &mut self.entries[i];
            if entry.key.is_none() || !entry.referenced {
                return i;
            }
            entry.referenced = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(list: &[(u32, bool)]) -> CacheCells {
        CacheCells::of(list)
    }

    #[test]
    fn only_caches_that_take_tiles_and_at_most_max_slots() {
        assert!(BitmapCache::for_client(&cells(&[(600, false), (600, false)])).is_none());
        let cache = BitmapCache::for_client(&cells(&[(600, false), (600, false), (10, true)]));
        let cache = cache.unwrap();
        assert_eq!(cache.slots(), 10);
        assert!(
            cache
                .entries
                .iter()
                .all(|e| e.slot.cache_id == 2 && e.slot.persistent)
        );
        let big = cells(&[
            (0, false),
            (0, false),
            (u32::MAX >> 1, false),
            (5000, false),
        ]);
        let cache = BitmapCache::for_client(&big).unwrap();
        assert_eq!(cache.slots(), MAX_SLOTS);
        assert!(cache.entries.iter().all(|e| e.slot.index < 0x7FFF));
    }

    /// A model client: every Miss is filled at once, and a Hit must name a slot holding exactly
    /// that key. Random keys from a small set, so hits, misses and evictions all happen.
    #[test]
    fn a_hit_always_names_the_slot_that_holds_the_key() {
        let mut cache =
            BitmapCache::for_client(&cells(&[(0, false), (0, false), (7, false), (5, false)]))
                .unwrap();
        let mut client: HashMap<Slot, u128> = HashMap::new();
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let (mut hits, mut misses) = (0, 0);
        for round in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let key = u128::from(seed % 20);
            match cache.lookup(key) {
                Lookup::Hit(slot) => {
                    hits += 1;
                    assert_eq!(client.get(&slot), Some(&key), "round {round}");
                }
                Lookup::Miss(slot) => {
                    misses += 1;
                    client.insert(slot, key);
                }
            }
            if round == 10_000 {
                cache.forget_all();
            }
        }
        assert!(hits > 1000 && misses > 1000, "{hits} hits, {misses} misses");
        assert!(cache.by_key.len() <= cache.slots());
    }

    #[test]
    fn a_recently_used_tile_outlives_an_unused_one() {
        let mut cache =
            BitmapCache::for_client(&cells(&[(0, false), (0, false), (2, false)])).unwrap();
        assert!(matches!(cache.lookup(1), Lookup::Miss(_)));
        assert!(matches!(cache.lookup(2), Lookup::Miss(_)));
        // Neither used again: the oldest goes; then 2 is used again.
        assert!(matches!(cache.lookup(3), Lookup::Miss(_)));
        assert!(matches!(cache.lookup(2), Lookup::Hit(_)));
        assert!(matches!(cache.lookup(4), Lookup::Miss(_)));
        assert!(
            matches!(cache.lookup(2), Lookup::Hit(_)),
            "2 was used, 3 was not"
        );
        assert!(matches!(cache.lookup(3), Lookup::Miss(_)));
    }
}
