//! The gateway's own forwarding loop, for request bodies larger than the 64 KiB Pingora keeps
//! for its proxy loop (pingora 0.9 pre-reads at most that much before `upstream_peer`; see
//! docs/architecture.md). It uses Pingora's pooled HTTP connector and the same rewrite, meter
//! and accounting as the normal path; it watches the client while streaming so that a hang-up
//! stops the upstream read and is accounted like one on the normal path.

use bytes::Bytes;
use pingora::connectors::http::Connector;
use pingora::protocols::http::client::HttpSession;
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};

use super::context::RequestCtx;
use super::errors::ProxyError;
use super::failover::{self, NextAttempt};
use super::own_answer::{self, OwnAnswer};
use super::response::{
    on_response_body, on_response_header, on_upstream_request, BodyStep, CutEnd,
};
use crate::state::AppState;

pub async fn run(
    state: &AppState,
    connector: &Connector,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<()> {
    let body = ctx.inbound.body.clone().unwrap_or_default();
    // Same failover as Pingora's loop: a host that cannot be reached, or that drops the
    // connection before answering, hands the request to another one.
    let (mut upstream_session, peer) = loop {
        let peer = match failover::choose(state, ctx) {
            Ok(peer) => peer,
            Err(answer) => return refuse(session, ctx, answer).await,
        };
        let (mut upstream, reused) = match connector.get_http_session(&peer).await {
            Ok(connected) => {
                // Pingora's own loop applies the peer's timeouts to its sessions; this one
                // must too, or a host that accepts and never answers holds the request.
                let (mut session, reused) = connected;
                session.set_read_timeout(peer.options.read_timeout);
                session.set_write_timeout(peer.options.write_timeout);
                (session, reused)
            }
            Err(e) => match failover::connect_failed(ctx) {
                NextAttempt::Retry => {
                    tracing::warn!(error = %e, "cannot connect to an Ollama host; trying another");
                    continue;
                }
                NextAttempt::NoHostLeft(answer) => return refuse(session, ctx, answer).await,
                NextAttempt::GiveUp => return Err(e),
            },
        };
        match send_request(&mut upstream, session, ctx, body.clone()).await {
            Ok(()) => break (upstream, peer),
            Err(e) => match failover::retry_after_error(ctx, &e, false, reused, false) {
                NextAttempt::Retry => {
                    tracing::warn!(error = %e, "an Ollama host dropped the request before answering; trying again");
                    continue;
                }
                // As after any failed proxy, the client's connection ends with the answer.
                NextAttempt::NoHostLeft(answer) => {
                    let answer = OwnAnswer::refusal(ctx, answer).closing();
                    return own_answer::write(session, ctx, answer).await;
                }
                NextAttempt::GiveUp => return Err(e),
            },
        }
    };
    let Some(header) = upstream_session.response_header() else {
        return Error::e_explain(
            ErrorType::InvalidHTTPHeader,
            "upstream sent no response header",
        );
    };
    let mut resp = header.clone();
    on_response_header(&mut resp, ctx)?;
    session.write_response_header(Box::new(resp), false).await?;

    loop {
        let chunk = tokio::select! {
            chunk = upstream_session.read_response_body() => chunk?,
            gone = session.as_downstream_mut().read_body_or_idle(true) => {
                gone?;
                continue;
            }
        };
        let Some(chunk) = chunk else { break };
        let mut out: Option<Bytes> = Some(chunk);
        if let BodyStep::Cut(CutEnd(tail)) = on_response_body(state, &mut out, false, ctx) {
            // The key's token quota ended the answer: its clean end, then the upstream
            // connection is dropped (not pooled), so Ollama stops generating.
            session.write_response_body(Some(tail), true).await?;
            return Ok(());
        }
        if let Some(out) = out.filter(|b| !b.is_empty()) {
            session.write_response_body(Some(out), false).await?;
        }
    }
    let mut tail: Option<Bytes> = None;
    on_response_body(state, &mut tail, true, ctx);
    session.write_response_body(tail, true).await?;
    if upstream_session.response_done() {
        connector
            .release_http_session(upstream_session, &peer, peer.options.idle_timeout)
            .await;
    }
    Ok(())
}

/// Writes the rewritten request and its body to `upstream` and reads the answer's header.
async fn send_request(
    upstream: &mut HttpSession,
    session: &Session,
    ctx: &mut RequestCtx,
    body: Bytes,
) -> Result<()> {
    let mut req = session.req_header().clone();
    on_upstream_request(&mut req, ctx)?;
    upstream.write_request_header(Box::new(req)).await?;
    upstream.write_request_body(body, true).await?;
    upstream.finish_request_body().await?;
    upstream.read_response_header().await
}

/// No host can take the request: the answer that says why.
async fn refuse(session: &mut Session, ctx: &mut RequestCtx, answer: ProxyError) -> Result<()> {
    let answer = OwnAnswer::refusal(ctx, answer);
    own_answer::write(session, ctx, answer).await
}
