//! Just enough JSON for the control protocol: one flat object per line, values that are
//! strings, integers, booleans or null. Nested values are refused with a clear error, so
//! a hand parser stays small and total (no panics, no recursion) and needs no dependency.

use std::fmt;
use std::fmt::Write as _;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Null,
}

impl Value {
    /// A short name for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Bool(_) => "a boolean",
            Value::Null => "null",
        }
    }
}

/// A flat object, fields in the order they came.
pub type Object = Vec<(String, Value)>;

/// Looks a field up by name.
pub fn get<'a>(object: &'a Object, name: &str) -> Option<&'a Value> {
    object.iter().find(|(key, _)| key == name).map(|(_, v)| v)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonError {
    /// `what` was expected at byte `at`.
    Expected {
        what: &'static str,
        at: usize,
    },
    /// Objects and arrays inside the object.
    Nested {
        at: usize,
    },
    BadEscape {
        at: usize,
    },
    /// Fractions, exponents, or out of the i64 range.
    BadNumber {
        at: usize,
    },
    DuplicateKey(String),
    TrailingData {
        at: usize,
    },
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Expected { what, at } => write!(f, "expected {what} at byte {at}"),
            JsonError::Nested { at } => {
                write!(f, "nested objects and arrays are not accepted (byte {at})")
            }
            JsonError::BadEscape { at } => write!(f, "bad string escape at byte {at}"),
            JsonError::BadNumber { at } => {
                write!(f, "numbers must be integers in the i64 range (byte {at})")
            }
            JsonError::DuplicateKey(key) => write!(f, "field {key:?} appears twice"),
            JsonError::TrailingData { at } => write!(f, "data after the object at byte {at}"),
        }
    }
}

struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        while matches!(self.text.get(self.at), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8, what: &'static str) -> Result<(), JsonError> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn expected(&self, what: &'static str) -> JsonError {
        JsonError::Expected { what, at: self.at }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, JsonError> {
        if self.text[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.expected("a value"))
        }
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.eat(b'"', "a string")?;
        let mut out = String::new();
        loop {
            let start = self.at;
            // Copy the plain run in one go; it is valid UTF-8 because the input is a &str
            // and the run ends at an ASCII byte.
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.at += 1;
            }
            out.push_str(&String::from_utf8_lossy(&self.text[start..self.at]));
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    out.push(self.escape()?);
                }
                _ => return Err(self.expected("the end of the string")),
            }
        }
    }

    fn escape(&mut self) -> Result<char, JsonError> {
        let at = self.at;
        let byte = self.peek().ok_or(JsonError::BadEscape { at })?;
        self.at += 1;
        Ok(match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let high = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&high) {
                    // A surrogate pair: the low half must follow as \uXXXX.
                    if !self.text[self.at..].starts_with(b"\\u") {
                        return Err(JsonError::BadEscape { at });
                    }
                    self.at += 2;
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(JsonError::BadEscape { at });
                    }
                    0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    high
                };
                char::from_u32(code).ok_or(JsonError::BadEscape { at })?
            }
            _ => return Err(JsonError::BadEscape { at }),
        })
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let at = self.at;
        let digits = self
            .text
            .get(at..at + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(JsonError::BadEscape { at })?;
        self.at += 4;
        u32::from_str_radix(digits, 16).map_err(|_| JsonError::BadEscape { at })
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err(JsonError::BadNumber { at: start });
        }
        std::str::from_utf8(&self.text[start..self.at])
            .ok()
            .and_then(|digits| digits.parse().ok())
            .map(Value::Int)
            .ok_or(JsonError::BadNumber { at: start })
    }

    fn value(&mut self) -> Result<Value, JsonError> {
        self.skip_ws();
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'{' | b'[') => Err(JsonError::Nested { at: self.at }),
            _ => Err(self.expected("a value")),
        }
    }
}

/// Parses one flat object (surrounding whitespace allowed).
pub fn parse_object(text: &str) -> Result<Object, JsonError> {
    let mut c = Cursor {
        text: text.as_bytes(),
        at: 0,
    };
    let mut object = Object::new();
    c.eat(b'{', "'{'")?;
    c.skip_ws();
    if c.peek() == Some(b'}') {
        c.at += 1;
    } else {
        loop {
            c.skip_ws();
            let key = c.string()?;
            c.eat(b':', "':'")?;
            let value = c.value()?;
            if get(&object, &key).is_some() {
                return Err(JsonError::DuplicateKey(key));
            }
            object.push((key, value));
            c.skip_ws();
            match c.peek() {
                Some(b',') => c.at += 1,
                Some(b'}') => {
                    c.at += 1;
                    break;
                }
                _ => return Err(c.expected("',' or '}'")),
            }
        }
    }
    c.skip_ws();
    if c.at < c.text.len() {
        return Err(JsonError::TrailingData { at: c.at });
    }
    Ok(object)
}

