//! Pacing on the request path of a counted route: the key's parallel slot (it waits in the
//! key's queue), its per-minute window, and, after the quota gate, a host from the fair
//! queue when every host with the model is at its `max_concurrency`. A client that hangs up
//! while it waits leaves the queue; whatever it had taken is given back when it is settled.

use std::future::Future;
use std::time::Instant;

use pingora::proxy::Session;
use pingora::Result;
use quota_engine::{ApiKey, PaceRefusal};

use super::context::RequestCtx;
use super::errors::{ProxyError, Stop};
use super::failover::no_host_error;
use crate::state::AppState;
use crate::upstream::{NoHost, QueueError};

/// The request's model as metrics label it: bounded (`other` for a name no host lists), so
/// that clients cannot grow the per-model load table or the depth metric.
fn model_label(ctx: &RequestCtx) -> &str {
    super::accounting::model_label(ctx.model.as_deref(), ctx.runtime.as_deref())
}

/// What a wait ended with.
enum Waited<T> {
    Done(T),
    /// The client closed its connection meanwhile.
    ClientGone,
}

/// Runs `wait` while watching the client's connection (the request body has been read, so
/// anything the client does now is hanging up, or sending bytes it should not).
async fn unless_client_leaves<T>(
    session: &mut Session,
    wait: impl Future<Output = T>,
) -> Waited<T> {
    tokio::pin!(wait);
    tokio::select! {
        out = &mut wait => Waited::Done(out),
        _ = session.as_downstream_mut().read_body_or_idle(true) => Waited::ClientGone,
    }
}

/// The parallel slot and the per-minute window, before the quota gate.
pub async fn before_gate(
    state: &AppState,
    session: &mut Session,
    ctx: &mut RequestCtx,
    key: &ApiKey,
    prompt_tokens: i64,
) -> Result<(), Stop> {
    let started = Instant::now();
    if key.pacing.max_parallel_requests.is_some() {
        let waiting = state.load.waiting(model_label(ctx));
        let entered = unless_client_leaves(
            session,
            state
                .pacer
                .enter(key.id, &key.pacing, state.config.parallel_queue_timeout),
        )
        .await;
        drop(waiting);
        match entered {
            Waited::ClientGone => return Err(Stop::Gone),
            Waited::Done(Ok(permit)) => ctx.parallel = permit,
            Waited::Done(Err(refusal)) => return Err(refuse(state, key, &refusal)),
        }
    }
    ctx.queue_wait = started.elapsed();
    match state.pacer.admit(key.id, &key.pacing, prompt_tokens).await {
        Ok(Ok(ticket)) => {
            ctx.pace = ticket;
            Ok(())
        }
        Ok(Err(refusal)) => Err(refuse(state, key, &refusal)),
        Err(e) => {
            tracing::warn!(error = %e, key_id = key.id, "per-minute grant failed");
            Err(Stop::Refuse(e.into()))
        }
    }
}

fn refuse(state: &AppState, key: &ApiKey, refusal: &PaceRefusal) -> Stop {
    state
        .metrics
        .quota_rejections
        .with_label_values(&[key.key_prefix.as_str(), refusal.kind.label()])
        .inc();
    Stop::Refuse(ProxyError::rate_limited(
        refusal.to_string(),
        refusal.retry_after_secs(),
        refusal.can_refill(),
    ))
}

/// A host for the admitted request: at once, or from the fair queue.
pub async fn take_host(
    state: &AppState,
    session: &mut Session,
    ctx: &mut RequestCtx,
    key: &ApiKey,
) -> Result<(), Stop> {
    let Some(runtime) = ctx.runtime.clone() else {
        return Err(Stop::Refuse(ProxyError::internal(
            "no runtime settings for this request".into(),
        )));
    };
    let started = Instant::now();
    let fast = if state.queue.is_empty() {
        runtime.pool.select(ctx.model.as_deref(), &[])
    } else {
        Err(NoHost::AtCapacity)
    };
    let selected = match fast {
        Ok(mut selected) => {
            selected.guard.queue = Some(std::sync::Arc::clone(&state.queue));
            selected
        }
        Err(NoHost::AtCapacity) => {
            let model = ctx.model.clone().unwrap_or_default();
            let waiting = state.load.waiting(model_label(ctx));
            let acquired = unless_client_leaves(
                session,
                state.queue.acquire(
                    key.id,
                    key.pacing.priority,
                    ctx.model.as_deref(),
                    &runtime.pool,
                    state.config.host_queue_timeout,
                ),
            )
            .await;
            drop(waiting);
            ctx.queue_wait += started.elapsed();
            match acquired {
                Waited::ClientGone => return Err(Stop::Gone),
                Waited::Done(Ok(selected)) => selected,
                Waited::Done(Err(QueueError::TimedOut)) => {
                    return Err(Stop::Refuse(ProxyError::queue_timeout(
                        format!(
                            "every Ollama host that serves '{model}' stayed at its max_concurrency \
                             for {} s (ollama.queue_timeout_seconds); retry shortly",
                            state.config.host_queue_timeout.as_secs()
                        ),
                        5,
                    )))
                }
                Waited::Done(Err(QueueError::NoHost(reason))) => {
                    return Err(Stop::Refuse(no_host_error(reason)))
                }
            }
        }
        Err(other) => return Err(Stop::Refuse(no_host_error(other))),
    };
    state
        .metrics
        .queue_wait
        .observe(ctx.queue_wait.as_secs_f64());
    ctx.model_running = Some(state.load.running(model_label(ctx)));
    ctx.reserved_host = Some(selected);
    Ok(())
}
