//! The per-request context, in parts that each have one writer:
//!
//! | part | what it is | written by | read by |
//! |---|---|---|---|
//! | [`Inbound`] | what came in: route, key, model, body, prompt count | `request.rs` | all phases |
//! | [`Holds`] | what the request took and must give back | `holds.rs` (called by `request.rs`, `pacing.rs`, `failover.rs`) | `response.rs`, `accounting.rs` |
//! | [`Attempt`] | the hosts tried, retries | `failover.rs` | `failover.rs` |
//! | [`Answer`] | Ollama's answer: status, meter, usage, the cut | `response.rs` | `accounting.rs`, `mod.rs` |
//! | `own_status` | the status of an answer the gateway wrote itself | `own_answer.rs` | `accounting.rs` |
//!
//! The request settles once, by [`RequestCtx::outcome`] and [`Holds::settle`]: from `logging`,
//! or from `Drop` when `logging` never runs (shutdown).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use quota_engine::usage_log::GpuTime;
use quota_engine::ApiKey;

use super::errors::Dialect;
use super::holds::Holds;
use super::route::Route;
use crate::dialect::{Api, Meter, TokenCounting, Usage};
use crate::state::RuntimeSettings;

/// More GPU time than one request can take (about 35 years, in milliseconds); larger values
/// (a bogus duration from upstream) are clamped, as token counts are.
pub const MAX_GPU_MS_PER_REQUEST: i64 = 1 << 40;

/// One request's state, from `request_filter` to `logging`.
pub struct RequestCtx {
    /// new_ctx: when the request started (durations, time to first token).
    pub started: Instant,
    pub inbound: Inbound,
    pub holds: Holds,
    pub attempt: Attempt,
    pub answer: Answer,
    /// own_answer.rs: set when the gateway itself answered (error, refusal or its own reply).
    pub own_status: Option<u16>,
}

/// What came in, as `request_filter` found it. Written by `request.rs` only.
pub struct Inbound {
    /// The route class, its metrics template and error dialect.
    pub route: Route,
    pub template: &'static str,
    pub dialect: Dialect,
    /// The request's Origin when ALLOWED_ORIGINS lists it (CORS headers).
    pub cors_origin: Option<String>,
    /// The authenticated key (None for /healthz and refused requests).
    pub key: Option<Arc<ApiKey>>,
    /// Runtime settings snapshot (default model, upstream pool) for this request.
    pub runtime: Option<Arc<RuntimeSettings>>,
    /// The counted API, the model after defaulting, prompt tokens (with `prompt_overhead`,
    /// the learned share of Ollama's template, included).
    pub api: Option<Api>,
    pub model: Option<String>,
    pub prompt_tokens: u64,
    pub prompt_overhead: u64,
    /// We added `stream_options.include_usage` and must strip its chunk.
    pub usage_injected: bool,
    /// The client asked for the usage chunk of an OpenAI stream (the end of a stream cut by
    /// the quota carries one then).
    pub client_wants_usage: bool,
    /// The exact bytes to send upstream when the gateway read the body (rewritten or
    /// original); `request_body_filter` and the large-body loop send them.
    pub body: Option<Bytes>,
    /// A model listing answered by a host: `response.rs` filters it by the key's models.
    pub filter_listing: bool,
    /// How long the request waited for a parallel slot and a host (`x-queue-wait-ms`).
    pub queue_wait: Duration,
}

/// The current attempt and the ones before it. Written by `failover.rs` only.
#[derive(Default)]
pub struct Attempt {
    /// Indices in `runtime.pool` of the hosts tried for this request, the current one last
    /// (retries skip them).
    pub tried: Vec<usize>,
    /// Retries on a pooled connection the host had closed.
    pub stale_retries: u8,
    /// The current attempt's read timeout is the key's GPU-time room (shorter than
    /// `ollama.read_timeout`): when it fires, the GPU-time quota ended the answer.
    pub gpu_capped: bool,
}

