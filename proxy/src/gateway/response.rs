//! The upstream request rewrite and the response phases, shared by Pingora's proxy loop and
//! the gateway's own loop for large bodies.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::Result;

use super::context::RequestCtx;
use crate::dialect::{Framing, Meter};

/// `Host` becomes the upstream's authority (Ollama 403s a foreign one), the client's
/// credentials never leave, and a body the gateway read gets its exact length.
pub fn rewrite_upstream_request(
    req: &mut RequestHeader,
    ctx: &RequestCtx,
    authority: &str,
) -> Result<()> {
    req.insert_header("host", authority)?;
    // `/api/versions` is our alias of Ollama's `/api/version`.
    if req.uri.path() == "/api/versions" {
        req.set_uri(http::Uri::from_static("/api/version"));
    }
    req.remove_header("authorization");
    req.remove_header("x-api-key");
    // Token counting and listing filters read the answer: keep it uncompressed.
    req.insert_header("accept-encoding", "identity")?;
    if let Some(body) = &ctx.body {
        req.remove_header("transfer-encoding");
        req.remove_header("expect");
        req.insert_header("content-length", body.len().to_string())?;
    }
    Ok(())
}

/// A duration as OpenAI writes it in `x-ratelimit-reset-*`: `1s`, `6m0s`, `13h2m5s`.
pub fn openai_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// Sets up metering and listing filters for the answer and adds the `x-ratelimit-*` headers.
pub fn on_response_header(resp: &mut ResponseHeader, ctx: &mut RequestCtx) -> Result<()> {
    let status = resp.status.as_u16();
    ctx.upstream_status = Some(status);
    // Ollama's own CORS policy must not leak through: only ALLOWED_ORIGINS decide.
    for name in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-headers",
        "access-control-allow-methods",
        "access-control-expose-headers",
    ] {
        resp.remove_header(name);
    }
    if let Some(origin) = &ctx.cors_origin {
        super::cors::decorate(resp, origin)?;
    }
    if let Some(api) = ctx.api {
        let content_type = resp
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        let framing = Framing::from_content_type(content_type);
        ctx.meter = Some(Meter::new(api, framing, ctx.usage_injected));
        if ctx.usage_injected {
            resp.remove_header("content-length");
        }
        if (200..300).contains(&status) {
            if let Some((limit, remaining)) = ctx.headroom.requests {
                resp.insert_header("x-ratelimit-limit-requests", limit.to_string())?;
                resp.insert_header("x-ratelimit-remaining-requests", remaining.to_string())?;
            }
            if let Some((limit, remaining)) = ctx.headroom.tokens {
                resp.insert_header("x-ratelimit-limit-tokens", limit.to_string())?;
                resp.insert_header("x-ratelimit-remaining-tokens", remaining.to_string())?;
            }
            let now = chrono::Utc::now();
            let until = |at: chrono::DateTime<chrono::Utc>| {
                openai_duration(u64::try_from((at - now).num_seconds()).unwrap_or(0))
            };
            if let Some(at) = ctx.headroom.requests_reset_at {
                resp.insert_header("x-ratelimit-reset-requests", until(at))?;
            }
            if let Some(at) = ctx.headroom.tokens_reset_at {
                resp.insert_header("x-ratelimit-reset-tokens", until(at))?;
            }
        }
    }
    if ctx.listing.is_some() {
        if status == 200 {
            resp.remove_header("content-length");
        } else {
            ctx.listing = None;
        }
    }
    Ok(())
}

/// Feeds the meter (and the listing filter) with one response chunk; at the end, flushes
/// what the meter held back and keeps the final usage for `logging`.
pub fn on_response_body(body: &mut Option<Bytes>, end_of_stream: bool, ctx: &mut RequestCtx) {
    if ctx.first_byte.is_none() && body.as_ref().is_some_and(|b| !b.is_empty()) {
        ctx.first_byte = Some(Instant::now());
    }
    if let Some(listing) = &mut ctx.listing {
        if let Some(chunk) = body.take() {
            listing.extend_from_slice(&chunk);
        }
        if end_of_stream {
            let key = ctx.key.as_deref();
            *body = Some(filter_listing(listing, |m| {
                key.is_some_and(|k| k.allows_model(m))
            }));
        }
        return;
    }
    let Some(meter) = &mut ctx.meter else { return };
    if let Some(chunk) = body.as_ref() {
        if let Some(replacement) = meter.feed(chunk) {
            *body = Some(replacement);
        }
    }
    if end_of_stream && ctx.usage.is_none() {
        let (usage, held) = meter.finish();
        ctx.usage = Some(usage);
        if let Some(held) = held.filter(|h| !h.is_empty()) {
            *body = Some(match body.take() {
                Some(b) if !b.is_empty() => {
                    let mut joined = BytesMut::with_capacity(b.len() + held.len());
                    joined.extend_from_slice(&b);
                    joined.extend_from_slice(&held);
                    joined.freeze()
                }
                _ => held,
            });
        }
    }
}

/// Keeps the entries of an `/api/tags` (`models[].name`) or `/v1/models` (`data[].id`) answer
/// that the key may use. An answer that does not parse passes unchanged.
pub fn filter_listing(raw: &[u8], allowed: impl Fn(&str) -> bool) -> Bytes {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(raw) else {
        return Bytes::copy_from_slice(raw);
    };
    for (list, field) in [("models", "name"), ("data", "id")] {
        if let Some(entries) = value.get_mut(list).and_then(|l| l.as_array_mut()) {
            entries.retain(|e| {
                e.get(field)
                    .or_else(|| e.get("model"))
                    .and_then(|n| n.as_str())
                    .is_some_and(&allowed)
            });
        }
    }
    match serde_json::to_vec(&value) {
        Ok(v) => Bytes::from(v),
        Err(_) => Bytes::copy_from_slice(raw),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Durations in OpenAI's `x-ratelimit-reset-*` format.
    #[test]
    fn openai_durations() {
        assert_eq!(openai_duration(0), "0s");
        assert_eq!(openai_duration(1), "1s");
        assert_eq!(openai_duration(360), "6m0s");
        assert_eq!(openai_duration(13 * 3600 + 2 * 60 + 5), "13h2m5s");
        assert_eq!(openai_duration(30 * 24 * 3600), "720h0m0s");
    }

    /// Listings keep only allowed models, in both API shapes.
    #[test]
    fn listing_filter() {
        let tags = br#"{"models":[{"name":"llama3:latest"},{"name":"qwen3"},{"name":"x:cloud"}]}"#;
        let out = filter_listing(tags, |m| m.starts_with("llama3"));
        assert_eq!(&out[..], br#"{"models":[{"name":"llama3:latest"}]}"#);
        let models = br#"{"object":"list","data":[{"id":"a"},{"id":"b"}]}"#;
        let out: serde_json::Value =
            serde_json::from_slice(&filter_listing(models, |m| m == "b")).unwrap();
        assert_eq!(out["data"], serde_json::json!([{"id":"b"}]));
        assert_eq!(&filter_listing(b"not json", |_| true)[..], b"not json");
    }
}
