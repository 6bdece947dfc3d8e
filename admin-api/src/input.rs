//! Turning requests into typed input, with errors that name the field.
//!
//! - [`ApiJson`]: the JSON body extractor. Not JSON at all → 400; JSON of the wrong shape →
//!   422 `"<field>: <what is wrong>"`. axum's own `Json` answers in plain text and does not
//!   name fields the way docs/api.md promises, so handlers use this one.
//! - [`KeyId`]: the `{id}` path segment; anything that is not an id is an unknown key (404).
//! - [`Patch`]: a field of a partial update (absent, `null`, or a value).
//! - [`NonNegative`], [`Priority`] and [`Rfc3339`]: field types that validate while
//!   deserializing.

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeOwned, Deserializer, Unexpected, Visitor};
use serde::Deserialize;

use crate::error::ApiError;

/// A JSON object body deserialized into `T`, with the rejections docs/api.md describes.
#[derive(Clone, Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        parse(&body_bytes(req, state).await?).map(ApiJson)
    }
}

/// The whole body; too large (the router's limit) → 413.
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            _ => ApiError::BadRequest(format!(
                "cannot read the request body: {}",
                rejection.body_text()
            )),
        })
}

/// Syntax first (400), then the shape (422).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "empty request body: send a JSON object, e.g. {}".into(),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        ApiError::Unprocessable(field_message(&path, &message))
    })
}

/// `"<field>: <what>"`. serde reports a missing field at the object itself (path `.`) with
/// the name inside the message, and an unknown field with its name in both; either way the
/// name goes to the front, once.
fn field_message(path: &str, message: &str) -> String {
    for (lead, what) in [
        ("unknown field `", "unknown field"),
        ("missing field `", "is required"),
    ] {
        if let Some((name, tail)) = message.strip_prefix(lead).and_then(|r| r.split_once('`')) {
            let field = if path.is_empty() || path == "." {
                name
            } else {
                path
            };
            let tail = tail.trim_start_matches(',').trim();
            return if tail.is_empty() {
                format!("{field}: {what}")
            } else {
                format!("{field}: {what}; {tail}")
            };
        }
    }
    if path.is_empty() || path == "." {
        return format!("body: {message}");
    }
    format!("{path}: {message}")
}

/// The `{id}` of `/api/api-keys/{id}…`. A segment that is not an id names no key: 404.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for KeyId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("no such endpoint".into()))?;
        raw.parse::<i64>()
            .map(KeyId)
            .map_err(|_| ApiError::key_not_found(format!("{raw:?}")))
    }
}

/// The admin client's address, for the audit trail (`unknown` when the router runs without
/// connection info, as in `oneshot` tests that insert none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Client(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(
                    || "unknown".to_owned(),
                    |ConnectInfo(addr)| addr.ip().to_canonical().to_string(),
                ),
        ))
    }
}

/// A JSON object body that may be left out entirely (an empty body is `T::default()`).
#[derive(Clone, Debug)]
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        parse(&bytes).map(OptionalJson)
    }
}

/// One field of a partial update: left out (keep the value), `null` (clear it), or a value.
/// Use it with `#[serde(default)]` so that a missing field is [`Patch::Absent`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Patch<T> {
    /// The engine's spelling: `None` = keep, `Some(None)` = clear, `Some(Some(v))` = set.
    pub fn into_update(self) -> Option<Option<T>> {
        match self {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Value(v) => Some(Some(v)),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(v) => Patch::Value(f(v)),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            None => Patch::Null,
            Some(v) => Patch::Value(v),
        })
    }
}

/// A limit: a JSON integer ≥ 0. `-1`, `1.5` and `"10"` are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NonNegative(pub i64);

impl<'de> Deserialize<'de> for NonNegative {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NonNegative;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a non-negative integer or null")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NonNegative, E> {
                i64::try_from(v)
                    .map(NonNegative)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NonNegative, E> {
                if v < 0 {
                    return Err(E::invalid_value(Unexpected::Signed(v), &self));
                }
                Ok(NonNegative(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A GPU-time limit: a JSON number of seconds, non-negative, at most three decimals; held
/// in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuSeconds(pub i64);

impl<'de> Deserialize<'de> for GpuSeconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = GpuSeconds;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a non-negative number of seconds (at most three decimals) or null")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<GpuSeconds, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<GpuSeconds, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<GpuSeconds, E> {
                quota_engine::gate::gpu_ms_from_seconds("GPU seconds", v)
                    .map(GpuSeconds)
                    .map_err(|_| E::invalid_value(Unexpected::Float(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// A fair-queue priority: a JSON integer from 1 to 10.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority(pub i64);

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Priority;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer from 1 to 10, or null for the default (1)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Priority, E> {
                match i64::try_from(v) {
                    Ok(p) if (1..=10).contains(&p) => Ok(Priority(p)),
                    _ => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Priority, E> {
                if (1..=10).contains(&v) {
                    Ok(Priority(v))
                } else {
                    Err(E::invalid_value(Unexpected::Signed(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// An instant written as RFC 3339 with an offset (`2027-01-31T00:00:00+01:00`, `…Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Rfc3339 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Rfc3339;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an RFC 3339 timestamp such as 2027-01-31T00:00:00+01:00, or null")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Rfc3339, E> {
                DateTime::parse_from_rfc3339(v.trim())
                    .map(|t| Rfc3339(t.with_timezone(&Utc)))
                    .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default)]
        limit: Patch<NonNegative>,
        #[serde(default)]
        at: Patch<Rfc3339>,
        name: String,
    }

    fn error_of(body: &str) -> ApiError {
        parse::<Sample>(body.as_bytes()).expect_err(body)
    }

    /// Absent, null and a value are three different patches.
    #[test]
    fn patch_states() {
        let s: Sample = parse(br#"{"name": "a"}"#).unwrap();
        assert_eq!(s.limit, Patch::Absent);
        assert_eq!(s.name, "a");
        let s: Sample = parse(br#"{"name": "a", "limit": null}"#).unwrap();
        assert_eq!(s.limit, Patch::Null);
        let s: Sample =
            parse(br#"{"name": "a", "limit": 7, "at": "2027-01-31T00:00:00+01:00"}"#).unwrap();
        assert_eq!(s.limit, Patch::Value(NonNegative(7)));
        assert_eq!(
            s.at.into_update().flatten().unwrap().0.to_rfc3339(),
            "2027-01-30T23:00:00+00:00"
        );
    }

    /// Syntax errors are 400; shape errors are 422 and start with the field's name.
    #[test]
    fn messages_name_the_field() {
        assert!(matches!(error_of("{"), ApiError::BadRequest(_)));
        assert!(matches!(error_of(""), ApiError::BadRequest(_)));
        for (body, field) in [
            (r#"{"name": "a", "limit": -1}"#, "limit: "),
            (r#"{"name": "a", "limit": 1.5}"#, "limit: "),
            (r#"{"name": "a", "limit": "10"}"#, "limit: "),
            (r#"{"name": "a", "at": "tomorrow"}"#, "at: "),
            (r#"{"name": 5}"#, "name: "),
            (
                r#"{"name": "a", "limt": 5}"#,
                "limt: unknown field; expected one of `limit`",
            ),
            (r#"{"limit": 5}"#, "name: is required"),
            ("[1]", "body: "),
        ] {
            match error_of(body) {
                ApiError::Unprocessable(m) => assert!(m.starts_with(field), "{body}: {m}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
