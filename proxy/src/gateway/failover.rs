//! Choosing the Ollama host of a request, and what a failed attempt may do next. Shared by
//! Pingora's proxy loop (`upstream_peer`, `fail_to_connect`, `error_while_proxy`) and the
//! large-body loop ([`super::forward`]).
//!
//! - A connection that cannot be made marks the host suspect (skipped until a health check
//!   passes) and the request moves to another host that qualifies, if any.
//! - A connection lost before Ollama answered — nothing reached the client, the whole body is
//!   still in memory — is retried too: on another host when it was a fresh connection (the
//!   host is marked like a refused one), on any host when it was a pooled connection the host
//!   had closed meanwhile (the keep-alive race; the host itself may be fine).
//! - Nothing is retried once Ollama answered: from then on bytes may have reached the client,
//!   and a timeout is not retried either (it would double the wait).

use std::time::Duration;

use pingora::prelude::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType};

use super::context::RequestCtx;
use super::errors::ProxyError;
use super::peer::make_peer;
use crate::state::AppState;
use crate::upstream::{NoHost, UpstreamPool};

/// Retries on the same host after a pooled connection turned out closed, per request. Beyond
/// this, such failures count as the host's.
const STALE_RETRIES: u8 = 3;

/// Chooses a host for the request (its model, hosts not tried yet) and counts the request in
/// flight there; the error answer when there is none.
pub fn choose(state: &AppState, ctx: &mut RequestCtx) -> Result<HttpPeer, ProxyError> {
    let Some(runtime) = ctx.inbound.runtime.clone() else {
        return Err(ProxyError::internal(
            "no runtime settings for this request".into(),
        ));
    };
    loop {
        let selected = match ctx.holds.take_reserved_host() {
            Some(reserved) => reserved,
            None => {
                let mut selected = runtime
                    .pool
                    .select(ctx.inbound.model.as_deref(), &ctx.attempt.tried)
                    .map_err(no_host_error)?;
                // Retries free their slot to the fair queue too.
                selected.guard.queue = Some(std::sync::Arc::clone(&state.queue));
                selected
            }
        };
        ctx.attempt.tried.push(selected.index);
        // Selection only returns resolved hosts; the loop is a guard, not a path.
        if let Some(mut peer) = make_peer(&selected.guard.upstream, &state.config) {
            ctx.attempt.gpu_capped = false;
            if let Some(room) = gpu_room(ctx.holds.gpu_cap_ms(), selected.guard.upstream.gpu_weight)
            {
                if peer.options.read_timeout.is_none_or(|t| room < t) {
                    peer.options.read_timeout = Some(room);
                    ctx.attempt.gpu_capped = true;
                }
            }
            ctx.holds.occupy(selected.guard);
            return Ok(peer);
        }
    }
}

/// The host time a key's GPU-time room (`cap_ms`, ms of GPU time) buys on a host of
/// `gpu_weight`: the longest the host may take before the answer must end. A non-streamed
/// answer sends nothing until it is done, so the upstream read timeout set to this ends it
/// (and closing the connection stops Ollama). `None` without a GPU-time limit, or on a host
/// whose time costs nothing.
fn gpu_room(cap_ms: Option<i64>, gpu_weight: f64) -> Option<Duration> {
    let cap_ms = cap_ms?;
    if gpu_weight <= 0.0 {
        return None;
    }
    let ms = (cap_ms.max(1) as f64 / gpu_weight).ceil();
    // Far beyond any read timeout; keeps the conversion in range.
    Some(Duration::from_millis(ms.min(1e12) as u64))
}

/// What a failed attempt may do next.
#[derive(Debug, PartialEq, Eq)]
pub enum NextAttempt {
    /// Send the request again (another host, or the same after a stale pooled connection).
    Retry,
    /// Not retryable: the error stands.
    GiveUp,
    /// Retryable, but no host is left: this answer says why (e.g. the only hosts with the
    /// model are down).
    NoHostLeft(ProxyError),
}

/// The connection to the current host could not be made. Marks the host and tells whether
/// another host may take the request.
pub fn connect_failed(ctx: &mut RequestCtx) -> NextAttempt {
    let (Some(runtime), Some(&index)) = (ctx.inbound.runtime.clone(), ctx.attempt.tried.last())
    else {
        return NextAttempt::GiveUp;
    };
    // Give the slot back now: the request is no longer on its way there.
    ctx.holds.leave_host();
    runtime.pool.request_failed(index);
    another_host(ctx, &runtime.pool)
}

/// An attempt failed after the connection was made. Tells whether the request may be sent
/// again (see the module docs); marks the host when the failure was its own.
pub fn retry_after_error(
    ctx: &mut RequestCtx,
    error: &Error,
    client_got_bytes: bool,
    reused_connection: bool,
    body_truncated: bool,
) -> NextAttempt {
    let retryable_error = matches!(error.esource(), ErrorSource::Upstream | ErrorSource::Unset)
        && matches!(
            error.etype(),
            ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
        );
    if !retryable_error || client_got_bytes || body_truncated || ctx.answer.status.is_some() {
        return NextAttempt::GiveUp;
    }
    let (Some(runtime), Some(&index)) = (ctx.inbound.runtime.clone(), ctx.attempt.tried.last())
    else {
        return NextAttempt::GiveUp;
    };
    ctx.holds.leave_host();
    if reused_connection && ctx.attempt.stale_retries < STALE_RETRIES {
        ctx.attempt.stale_retries += 1;
        // The host may be fine: let selection consider it again.
        ctx.attempt.tried.pop();
        return NextAttempt::Retry;
    }
    runtime.pool.request_failed(index);
    another_host(ctx, &runtime.pool)
}