/// Ollama's answer as it passes. Written by `response.rs` only.
#[derive(Default)]
pub struct Answer {
    /// The upstream's status code, once it answered.
    pub status: Option<u16>,
    /// The token meter of a counted route.
    pub meter: Option<Meter>,
    /// The meter's final count (end of stream, or the cut).
    pub usage: Option<Usage>,
    /// A model listing buffered to be filtered.
    pub listing: Option<BytesMut>,
    /// When the first response byte went out.
    pub first_byte: Option<Instant>,
    /// The key's token or GPU-time quota has no room left for this answer; it ends at the
    /// next line boundary.
    pub cut_wanted: bool,
    /// The answer was cut: nothing more goes to the client.
    pub cut: bool,
    /// The key's GPU time ran out before the host answered (the read timeout set from it
    /// fired): the host worked, so the request is charged, and the client gets a 429.
    pub gpu_cut: bool,
    /// The client hung up before the answer was done (its host may have worked on it).
    pub client_left: bool,
    /// When the current attempt's request went to its host, and when its answer ended (last
    /// byte or the cut; `None` until then): the host's time on the request, its GPU time.
    pub sent_at: Option<Instant>,
    pub ended_at: Option<Instant>,
}

impl Default for Inbound {
    fn default() -> Self {
        Inbound {
            route: Route::Unknown,
            template: "unknown",
            dialect: Dialect::Ollama,
            cors_origin: None,
            key: None,
            runtime: None,
            api: None,
            model: None,
            prompt_tokens: 0,
            prompt_overhead: 0,
            usage_injected: false,
            client_wants_usage: false,
            body: None,
            filter_listing: false,
            queue_wait: Duration::ZERO,
        }
    }
}

impl Inbound {
    /// The key's display prefix for metrics and logs (never the key).
    pub fn key_label(&self) -> &str {
        self.key
            .as_deref()
            .map_or("none", |k| k.key_prefix.as_str())
    }
}

impl Answer {
    /// Seconds the host spent on the request: from sending it until its answer ended (or
    /// until now, for an answer the client or the host broke off). Zero if it was never sent.
    pub fn host_seconds(&self) -> f64 {
        let Some(sent) = self.sent_at else {
            return 0.0;
        };
        let ended = self.ended_at.unwrap_or_else(Instant::now);
        ended.saturating_duration_since(sent).as_secs_f64()
    }
}

impl RequestCtx {
    pub fn new() -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            inbound: Inbound::default(),
            holds: Holds::default(),
            attempt: Attempt::default(),
            answer: Answer::default(),
            own_status: None,
        }
    }

    /// The answer's usage as metered: the final count, or (for an answer that ended early)
    /// what the meter has seen so far, flushed.
    pub fn final_usage(&mut self) -> Usage {
        match (self.answer.usage, self.answer.meter.as_mut()) {
            (Some(usage), _) => usage,
            (None, Some(meter)) => meter.finish().0,
            (None, None) => Usage::default(),
        }
    }

    /// The request's GPU time in milliseconds (docs/api.md, "GPU time"): its host's time ×
    /// the host's `gpu_weight`, and what Ollama reported of it. Zero when it never reached a
    /// host (or after the settlement gave the host's slot back).
    pub fn gpu_time(&mut self) -> GpuTime {
        let durations = self.final_usage().durations;
        // A bogus duration from upstream must not overflow the daily sums (and stop every
        // write of the usage log): no request counts more than MAX_GPU_MS_PER_REQUEST.
        let max = MAX_GPU_MS_PER_REQUEST;
        let ms = |ns: Option<u64>| {
            i64::try_from(ns.unwrap_or(0) / 1_000_000).map_or(max, |ms| ms.min(max))
        };
        if self.holds.host().is_none() {
            return GpuTime::default();
        }
        GpuTime {
            gpu_ms: self.gpu_ms_so_far(),
            load_ms: ms(durations.load_ns),
            prompt_eval_ms: ms(durations.prompt_eval_ns),
            eval_ms: ms(durations.eval_ns),
        }
    }

    /// The GPU time (ms) of the current attempt so far, or in all once its answer ended:
    /// the host's time × its `gpu_weight`. Zero without a host.
    pub fn gpu_ms_so_far(&self) -> i64 {
        let Some(host) = self.holds.host() else {
            return 0;
        };
        // `as` saturates; the product is never negative (gpu_weight is 0 to 1000).
        ((self.answer.host_seconds() * host.gpu_weight * 1000.0).round() as i64)
            .min(MAX_GPU_MS_PER_REQUEST)
    }

    /// What the request's end costs it, the one rule of `logging` and of `Drop` alike:
    /// - the upstream never answered (connect failure, timeout before the header): refund;
    /// - Ollama answered with an error and generated nothing: refund;
    /// - the key's GPU time ran out before the host answered, or the client hung up after the
    ///   request was sent to its host: the host worked, so the prompt and the GPU time are
    ///   charged;
    /// - otherwise commit the charge of the answer as metered ([`Usage::charge`]): the whole
    ///   answer, or what was streamed before the client hung up, the host broke off, its
    ///   quota ended it or the process stopped. Never more than the limits allow: the ledger's
    ///   commit caps it.
    pub fn outcome(&mut self, counting: TokenCounting) -> Outcome {
        let usage = self.final_usage();
        let chunks = self.answer.meter.as_ref().map_or(0, Meter::output_chunks);
        let (prompt, completion) = usage.charge(counting, self.inbound.prompt_tokens, chunks);
        // A bogus count from upstream must not overflow the counters (and stop every flush).
        let max = super::accounting::MAX_TOKENS_PER_REQUEST;
        let (prompt, completion) = (prompt.min(max), completion.min(max));
        let answered_ok = self.answer.status.is_some_and(|s| (200..300).contains(&s));
        // The host worked on it with no answer to show: its GPU time ran out, or the client
        // hung up after the request was sent.
        let worked_unanswered = self.answer.gpu_cut
            || (self.answer.client_left
                && self.answer.sent_at.is_some()
                && self.answer.status.is_none());
        if worked_unanswered || (self.answer.status.is_some() && (answered_ok || completion > 0)) {
            Outcome::Commit { prompt, completion }
        } else {
            Outcome::Refund
        }
    }
}

