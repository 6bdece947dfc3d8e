//! A borrowed, order-preserving JSON tree, lenient leaf types for typed response parsing,
//! and Go `encoding/json` key matching.
//!
//! Why not `serde_json::Value`: a `Value` copies every string (a 20 MiB base64 image would be
//! copied only to be skipped), sorts object keys and folds duplicate keys, which hides exactly
//! the tricks (`"Model"`, a repeated `"model"`) that make Ollama read a different field than
//! the gateway. [`Json`] borrows every string without escapes from the request body and keeps
//! members in document order, duplicates included.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// One JSON value; strings borrow from the parsed input when they contain no escapes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(Cow<'a, str>),
    Arr(Vec<Json<'a>>),
    /// Members in document order; duplicate keys are kept.
    Obj(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// The string, if this is a string.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The members of an object (empty for anything else).
    pub(crate) fn members(&self) -> &[(Cow<'a, str>, Json<'a>)] {
        match self {
            Json::Obj(m) => m,
            _ => &[],
        }
    }

    /// The elements of an array (empty for anything else).
    pub(crate) fn items(&self) -> &[Json<'a>] {
        match self {
            Json::Arr(a) => a,
            _ => &[],
        }
    }

    /// Every member value whose key Go's `encoding/json` would decode into the struct field
    /// `name` (see [`go_key_matches`]), in document order. Empty for non-objects.
    pub(crate) fn fields<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Json<'a>> + 's {
        self.members()
            .iter()
            .filter(move |(k, _)| go_key_matches(k, name))
            .map(|(_, v)| v)
    }
}

/// Whether Go's `encoding/json` decodes the object key `key` into a struct field whose JSON
/// name is `name` (lowercase ASCII): an exact match, or a case-insensitive one, where the
/// runes `ſ` (U+017F), `ı` (U+0131), `İ` (U+0130) and the Kelvin sign (U+212A) fold to ASCII
/// `s`, `i`, `i` and `k` (`foldName` maps each rune through `ToUpper(ToLower(r))`).
pub(crate) fn go_key_matches(key: &str, name: &str) -> bool {
    if key == name {
        return true;
    }
    if key.len() < name.len() || key.len() > name.len() * 3 {
        return false;
    }
    let mut want = name.bytes();
    for c in key.chars() {
        let folded = match c {
            'ſ' => b's',
            'ı' | 'İ' => b'i',
            '\u{212A}' => b'k',
            c if c.is_ascii() => (c as u8).to_ascii_lowercase(),
            _ => return false,
        };
        if want.next() != Some(folded) {
            return false;
        }
    }
    want.next().is_none()
}

impl<'de: 'a, 'a> Deserialize<'de> for Json<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor(std::marker::PhantomData))
    }
}

struct JsonVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for JsonVisitor<'a> {
    type Value = Json<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Json::Num(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Json::Num(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Num))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Json::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::new();
        while let Some(key) = map.next_key::<Text<'a>>()? {
            let value = map.next_value()?;
            members.push((key.0.unwrap_or_default(), value));
        }
        Ok(Json::Obj(members))
    }
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Num(n) => n.serialize(s),
            Json::Str(v) => s.serialize_str(v),
            Json::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Obj(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k.as_ref(), v)?;
                }
                map.end()
            }
        }
    }
}

/// A string field read leniently: `Some` (borrowed when unescaped) for a JSON string, `None`
/// for null, a missing field (with `#[serde(default)]`) or any other type, so that one field
/// of an unexpected type does not make the whole chunk unreadable.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Text<'a>(pub(crate) Option<Cow<'a, str>>);

impl Text<'_> {
    pub(crate) fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor(std::marker::PhantomData))
    }
}

struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
    type Value = Text<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Borrowed(v))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v.to_owned()))))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v))))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Text(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Text(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Text(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Text(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Text(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Text(None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Text::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Text(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text(None))
    }
}

/// A token count read leniently: `Some` for a non-negative integer (or an integral float),
/// `None` for anything else.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Count(pub(crate) Option<u64>);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CountVisitor)
    }
}

struct CountVisitor;

impl<'de> Visitor<'de> for CountVisitor {
    type Value = Count;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a token count")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Count(Some(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Count(u64::try_from(v).ok()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        let ok = v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64;
        Ok(Count(ok.then_some(v as u64)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Count(None))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Count(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Count(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Count(None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Count::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Count(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Count(None))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Strings without escapes borrow from the input; escaped ones are decoded; members
    /// keep document order and duplicates; re-serialisation is valid, compact JSON.
    #[test]
    fn tree_borrows_and_keeps_order() {
        let src = br#"{"b":"plain","a":"esc\"aped","b":[1,-2,3.5,true,null,{"k":"v"}]}"#;
        let v: Json<'_> = serde_json::from_slice(src).unwrap();
        let m = v.members();
        assert_eq!(m.len(), 3);
        assert!(matches!(
            &m[0],
            (Cow::Borrowed("b"), Json::Str(Cow::Borrowed("plain")))
        ));
        assert_eq!(m[1].1.as_str(), Some("esc\"aped"));
        assert!(matches!(&m[1].1, Json::Str(Cow::Owned(_))));
        assert_eq!(v.fields("b").count(), 2);
        let out = serde_json::to_vec(&v).unwrap();
        assert_eq!(out, src.to_vec());
    }

    /// Go's case-insensitive field matching, including the non-ASCII runes that fold to
    /// ASCII letters, is reproduced; other keys do not match.
    #[test]
    fn go_key_matching() {
        assert!(go_key_matches("model", "model"));
        assert!(go_key_matches("MODEL", "model"));
        assert!(go_key_matches("Model", "model"));
        assert!(go_key_matches("ſtream", "stream"));
        assert!(go_key_matches("STREAM_OPTİONS", "stream_options"));
        assert!(go_key_matches("stream_optıons", "stream_options"));
        assert!(!go_key_matches("models", "model"));
        assert!(!go_key_matches("mode", "model"));
        assert!(!go_key_matches("model ", "model"));
        assert!(!go_key_matches("mödel", "model"));
    }

    /// Lenient leaves turn values of an unexpected type into None instead of failing the
    /// whole parse.
    #[test]
    fn lenient_leaves() {
        #[derive(serde::Deserialize)]
        struct T<'a> {
            #[serde(borrow, default)]
            a: Text<'a>,
            #[serde(borrow, default)]
            b: Text<'a>,
            #[serde(default)]
            c: Count,
            #[serde(default)]
            d: Count,
            #[serde(default)]
            e: Count,
        }
        let t: T<'_> =
            serde_json::from_str(r#"{"a":"x","b":{"n":[1]},"c":7,"d":"7","e":-1}"#).unwrap();
        assert_eq!(t.a.get(), Some("x"));
        assert_eq!(t.b.get(), None);
        assert_eq!(t.c, Count(Some(7)));
        assert_eq!(t.d, Count(None));
        assert_eq!(t.e, Count(None));
    }
}
