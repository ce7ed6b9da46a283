//! The `"type"` tag of a message, read from the message's own `Serialize`.
//!
//! Errors name the message they did not expect ("unexpected status message"). A second,
//! hand-written list of names drifts from the wire the day a message is added or renamed, so the
//! name comes from the serde derive itself: the message is serialized into [`Probe`], a
//! serializer that keeps the first field if it is `"type"` and stops right there. No other field
//! is ever visited, so no value (an authorization code, say) is copied anywhere.
//!
//! It works for every internally tagged enum (`#[serde(tag = "type")]`): serde writes the tag as
//! the first field of a struct (unit and struct variants) or a map (newtype variants whose content
//! flattens), before any content.

use std::fmt;

use serde::ser::{self, Impossible, Serialize, SerializeMap, SerializeStruct, Serializer};

const TAG: &str = "type";

/// The `"type"` tag `msg` serializes with, or `None` for a value without one.
pub(crate) fn type_tag<M: Serialize + ?Sized>(msg: &M) -> Option<String> {
    match msg.serialize(Probe) {
        Err(Stop::Found(tag)) => Some(tag),
        _ => None,
    }
}

/// Ends the probe: carries the tag out, or says there is none. Serialization never succeeds.
#[derive(Debug)]
enum Stop {
    Found(String),
    NoTag,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("type tag probe")
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop::NoTag
    }
}

/// Accepts a string (the tag's value) or the start of a struct or map; refuses everything else.
struct Probe;

/// Refuses a scalar: it cannot be a tagged message nor a tag.
macro_rules! refuse {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> Result<String, Stop> { Err(Stop::NoTag) })*
    };
}

impl Serializer for Probe {
    type Ok = String;
    type Error = Stop;
    type SerializeSeq = Impossible<String, Stop>;
    type SerializeTuple = Impossible<String, Stop>;
    type SerializeTupleStruct = Impossible<String, Stop>;
    type SerializeTupleVariant = Impossible<String, Stop>;
    type SerializeMap = Fields;
    type SerializeStruct = Fields;
    type SerializeStructVariant = Impossible<String, Stop>;

    fn serialize_str(self, v: &str) -> Result<String, Stop> {
        Ok(v.to_owned())
    }

    refuse!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String, Stop> {
        Err(Stop::NoTag)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<String, Stop> {
        Err(Stop::NoTag)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, Stop> {
        Err(Stop::NoTag)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Stop> {
        Err(Stop::NoTag)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Stop> {
        Err(Stop::NoTag)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Stop> {
        Err(Stop::NoTag)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Stop> {
        Err(Stop::NoTag)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Fields, Stop> {
        Ok(Fields { tag_next: false })
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields, Stop> {
        Ok(Fields { tag_next: false })
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Stop> {
        Err(Stop::NoTag)
    }
}

/// The fields of a struct or map: the first one decides, as the tag or as no tag.
struct Fields {
    /// The key just given was `"type"`: its value is the tag.
    tag_next: bool,
}

impl Fields {
    fn tag_from<T: Serialize + ?Sized>(value: &T) -> Stop {
        match value.serialize(Probe) {
            Ok(tag) => Stop::Found(tag),
            Err(_) => Stop::NoTag,
        }
    }
}

impl SerializeStruct for Fields {
    type Ok = String;
    type Error = Stop;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        Err(if key == TAG {
            Self::tag_from(value)
        } else {
            Stop::NoTag
        })
    }

    fn end(self) -> Result<String, Stop> {
        Err(Stop::NoTag)
    }
}

impl SerializeMap for Fields {
    type Ok = String;
    type Error = Stop;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Stop> {
        match key.serialize(Probe) {
            Ok(key) if key == TAG => {
                self.tag_next = true;
                Ok(())
            }
            _ => Err(Stop::NoTag),
        }
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        Err(if self.tag_next {
            Self::tag_from(value)
        } else {
            Stop::NoTag
        })
    }

    fn end(self) -> Result<String, Stop> {
        Err(Stop::NoTag)
    }
}

#[cfg(test)]
mod tests {
    use super::type_tag;
    use serde::Serialize;

    #[derive(Serialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Sample {
        Unit,
        Struct { secret: String },
        Newtype(Inner),
        Flattened(Outer),
    }

    #[derive(Serialize)]
    struct Inner {
        secret: String,
    }

    #[derive(Serialize)]
    struct Outer {
        #[serde(flatten)]
        inner: Inner,
    }

    /// Panics if serialized: proves the probe stops before the fields after the tag.
    struct Tripwire;

    impl Serialize for Tripwire {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            panic!("the probe read a field after the tag");
        }
    }

    #[derive(Serialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Guarded {
        WithSecret { secret: Tripwire },
    }

    #[test]
    fn reads_the_tag_of_every_variant_shape() {
        let secret = || "s3cret".to_owned();
        assert_eq!(type_tag(&Sample::Unit).as_deref(), Some("unit"));
        assert_eq!(
            type_tag(&Sample::Struct { secret: secret() }).as_deref(),
            Some("struct")
        );
        assert_eq!(
            type_tag(&Sample::Newtype(Inner { secret: secret() })).as_deref(),
            Some("newtype")
        );
        let flattened = Sample::Flattened(Outer {
            inner: Inner { secret: secret() },
        });
        assert_eq!(type_tag(&flattened).as_deref(), Some("flattened"));
    }

    #[test]
    fn stops_before_any_field_after_the_tag() {
        let msg = Guarded::WithSecret { secret: Tripwire };
        assert_eq!(type_tag(&msg).as_deref(), Some("with_secret"));
    }

    #[test]
    fn untagged_values_have_no_tag() {
        assert_eq!(type_tag(&Inner { secret: "x".into() }), None);
        assert_eq!(type_tag("type"), None);
        assert_eq!(type_tag(&7u8), None);
    }
}
