//! `Path<T>`: the route's `:name` captures, percent-decoded, into `T`.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use serde::de::value::{Error as DeError, MapDeserializer, SeqDeserializer};
use serde::de::{DeserializeOwned, Deserializer, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use super::{FromRequestParts, States};
use crate::http::Request;
use crate::respond::Error;

/// The route's captures decoded into `T`: one value (`Path<u32>` for `/items/:id`), a
/// tuple in route order (`Path<(String, u32)>`), or a struct by name. Values are
/// percent-decoded (`%20` is a space; `+` stays a plus). A capture that is not valid
/// UTF-8 once decoded, or that does not parse as its field, answers 400.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts for Path<T> {
    fn from_request_parts(request: &Request, _: &States) -> Result<Self, Error> {
        let mut params: Vec<(&str, Cow<'_, str>)> = Vec::with_capacity(4);
        for (name, raw) in request.params() {
            let value = percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| Error::bad_request(format!("path parameter {name} is not UTF-8")))?;
            params.push((name, value));
        }
        T::deserialize(Params(&params))
            .map(Path)
            .map_err(|e| Error::bad_request(format!("invalid path parameter: {e}")))
    }
}

/// Methods reading the single capture as that type.
macro_rules! single {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.single()?.$method(visitor)
        }
    )*};
}

/// All captures: a map by name, a sequence in order, or the single value.
struct Params<'a>(&'a [(&'a str, Cow<'a, str>)]);

impl<'de> Deserializer<'de> for Params<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            [(_, value)] => Value(value).deserialize_any(visitor),
            _ => self.deserialize_map(visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let pairs = self.0.iter().map(|(name, value)| (*name, Value(value)));
        visitor.visit_map(MapDeserializer::new(pairs))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let values = self.0.iter().map(|(_, value)| Value(value));
        visitor.visit_seq(SeqDeserializer::new(values))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    single! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f32
        deserialize_f64 deserialize_char deserialize_str deserialize_string
        deserialize_option
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.single()?.deserialize_enum(name, variants, visitor)
    }

    forward_to_deserialize_any! {
        i128 u128 bytes byte_buf unit unit_struct identifier ignored_any
    }
}

impl<'a> Params<'a> {
    /// The one capture a single-value `Path<T>` reads.
    fn single(&self) -> Result<Value<'a>, DeError> {
        match self.0 {
            [(_, value)] => Ok(Value(value)),
            params => Err(serde::de::Error::custom(format!(
                "expected one path parameter, the route has {}",
                params.len()
            ))),
        }
    }
}

/// One decoded capture: text that numbers and booleans are parsed from.
struct Value<'a>(&'a str);

impl<'de> IntoDeserializer<'de, DeError> for Value<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! parse_as {
    ($($method:ident => $visit:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self.0.parse() {
                Ok(value) => visitor.$visit(value),
                Err(_) => Err(serde::de::Error::custom(format!(
                    "{:?} is not {}",
                    self.0,
                    stringify!($method).trim_start_matches("deserialize_")
                ))),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for Value<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_str(self.0)
    }

    parse_as! {
        deserialize_bool => visit_bool,
        deserialize_i8 => visit_i8,
        deserialize_i16 => visit_i16,
        deserialize_i32 => visit_i32,
        deserialize_i64 => visit_i64,
        deserialize_u8 => visit_u8,
        deserialize_u16 => visit_u16,
        deserialize_u32 => visit_u32,
        deserialize_u64 => visit_u64,
        deserialize_f32 => visit_f32,
        deserialize_f64 => visit_f64,
        deserialize_char => visit_char,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    forward_to_deserialize_any! {
        i128 u128 str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}
