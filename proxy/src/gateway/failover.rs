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
    let Some(runtime) = ctx.runtime.clone() else {
        return Err(ProxyError::internal(
            "no runtime settings for this request".into(),
        ));
    };
    loop {
        let selected = match ctx.reserved_host.take() {
            Some(reserved) => reserved,
            None => {
                let mut selected = runtime
                    .pool
                    .select(ctx.model.as_deref(), &ctx.tried)
                    .map_err(no_host_error)?;
                // Retries free their slot to the fair queue too.
                selected.guard.queue = Some(std::sync::Arc::clone(&state.queue));
                selected
            }
        };
        ctx.tried.push(selected.index);
        // Selection only returns resolved hosts; the loop is a guard, not a path.
        if let Some(peer) = make_peer(&selected.guard.upstream, &state.config) {
            ctx.inflight = Some(selected.guard);
            return Ok(peer);
        }
    }
}

/// The connection to the current host could not be made. Marks the host and tells whether
/// another host may take the request.
pub fn connect_failed(ctx: &mut RequestCtx) -> bool {
    let (Some(runtime), Some(&index)) = (ctx.runtime.clone(), ctx.tried.last()) else {
        return false;
    };
    // Give the slot back now: the request is no longer on its way there.
    ctx.inflight = None;
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
) -> bool {
    let retryable_error = matches!(error.esource(), ErrorSource::Upstream | ErrorSource::Unset)
        && matches!(
            error.etype(),
            ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
        );
    if !retryable_error || client_got_bytes || body_truncated || ctx.upstream_status.is_some() {
        return false;
    }
    let (Some(runtime), Some(&index)) = (ctx.runtime.clone(), ctx.tried.last()) else {
        return false;
    };
    ctx.inflight = None;
    if reused_connection && ctx.stale_retries < STALE_RETRIES {
        ctx.stale_retries += 1;
        // The host may be fine: let selection consider it again.
        ctx.tried.pop();
        return true;
    }
    runtime.pool.request_failed(index);
    another_host(ctx, &runtime.pool)
}

/// Whether a host remains for the request; when none does, the answer that says why is kept
/// for `fail_to_proxy` (e.g. the only hosts with the model are down).
fn another_host(ctx: &mut RequestCtx, pool: &UpstreamPool) -> bool {
    match pool.has_candidate(ctx.model.as_deref(), &ctx.tried) {
        Ok(()) => true,
        Err(reason) => {
            ctx.no_host = Some(no_host_error(reason));
            false
        }
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
        ctx.runtime = Some(Arc::new(RuntimeSettings {
            default_model: "llama3".into(),
            pool,
            upstreams: configs,
            overrides: Default::default(),
        }));
        ctx
    }

    fn pick(ctx: &mut RequestCtx) {
        let pool = Arc::clone(&ctx.runtime.as_ref().unwrap().pool);
        let s = pool.select(None, &ctx.tried).unwrap();
        ctx.tried.push(s.index);
        ctx.inflight = Some(s.guard);
    }

    fn lost() -> Box<Error> {
        Error::explain(ErrorType::ConnectionClosed, "closed")
    }

    /// A refused connection marks the host and allows a retry while another host remains.
    #[test]
    fn connect_failures() {
        let mut ctx = ctx_with(2);
        pick(&mut ctx);
        assert!(connect_failed(&mut ctx));
        assert!(ctx.inflight.is_none());
        pick(&mut ctx);
        assert!(!connect_failed(&mut ctx), "no host left");
        assert_eq!(ctx.no_host.as_ref().unwrap().status, 502);
        let pool = &ctx.runtime.as_ref().unwrap().pool;
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
        assert!(!retry_after_error(&mut ctx, &timeout, false, false, false));
        assert!(!retry_after_error(&mut ctx, &lost(), true, false, false));
        assert!(!retry_after_error(&mut ctx, &lost(), false, false, true));
        let mut downstream = lost();
        downstream.as_down();
        assert!(!retry_after_error(
            &mut ctx,
            &downstream,
            false,
            false,
            false
        ));
        ctx.upstream_status = Some(200);
        assert!(!retry_after_error(&mut ctx, &lost(), false, false, false));
        ctx.upstream_status = None;

        for _ in 0..STALE_RETRIES {
            assert!(retry_after_error(&mut ctx, &lost(), false, true, false));
            assert!(ctx.tried.is_empty(), "the same host may be chosen again");
            pick(&mut ctx);
        }
        assert!(
            !retry_after_error(&mut ctx, &lost(), false, true, false),
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
