//! The upstream request rewrite and the response phases, shared by Pingora's proxy loop and
//! the gateway's own loop for large bodies.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::Result;

use quota_engine::ledger::Metered;
use quota_engine::Extension;

use super::context::RequestCtx;
use super::errors::ProxyError;
use super::holds::Holds;
use crate::dialect::{CutPoint, Ending, Framing, Meter};
use crate::state::AppState;

/// What the response body phase decided about the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyStep {
    /// Forward `body` and go on.
    Continue,
    /// The key's token or GPU-time quota ended the answer: send this as the last bytes of
    /// the body, and drop the upstream connection so that Ollama stops generating.
    Cut(CutEnd),
}

/// The last bytes of an answer its token or GPU-time quota ended. In Pingora's proxy loop it
/// travels as the cause of the error that stops the loop, to `fail_to_proxy`, which writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CutEnd(pub Bytes);

impl std::fmt::Display for CutEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the key's quota has no room left for this answer")
    }
}

impl std::error::Error for CutEnd {}

/// The request goes to its host now: rewritten (see [`rewrite_upstream_request`]), and its
/// host's time starts (a retry on another host starts it again).
pub fn on_upstream_request(req: &mut RequestHeader, ctx: &mut RequestCtx) -> Result<()> {
    rewrite_upstream_request(req, ctx)?;
    ctx.answer.sent_at = Some(Instant::now());
    Ok(())
}

