//! The capability sets the agent advertises in its Demand Active.

use ironrdp_pdu::rdp::capability_sets::{
    Bitmap, BitmapDrawingFlags, CapabilitySet, General, GeneralExtraFlags, Input, InputFlags,
    MultifragmentUpdate, Order, OrderFlags, OrderSupportExFlags, OrderSupportIndex, Pointer,
    VirtualChannel, VirtualChannelFlags,
};

/// What we tell the client it may reassemble from us. IronRDP uses 8 MiB; mstsc refuses
/// values near u32::MAX.
pub const SERVER_MAX_REQUEST_SIZE: u32 = 8 * 1024 * 1024;

/// The one order we send: ScrBlt (screen-to-screen copy). FreeRDP drops from its own order
/// support whatever the server's set leaves out, so it must be named here to be used.
fn server_orders() -> Order {
    let mut order = Order::new(
        OrderFlags::NEGOTIATE_ORDER_SUPPORT,
        OrderSupportExFlags::empty(),
        2048,
        224,
    );
    order.set_support_flag(OrderSupportIndex::ScrBlt, true);
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
        // No pointer updates yet: the client keeps its own cursor.
        CapabilitySet::Pointer(Pointer {
            color_pointer_cache_size: 0,
            pointer_cache_size: 0,
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
        };
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
                }
                _ => {}
            }
        }
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
    fn advertises_size_and_refresh_support() {
        let sets = server_capabilities(1024, 768);
        assert!(sets.iter().any(|s| matches!(s, CapabilitySet::Bitmap(b) if b.desktop_width == 1024 && b.desktop_height == 768)));
        assert!(sets.iter().any(|s| matches!(s, CapabilitySet::General(g) if g.refresh_rect_support && g.suppress_output_support)));
        // FreeRDP keeps only the orders the server names.
        assert!(sets.iter().any(|s| matches!(s, CapabilitySet::Order(o) if o.clone().get_support_flag(OrderSupportIndex::ScrBlt))));
    }
}
