//! `logging`: settle a request once, however it ended, and record it. What it costs is
//! [`RequestCtx::outcome`], and what it gives back is settled by
//! [`super::holds::Holds::settle`]; `Drop` (at shutdown) runs the same two. Refunded when the
//! upstream never answered or answered an error without generating anything; otherwise the
//! answer as metered is committed, never more than the limits allow.

use super::context::RequestCtx;
use super::holds::Commit;
use crate::state::{AppState, RuntimeSettings};
use std::time::Duration;

use pingora::proxy::Session;
use pingora::Error;

/// More than any model produces or reads in one request; counts above it are clamped.
pub(crate) const MAX_TOKENS_PER_REQUEST: u64 = 1 << 40;

pub async fn settle(
    state: &AppState,
    session: &Session,
    error: Option<&Error>,
    ctx: &mut RequestCtx,
) {
    let status = ctx
        .own_status
        .or_else(|| session.response_written().map(|r| r.status.as_u16()))
        .unwrap_or(0);
    // The meter's last word (before the context is borrowed for labels).
    let usage = ctx.final_usage();
    let outcome = ctx.outcome(state.config.token_counting);
    let gpu = ctx.gpu_time();
    let inbound = &ctx.inbound;
    let model = inbound.model.as_deref().unwrap_or("");
    let model_label = model_label(inbound.model.as_deref(), inbound.runtime.as_deref());
    let key_label = inbound.key_label();
    let metrics = &state.metrics;
    let status_label = if status == 0 {
        "499".to_owned()
    } else {
        status.to_string()
    };
    metrics
        .requests
        .with_label_values(&[
            inbound.template,
            model_label,
            status_label.as_str(),
            key_label,
        ])
        .inc();
    metrics
        .request_duration
        .with_label_values(&[inbound.template])
        .observe(ctx.started.elapsed().as_secs_f64());
    metrics.inflight.dec();
    if let (Some(first), Some(_)) = (ctx.answer.first_byte, inbound.api) {
        metrics
            .time_to_first_token
            .with_label_values(&[model_label])
            .observe(first.duration_since(ctx.started).as_secs_f64());
    }
    // The host, for the GPU time metrics (the settlement frees its slot).
    let host = ctx.holds.host().cloned();

    // Slots first (the host is free before the commit's round trip), then the admission.
    let settled = ctx.holds.settle(outcome, model, gpu, Commit::Await).await;
    let Some(settled) = settled else {
        return;
    };
    let upstream = state.config.token_counting == crate::dialect::TokenCounting::Upstream;
    if let (Some(reported), Some(model), true) = (
        usage.upstream_prompt.filter(|_| usage.complete),
        inbound.model.as_deref(),
        upstream && inbound.api.is_some_and(super::overhead::applies),
    ) {
        let estimate = inbound
            .prompt_tokens
            .saturating_sub(inbound.prompt_overhead);
        state.prompt_overhead.learn(model, estimate, reported);
    }
    if settled.consumed {
        for (kind, tokens) in [
            ("prompt", settled.prompt),
            ("completion", settled.completion),
        ] {
            metrics
                .tokens
                .with_label_values(&[model_label, key_label, kind])
                .inc_by(tokens);
        }
        // GPU time as the usage records have it: charged requests only, in milliseconds.
        if let (Some(host), Some(_)) = (host, inbound.api) {
            let seconds = |ms: i64| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
            let upstream = host.url.as_str();
            metrics
                .gpu_seconds
                .with_label_values(&[model_label, key_label, upstream])
                .inc_by(seconds(settled.gpu_ms).as_secs_f64());
            if usage.durations.load_ns.is_some() {
                metrics
                    .model_load_seconds
                    .with_label_values(&[model_label, upstream])
                    .inc_by(seconds(gpu.load_ms).as_secs_f64());
            }
        }
    }
    if let Some(e) = error {
        tracing::debug!(error = %e, key_id = settled.key_id, route = inbound.template, consumed = settled.consumed, "request ended with an error");
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
