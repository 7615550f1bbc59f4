//! The thin client's keyboard layout, for clients that type characters instead of keys (the
//! iOS and Android Windows App always do): which key, with which modifiers, types a character
//! there. The tables are text files in `layouts/`, one line per key, so a layout is added
//! without code (`--keyboard-layout`, config `keyboard_layout`).

use std::collections::HashMap;
use std::str::FromStr;

use evdev::KeyCode;

/// The modifiers a character needs besides its key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mods {
    pub shift: bool,
    /// AltGr (the right Alt key, ISO level 3).
    pub altgr: bool,
}

#[derive(Debug)]
pub struct Layout {
    name: &'static str,
    keys: HashMap<char, (KeyCode, Mods)>,
    /// Keys whose plain and Shift levels are a lower- and an upper-case letter: Caps Lock
    /// swaps them.
    letters: Vec<KeyCode>,
}

/// The layouts built in: (name, table).
const TABLES: &[(&str, &str)] = &[
    ("us", include_str!("layouts/us.txt")),
    ("gb", include_str!("layouts/gb.txt")),
    ("de", include_str!("layouts/de.txt")),
    ("fr", include_str!("layouts/fr.txt")),
    ("es", include_str!("layouts/es.txt")),
    ("it", include_str!("layouts/it.txt")),
    ("ru", include_str!("layouts/ru.txt")),
];

/// The names `--keyboard-layout` takes.
pub fn names() -> impl Iterator<Item = &'static str> {
    TABLES.iter().map(|(name, _)| *name)
}

impl Layout {
    pub fn by_name(name: &str) -> Option<Layout> {
        let (name, table) = TABLES.iter().find(|(n, _)| *n == name)?;
        // The built-in tables are checked by a test; a bad line there is a build defect.
        Layout::parse(name, table).ok()
    }

