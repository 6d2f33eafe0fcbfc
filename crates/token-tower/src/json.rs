//! Reading a few members of a JSON object without building a map of all of it: the layer
//! reads a token's claims and the token field of every request and response body it
//! inspects, and only ever needs a handful of members.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

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
                        map.next_value::<IgnoredAny>()?;
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
