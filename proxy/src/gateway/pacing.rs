//! Pacing on the request path of a counted route: the parallel slots of the key and of its
//! team (it waits in their queues), their per-minute windows, and, after the quota gate, a
//! host from the fair queue when every host with the model is at its `max_concurrency` (a
//! team's keys take their turns there together, at the team's priority). A client that hangs up
//! while it waits leaves the queue; whatever it had taken is given back when it is settled.

use std::future::Future;
use std::time::{Duration, Instant};

use pingora::proxy::Session;
use quota_engine::gate::AccountId;
use quota_engine::pacing::{pace_id, Pacing, ParallelPermit};
use quota_engine::{ApiKey, PaceRefusal, PaceTicket};

use super::errors::{ProxyError, Stop};
use super::failover::no_host_error;
use crate::state::{AppState, RuntimeSettings};
use crate::upstream::load::Counted;
use crate::upstream::{NoHost, QueueError, Selected};

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

/// What pacing took for a request, and how long it waited; `result` is the refusal, if any
/// (what was taken before it is still given back at the settlement).
pub struct Paced {
    pub parallel: Vec<ParallelPermit>,
    pub pace: Vec<PaceTicket>,
    pub waited: Duration,
    pub result: Result<(), Stop>,
}

/// Whose pacing a request goes through: its key's, then its team's (named in refusals).
fn pacings(key: &ApiKey) -> impl Iterator<Item = (AccountId, &Pacing, Option<&str>)> {
    std::iter::once((AccountId::Key(key.id), &key.pacing, None)).chain(key.team.as_ref().map(
        |team| {
            (
                AccountId::Team(team.id),
                &team.pacing,
                Some(team.name.as_str()),
            )
        },
    ))
}

/// The parallel slots and the per-minute windows of the key and its team, before the quota
/// gate. `model_label` is the request's model as metrics label it (bounded: `other` for a
/// name no host lists).
pub async fn before_gate(
    state: &AppState,
    session: &mut Session,
    key: &ApiKey,
    model_label: &str,
    prompt_tokens: i64,
) -> Paced {
    let started = Instant::now();
    let mut paced = Paced {
        parallel: Vec::new(),
        pace: Vec::new(),
        waited: Duration::ZERO,
        result: Ok(()),
    };
    for (account, pacing, team) in pacings(key) {
        if pacing.max_parallel_requests.is_none() {
            continue;
        }
        let waiting = state.load.waiting(model_label);
        let entered = unless_client_leaves(
            session,
            state.pacer.enter(
                pace_id(account),
                pacing,
                state.config.parallel_queue_timeout,
            ),
        )
        .await;
        drop(waiting);
        paced.waited = started.elapsed();
        match entered {
            Waited::ClientGone => paced.result = Err(Stop::Gone),
            Waited::Done(Ok(permit)) => paced.parallel.extend(permit),
            Waited::Done(Err(refusal)) => paced.result = Err(refuse(state, key, team, &refusal)),
        }
        if paced.result.is_err() {
            return paced;
        }
    }
    for (account, pacing, team) in pacings(key) {
        match state
            .pacer
            .admit(pace_id(account), pacing, prompt_tokens)
            .await
        {
            Ok(Ok(ticket)) => paced.pace.extend(ticket),
            Ok(Err(refusal)) => {
                paced.result = Err(refuse(state, key, team, &refusal));
                return paced;
            }
            Err(e) => {
                tracing::warn!(error = %e, key_id = key.id, "per-minute grant failed");
                paced.result = Err(Stop::Refuse(e.into()));
                return paced;
            }
        }
    }
    paced
}

/// A pacing refusal of the key's limit, or of its team's (`team "data" requests per minute
/// limit exceeded …`, label `team_requests_per_minute`).
fn refuse(state: &AppState, key: &ApiKey, team: Option<&str>, refusal: &PaceRefusal) -> Stop {
    let (label, message) = match team {
        None => (refusal.kind.label().to_owned(), refusal.to_string()),
        Some(name) => (
            format!("team_{}", refusal.kind.label()),
            format!("team {name:?} {refusal}").replace("for this key", "for this team"),
        ),
    };
    state
        .metrics
        .quota_rejections
        .with_label_values(&[key.key_prefix.as_str(), &label])
        .inc();
    Stop::Refuse(ProxyError::rate_limited(
        message,
        refusal.retry_after_secs(),
        refusal.can_refill(),
    ))
}

/// The host slot of an admitted request and its count on the model, and how long it waited.
pub struct HostTaken {
    pub waited: Duration,
    pub result: Result<(Selected, Counted), Stop>,
}

/// A host for the admitted request: at once, or from the fair queue.
pub async fn take_host(
    state: &AppState,
    session: &mut Session,
    key: &ApiKey,
    runtime: &RuntimeSettings,
    model: &str,
    model_label: &str,
) -> HostTaken {
    let started = Instant::now();
    let fast = if state.queue.is_empty() {
        runtime.pool.select(Some(model), &[])
    } else {
        Err(NoHost::AtCapacity)
    };
    let selected = match fast {
        Ok(mut selected) => {
            selected.guard.queue = Some(std::sync::Arc::clone(&state.queue));
            Ok(selected)
        }
        Err(NoHost::AtCapacity) => {
            let waiting = state.load.waiting(model_label);
            let acquired = unless_client_leaves(
                session,
                // A team's keys share one place in the fair queue, at the team's priority.
                state.queue.acquire(
                    key.team
                        .as_ref()
                        .map_or(key.id, |t| pace_id(AccountId::Team(t.id))),
                    key.team
                        .as_ref()
                        .map_or(key.pacing.priority, |t| t.pacing.priority),
                    Some(model),
                    &runtime.pool,
                    state.config.host_queue_timeout,
                ),
            )
            .await;
            drop(waiting);
            match acquired {
                Waited::ClientGone => Err(Stop::Gone),
                Waited::Done(Ok(selected)) => Ok(selected),
                Waited::Done(Err(QueueError::TimedOut)) => {
                    Err(Stop::Refuse(ProxyError::queue_timeout(
                        format!(
                            "every Ollama host that serves '{model}' stayed at its max_concurrency \
                             for {} s (ollama.queue_timeout_seconds); retry shortly",
                            state.config.host_queue_timeout.as_secs()
                        ),
                        5,
                    )))
                }
                Waited::Done(Err(QueueError::NoHost(reason))) => {
                    Err(Stop::Refuse(no_host_error(reason)))
                }
            }
        }
        Err(other) => Err(Stop::Refuse(no_host_error(other))),
    };
    let waited = started.elapsed();
    let result = selected.map(|selected| (selected, state.load.running(model_label)));
    HostTaken { waited, result }
}
