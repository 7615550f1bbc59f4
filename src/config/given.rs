//! Values as they were given, a file's TOML or a flag's text, fed to `Settings`' serde
//! derive. One deserializer serves both, so a key is checked alike wherever it came from
//! and its error names where it came from.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use super::ConfigError;
use super::keys::Key;

/// One setting's value and where it came from.
#[derive(Clone, Debug)]
pub struct Entry {
    pub key: &'static Key,
    /// `--flag` or `FILE: key`, for errors.
    pub origin: String,
    pub value: Given,
}

#[derive(Clone, Debug)]
pub enum Given {
    File(toml::Value),
    /// A flag's text: numbers and switches are read from it, lists split on commas.
    Flag(String),
}

/// Why a value was refused while deserializing. Only the overlay turns it into a message,
/// because only it knows the key, the origin and how the value was spelt.
#[derive(Debug)]
pub enum Refusal {
    /// Not the expected form (wrong type, out of range, not a name we know).
    Form,
    /// A named part was wrong; said in full.
    Detail(String),
    /// Already the whole message.
    Done(ConfigError),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Form => f.write_str("not the expected form"),
            Refusal::Detail(detail) => f.write_str(detail),
            Refusal::Done(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for Refusal {}

/// serde's type and value errors mean "not the form"; `custom` carries a detail. The value
/// types in `values.rs` keep to that: `invalid_value` for the form, `custom` for a detail.
impl de::Error for Refusal {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Refusal::Detail(message.to_string())
    }
    fn invalid_type(_: de::Unexpected, _: &dyn de::Expected) -> Self {
        Refusal::Form
    }
    fn invalid_value(_: de::Unexpected, _: &dyn de::Expected) -> Self {
        Refusal::Form
    }
    fn invalid_length(_: usize, _: &dyn de::Expected) -> Self {
        Refusal::Form
    }
}

impl Entry {
    fn refused(&self, refusal: Refusal) -> ConfigError {
        let detail = match refusal {
            Refusal::Done(error) => return error,
            Refusal::Form => None,
            Refusal::Detail(detail) => Some(detail),
        };
        let got = match &self.value {
            Given::File(value) => shown(value),
            Given::Flag(text) => format!("'{text}'"),
        };
        ConfigError::BadValue {
            origin: self.origin.clone(),
            form: self.key.form,
            got,
            detail,
        }
    }
}

/// Settings' fields from entries (each key at most once), the rest from `Default`.
pub struct Overlay(pub Vec<Entry>);

impl<'de> de::Deserializer<'de> for Overlay {
    type Error = Refusal;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_map(Fields {
            entries: self.0.into_iter(),
            current: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

struct Fields {
    entries: std::vec::IntoIter<Entry>,
    current: Option<Entry>,
}

impl<'de> MapAccess<'de> for Fields {
    type Error = Refusal;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Refusal> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        let name: de::value::StrDeserializer<'_, Refusal> = entry.key.name.into_deserializer();
        let key = seed
            .deserialize(name)
            .map_err(|e| Refusal::Done(entry.refused(e)))?;
        self.current = Some(entry);
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Refusal> {
        let entry = self.current.take().ok_or(Refusal::Form)?;
        seed.deserialize(entry.value.clone())
            .map_err(|e| Refusal::Done(entry.refused(e)))
    }
}

impl<'de> de::Deserializer<'de> for Given {
    type Error = Refusal;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self {
            Given::Flag(text) => visitor.visit_string(text),
            Given::File(toml::Value::String(s)) => visitor.visit_string(s),
            Given::File(toml::Value::Integer(n)) => visitor.visit_i64(n),
            Given::File(toml::Value::Float(x)) => visitor.visit_f64(x),
            Given::File(toml::Value::Boolean(b)) => visitor.visit_bool(b),
            Given::File(toml::Value::Array(items)) => visitor.visit_seq(Items(
                items
                    .into_iter()
                    .map(Given::File)
                    .collect::<Vec<_>>()
                    .into_iter(),
            )),
            Given::File(toml::Value::Datetime(_) | toml::Value::Table(_)) => Err(Refusal::Form),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self {
            Given::Flag(text) => match text.as_str() {
                "true" => visitor.visit_bool(true),
                "false" => visitor.visit_bool(false),
                _ => Err(Refusal::Form),
            },
            file => file.deserialize_any(visitor),
        }
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self {
            Given::Flag(text) => visitor.visit_u64(text.parse().map_err(|_| Refusal::Form)?),
            file => file.deserialize_any(visitor),
        }
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self {
            // A flag's list: comma-separated, trimmed, empty entries dropped.
            Given::Flag(text) => visitor.visit_seq(Items(
                text.split(',')
                    .map(str::trim)
                    .filter(|entry| !entry.is_empty())
                    .map(|entry| Given::Flag(entry.to_owned()))
                    .collect::<Vec<_>>()
                    .into_iter(),
            )),
            file => file.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Refusal> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct tuple tuple_struct map struct enum identifier ignored_any
    }
}

struct Items(std::vec::IntoIter<Given>);

impl<'de> SeqAccess<'de> for Items {
    type Error = Refusal;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Refusal> {
        self.0.next().map(|item| seed.deserialize(item)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// A TOML value as the file spelt it, near enough for an error message.
fn shown(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(items) => {
            let inner: Vec<String> = items.iter().take(8).map(shown).collect();
            let more = if items.len() > 8 { ", …" } else { "" };
            format!("[{}{more}]", inner.join(", "))
        }
        toml::Value::Table(_) => "a table".to_owned(),
    }
}