    pub fn us() -> Layout {
        Layout::by_name("us").unwrap_or_else(|| Layout {
            name: "us",
            keys: HashMap::new(),
            letters: Vec::new(),
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `KEY_NAME plain [shift [altgr [shift+altgr]]]` per line; `none` for an empty level,
    /// `#` starts a comment line. The first key found for a character wins.
    pub fn parse(name: &'static str, table: &str) -> Result<Layout, String> {
        let mut layout = Layout {
            name,
            keys: HashMap::new(),
            letters: Vec::new(),
        };
        for (n, line) in table.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let key_name = words.next().unwrap_or_default();
            let key = KeyCode::from_str(key_name)
                .map_err(|_| format!("{name}: line {}: unknown key {key_name}", n + 1))?;
            let levels: Vec<Option<char>> = words
                .map(|w| {
                    let mut chars = w.chars();
                    match (w, chars.next(), chars.next()) {
                        ("none", _, _) => Ok(None),
                        (_, Some(c), None) => Ok(Some(c)),
                        _ => Err(format!(
                            "{name}: line {}: {w:?} is not one character",
                            n + 1
                        )),
                    }
                })
                .collect::<Result<_, _>>()?;
            if levels.is_empty() || levels.len() > 4 {
                return Err(format!("{name}: line {}: expected 1 to 4 levels", n + 1));
            }
            for (level, ch) in levels.iter().enumerate() {
                let mods = Mods {
                    shift: level % 2 == 1,
                    altgr: level >= 2,
                };
                if let Some(ch) = ch {
                    layout.keys.entry(*ch).or_insert((key, mods));
                }
            }
            if let [Some(lower), Some(upper), ..] = levels[..]
                && lower.is_lowercase()
                && lower.to_uppercase().eq([upper])
            {
                layout.letters.push(key);
            }
        }
        Ok(layout)
    }

    /// The key and modifiers that type `ch` (Caps Lock off), or None.
    pub fn key_for(&self, ch: char) -> Option<(KeyCode, Mods)> {
        let plain = |key| Some((key, Mods::default()));
        match ch {
            '\r' | '\n' => plain(KeyCode::KEY_ENTER),
            '\t' => plain(KeyCode::KEY_TAB),
            '\u{8}' => plain(KeyCode::KEY_BACKSPACE),
            '\u{1b}' => plain(KeyCode::KEY_ESC),
            '\u{7f}' => plain(KeyCode::KEY_DELETE),
            ' ' => plain(KeyCode::KEY_SPACE),
            _ => self.keys.get(&ch).copied(),
        }
    }

    /// Whether Caps Lock changes what this key types.
    pub fn caps_affects(&self, key: KeyCode) -> bool {
        self.letters.contains(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(layout: &Layout, ch: char) -> Option<(KeyCode, bool, bool)> {
        layout.key_for(ch).map(|(k, m)| (k, m.shift, m.altgr))
    }

    #[test]
    fn every_built_in_table_parses() {
        for (name, table) in TABLES {
            let layout = Layout::parse(name, table).unwrap();
            assert!(layout.keys.len() > 80, "{name}: {}", layout.keys.len());
            assert!(layout.letters.len() >= 26, "{name}");
        }
        assert_eq!(names().count(), 7);
        assert!(Layout::by_name("xx").is_none());
    }

    #[test]
    fn us_types_all_printable_ascii() {
        let us = Layout::us();
        for byte in 0x20u8..=0x7e {
            assert!(us.key_for(byte as char).is_some(), "{:?}", byte as char);
        }
        assert_eq!(typed(&us, 'A'), Some((KeyCode::KEY_A, true, false)));
        assert_eq!(typed(&us, '@'), Some((KeyCode::KEY_2, true, false)));
        assert_eq!(us.key_for('é'), None);
    }

    #[test]
    fn the_same_character_is_a_different_key_elsewhere() {
        let (de, fr, gb) = (
            Layout::by_name("de").unwrap(),
            Layout::by_name("fr").unwrap(),
            Layout::by_name("gb").unwrap(),
        );
        // QWERTZ and AZERTY letters, AltGr symbols, national characters.
        assert_eq!(typed(&de, 'z'), Some((KeyCode::KEY_Y, false, false)));
        assert_eq!(typed(&de, '@'), Some((KeyCode::KEY_Q, false, true)));
        assert_eq!(typed(&de, 'ß'), Some((KeyCode::KEY_MINUS, false, false)));
        assert_eq!(typed(&de, '{'), Some((KeyCode::KEY_7, false, true)));
        assert_eq!(typed(&fr, 'a'), Some((KeyCode::KEY_Q, false, false)));
        assert_eq!(typed(&fr, '1'), Some((KeyCode::KEY_1, true, false)));
        assert_eq!(typed(&fr, 'é'), Some((KeyCode::KEY_2, false, false)));
        assert_eq!(
            typed(&fr, 'm'),
            Some((KeyCode::KEY_SEMICOLON, false, false))
        );
        assert_eq!(typed(&gb, '£'), Some((KeyCode::KEY_3, true, false)));
        assert_eq!(typed(&gb, '"'), Some((KeyCode::KEY_2, true, false)));
        assert_eq!(typed(&gb, '\\'), Some((KeyCode::KEY_102ND, false, false)));
        let ru = Layout::by_name("ru").unwrap();
        assert_eq!(typed(&ru, 'я'), Some((KeyCode::KEY_Z, false, false)));
        assert_eq!(typed(&ru, 'Ж'), Some((KeyCode::KEY_SEMICOLON, true, false)));
        assert!(ru.caps_affects(KeyCode::KEY_SEMICOLON));
        assert!(!de.caps_affects(KeyCode::KEY_1));
        // Enter and space are the same everywhere.
        assert_eq!(typed(&ru, '\r'), Some((KeyCode::KEY_ENTER, false, false)));
    }

    #[test]
    fn bad_tables_are_refused() {
        assert!(Layout::parse("t", "KEY_NOPE a A").is_err());
        assert!(Layout::parse("t", "KEY_A ab").is_err());
        assert!(Layout::parse("t", "KEY_A a b c d e").is_err());
        assert!(Layout::parse("t", "KEY_A").is_err());
        let ok = Layout::parse("t", "# comment\nKEY_A none b").unwrap();
        assert_eq!(typed(&ok, 'b'), Some((KeyCode::KEY_A, true, false)));
    }
}
