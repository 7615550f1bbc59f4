//! The capability sets the agent advertises in its Demand Active.

use ironrdp_pdu::rdp::capability_sets::{
    Bitmap, BitmapCacheRev2, BitmapDrawingFlags, CapabilitySet, General, GeneralExtraFlags, Input,
    InputFlags, MultifragmentUpdate, Order, OrderFlags, OrderSupportExFlags, OrderSupportIndex,
    Pointer, VirtualChannel, VirtualChannelFlags,
};

/// What we tell the client it may reassemble from us. IronRDP uses 8 MiB; mstsc refuses
/// values near u32::MAX.
pub const SERVER_MAX_REQUEST_SIZE: u32 = 8 * 1024 * 1024;

/// The orders we send: ScrBlt (screen-to-screen copies) and MemBlt (tiles from the client's
/// bitmap cache). FreeRDP drops from its own order support whatever the server's set leaves
/// out, so each must be named here to be used.
fn server_orders() -> Order {
    let mut order = Order::new(
        OrderFlags::NEGOTIATE_ORDER_SUPPORT,
        OrderSupportExFlags::empty(),
        2048,
        224,
    );
    order.set_support_flag(OrderSupportIndex::ScrBlt, true);
    order.set_support_flag(OrderSupportIndex::MemBlt, true);
    order
}

pub fn server_capabilities(width: u16, height: u16) -> Vec<CapabilitySet> {
    vec![
        CapabilitySet::General(General {
            extra_flags: GeneralExtraFlags::FASTPATH_OUTPUT_SUPPORTED,
            // Spec-following clients (FreeRDP) only send these PDUs when advertised.
            refresh_rect_support: true,
            suppress_output_support: true,
            ..General::default()
        }),
        CapabilitySet::Bitmap(Bitmap {
            pref_bits_per_pix: 32,
            desktop_width: width,
            desktop_height: height,
            // Clients keep following deactivation-reactivation (a live resize) only with this set.
            desktop_resize_flag: true,
            drawing_flags: BitmapDrawingFlags::empty(),
        }),
        CapabilitySet::Order(server_orders()),
        // As Windows: the KMS cursor plane goes out as 32-bpp New Pointer updates (entry 0).
        CapabilitySet::Pointer(Pointer {
            color_pointer_cache_size: 25,
            pointer_cache_size: 25,
        }),
        CapabilitySet::Input(Input {
            input_flags: InputFlags::SCANCODES
                | InputFlags::MOUSEX
                | InputFlags::TS_MOUSE_HWHEEL
                | InputFlags::UNICODE
                | InputFlags::FASTPATH_INPUT
                | InputFlags::FASTPATH_INPUT_2,
            keyboard_layout: 0,
            keyboard_type: None,
            keyboard_subtype: 0,
            keyboard_function_key: 12,
            keyboard_ime_filename: String::new(),
        }),
        CapabilitySet::VirtualChannel(VirtualChannel {
            flags: VirtualChannelFlags::NO_COMPRESSION,
            chunk_size: None,
        }),
        CapabilitySet::MultiFragmentUpdate(MultifragmentUpdate {
            max_request_size: SERVER_MAX_REQUEST_SIZE,
        }),
    ]
}

/// What the client's Confirm Active says we may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    /// Largest reassembled fast-path update the client accepts, headers included.
    pub max_request_size: u32,
    pub desktop_width: u16,
    pub desktop_height: u16,
    /// The client draws ScrBlt primary orders (screen-to-screen copies).
    pub scr_blt: bool,
    /// The client reads planar bitmaps without an alpha plane (DRAW_ALLOW_SKIP_ALPHA).
    pub skip_alpha: bool,
    /// The client's Revision 2 bitmap caches, when it also draws MemBlt orders.
    pub bitmap_cache: Option<CacheCells>,
    /// The client takes compressed bitmaps without TS_CD_HEADER (NO_BITMAP_COMPRESSION_HDR).
    pub no_compression_header: bool,
    /// The client's pointer cache has room: New Pointer updates may go to it (MS-RDPBCGR
    /// 2.2.7.1.5: not when pointerCacheSize is 0 or missing).
    pub new_pointers: bool,
}

/// Most Revision 2 caches a client has (MS-RDPBCGR 2.2.7.1.4.2).
pub const MAX_CACHE_CELLS: usize = 5;

/// The sizes of a client's Revision 2 bitmap caches, as its capability set gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheCells {
    /// Entries of each cache, and whether it is persistent (kept on disk across sessions).
    pub cells: [(u32, bool); MAX_CACHE_CELLS],
    pub count: usize,
}

impl CacheCells {
    fn from_rev2(set: &BitmapCacheRev2) -> Option<CacheCells> {
        let count = usize::from(set.num_cell_caches).min(MAX_CACHE_CELLS);
        let mut cells = [(0, false); MAX_CACHE_CELLS];
        for (cell, info) in cells.iter_mut().zip(&set.cache_cell_info).take(count) {
            // The top bit of the field is the persistence flag, never part of the count.
            *cell = (info.num_entries & 0x7FFF_FFFF, info.is_cache_persistent);
        }
        (count > 0).then_some(CacheCells { cells, count })
    }

    /// Caches of these (entries, persistent), for tests.
    #[cfg(test)]
    pub(crate) fn of(list: &[(u32, bool)]) -> CacheCells {
        let mut cells = [(0, false); MAX_CACHE_CELLS];
        cells[..list.len()].copy_from_slice(list);
        CacheCells {
            cells,
            count: list.len(),
        }
    }

    /// (cache id, entries, persistent) of each cache.
    pub fn iter(&self) -> impl Iterator<Item = (u8, u32, bool)> + '_ {
        self.cells[..self.count]
            .iter()
            .enumerate()
            .map(|(id, &(entries, persistent))| (id as u8, entries, persistent))
    }
}

