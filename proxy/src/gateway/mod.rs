//! The Pingora `ProxyHttp` of llm-quota: each phase delegates to the module about it.
//!
//! ```text
//! client ─► request_filter ─────────────► upstream_peer ─► upstream_request_filter ─► Ollama
//!           route → key → body → gate      pool.select        Host, strip creds,
//!                                          (model-aware)      new Content-Length
//! client ◄─ response_filter ◄── response_body_filter (sync: feed the Meter, never block) ◄─ Ollama
//!           x-ratelimit-*                                    logging (async): commit usage once
//! ```
//!
//! Request bodies up to 64 KiB go through Pingora's loop (the body read in `request_filter`
//! is re-injected in `request_body_filter`); larger ones through [`forward`], which answers
//! from `request_filter`. Both feed the same meter and end in the same `logging`.
//!
//! # Layout
//! - [`route`]: the route table. [`request`]: auth, body, model checks, the gate.
//! - [`response`]: upstream request rewrite, response header and body phases.
//! - [`forward`]: the loop for large bodies. [`peer`]: upstream peers and timeouts.
//! - [`failover`]: choosing the host, retrying on another one. [`listing`]: `/api/tags` and
//!   `/v1/models` from the hosts' cached model lists.
//! - [`accounting`]: commit or refund, metrics, usage log. [`errors`]: error answers.
//! - [`pacing`]: the key's parallel slot and per-minute window, and a host from the fair
//!   queue.
//! - [`quota`]: `/api/quota` and `/v1/quota`, the key's own budget.
//! - [`context`]: the per-request context.

pub mod accounting;
pub mod body_encoding;
pub mod context;
pub mod cors;
pub mod errors;
pub mod failover;
pub mod forward;
pub mod holds;
pub mod listing;
pub mod overhead;
pub mod own_answer;
pub mod pacing;
pub mod peer;
pub mod quota;
pub mod request;
pub mod response;
pub mod route;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::connectors::http::Connector;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType, Result};

use context::RequestCtx;
use errors::ProxyError;
use failover::NextAttempt;
use own_answer::OwnAnswer;
use request::Decision;
use response::CutEnd;

use crate::state::AppState;

/// The proxy service: shared state plus the connector of the large-body loop.
pub struct Gateway {
    pub state: Arc<AppState>,
    /// Pooled upstream connections for [`forward`] (Pingora's own loop has its own pool).
    connector: Connector,
}

