//! `logging`: settle a request once, however it ended, and record it.
//!
//! - The upstream never answered (connect failure, timeout before the header): the admission
//!   is refunded, the request consumes nothing.
//! - Ollama answered with an error and generated nothing: refunded as well.
//! - Otherwise the tokens are committed: the whole answer, or what was streamed before the
//!   client hung up, or where its token quota ended it; never more than the limits allow.

use pingora::proxy::Session;
use pingora::Error;
use quota_engine::usage_log::UsageRecord;

use super::context::RequestCtx;
use crate::dialect::Meter;
use crate::state::{AppState, RuntimeSettings};

/// More than any model produces or reads in one request; counts above it are clamped.
pub(crate) const MAX_TOKENS_PER_REQUEST: u64 = 1 << 40;

pub async fn settle(
    state: &AppState,
    session: &Session,
    error: Option<&Error>,
    ctx: &mut RequestCtx,
) {
    // The host is done with this request: its slot is free before the commit's round trip,
    // and so is the key's parallel slot.
    ctx.inflight = None;
    ctx.reserved_host = None;
    ctx.model_running = None;
    ctx.parallel = None;
    let pace = ctx.pace.take();
    let status = ctx
        .answered_status
        .or_else(|| session.response_written().map(|r| r.status.as_u16()))
        .unwrap_or(0);
    // The meter's last word (before the context is borrowed for labels).
    let usage = ctx.final_usage();
    let model = ctx.model.as_deref().unwrap_or("");
    let model_label = model_label(ctx.model.as_deref(), ctx.runtime.as_deref());
    let key_label = ctx.key_label().to_owned();
    let metrics = &state.metrics;
    let status_label = if status == 0 {
        "499".to_owned()
    } else {
        status.to_string()
    };
    metrics
        .requests
        .with_label_values(&[
            ctx.template,
            model_label,
            status_label.as_str(),
            key_label.as_str(),
        ])
        .inc();
    metrics
        .request_duration
        .with_label_values(&[ctx.template])
        .observe(ctx.started.elapsed().as_secs_f64());
    metrics.inflight.dec();
    if let (Some(first), Some(_)) = (ctx.first_byte, ctx.api) {
        metrics
            .time_to_first_token
            .with_label_values(&[model_label])
            .observe(first.duration_since(ctx.started).as_secs_f64());
    }

    if let Some(admission) = ctx.admission.take() {
        let chunks = ctx.meter.as_ref().map_or(0, Meter::output_chunks);
        let upstream = state.config.token_counting == crate::dialect::TokenCounting::Upstream;
        if let (Some(reported), Some(model), true) = (
            usage.upstream_prompt.filter(|_| usage.complete),
            ctx.model.as_deref(),
            upstream && ctx.api.is_some_and(super::overhead::applies),
        ) {
            let estimate = ctx.prompt_tokens.saturating_sub(ctx.prompt_overhead);
            state.prompt_overhead.learn(model, estimate, reported);
        }
        let (prompt, completion) =
            usage.charge(state.config.token_counting, ctx.prompt_tokens, chunks);
        // A bogus count from upstream must not overflow the counters (and stop every flush).
        let (prompt, completion) = (
            prompt.min(MAX_TOKENS_PER_REQUEST),
            completion.min(MAX_TOKENS_PER_REQUEST),
        );
        let answered_ok = ctx.upstream_status.is_some_and(|s| (200..300).contains(&s));
        let consumed = ctx.upstream_status.is_some() && (answered_ok || completion > 0);
        // In memory: the ledger writes it to the database with its next flush. The charge
        // never passes a limit (an answer that outran its reservation is charged only as far
        // as the quota has room), so prompt and completion are what was charged.
        let (prompt, completion) = if consumed {
            let total = i64::try_from(prompt.saturating_add(completion)).unwrap_or(i64::MAX);
            let limits = ctx.key.as_deref().map(|k| k.limits).unwrap_or_default();
            let charged = match ctx.periods.as_ref() {
                Some(periods) => {
                    state
                        .ledger
                        .commit(&admission, &limits, periods, total)
                        .await
                }
                None => 0,
            };
            if let Some(ticket) = &pace {
                state.pacer.finish(ticket, charged);
            }
            super::context::split_charge(prompt, charged)
        } else {
            state.ledger.refund(&admission);
            if let Some(ticket) = &pace {
                state.pacer.refund(ticket);
            }
            (prompt, completion)
        };
        if consumed {
            metrics
                .tokens
                .with_label_values(&[model_label, key_label.as_str(), "prompt"])
                .inc_by(prompt);
            metrics
                .tokens
                .with_label_values(&[model_label, key_label.as_str(), "completion"])
                .inc_by(completion);
            let record = UsageRecord {
                key_id: admission.key_id,
                day: admission.day.clone(),
                model: model.to_owned(),
                prompt_tokens: i64::try_from(prompt).unwrap_or(i64::MAX),
                completion_tokens: i64::try_from(completion).unwrap_or(i64::MAX),
            };
            if !state.usage.record(record) {
                tracing::warn!(
                    key_id = admission.key_id,
                    "usage log queue is full; record dropped (counters are exact)"
                );
            }
        }
        if let Some(e) = error {
            tracing::debug!(error = %e, key_id = admission.key_id, route = ctx.template, consumed, "request ended with an error");
        }
    } else if let Some(ticket) = &pace {
        // Refused by the quota gate after the per-minute window counted it.
        state.pacer.refund(ticket);
    }
}

/// The `model` label of the request's metrics: the model when an Ollama host lists it, else
/// `other`, so that clients cannot mint new series by sending made-up model names (the usage
/// log keeps the name as sent). Empty for routes without a model.
pub(crate) fn model_label<'a>(
    model: Option<&'a str>,
    runtime: Option<&RuntimeSettings>,
) -> &'a str {
    match (model, runtime) {
        (None, _) => "",
        (Some(model), Some(runtime)) if runtime.pool.lists_model(model) => model,
        (Some(_), _) => "other",
    }
}
