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
pub mod listing;
pub mod overhead;
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
use request::Decision;

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
        match failover::choose(&self.state, ctx) {
            Ok(peer) => Ok(Box::new(peer)),
            Err(answer) => {
                let explain = answer.message.clone();
                ctx.no_host = Some(answer);
                Error::e_explain(ErrorType::ConnectNoRoute, explain)
            }
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
        if failover::connect_failed(ctx) {
            e.set_retry(true);
        }
        e
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
        let retry = failover::retry_after_error(
            ctx,
            &e,
            session.response_written().is_some(),
            client_reused,
            session.as_ref().retry_buffer_truncated(),
        );
        e.set_retry(retry);
        e
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let authority = ctx
            .inflight
            .as_ref()
            .map(|g| g.upstream.authority.clone())
            .unwrap_or_default();
        response::rewrite_upstream_request(req, ctx, &authority)
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
        if let Some(read) = &ctx.body {
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
            // generating; fail_to_proxy then writes the answer's clean end (ctx.cut_tail).
            response::BodyStep::Cut => Error::e_explain(
                ErrorType::Custom("token quota ended the answer"),
                "the key's token quota has no room left for this answer",
            ),
        }
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if let Some(tail) = ctx.cut_tail.take() {
            let status = ctx.upstream_status.unwrap_or(200);
            if let Err(write_error) = session.write_response_body(Some(tail), true).await {
                tracing::debug!(error = %write_error, "could not end the answer cut by its quota");
            }
            return FailToProxy {
                error_code: status,
                can_reuse_downstream: false,
            };
        }
        let error = match e.etype() {
            _ if ctx.no_host.is_some() => ctx.no_host.take(),
            _ if *e.esource() == ErrorSource::Downstream => None,
            ErrorType::HTTPStatus(code) => Some(ProxyError {
                status: *code,
                ..ProxyError::internal(e.to_string())
            }),
            ErrorType::ReadTimedout | ErrorType::WriteTimedout | ErrorType::ConnectTimedout
                if ctx.upstream_status.is_none() =>
            {
                Some(ProxyError::gateway_timeout(
                    "the Ollama host did not answer in time".into(),
                ))
            }
            _ => Some(ProxyError::bad_gateway(
                "no Ollama host is reachable".into(),
            )),
        };
        let code = match &error {
            Some(err) if session.response_written().is_none() => {
                ctx.answered_status = Some(err.status);
                let mut err = err.clone();
                err.headers
                    .extend(cors::headers(ctx.cors_origin.as_deref()));
                // The connection is not reused after a failed proxy: tell the client.
                session.set_keepalive(None);
                if let Err(write_error) = errors::respond_error(session, ctx.dialect, &err).await {
                    tracing::debug!(error = %write_error, "could not send the error answer");
                }
                err.status
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
        *e.esource() == ErrorSource::Downstream || ctx.cut_wanted
    }
}
