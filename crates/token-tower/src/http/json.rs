//! Reading a few members of a JSON object without building a map of all of it: the layer
//! reads a token's claims and the token field of every request and response body it
//! inspects, and only ever needs a handful of members.

use std::fmt;

use http::{HeaderMap, header};
use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::reply::rejection::RejectReason;

/// True for an `application/json` or `application/*+json` message (parameters such as
/// `charset` allowed).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence.starts_with("application/")
            && essence[essence.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// The string member `field` of a JSON object body (`None` when absent or not a string).
pub(crate) fn json_string_field(bytes: &[u8], field: &str) -> Result<Option<String>, RejectReason> {
    let mut picked = pick(bytes, only(field)).map_err(|_| RejectReason::MalformedBody)?;
    Ok(match picked.take(field) {
        Some(Value::String(value)) => Some(value),
        _ => None,
    })
}

/// Up to this many members are picked from an object (the JWT checks read nine claims).
pub(crate) const PICKED: usize = 9;

/// The values of the named members of a JSON object, the others skipped unparsed.
pub(crate) struct Picked<'n> {
    names: [Option<&'n str>; PICKED],
    values: [Option<Value>; PICKED],
}

/// Reads a JSON object into [`Picked`]; anything but one whole object is an error. As with a
/// map, the last of duplicate members wins.
pub(crate) fn pick<'n>(
    json: &[u8],
    names: [Option<&'n str>; PICKED],
) -> Result<Picked<'n>, serde_json::Error> {
    struct ObjectSeed<'a, 'n>(&'a [Option<&'n str>; PICKED]);
    /// A member name, matched against the wanted names without being copied.
    struct KeySeed<'a, 'n>(&'a [Option<&'n str>; PICKED]);

    impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
        type Value = Option<usize>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }
    impl Visitor<'_> for KeySeed<'_, '_> {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a member name")
        }
        fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
            Ok(self.0.iter().position(|n| *n == Some(key)))
        }
    }
    impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, '_> {
        type Value = [Option<Value>; PICKED];
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for ObjectSeed<'_, '_> {
        type Value = [Option<Value>; PICKED];
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut values: [Option<Value>; PICKED] = Default::default();
            while let Some(slot) = map.next_key_seed(KeySeed(self.0))? {
                match slot {
                    Some(slot) => values[slot] = Some(map.next_value()?),
                    None => {
                        map.next_value::<Checked>()?;
                    }
                }
            }
            Ok(values)
        }
    }

    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let values = ObjectSeed(&names)
        .deserialize(&mut deserializer)
        .and_then(|values| deserializer.end().map(|()| values))?;
    Ok(Picked { names, values })
}

/// A JSON value read to its end and dropped, checked as strictly as when it is parsed into a
/// `Value` (UTF-8 and escapes of strings, numbers in range, nesting depth), so that a document
/// this module accepts is one `serde_json::from_slice::<Value>` accepts too. (`IgnoredAny`
/// skips without those checks.)
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Checked)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = Checked;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

impl Picked<'_> {
    /// The value of member `name`, if it was one of the names picked and is present.
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        let slot = self.names.iter().position(|n| *n == Some(name))?;
        self.values[slot].as_ref()
    }

    /// Takes the value of member `name` out, if it was picked and is present.
    pub(crate) fn take(&mut self, name: &str) -> Option<Value> {
        let slot = self.names.iter().position(|n| *n == Some(name))?;
        self.values[slot].take()
    }
}

/// `names` with `name` alone.
pub(crate) fn only(name: &str) -> [Option<&str>; PICKED] {
    let mut names = [None; PICKED];
    names[0] = Some(name);
    names
}
