//! Characters from clients that type Unicode (the iOS Windows App, some macOS setups) → the key a
//! US layout types them with.
//!
//! The thin client's layout is not known here; US is the common case and keeps letters, digits and
//! the usual punctuation right on most Latin layouts' letter keys. Everything else is dropped (the
//! translator logs that once per session).

use evdev::KeyCode;

/// The key and whether Shift is needed to type the UTF-16 code unit `code` on a US layout.
pub fn us_key(code: u16) -> Option<(KeyCode, bool)> {
    let ch = char::from_u32(u32::from(code))?;
    if ch.is_ascii_lowercase() {
        return Some((letter(ch)?, false));
    }
    if ch.is_ascii_uppercase() {
        return Some((letter(ch.to_ascii_lowercase())?, true));
    }
    let plain = |key| Some((key, false));
    let shifted = |key| Some((key, true));
    match ch {
        '\r' | '\n' => plain(KeyCode::KEY_ENTER),
        '\t' => plain(KeyCode::KEY_TAB),
        '\u{8}' => plain(KeyCode::KEY_BACKSPACE),
        '\u{1b}' => plain(KeyCode::KEY_ESC),
        '\u{7f}' => plain(KeyCode::KEY_DELETE),
        ' ' => plain(KeyCode::KEY_SPACE),
        '1' => plain(KeyCode::KEY_1),
        '2' => plain(KeyCode::KEY_2),
        '3' => plain(KeyCode::KEY_3),
        '4' => plain(KeyCode::KEY_4),
        '5' => plain(KeyCode::KEY_5),
        '6' => plain(KeyCode::KEY_6),
        '7' => plain(KeyCode::KEY_7),
        '8' => plain(KeyCode::KEY_8),
        '9' => plain(KeyCode::KEY_9),
        '0' => plain(KeyCode::KEY_0),
        '!' => shifted(KeyCode::KEY_1),
        '@' => shifted(KeyCode::KEY_2),
        '#' => shifted(KeyCode::KEY_3),
        '$' => shifted(KeyCode::KEY_4),
        '%' => shifted(KeyCode::KEY_5),
        '^' => shifted(KeyCode::KEY_6),
        '&' => shifted(KeyCode::KEY_7),
        '*' => shifted(KeyCode::KEY_8),
        '(' => shifted(KeyCode::KEY_9),
        ')' => shifted(KeyCode::KEY_0),
        '-' => plain(KeyCode::KEY_MINUS),
        '_' => shifted(KeyCode::KEY_MINUS),
        '=' => plain(KeyCode::KEY_EQUAL),
        '+' => shifted(KeyCode::KEY_EQUAL),
        '[' => plain(KeyCode::KEY_LEFTBRACE),
        '{' => shifted(KeyCode::KEY_LEFTBRACE),
        ']' => plain(KeyCode::KEY_RIGHTBRACE),
        '}' => shifted(KeyCode::KEY_RIGHTBRACE),
        '\\' => plain(KeyCode::KEY_BACKSLASH),
        '|' => shifted(KeyCode::KEY_BACKSLASH),
        ';' => plain(KeyCode::KEY_SEMICOLON),
        ':' => shifted(KeyCode::KEY_SEMICOLON),
        '\'' => plain(KeyCode::KEY_APOSTROPHE),
        '"' => shifted(KeyCode::KEY_APOSTROPHE),
        '`' => plain(KeyCode::KEY_GRAVE),
        '~' => shifted(KeyCode::KEY_GRAVE),
        ',' => plain(KeyCode::KEY_COMMA),
        '<' => shifted(KeyCode::KEY_COMMA),
        '.' => plain(KeyCode::KEY_DOT),
        '>' => shifted(KeyCode::KEY_DOT),
        '/' => plain(KeyCode::KEY_SLASH),
        '?' => shifted(KeyCode::KEY_SLASH),
        _ => None,
    }
}

/// Whether Caps Lock changes what this key types (letters only, as on Linux's US layout).
pub fn caps_affects(key: KeyCode) -> bool {
    LETTERS.contains(&key)
}

const LETTERS: [KeyCode; 26] = [
    KeyCode::KEY_A,
    KeyCode::KEY_B,
    KeyCode::KEY_C,
    KeyCode::KEY_D,
    KeyCode::KEY_E,
    KeyCode::KEY_F,
    KeyCode::KEY_G,
    KeyCode::KEY_H,
    KeyCode::KEY_I,
    KeyCode::KEY_J,
    KeyCode::KEY_K,
    KeyCode::KEY_L,
    KeyCode::KEY_M,
    KeyCode::KEY_N,
    KeyCode::KEY_O,
    KeyCode::KEY_P,
    KeyCode::KEY_Q,
    KeyCode::KEY_R,
    KeyCode::KEY_S,
    KeyCode::KEY_T,
    KeyCode::KEY_U,
    KeyCode::KEY_V,
    KeyCode::KEY_W,
    KeyCode::KEY_X,
    KeyCode::KEY_Y,
    KeyCode::KEY_Z,
];

fn letter(lower: char) -> Option<KeyCode> {
    let index = (lower as usize).checked_sub('a' as usize)?;
    LETTERS.get(index).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ch: char) -> Option<(KeyCode, bool)> {
        us_key(ch as u16)
    }

    #[test]
    fn letters_with_and_without_shift() {
        assert_eq!(key('a'), Some((KeyCode::KEY_A, false)));
        assert_eq!(key('z'), Some((KeyCode::KEY_Z, false)));
        assert_eq!(key('A'), Some((KeyCode::KEY_A, true)));
        assert_eq!(key('Q'), Some((KeyCode::KEY_Q, true)));
        assert!(caps_affects(KeyCode::KEY_M));
        assert!(!caps_affects(KeyCode::KEY_1));
    }

    #[test]
    fn digits_punctuation_and_controls() {
        assert_eq!(key('0'), Some((KeyCode::KEY_0, false)));
        assert_eq!(key(')'), Some((KeyCode::KEY_0, true)));
        assert_eq!(key('@'), Some((KeyCode::KEY_2, true)));
        assert_eq!(key('~'), Some((KeyCode::KEY_GRAVE, true)));
        assert_eq!(key('"'), Some((KeyCode::KEY_APOSTROPHE, true)));
        assert_eq!(key('?'), Some((KeyCode::KEY_SLASH, true)));
        assert_eq!(key(' '), Some((KeyCode::KEY_SPACE, false)));
        assert_eq!(key('\r'), Some((KeyCode::KEY_ENTER, false)));
        assert_eq!(key('\t'), Some((KeyCode::KEY_TAB, false)));
        assert_eq!(key('\u{8}'), Some((KeyCode::KEY_BACKSPACE, false)));
    }

    #[test]
    fn every_printable_ascii_character_is_typable() {
        for byte in 0x20u8..=0x7e {
            assert!(us_key(u16::from(byte)).is_some(), "{:?}", byte as char);
        }
    }

    #[test]
    fn the_rest_is_not() {
        for code in [
            0xe9u16, 0x20ac, 0x4e2d, 0xd83d, 0xdc00, 0x0000, 0x0007, 0xffff,
        ] {
            assert_eq!(us_key(code), None, "U+{code:04X}");
        }
    }
}