/// Builds one flat object as a line of text.
#[derive(Default)]
pub struct Writer {
    text: String,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    fn key(&mut self, key: &str) {
        self.text.push(if self.text.is_empty() { '{' } else { ',' });
        quote(&mut self.text, key);
        self.text.push(':');
    }

    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        quote(&mut self.text, value);
        self
    }

    pub fn int(mut self, key: &str, value: i64) -> Self {
        self.key(key);
        let _ = write!(self.text, "{value}");
        self
    }

    pub fn bool(mut self, key: &str, value: bool) -> Self {
        self.key(key);
        self.text.push_str(if value { "true" } else { "false" });
        self
    }

    /// The object and its newline.
    pub fn line(mut self) -> String {
        if self.text.is_empty() {
            self.text.push('{');
        }
        self.text.push_str("}\n");
        self.text
    }
}

fn quote(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_objects_parse() {
        let o = parse_object(r#" { "cmd" : "mode", "n": -12, "on": true, "x": null } "#).unwrap();
        assert_eq!(get(&o, "cmd"), Some(&Value::Str("mode".into())));
        assert_eq!(get(&o, "n"), Some(&Value::Int(-12)));
        assert_eq!(get(&o, "on"), Some(&Value::Bool(true)));
        assert_eq!(get(&o, "x"), Some(&Value::Null));
        assert_eq!(parse_object("{}").unwrap(), Object::new());
        let s = parse_object(r#"{"s":"a\"\\\/\n\u00e9\ud83d\ude00é"}"#).unwrap();
        assert_eq!(get(&s, "s"), Some(&Value::Str("a\"\\/\né😀é".into())));
    }

    #[test]
    fn bad_input_names_the_problem() {
        let err = |t: &str| parse_object(t).unwrap_err().to_string();
        assert_eq!(err(""), "expected '{' at byte 0");
        assert_eq!(err(r#"{"a":1"#), "expected ',' or '}' at byte 6");
        assert_eq!(
            err(r#"{"a":{}}"#),
            "nested objects and arrays are not accepted (byte 5)"
        );
        assert_eq!(
            err(r#"{"a":[1]}"#),
            "nested objects and arrays are not accepted (byte 5)"
        );
        assert_eq!(
            err(r#"{"a":1.5}"#),
            "numbers must be integers in the i64 range (byte 5)"
        );
        assert_eq!(
            err(r#"{"a":99999999999999999999}"#),
            "numbers must be integers in the i64 range (byte 5)"
        );
        assert_eq!(err(r#"{"a":1,"a":2}"#), "field \"a\" appears twice");
        assert_eq!(err(r#"{} x"#), "data after the object at byte 3");
        assert_eq!(err(r#"{"a":"\x"}"#), "bad string escape at byte 7");
        assert_eq!(err(r#"{"a":"\ud800"}"#), "bad string escape at byte 7");
        assert_eq!(
            err("{\"a\":\"\u{1}\"}"),
            "expected the end of the string at byte 6"
        );
        assert_eq!(err(r#"{"a":tru}"#), "expected a value at byte 5");
        assert_eq!(
            err(r#"{"a":-}"#),
            "numbers must be integers in the i64 range (byte 5)"
        );
    }

    #[test]
    fn every_prefix_and_byte_flip_is_an_error_or_an_object() {
        let line = r#"{"cmd":"view-only","on":false,"n":-3,"s":"\u0041\n"}"#;
        for end in 0..line.len() {
            if let Some(prefix) = line.get(..end) {
                let _ = parse_object(prefix);
            }
        }
        let mut bytes = line.as_bytes().to_vec();
        for i in 0..bytes.len() {
            for b in [b'{', b'"', b'\\', b'[', b'-', 0xC3, 0] {
                let old = bytes[i];
                bytes[i] = b;
                if let Ok(text) = std::str::from_utf8(&bytes) {
                    let _ = parse_object(text);
                }
                bytes[i] = old;
            }
        }
    }

    #[test]
    fn writer_round_trips() {
        let line = Writer::new()
            .str("s", "q\"\\\n\u{1}é")
            .int("n", -5)
            .bool("b", false)
            .line();
        assert_eq!(
            line,
            "{\"s\":\"q\\\"\\\\\\n\\u0001é\",\"n\":-5,\"b\":false}\n"
        );
        let o = parse_object(&line).unwrap();
        assert_eq!(get(&o, "s"), Some(&Value::Str("q\"\\\n\u{1}é".into())));
        assert_eq!(Writer::new().line(), "{}\n");
    }
}
