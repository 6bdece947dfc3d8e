//! The per-request context: which phase writes each field and which reads it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use quota_engine::gate::Headroom;
use quota_engine::pacing::ParallelPermit;
use quota_engine::usage_log::{UsageRecord, UsageSink};
use quota_engine::{Admission, ApiKey, Ledger, PaceTicket, Pacer, PeriodKeys};

use super::errors::{Dialect, ProxyError};
use super::route::Route;
use crate::dialect::{Api, Meter, TokenCounting, Usage};
use crate::state::RuntimeSettings;
use crate::upstream::load::Counted;
use crate::upstream::{InflightGuard, Selected};

/// One request's state, from `request_filter` to `logging`.
pub struct RequestCtx {
    /// new_ctx: when the request started (durations, time to first token).
    pub started: Instant,
    /// request_filter: the route class, its metrics template and error dialect.
    pub route: Route,
    pub template: &'static str,
    pub dialect: Dialect,
    /// request_filter: the request's Origin when ALLOWED_ORIGINS lists it (CORS headers).
    pub cors_origin: Option<String>,
    /// request_filter: the authenticated key (None for /healthz and refused requests).
    pub key: Option<Arc<ApiKey>>,
    /// request_filter: runtime settings snapshot (default model, upstream pool) for this request.
    pub runtime: Option<Arc<RuntimeSettings>>,
    /// request_filter: the counted API, the model after defaulting, prompt tokens (with
    /// `prompt_overhead`, the learned share of Ollama's template, included).
    pub api: Option<Api>,
    pub model: Option<String>,
    pub prompt_tokens: u64,
    pub prompt_overhead: u64,
    /// request_filter: we added `stream_options.include_usage` and must strip its chunk.
    pub usage_injected: bool,
    /// request_filter → upstream_request_filter, request_body_filter: the exact bytes to send
    /// upstream when the gateway read the body (rewritten or original).
    pub body: Option<Bytes>,
    /// request_filter: the client asked for the usage chunk of an OpenAI stream (the end of
    /// a stream cut by the quota carries one then).
    pub client_wants_usage: bool,
    /// request_filter (gate) → response_body_filter (extensions of a growing answer) →
    /// logging (commit or refund).
    pub admission: Option<Admission>,
    /// request_filter (pacing): the key's parallel slot, held until the request is settled.
    pub parallel: Option<ParallelPermit>,
    /// request_filter (pacing) → logging: what the per-minute window counted for the request.
    pub pace: Option<PaceTicket>,
    /// request_filter (pacing): how long the request waited for a parallel slot and a host
    /// (`x-queue-wait-ms`).
    pub queue_wait: Duration,
    /// request_filter (pacing) → upstream_peer: the host the request got (at once, or from
    /// the fair queue), used by its first attempt.
    pub reserved_host: Option<Selected>,
    /// request_filter → logging: counts the request as running on its model.
    pub model_running: Option<Counted>,
    /// request_filter → response_body_filter, logging: the periods the request was admitted in.
    pub periods: Option<PeriodKeys>,
    /// request_filter (admission) → Drop: where to settle a request whose `logging` never ran
    /// (the process stopped while it streamed and Pingora dropped its task).
    pub settle_on_drop: Option<DropSettlement>,
    /// response_body_filter: the key's token quota has no room left for this answer; it ends
    /// at the next line boundary.
    pub cut_wanted: bool,
    /// response_body_filter → fail_to_proxy (or the large-body loop): the last bytes of an
    /// answer ended by its token quota; the upstream connection is dropped so Ollama stops.
    pub cut_tail: Option<Bytes>,
    /// request_filter → response_filter: remaining quota for `x-ratelimit-*`.
    pub headroom: Headroom,
    /// upstream_peer (failover::choose): indices in `runtime.pool` of the hosts tried for this
    /// request, the current one last (retries skip them), and the guard that counts the
    /// request in flight on the current host (dropped when the request ends or moves on).
    pub tried: Vec<usize>,
    pub inflight: Option<InflightGuard>,
    /// fail_to_connect, error_while_proxy: retries on a pooled connection the host had closed.
    pub stale_retries: u8,
    /// upstream_peer → fail_to_proxy: the answer when no host could take the request.
    pub no_host: Option<ProxyError>,
    /// response_filter: the upstream's status code, once it answered.
    pub upstream_status: Option<u16>,
    /// response_filter → response_body_filter → logging: the token meter of a counted route.
    pub meter: Option<Meter>,
    /// response_body_filter (end of stream) → logging: the meter's final count.
    pub usage: Option<Usage>,
    /// response_filter → response_body_filter: a model listing buffered to be filtered.
    pub listing: Option<BytesMut>,
    /// response_body_filter: when the first response byte went out.
    pub first_byte: Option<Instant>,
    /// Set when the gateway itself answered (error or refusal): nothing to commit.
    pub answered_status: Option<u16>,
}