/// `Host` becomes the upstream's authority (Ollama 403s a foreign one), the client's
/// credentials never leave, and a body the gateway read gets its exact length.
fn rewrite_upstream_request(req: &mut RequestHeader, ctx: &RequestCtx) -> Result<()> {
    req.insert_header("host", ctx.holds.host_authority().unwrap_or_default())?;
    // `/api/versions` is our alias of Ollama's `/api/version`.
    if req.uri.path() == "/api/versions" {
        req.set_uri(http::Uri::from_static("/api/version"));
    }
    req.remove_header("authorization");
    req.remove_header("x-api-key");
    // Token counting and listing filters read the answer: keep it uncompressed.
    req.insert_header("accept-encoding", "identity")?;
    if let Some(body) = &ctx.inbound.body {
        // The body the gateway read is forwarded decoded (see `body_encoding`).
        req.remove_header("content-encoding");
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
    ctx.answer.status = Some(status);
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
    if let Some(origin) = &ctx.inbound.cors_origin {
        super::cors::decorate(resp, origin)?;
    }
    let inbound = &ctx.inbound;
    if let Some(api) = inbound.api {
        let content_type = resp
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        let framing = Framing::of_answer(api, content_type, resp.status.is_success());
        ctx.answer.meter = Some(Meter::new(api, framing, inbound.usage_injected));
        if inbound.usage_injected {
            resp.remove_header("content-length");
        }
        let waited = u64::try_from(inbound.queue_wait.as_millis()).unwrap_or(u64::MAX);
        resp.insert_header("x-queue-wait-ms", waited)?;
        let headroom = ctx.holds.headroom();
        if (200..300).contains(&status) {
            if let Some((limit, remaining)) = headroom.requests {
                resp.insert_header("x-ratelimit-limit-requests", limit.to_string())?;
                resp.insert_header("x-ratelimit-remaining-requests", remaining.to_string())?;
            }
            if let Some((limit, remaining)) = headroom.tokens {
                resp.insert_header("x-ratelimit-limit-tokens", limit.to_string())?;
                resp.insert_header("x-ratelimit-remaining-tokens", remaining.to_string())?;
            }
            if let Some((limit, remaining)) = headroom.gpu_ms {
                let seconds = quota_engine::usage_report::seconds;
                resp.insert_header("x-ratelimit-limit-gpu-seconds", seconds(limit))?;
                resp.insert_header("x-ratelimit-remaining-gpu-seconds", seconds(remaining))?;
            }
            let now = chrono::Utc::now();
            let until = |at: chrono::DateTime<chrono::Utc>| {
                openai_duration(u64::try_from((at - now).num_seconds()).unwrap_or(0))
            };
            if let Some(at) = headroom.requests_reset_at {
                resp.insert_header("x-ratelimit-reset-requests", until(at))?;
            }
            if let Some(at) = headroom.tokens_reset_at {
                resp.insert_header("x-ratelimit-reset-tokens", until(at))?;
            }
        }
    }
    if ctx.inbound.filter_listing && status == 200 {
        resp.remove_header("content-length");
        ctx.answer.listing = Some(BytesMut::new());
    }
    Ok(())
}

/// Feeds the meter (and the listing filter) with one response chunk; keeps a growing answer
/// within its key's token quota (see [`police`]); at the end, flushes what the meter held
/// back and keeps the final usage for `logging`.
pub fn on_response_body(
    state: &AppState,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
    ctx: &mut RequestCtx,
) -> BodyStep {
    let answer = &mut ctx.answer;
    if answer.first_byte.is_none() && body.as_ref().is_some_and(|b| !b.is_empty()) {
        answer.first_byte = Some(Instant::now());
    }
    if answer.cut {
        // Cut already: nothing more goes to the client.
        *body = None;
        return BodyStep::Cut(CutEnd(Bytes::new()));
    }
    if let Some(listing) = &mut answer.listing {
        if let Some(chunk) = body.take() {
            listing.extend_from_slice(&chunk);
        }
        if end_of_stream {
            let key = ctx.inbound.key.as_deref();
            *body = Some(filter_listing(listing, |m| {
                key.is_some_and(|k| k.allows_model(m))
            }));
        }
        return BodyStep::Continue;
    }
    let Some(meter) = &mut answer.meter else {
        return BodyStep::Continue;
    };
    if let Some(chunk) = body.as_ref() {
        if let Some(replacement) = meter.feed(chunk) {
            *body = Some(replacement);
        }
        if !end_of_stream {
            let output_len = body.as_ref().map_or(0, Bytes::len);
            if let Some(at) = police(state, ctx, output_len) {
                let kept = body.take().map(|b| b.slice(..at.min(b.len())));
                return BodyStep::Cut(cut(state, ctx, kept.as_deref().unwrap_or_default()));
            }
        }
    }
    let answer = &mut ctx.answer;
    let Some(meter) = &mut answer.meter else {
        return BodyStep::Continue;
    };
    if end_of_stream && answer.usage.is_none() {
        answer.ended_at = Some(Instant::now());
        let (usage, held) = meter.finish();
        answer.usage = Some(usage);
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
    BodyStep::Continue
}

/// Ends the answer here: `kept` (the part of the chunk that goes out) and the answer's clean
/// end. Nothing more goes to the client.
fn cut(state: &AppState, ctx: &mut RequestCtx, kept: &[u8]) -> CutEnd {
    let ending = ending_of(state, ctx);
    let mut tail = BytesMut::with_capacity(kept.len() + ending.len());
    tail.extend_from_slice(kept);
    tail.extend_from_slice(&ending);
    let answer = &mut ctx.answer;
    answer.cut = true;
    answer.ended_at = Some(Instant::now());
    if let Some(meter) = &mut answer.meter {
        answer.usage = Some(meter.finish().0);
    }
    CutEnd(tail.freeze())
}

/// The client hung up (Pingora saw its connection close): the host's time on the request
/// ends now, and a request its host worked on is charged even without an answer.
pub fn on_client_gone(ctx: &mut RequestCtx) {
    let answer = &mut ctx.answer;
    answer.client_left = true;
    if answer.sent_at.is_some() && answer.ended_at.is_none() {
        answer.ended_at = Some(Instant::now());
    }
}

/// How the key's GPU time ending an answer reaches the client (see [`on_gpu_timeout`]).
pub enum GpuCut {
    /// Nothing was sent yet: a 429 naming the GPU-time limit.
    Refused(ProxyError),
    /// A stream was under way: its clean end (`done_reason: "length"`).
    Ended(CutEnd),
    /// A stream whose client holds the start of an unfinished line: it can only be closed.
    Closed,
}

/// The upstream read timeout set from the key's GPU-time room fired (see
/// `failover::gpu_room`): the host used the key's GPU time up. The connection to it is
/// dropped (Ollama stops), the request is charged, and the client learns why.
pub fn on_gpu_timeout(state: &AppState, ctx: &mut RequestCtx, response_sent: bool) -> GpuCut {
    let answer = &mut ctx.answer;
    answer.gpu_cut = true;
    answer.cut_wanted = true;
    if answer.ended_at.is_none() {
        answer.ended_at = Some(Instant::now());
    }
    if !response_sent {
        let refusal =
            ctx.holds.admission().zip(ctx.holds.payer()).and_then(
                |(admission, (payer, periods))| admission.gpu_limit_reached(payer, periods),
            );
        let Some(refusal) = refusal else {
            return GpuCut::Refused(ProxyError::gateway_timeout(
                "the Ollama host did not answer in time".into(),
            ));
        };
        let message = format!("{refusal}; the host was stopped there");
        let retry_after = refusal.retry_after_secs(chrono::Utc::now());
        return GpuCut::Refused(ProxyError::quota_exceeded(message, retry_after));
    }
    let at_boundary = ctx
        .answer
        .meter
        .as_ref()
        .is_some_and(Meter::at_line_boundary);
    if !at_boundary {
        return GpuCut::Closed;
    }
    GpuCut::Ended(cut(state, ctx, &[]))
}

/// Keeps a streamed answer under a token or GPU-time quota within its reservations: when the
/// running count (tokens: prompt + completion so far; GPU time: the host's time so far ×
/// its weight) reaches a reservation, the ledger reserves another block (in memory). When a
/// quota has no room for one and the answer goes past its reservation, the answer must end:
/// returns where in the chunk's output (`output_len` bytes) it can end on a line boundary, or
/// `None` to go on (also while a line the client has the start of is still open). An answer
/// whose end already came through is never cut.
fn police(state: &AppState, ctx: &mut RequestCtx, output_len: usize) -> Option<usize> {
    let meter = ctx.answer.meter.as_ref()?;
    let tokens_capped = ctx.holds.output_cap().is_some();
    let gpu_capped = ctx.holds.gpu_cap_ms().is_some();
    if !(tokens_capped || gpu_capped)
        || !(200..300).contains(&ctx.answer.status.unwrap_or(0))
        || matches!(meter.framing(), Framing::Json | Framing::Text)
        || meter.usage().complete
    {
        return None;
    }
    if !ctx.answer.cut_wanted {
        let mut over = false;
        if tokens_capped {
            let completion = meter.running_completion(state.config.token_counting);
            let used = ctx.inbound.prompt_tokens.saturating_add(completion);
            let used = i64::try_from(used).unwrap_or(i64::MAX);
            let block = state.config.output_reservation_tokens;
            over |= keep_within(&mut ctx.holds, Metered::Tokens, used, block);
        }
        if gpu_capped {
            let used = ctx.gpu_ms_so_far();
            over |= keep_within(
                &mut ctx.holds,
                Metered::GpuMs,
                used,
                state.config.gpu_block_ms,
            );
        }
        ctx.answer.cut_wanted = over;
    }
    if !ctx.answer.cut_wanted {
        return None;
    }
    match ctx.answer.meter.as_ref()?.cut_point(output_len) {
        CutPoint::At(at) => Some(at),
        CutPoint::NotYet => None,
    }
}

/// Extends the request's reservation of `kind` by `block`s while `used` reaches it (asked for
/// as the count reaches the reservation, so that what comes next is covered). Returns true
/// when the quota has no room left and `used` went past the reservation: the answer must end.
/// Exactly at its reservation an answer may be about to end by itself (its output limit): it
/// is ended only once it goes past.
fn keep_within(holds: &mut Holds, kind: Metered, used: i64, block: i64) -> bool {
    let mut exhausted = false;
    while used >= holds.reserved(kind) {
        match holds.extend(kind, block) {
            Extension::Granted(n) if n > 0 => continue,
            // A grant is on its way: the answer goes on, and asks again with the next chunk
            // (what it uses meanwhile is charged only as far as the quota allows).
            Extension::Granted(_) | Extension::Pending => break,
            Extension::Exhausted => {
                exhausted = true;
                break;
            }
        }
    }
    exhausted && used > holds.reserved(kind)
}

/// The clean end of an answer cut by its token or GPU-time quota, reporting what it is
/// charged.
fn ending_of(state: &AppState, ctx: &RequestCtx) -> Bytes {
    let Some(meter) = ctx.answer.meter.as_ref() else {
        return Bytes::new();
    };
    let inbound = &ctx.inbound;
    let running = meter.running_completion(state.config.token_counting);
    // Under a token limit the charge stops at the reservation; without one, all is charged.
    let completion = if ctx.holds.output_cap().is_some() {
        let reserved = u64::try_from(ctx.holds.reserved_tokens()).unwrap_or(0);
        running.min(reserved.saturating_sub(inbound.prompt_tokens))
    } else {
        running
    };
    Ending {
        api: meter.api(),
        framing: meter.framing(),
        model: inbound.model.as_deref().unwrap_or(""),
        prompt_tokens: inbound.prompt_tokens,
        completion_tokens: completion,
        event_open: meter.event_open(),
        with_usage: inbound.client_wants_usage,
    }
    .bytes()
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
