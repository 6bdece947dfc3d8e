//! The gateway's own forwarding loop, for request bodies larger than the 64 KiB Pingora keeps
//! for its proxy loop (pingora 0.9 pre-reads at most that much before `upstream_peer`; see
//! docs/architecture.md). It uses Pingora's pooled HTTP connector and the same rewrite, meter
//! and accounting as the normal path; it watches the client while streaming so that a hang-up
//! stops the upstream read and is accounted like one on the normal path.

use bytes::Bytes;
use pingora::connectors::http::Connector;
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};

use super::context::RequestCtx;
use super::errors::{respond_error, ProxyError};
use super::peer::make_peer;
use super::response::{on_response_body, on_response_header, rewrite_upstream_request};
use crate::state::AppState;

pub async fn run(
    state: &AppState,
    connector: &Connector,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<()> {
    let Some(runtime) = ctx.runtime.clone() else {
        return Error::e_explain(ErrorType::InternalError, "no runtime settings");
    };
    let body = ctx.body.clone().unwrap_or_default();
    let (mut upstream_session, peer) = loop {
        let Some((index, guard)) = runtime.pool.select(&ctx.tried) else {
            ctx.answered_status = Some(502);
            let e = ProxyError::bad_gateway("no Ollama host is reachable".into());
            respond_error(session, ctx.dialect, &e).await?;
            return Ok(());
        };
        ctx.tried.push(index);
        let peer = match make_peer(&guard.upstream, &state.config) {
            Some(peer) => peer,
            None => continue,
        };
        ctx.inflight = Some(guard);
        match connector.get_http_session(&peer).await {
            Ok((s, _reused)) => break (s, peer),
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect to an Ollama host; trying another")
            }
        }
    };
    let authority = ctx
        .inflight
        .as_ref()
        .map(|g| g.upstream.authority.clone())
        .unwrap_or_default();
    let mut req = session.req_header().clone();
    rewrite_upstream_request(&mut req, ctx, &authority)?;
    upstream_session.write_request_header(Box::new(req)).await?;
    upstream_session.write_request_body(body, true).await?;
    upstream_session.finish_request_body().await?;
    upstream_session.read_response_header().await?;
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
        on_response_body(&mut out, false, ctx);
        if let Some(out) = out.filter(|b| !b.is_empty()) {
            session.write_response_body(Some(out), false).await?;
        }
    }
    let mut tail: Option<Bytes> = None;
    on_response_body(&mut tail, true, ctx);
    session.write_response_body(tail, true).await?;
    if upstream_session.response_done() {
        connector
            .release_http_session(upstream_session, &peer, peer.options.idle_timeout)
            .await;
    }
    Ok(())
}
