//! RDP keyboard scancodes (PC/XT set 1, as Windows reports them) → Linux `KEY_*` codes.
//!
//! One table for a 104/105/106/107-key keyboard with keypad, the Japanese and Korean extra keys and
//! the common media and browser keys. The mapping is physical: the thin client's own layout turns
//! the key into a character, so nothing here depends on a layout.
//!
//! Not in the table, on purpose (the translator handles them):
//! - the E1 prefix (Pause arrives as E1 1D + 45),
//! - E0 2A / E0 36, the "fake shifts" some clients wrap around extended keys.

use evdev::KeyCode;

/// The Linux key for a set-1 scancode; `extended` is the E0 prefix.
pub fn lookup(scancode: u8, extended: bool) -> Option<KeyCode> {
    let code = if extended {
        extended_key(scancode)?
    } else {
        base_key(scancode)?
    };
    Some(KeyCode::new(code))
}

/// E0 2A and E0 36: shift presses a client adds around extended keys, never a real key.
pub fn is_fake_shift(scancode: u8, extended: bool) -> bool {
    extended && matches!(scancode, 0x2a | 0x36)
}

/// Keys that send a press and no release (Korean Hanja and Hangul): the translator taps them.
pub fn is_one_shot(key: KeyCode) -> bool {
    key == KeyCode::KEY_HANJA || key == KeyCode::KEY_HANGEUL
}

/// Every key the table can produce, without duplicates, for the device's key bitmap.
pub fn producible_keys() -> Vec<KeyCode> {
    let mut keys: Vec<KeyCode> = (0..=u8::MAX)
        .flat_map(|scancode| [lookup(scancode, false), lookup(scancode, true)])
        .flatten()
        .collect();
    keys.sort_unstable_by_key(|key| key.code());
    keys.dedup();
    keys
}

fn base_key(scancode: u8) -> Option<u16> {
    let key = match scancode {
        // Esc .. keypad '.': Linux numbers these keys by their set-1 scancode.
        0x01..=0x53 => return Some(u16::from(scancode)),
        0x54 => KeyCode::KEY_SYSRQ, // Alt+Print Screen
        0x56 => KeyCode::KEY_102ND, // ISO key left of Z
        0x57 => KeyCode::KEY_F11,
        0x58 => KeyCode::KEY_F12,
        0x59 => KeyCode::KEY_KPEQUAL,
        // F13..F23 follow each other; F24 sits apart (Microsoft's scancode table).
        0x64 => KeyCode::KEY_F13,
        0x65 => KeyCode::KEY_F14,
        0x66 => KeyCode::KEY_F15,
        0x67 => KeyCode::KEY_F16,
        0x68 => KeyCode::KEY_F17,
        0x69 => KeyCode::KEY_F18,
        0x6a => KeyCode::KEY_F19,
        0x6b => KeyCode::KEY_F20,
        0x6c => KeyCode::KEY_F21,
        0x6d => KeyCode::KEY_F22,
        0x6e => KeyCode::KEY_F23,
        0x76 => KeyCode::KEY_F24,
        // Japanese 106/109 and Brazilian ABNT keys.
        0x70 => KeyCode::KEY_KATAKANAHIRAGANA,
        0x73 => KeyCode::KEY_RO, // also ABNT C1 ("/ ?")
        0x77 => KeyCode::KEY_HIRAGANA,
        0x78 => KeyCode::KEY_KATAKANA,
        0x79 => KeyCode::KEY_HENKAN,
        0x7b => KeyCode::KEY_MUHENKAN,
        0x7d => KeyCode::KEY_YEN,
        0x7e => KeyCode::KEY_KPCOMMA, // ABNT C2, keypad '.'
        // Korean: Windows reports 0x71/0x72, the keyboard itself sends 0xF1/0xF2.
        0x71 | 0xf1 => KeyCode::KEY_HANJA,
        0x72 | 0xf2 => KeyCode::KEY_HANGEUL,
        _ => return None,
    };
    Some(key.code())
}