/// Whether a host remains for the request, and when none does, the answer that says why.
fn another_host(ctx: &RequestCtx, pool: &UpstreamPool) -> NextAttempt {
    match pool.has_candidate(ctx.inbound.model.as_deref(), &ctx.attempt.tried) {
        Ok(()) => NextAttempt::Retry,
        Err(reason) => NextAttempt::NoHostLeft(no_host_error(reason)),
    }
}

/// The answer when no host can take a request.
pub fn no_host_error(reason: NoHost) -> ProxyError {
    match reason {
        NoHost::Unavailable => ProxyError::bad_gateway("no Ollama host is reachable".into()),
        NoHost::ModelUnavailable(model) => ProxyError::bad_gateway(format!(
            "no reachable Ollama host serves model '{model}': the hosts that have it are down"
        )),
        NoHost::AtCapacity => ProxyError::at_capacity(
            "every Ollama host that could take this request is at its max_concurrency; retry shortly"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use super::*;
    use crate::config::parse_upstream;
    use crate::state::RuntimeSettings;
    use crate::upstream::pool::tests::thresholds;

    fn ctx_with(hosts: usize) -> RequestCtx {
        let configs: Vec<_> = (0..hosts)
            .map(|i| parse_upstream(&format!("http://127.0.0.1:{}", 21000 + i)).unwrap())
            .collect();
        let pool = Arc::new(UpstreamPool::resolve(&configs, &thresholds(), None));
        let mut ctx = RequestCtx::new();
        ctx.inbound.runtime = Some(Arc::new(RuntimeSettings {
            default_model: "llama3".into(),
            pool,
            upstreams: configs,
            overrides: Default::default(),
        }));
        ctx
    }

    fn pick(ctx: &mut RequestCtx) {
        let pool = Arc::clone(&ctx.inbound.runtime.as_ref().unwrap().pool);
        let s = pool.select(None, &ctx.attempt.tried).unwrap();
        ctx.attempt.tried.push(s.index);
        ctx.holds.occupy(s.guard);
    }

    const GIVE_UP: NextAttempt = NextAttempt::GiveUp;

    fn lost() -> Box<Error> {
        Error::explain(ErrorType::ConnectionClosed, "closed")
    }

    /// A refused connection marks the host and allows a retry while another host remains.
    #[test]
    fn connect_failures() {
        let mut ctx = ctx_with(2);
        pick(&mut ctx);
        assert_eq!(connect_failed(&mut ctx), NextAttempt::Retry);
        assert!(ctx.holds.host_authority().is_none());
        pick(&mut ctx);
        match connect_failed(&mut ctx) {
            NextAttempt::NoHostLeft(answer) => assert_eq!(answer.status, 502),
            other => panic!("no host left, got {other:?}"),
        }
        let pool = &ctx.inbound.runtime.as_ref().unwrap().pool;
        assert!(pool.hosts().iter().all(|h| !h.is_available()));
    }

    /// A lost connection is retried only before Ollama answered and before the client got
    /// anything; timeouts and client-side errors never; a stale pooled connection may go back
    /// to the same host a few times.
    #[test]
    fn lost_connections() {
        let mut ctx = ctx_with(1);
        pick(&mut ctx);
        let timeout = Error::explain(ErrorType::ReadTimedout, "slow");
        assert_eq!(
            GIVE_UP,
            retry_after_error(&mut ctx, &timeout, false, false, false)
        );
        assert_eq!(
            GIVE_UP,
            retry_after_error(&mut ctx, &lost(), true, false, false)
        );
        assert_eq!(
            GIVE_UP,
            retry_after_error(&mut ctx, &lost(), false, false, true)
        );
        let mut downstream = lost();
        downstream.as_down();
        assert_eq!(
            GIVE_UP,
            retry_after_error(&mut ctx, &downstream, false, false, false)
        );
        ctx.answer.status = Some(200);
        assert_eq!(
            GIVE_UP,
            retry_after_error(&mut ctx, &lost(), false, false, false)
        );
        ctx.answer.status = None;

        for _ in 0..STALE_RETRIES {
            assert_eq!(
                retry_after_error(&mut ctx, &lost(), false, true, false),
                NextAttempt::Retry
            );
            assert!(
                ctx.attempt.tried.is_empty(),
                "the same host may be chosen again"
            );
            pick(&mut ctx);
        }
        assert!(
            matches!(
                retry_after_error(&mut ctx, &lost(), false, true, false),
                NextAttempt::NoHostLeft(_)
            ),
            "then it counts as the host's failure, and there is no other host"
        );
    }

    /// Each reason has its answer: 502 down, 502 naming the model, 503 at capacity.
    #[test]
    fn answers() {
        assert_eq!(no_host_error(NoHost::Unavailable).status, 502);
        let e = no_host_error(NoHost::ModelUnavailable("qwen3".into()));
        assert_eq!(e.status, 502);
        assert!(e.message.contains("'qwen3'"));
        let e = no_host_error(NoHost::AtCapacity);
        assert_eq!(e.status, 503);
        assert!(e.headers.iter().any(|(k, _)| *k == "retry-after"));
    }
}