impl ClientLimits {
    pub fn from_capabilities(capabilities: &[CapabilitySet]) -> Self {
        let mut limits = ClientLimits {
            // Without the capability a client takes one unfragmented update.
            max_request_size: 16_383,
            desktop_width: 0,
            desktop_height: 0,
            scr_blt: false,
            skip_alpha: false,
            bitmap_cache: None,
            no_compression_header: false,
            new_pointers: false,
        };
        let mut mem_blt = false;
        let mut cells = None;
        for set in capabilities {
            match set {
                CapabilitySet::MultiFragmentUpdate(m) => {
                    limits.max_request_size = m.max_request_size
                }
                CapabilitySet::Bitmap(b) => {
                    limits.desktop_width = b.desktop_width;
                    limits.desktop_height = b.desktop_height;
                    limits.skip_alpha = b
                        .drawing_flags
                        .contains(BitmapDrawingFlags::ALLOW_SKIP_ALPHA);
                }
                CapabilitySet::Order(o) => {
                    limits.scr_blt = o.clone().get_support_flag(OrderSupportIndex::ScrBlt);
                    mem_blt = o.clone().get_support_flag(OrderSupportIndex::MemBlt);
                }
                CapabilitySet::BitmapCacheRev2(rev2) => cells = CacheCells::from_rev2(rev2),
                CapabilitySet::Pointer(p) => limits.new_pointers = p.pointer_cache_size >= 1,
                CapabilitySet::General(g) => {
                    limits.no_compression_header = g
                        .extra_flags
                        .contains(GeneralExtraFlags::NO_BITMAP_COMPRESSION_HDR);
                }
                _ => {}
            }
        }
        // A client must draw MemBlt to be sent Cache Bitmap orders (MS-RDPBCGR 2.2.7.1.4.2).
        limits.bitmap_cache = cells.filter(|_| mem_blt);
        limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_the_client_sets() {
        let client = vec![
            CapabilitySet::MultiFragmentUpdate(MultifragmentUpdate {
                max_request_size: 65_535,
            }),
            CapabilitySet::Bitmap(Bitmap {
                pref_bits_per_pix: 32,
                desktop_width: 800,
                desktop_height: 600,
                desktop_resize_flag: true,
                drawing_flags: BitmapDrawingFlags::empty(),
            }),
        ];
        let limits = ClientLimits::from_capabilities(&client);
        assert_eq!(limits.max_request_size, 65_535);
        assert_eq!((limits.desktop_width, limits.desktop_height), (800, 600));
        assert!(!limits.scr_blt, "no Order set: no copies");
        let mut orders = Order::new(
            OrderFlags::NEGOTIATE_ORDER_SUPPORT,
            OrderSupportExFlags::empty(),
            0,
            0,
        );
        orders.set_support_flag(OrderSupportIndex::ScrBlt, true);
        assert!(ClientLimits::from_capabilities(&[CapabilitySet::Order(orders)]).scr_blt);
        assert_eq!(
            ClientLimits::from_capabilities(&[]).max_request_size,
            16_383
        );
    }

    #[test]
    fn bitmap_caches_only_with_mem_blt() {
        use ironrdp_pdu::rdp::capability_sets::{CacheFlags, CellInfo};
        let mut info = [CellInfo::default(); 5];
        info[0].num_entries = 600;
        info[2] = CellInfo {
            num_entries: 2048,
            is_cache_persistent: true,
        };
        let rev2 = CapabilitySet::BitmapCacheRev2(BitmapCacheRev2 {
            cache_flags: CacheFlags::empty(),
            num_cell_caches: 3,
            cache_cell_info: info,
        });
        let mut orders = Order::new(
            OrderFlags::NEGOTIATE_ORDER_SUPPORT,
            OrderSupportExFlags::empty(),
            0,
            0,
        );
        assert_eq!(
            ClientLimits::from_capabilities(&[rev2.clone(), CapabilitySet::Order(orders.clone())])
                .bitmap_cache,
            None,
            "caches but no MemBlt"
        );
        orders.set_support_flag(OrderSupportIndex::MemBlt, true);
        let cells = ClientLimits::from_capabilities(&[CapabilitySet::Order(orders), rev2])
            .bitmap_cache
            .unwrap();
        assert_eq!(
            cells.iter().collect::<Vec<_>>(),
            vec![(0, 600, false), (1, 0, false), (2, 2048, true)]
        );
    }

    #[test]
    fn new_pointers_only_to_a_client_with_a_pointer_cache() {
        let with = |size| {
            ClientLimits::from_capabilities(&[CapabilitySet::Pointer(Pointer {
                color_pointer_cache_size: 25,
                pointer_cache_size: size,
            })])
            .new_pointers
        };
        assert!(with(25));
        assert!(!with(0), "pointerCacheSize 0: no New Pointer updates");
        assert!(!ClientLimits::from_capabilities(&[]).new_pointers);
    }

    #[test]
    fn advertises_size_and_refresh_support() {
        let sets = server_capabilities(1024, 768);
        assert!(sets.iter().any(|s| matches!(s, CapabilitySet::Bitmap(b) if b.desktop_width == 1024 && b.desktop_height == 768)));
        assert!(sets.iter().any(|s| matches!(s, CapabilitySet::General(g) if g.refresh_rect_support && g.suppress_output_support)));
        // FreeRDP keeps only the orders the server names.
        assert!(sets.iter().any(|s| matches!(s, CapabilitySet::Order(o) if o.clone().get_support_flag(OrderSupportIndex::ScrBlt))));
    }
}