impl Gateway {
    pub fn new(state: Arc<AppState>) -> Gateway {
        Gateway {
            state,
            connector: Connector::new(None),
        }
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        self.state.metrics.inflight.inc();
        RequestCtx::new()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        match request::filter(&self.state, session, ctx).await? {
            Decision::Proxy => Ok(false),
            Decision::Answered => Ok(true),
            Decision::ProxyLarge => {
                forward::run(&self.state, &self.connector, session, ctx).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        // No host: the answer travels in the error, to fail_to_proxy.
        match failover::choose(&self.state, ctx) {
            Ok(peer) => Ok(Box::new(peer)),
            Err(answer) => Error::e_because(ErrorType::ConnectNoRoute, "no host", answer),
        }
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Nothing reached the client yet: another host may take the request.
        match failover::connect_failed(ctx) {
            NextAttempt::Retry => {
                e.set_retry(true);
                e
            }
            NextAttempt::GiveUp => e,
            NextAttempt::NoHostLeft(answer) => carrying(&e, answer),
        }
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        // Replaces Pingora's rule (never retry a POST): a counted request whose connection
        // broke before Ollama answered is safe to send again (see failover).
        let mut e = e.more_context(format!("Peer: {peer}"));
        match failover::retry_after_error(
            ctx,
            &e,
            session.response_written().is_some(),
            client_reused,
            session.as_ref().retry_buffer_truncated(),
        ) {
            NextAttempt::Retry => {
                e.set_retry(true);
                e
            }
            NextAttempt::GiveUp => {
                e.set_retry(false);
                e
            }
            NextAttempt::NoHostLeft(answer) => carrying(&e, answer),
        }
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        response::on_upstream_request(req, ctx)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // The body was read in request_filter: send exactly those bytes (clone: a retry on
        // another host runs this again).
        if let Some(read) = &ctx.inbound.body {
            *body = Some(read.clone());
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        response::on_response_header(resp, ctx)
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        match response::on_response_body(&self.state, body, end_of_stream, ctx) {
            response::BodyStep::Continue => Ok(None),
            // Aborting the proxy loop drops the upstream connection, so Ollama stops
            // generating; fail_to_proxy then writes the answer's clean end, which travels
            // in the error.
            response::BodyStep::Cut(end) => {
                Error::e_because(ErrorType::Custom("quota ended the answer"), "cut", end)
            }
        }
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if *e.esource() == ErrorSource::Downstream {
            response::on_client_gone(ctx);
        }
        // The key's GPU time ran out while the host worked (the read timeout was its room).
        let gpu_cut =
            (*e.etype() == ErrorType::ReadTimedout && ctx.attempt.gpu_capped).then(|| {
                response::on_gpu_timeout(&self.state, ctx, session.response_written().is_some())
            });
        let (cut_end, gpu_refusal) = match gpu_cut {
            Some(response::GpuCut::Ended(end)) => (Some(end), None),
            Some(response::GpuCut::Refused(refusal)) => (None, Some(refusal)),
            Some(response::GpuCut::Closed) | None => (cause::<CutEnd>(e).cloned(), None),
        };
        if let Some(CutEnd(tail)) = cut_end {
            let status = ctx.answer.status.unwrap_or(200);
            if let Err(write_error) = session.write_response_body(Some(tail), true).await {
                tracing::debug!(error = %write_error, "could not end the answer cut by its quota");
            }
            return FailToProxy {
                error_code: status,
                can_reuse_downstream: false,
            };
        }
        let error = match e.etype() {
            _ if gpu_refusal.is_some() => gpu_refusal,
            _ if cause::<ProxyError>(e).is_some() => cause::<ProxyError>(e).cloned(),
            _ if *e.esource() == ErrorSource::Downstream => None,
            ErrorType::HTTPStatus(code) => Some(ProxyError {
                status: *code,
                ..ProxyError::internal(e.to_string())
            }),
            ErrorType::ReadTimedout | ErrorType::WriteTimedout | ErrorType::ConnectTimedout
                if ctx.answer.status.is_none() =>
            {
                Some(ProxyError::gateway_timeout(
                    "the Ollama host did not answer in time".into(),
                ))
            }
            _ => Some(ProxyError::bad_gateway(
                "no Ollama host is reachable".into(),
            )),
        };
        let code = match error {
            Some(error) if session.response_written().is_none() => {
                // The connection is not reused after a failed proxy: tell the client.
                let answer = OwnAnswer::refusal(ctx, error).closing();
                let status = answer.status();
                if let Err(write_error) = own_answer::write(session, ctx, answer).await {
                    tracing::debug!(error = %write_error, "could not send the error answer");
                }
                status
            }
            _ => 0,
        };
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        accounting::settle(&self.state, session, e, ctx).await;
    }

    fn suppress_error_log(&self, _session: &Session, ctx: &RequestCtx, e: &Error) -> bool {
        // Clients hanging up mid-stream are normal for LLM traffic, and so are answers that
        // their token quota ended.
        *e.esource() == ErrorSource::Downstream || ctx.answer.cut_wanted
    }
}

/// `error`, now carrying `answer` (the answer `fail_to_proxy` writes), its text kept for the
/// log.
fn carrying(error: &Error, answer: ProxyError) -> Box<Error> {
    // Its context and cause only: the new error repeats its source and type when displayed.
    let detail = match (&error.context, &error.cause) {
        (Some(context), Some(cause)) => format!("{}: {cause}", context.as_str()),
        (Some(context), None) => context.as_str().to_owned(),
        (None, Some(cause)) => cause.to_string(),
        (None, None) => String::new(),
    };
    let mut carried = Error::because(error.etype().clone(), detail, answer);
    carried.esource = error.esource().clone();
    carried.set_retry(false);
    carried
}

/// The first cause of type `T` in the chain of `error` (an answer or a cut end that
/// travels in a Pingora error).
fn cause<T: std::error::Error + 'static>(error: &Error) -> Option<&T> {
    let mut next = error.cause.as_deref();
    while let Some(cause) = next {
        if let Some(found) = cause.downcast_ref::<T>() {
            return Some(found);
        }
        // Pingora chains its errors as `Box<Error>` causes (`Error::more_context`).
        let inner = cause
            .downcast_ref::<Box<Error>>()
            .map(|e| &**e)
            .or_else(|| cause.downcast_ref::<Error>());
        next = inner.and_then(|e| e.cause.as_deref());
    }
    None
}
