//! `logging`: settle a request once, however it ended, and record it. What it costs is
//! [`RequestCtx::outcome`], the rule that `Drop` (at shutdown) applies too: refunded when the
//! upstream never answered or answered an error without generating anything; otherwise the
//! answer as metered is committed, never more than the limits allow.

use pingora::proxy::Session;
use pingora::Error;
use quota_engine::usage_log::UsageRecord;

use super::context::{Outcome, RequestCtx};
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
    let outcome = ctx.outcome(state.config.token_counting);
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
        let upstream = state.config.token_counting == crate::dialect::TokenCounting::Upstream;
        if let (Some(reported), Some(model), true) = (
            usage.upstream_prompt.filter(|_| usage.complete),
            ctx.model.as_deref(),
            upstream && ctx.api.is_some_and(super::overhead::applies),
        ) {
            let estimate = ctx.prompt_tokens.saturating_sub(ctx.prompt_overhead);
            state.prompt_overhead.learn(model, estimate, reported);
        }
        let consumed = outcome != Outcome::Refund;
        // In memory: the ledger writes it to the database with its next flush. The charge
        // never passes a limit (an answer that outran its reservation is charged only as far
        // as the quota has room), so prompt and completion are what was charged.
        let (prompt, completion) = match outcome {
            Outcome::Commit { prompt, .. } => {
                let limits = ctx.key.as_deref().map(|k| k.limits).unwrap_or_default();
                let charged = match ctx.periods.as_ref() {
                    Some(periods) => {
                        state
                            .ledger
                            .commit(&admission, &limits, periods, outcome.total())
                            .await
                    }
                    None => 0,
                };
                if let Some(ticket) = &pace {
                    state.pacer.finish(ticket, charged);
                }
                super::context::split_charge(prompt, charged)
            }
            Outcome::Refund => {
                state.ledger.refund(&admission);
                if let Some(ticket) = &pace {
                    state.pacer.refund(ticket);
                }
                (0, 0)
            }
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