/// How a request settles ([`RequestCtx::outcome`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Give back what admission took: the request consumed nothing.
    Refund,
    /// Charge these tokens (the ledger may cap them at the limits).
    Commit { prompt: u64, completion: u64 },
}

impl Outcome {
    /// The tokens to commit in all.
    pub fn total(&self) -> i64 {
        match self {
            Outcome::Refund => 0,
            Outcome::Commit { prompt, completion } => {
                i64::try_from(prompt.saturating_add(*completion)).unwrap_or(i64::MAX)
            }
        }
    }
}

impl Drop for RequestCtx {
    /// At shutdown, after the grace period, Pingora drops the tasks of requests still
    /// streaming: their `logging` never runs. They settle here by the same rule and the same
    /// settlement: whatever was streamed to the client so far is committed (in memory; the
    /// ledger's last flush writes it), so no admitted usage is lost, and a failed answer that
    /// generated nothing is refunded.
    fn drop(&mut self) {
        let Some(counting) = self.holds.counting() else {
            return;
        };
        let outcome = self.outcome(counting);
        let gpu = self.gpu_time();
        let model = self.inbound.model.clone().unwrap_or_default();
        if let Some(settled) = self.holds.settle_now(outcome, &model, gpu) {
            if settled.consumed {
                tracing::info!(
                    key_id = settled.key_id,
                    tokens = settled.prompt + settled.completion,
                    "request cut off by shutdown: its streamed usage is committed"
                );
            }
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        RequestCtx::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Framing;

    fn ctx(status: Option<u16>, streamed: &str) -> RequestCtx {
        let mut ctx = RequestCtx::new();
        ctx.inbound.prompt_tokens = 7;
        ctx.answer.status = status;
        let mut meter = Meter::new(Api::Generate, Framing::Ndjson, false);
        meter.feed(streamed.as_bytes());
        ctx.answer.meter = Some(meter);
        ctx
    }

    /// The one settlement rule (`logging` and `Drop` both apply it): no answer or a failed one
    /// that generated nothing is refunded; anything else is charged as metered.
    #[test]
    fn outcome_rules() {
        let line = "{\"response\":\"Hello\",\"done\":false}\n";
        for counting in [TokenCounting::Tiktoken, TokenCounting::Upstream] {
            assert_eq!(ctx(None, "").outcome(counting), Outcome::Refund);
            assert_eq!(ctx(Some(500), "").outcome(counting), Outcome::Refund);
            assert_eq!(
                ctx(Some(200), "").outcome(counting),
                Outcome::Commit {
                    prompt: 7,
                    completion: 0
                }
            );
            assert_eq!(
                ctx(Some(500), line).outcome(counting),
                Outcome::Commit {
                    prompt: 7,
                    completion: 1
                },
                "a failed answer that generated something is charged it"
            );
        }
        assert_eq!(
            Outcome::Commit {
                prompt: 7,
                completion: 1
            }
            .total(),
            8
        );
    }
}