impl RequestCtx {
    pub fn new() -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
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
            body: None,
            client_wants_usage: false,
            admission: None,
            periods: None,
            parallel: None,
            pace: None,
            queue_wait: Duration::ZERO,
            reserved_host: None,
            model_running: None,
            settle_on_drop: None,
            cut_wanted: false,
            cut_tail: None,
            headroom: Headroom::default(),
            tried: Vec::new(),
            inflight: None,
            stale_retries: 0,
            no_host: None,
            upstream_status: None,
            meter: None,
            usage: None,
            listing: None,
            first_byte: None,
            answered_status: None,
        }
    }

    /// The key's display prefix for metrics and logs (never the key).
    pub fn key_label(&self) -> &str {
        self.key
            .as_deref()
            .map_or("none", |k| k.key_prefix.as_str())
    }
}

impl RequestCtx {
    /// The answer's usage as metered: the final count, or (for an answer that ended early)
    /// what the meter has seen so far, flushed.
    pub fn final_usage(&mut self) -> Usage {
        match (self.usage, self.meter.as_mut()) {
            (Some(usage), _) => usage,
            (None, Some(meter)) => meter.finish().0,
            (None, None) => Usage::default(),
        }
    }

    /// What the request's end costs it, the one rule of `logging` and of `Drop` alike:
    /// - the upstream never answered (connect failure, timeout before the header): refund;
    /// - Ollama answered with an error and generated nothing: refund;
    /// - otherwise commit the charge of the answer as metered ([`Usage::charge`]): the whole
    ///   answer, or what was streamed before the client hung up, the host broke off, its
    ///   quota ended it or the process stopped. Never more than the limits allow: the ledger's
    ///   commit caps it.
    pub fn outcome(&mut self, counting: TokenCounting) -> Outcome {
        let usage = self.final_usage();
        let chunks = self.meter.as_ref().map_or(0, Meter::output_chunks);
        let (prompt, completion) = usage.charge(counting, self.prompt_tokens, chunks);
        // A bogus count from upstream must not overflow the counters (and stop every flush).
        let max = super::accounting::MAX_TOKENS_PER_REQUEST;
        let (prompt, completion) = (prompt.min(max), completion.min(max));
        let answered_ok = self
            .upstream_status
            .is_some_and(|s| (200..300).contains(&s));
        if self.upstream_status.is_some() && (answered_ok || completion > 0) {
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

/// (prompt, completion) of a request charged `charged` tokens in all: the prompt first, the
/// rest for the completion (a capped charge shortens the completion).
pub fn split_charge(prompt: u64, charged: i64) -> (u64, u64) {
    let charged = u64::try_from(charged).unwrap_or(0);
    let prompt = prompt.min(charged);
    (prompt, charged - prompt)
}

/// What a request needs to settle itself when its task is dropped before `logging`.
pub struct DropSettlement {
    pub ledger: Ledger,
    pub pacer: Pacer,
    pub usage: UsageSink,
    pub counting: TokenCounting,
}

impl Drop for RequestCtx {
    /// At shutdown, after the grace period, Pingora drops the tasks of requests still
    /// streaming: their `logging` never runs. They settle here by the same rule
    /// ([`RequestCtx::outcome`]): whatever was streamed to the client so far is committed (in
    /// memory; the ledger's last flush writes it), so no admitted usage is lost, and a failed
    /// answer that generated nothing is refunded.
    fn drop(&mut self) {
        let (Some(admission), Some(settle)) = (self.admission.take(), self.settle_on_drop.take())
        else {
            return;
        };
        let pace = self.pace.take();
        let (prompt, completion) = match self.outcome(settle.counting) {
            Outcome::Refund => {
                settle.ledger.refund(&admission);
                if let Some(ticket) = &pace {
                    settle.pacer.refund(ticket);
                }
                return;
            }
            outcome @ Outcome::Commit { prompt, .. } => {
                let charged = settle.ledger.commit_now(&admission, outcome.total());
                if let Some(ticket) = &pace {
                    settle.pacer.finish(ticket, charged);
                }
                tracing::info!(
                    key_id = admission.key_id,
                    tokens = charged,
                    "request cut off by shutdown: its streamed usage is committed"
                );
                split_charge(prompt, charged)
            }
        };
        settle.usage.record(UsageRecord {
            key_id: admission.key_id,
            day: admission.day.clone(),
            model: self.model.clone().unwrap_or_default(),
            prompt_tokens: i64::try_from(prompt).unwrap_or(i64::MAX),
            completion_tokens: i64::try_from(completion).unwrap_or(i64::MAX),
        });
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
        ctx.prompt_tokens = 7;
        ctx.upstream_status = status;
        let mut meter = Meter::new(Api::Generate, Framing::Ndjson, false);
        meter.feed(streamed.as_bytes());
        ctx.meter = Some(meter);
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