fn extended_key(scancode: u8) -> Option<u16> {
    let key = match scancode {
        0x1c => KeyCode::KEY_KPENTER,
        0x1d => KeyCode::KEY_RIGHTCTRL,
        0x35 => KeyCode::KEY_KPSLASH,
        0x37 => KeyCode::KEY_SYSRQ, // Print Screen
        0x38 => KeyCode::KEY_RIGHTALT,
        // Windows reports Num Lock as extended (plain 0x45 is the second half of Pause).
        0x45 => KeyCode::KEY_NUMLOCK,
        0x46 => KeyCode::KEY_PAUSE, // Ctrl+Break
        0x47 => KeyCode::KEY_HOME,
        0x48 => KeyCode::KEY_UP,
        0x49 => KeyCode::KEY_PAGEUP,
        0x4b => KeyCode::KEY_LEFT,
        0x4d => KeyCode::KEY_RIGHT,
        0x4f => KeyCode::KEY_END,
        0x50 => KeyCode::KEY_DOWN,
        0x51 => KeyCode::KEY_PAGEDOWN,
        0x52 => KeyCode::KEY_INSERT,
        0x53 => KeyCode::KEY_DELETE,
        0x5b => KeyCode::KEY_LEFTMETA,
        0x5c => KeyCode::KEY_RIGHTMETA,
        0x5d => KeyCode::KEY_COMPOSE, // Menu / Application
        // ACPI keys.
        0x5e => KeyCode::KEY_POWER,
        0x5f => KeyCode::KEY_SLEEP,
        0x63 => KeyCode::KEY_WAKEUP,
        // Media keys.
        0x10 => KeyCode::KEY_PREVIOUSSONG,
        0x19 => KeyCode::KEY_NEXTSONG,
        0x20 => KeyCode::KEY_MUTE,
        0x22 => KeyCode::KEY_PLAYPAUSE,
        0x24 => KeyCode::KEY_STOPCD,
        0x2e => KeyCode::KEY_VOLUMEDOWN,
        0x30 => KeyCode::KEY_VOLUMEUP,
        0x6d => KeyCode::KEY_MEDIA, // media select
        // Browser and launcher keys.
        0x21 => KeyCode::KEY_CALC,
        0x32 => KeyCode::KEY_HOMEPAGE,
        0x65 => KeyCode::KEY_SEARCH,
        0x66 => KeyCode::KEY_BOOKMARKS, // favorites
        0x67 => KeyCode::KEY_REFRESH,
        0x68 => KeyCode::KEY_STOP,
        0x69 => KeyCode::KEY_FORWARD,
        0x6a => KeyCode::KEY_BACK,
        0x6b => KeyCode::KEY_COMPUTER, // "My Computer"
        0x6c => KeyCode::KEY_MAIL,
        _ => return None,
    };
    Some(key.code())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Everything outside the 0x01..=0x53 identity range, written out once more on purpose.
    const EXPECTED: &[(u8, bool, KeyCode)] = &[
        (0x54, false, KeyCode::KEY_SYSRQ),
        (0x56, false, KeyCode::KEY_102ND),
        (0x57, false, KeyCode::KEY_F11),
        (0x58, false, KeyCode::KEY_F12),
        (0x59, false, KeyCode::KEY_KPEQUAL),
        (0x64, false, KeyCode::KEY_F13),
        (0x65, false, KeyCode::KEY_F14),
        (0x66, false, KeyCode::KEY_F15),
        (0x67, false, KeyCode::KEY_F16),
        (0x68, false, KeyCode::KEY_F17),
        (0x69, false, KeyCode::KEY_F18),
        (0x6a, false, KeyCode::KEY_F19),
        (0x6b, false, KeyCode::KEY_F20),
        (0x6c, false, KeyCode::KEY_F21),
        (0x6d, false, KeyCode::KEY_F22),
        (0x6e, false, KeyCode::KEY_F23),
        (0x76, false, KeyCode::KEY_F24),
        (0x70, false, KeyCode::KEY_KATAKANAHIRAGANA),
        (0x73, false, KeyCode::KEY_RO),
        (0x77, false, KeyCode::KEY_HIRAGANA),
        (0x78, false, KeyCode::KEY_KATAKANA),
        (0x79, false, KeyCode::KEY_HENKAN),
        (0x7b, false, KeyCode::KEY_MUHENKAN),
        (0x7d, false, KeyCode::KEY_YEN),
        (0x7e, false, KeyCode::KEY_KPCOMMA),
        (0x71, false, KeyCode::KEY_HANJA),
        (0xf1, false, KeyCode::KEY_HANJA),
        (0x72, false, KeyCode::KEY_HANGEUL),
        (0xf2, false, KeyCode::KEY_HANGEUL),
        (0x1c, true, KeyCode::KEY_KPENTER),
        (0x1d, true, KeyCode::KEY_RIGHTCTRL),
        (0x35, true, KeyCode::KEY_KPSLASH),
        (0x37, true, KeyCode::KEY_SYSRQ),
        (0x38, true, KeyCode::KEY_RIGHTALT),
        (0x45, true, KeyCode::KEY_NUMLOCK),
        (0x46, true, KeyCode::KEY_PAUSE),
        (0x47, true, KeyCode::KEY_HOME),
        (0x48, true, KeyCode::KEY_UP),
        (0x49, true, KeyCode::KEY_PAGEUP),
        (0x4b, true, KeyCode::KEY_LEFT),
        (0x4d, true, KeyCode::KEY_RIGHT),
        (0x4f, true, KeyCode::KEY_END),
        (0x50, true, KeyCode::KEY_DOWN),
        (0x51, true, KeyCode::KEY_PAGEDOWN),
        (0x52, true, KeyCode::KEY_INSERT),
        (0x53, true, KeyCode::KEY_DELETE),
        (0x5b, true, KeyCode::KEY_LEFTMETA),
        (0x5c, true, KeyCode::KEY_RIGHTMETA),
        (0x5d, true, KeyCode::KEY_COMPOSE),
        (0x5e, true, KeyCode::KEY_POWER),
        (0x5f, true, KeyCode::KEY_SLEEP),
        (0x63, true, KeyCode::KEY_WAKEUP),
        (0x10, true, KeyCode::KEY_PREVIOUSSONG),
        (0x19, true, KeyCode::KEY_NEXTSONG),
        (0x20, true, KeyCode::KEY_MUTE),
        (0x22, true, KeyCode::KEY_PLAYPAUSE),
        (0x24, true, KeyCode::KEY_STOPCD),
        (0x2e, true, KeyCode::KEY_VOLUMEDOWN),
        (0x30, true, KeyCode::KEY_VOLUMEUP),
        (0x6d, true, KeyCode::KEY_MEDIA),
        (0x21, true, KeyCode::KEY_CALC),
        (0x32, true, KeyCode::KEY_HOMEPAGE),
        (0x65, true, KeyCode::KEY_SEARCH),
        (0x66, true, KeyCode::KEY_BOOKMARKS),
        (0x67, true, KeyCode::KEY_REFRESH),
        (0x68, true, KeyCode::KEY_STOP),
        (0x69, true, KeyCode::KEY_FORWARD),
        (0x6a, true, KeyCode::KEY_BACK),
        (0x6b, true, KeyCode::KEY_COMPUTER),
        (0x6c, true, KeyCode::KEY_MAIL),
    ];

    /// Keys reached from more than one scancode, and why that is right.
    const INTENDED_DUPLICATES: &[(KeyCode, &[(u8, bool)])] = &[
        // Print Screen, and Print Screen while Alt is held.
        (KeyCode::KEY_SYSRQ, &[(0x54, false), (0x37, true)]),
        // Clients differ on whether Num Lock carries E0.
        (KeyCode::KEY_NUMLOCK, &[(0x45, false), (0x45, true)]),
        // Windows' 0x71/0x72 and the keyboard's own 0xF1/0xF2.
        (KeyCode::KEY_HANJA, &[(0x71, false), (0xf1, false)]),
        (KeyCode::KEY_HANGEUL, &[(0x72, false), (0xf2, false)]),
    ];

    fn all_mapped() -> Vec<(u8, bool, KeyCode)> {
        (0..=u8::MAX)
            .flat_map(|sc| [(sc, false), (sc, true)])
            .filter_map(|(sc, ext)| lookup(sc, ext).map(|key| (sc, ext, key)))
            .collect()
    }

    #[test]
    fn identity_range_is_the_linux_numbering() {
        for sc in 0x01..=0x53u8 {
            assert_eq!(lookup(sc, false), Some(KeyCode::new(u16::from(sc))));
        }
        assert_eq!(lookup(0x01, false), Some(KeyCode::KEY_ESC));
        assert_eq!(lookup(0x1e, false), Some(KeyCode::KEY_A));
        assert_eq!(lookup(0x2b, false), Some(KeyCode::KEY_BACKSLASH));
        assert_eq!(lookup(0x3a, false), Some(KeyCode::KEY_CAPSLOCK));
        assert_eq!(lookup(0x45, false), Some(KeyCode::KEY_NUMLOCK));
        assert_eq!(lookup(0x46, false), Some(KeyCode::KEY_SCROLLLOCK));
        assert_eq!(lookup(0x53, false), Some(KeyCode::KEY_KPDOT));
    }

    #[test]
    fn every_other_mapping_is_listed() {
        for &(sc, ext, key) in EXPECTED {
            assert_eq!(
                lookup(sc, ext),
                Some(key),
                "scancode {sc:#04x} extended {ext}"
            );
        }
        // Nothing is mapped that neither the identity range nor the list names.
        assert_eq!(all_mapped().len(), 0x53 + EXPECTED.len());
    }

    #[test]
    fn unmapped_codes_give_none() {
        for (sc, ext) in [
            (0x00, false),
            (0x55, false),
            (0x7f, false),
            (0x80, false),
            (0xff, false),
            (0x01, true),
            (0x2a, true),
            (0x36, true),
            (0xff, true),
        ] {
            assert_eq!(lookup(sc, ext), None, "scancode {sc:#04x} extended {ext}");
        }
    }

    #[test]
    fn no_key_is_reached_twice_unless_intended() {
        let mut by_key: BTreeMap<u16, Vec<(u8, bool)>> = BTreeMap::new();
        for (sc, ext, key) in all_mapped() {
            by_key.entry(key.code()).or_default().push((sc, ext));
        }
        let mut duplicates: Vec<(u16, Vec<(u8, bool)>)> = by_key
            .into_iter()
            .filter(|(_, sources)| sources.len() > 1)
            .collect();
        duplicates.sort();
        let mut intended: Vec<(u16, Vec<(u8, bool)>)> = INTENDED_DUPLICATES
            .iter()
            .map(|(key, sources)| {
                let mut sources = sources.to_vec();
                sources.sort();
                (key.code(), sources)
            })
            .collect();
        intended.sort();
        for (_, sources) in &mut duplicates {
            sources.sort();
        }
        assert_eq!(duplicates, intended);
    }

    #[test]
    fn fake_shifts_and_one_shots() {
        assert!(is_fake_shift(0x2a, true));
        assert!(is_fake_shift(0x36, true));
        assert!(!is_fake_shift(0x2a, false));
        assert!(!is_fake_shift(0x36, false));
        assert!(is_one_shot(KeyCode::KEY_HANJA));
        assert!(is_one_shot(KeyCode::KEY_HANGEUL));
        assert!(!is_one_shot(KeyCode::KEY_A));
    }

    #[test]
    fn producible_keys_cover_the_table_once() {
        let keys = producible_keys();
        for (_, _, key) in all_mapped() {
            assert!(keys.contains(&key));
        }
        let mut codes: Vec<u16> = keys.iter().map(|k| k.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), keys.len());
        // Everything the unicode path types, in every layout, is a key the device declares.
        for name in crate::input::layout::names() {
            let layout = crate::input::layout::Layout::by_name(name).unwrap();
            for ch in (0..0x500u32)
                .filter_map(char::from_u32)
                .chain(['€', '№', '£'])
            {
                if let Some((key, _)) = layout.key_for(ch) {
                    assert!(keys.contains(&key), "{name}: {ch:?} {key:?}");
                }
            }
        }
        assert!(keys.contains(&KeyCode::KEY_RIGHTALT) && keys.contains(&KeyCode::KEY_102ND));
        for key in [
            KeyCode::KEY_LEFTSHIFT,
            KeyCode::KEY_RIGHTSHIFT,
            KeyCode::KEY_CAPSLOCK,
            KeyCode::KEY_NUMLOCK,
            KeyCode::KEY_SCROLLLOCK,
            KeyCode::KEY_PAUSE,
        ] {
            assert!(keys.contains(&key), "{key:?}");
        }
    }
}
