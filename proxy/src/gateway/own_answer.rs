//! The one writer of the answers the gateway gives itself: refusals and errors (from
//! `request_filter`, from `fail_to_proxy`, from the large-body loop) and its own replies
//! (`/healthz`, `/`, listings from the cache, `/api/quota`). It records the answered status,
//! adds the CORS headers (and `x-queue-wait-ms` on counted routes), closes the connection
//! after a failed proxy or a 413 (and `errors::respond` when the request body was not read),
//! and after a 413 lingers to read what the client still sends.

use std::time::Duration;

use bytes::Bytes;
use pingora::proxy::Session;
use pingora::Result;

use super::context::RequestCtx;
use super::errors::ProxyError;

/// An answer of the gateway's own.
pub struct OwnAnswer {
    status: u16,
    content_type: &'static str,
    body: Bytes,
    headers: Vec<(&'static str, String)>,
    /// Close the connection after it (a failed proxy leaves it in an unknown state).
    close: bool,
}

impl OwnAnswer {
    /// A refusal or an error, in the dialect of the request's route.
    pub fn refusal(ctx: &RequestCtx, error: ProxyError) -> OwnAnswer {
        OwnAnswer {
            status: error.status,
            content_type: "application/json",
            body: error.body(ctx.inbound.dialect),
            headers: error.headers,
            close: false,
        }
    }

    /// A 200 JSON reply.
    pub fn json(body: Bytes) -> OwnAnswer {
        OwnAnswer {
            status: 200,
            content_type: "application/json",
            body,
            headers: Vec::new(),
            close: false,
        }
    }

    /// A 200 plain-text reply.
    pub fn text(body: Bytes) -> OwnAnswer {
        OwnAnswer {
            content_type: "text/plain; charset=utf-8",
            ..OwnAnswer::json(body)
        }
    }

    /// The connection ends with this answer.
    pub fn closing(self) -> OwnAnswer {
        OwnAnswer {
            close: true,
            ..self
        }
    }

    pub fn status(&self) -> u16 {
        self.status
    }
}

/// Writes `answer`: the one place that sets the answered status and the CORS headers of the
/// gateway's own answers.
pub async fn write(session: &mut Session, ctx: &mut RequestCtx, answer: OwnAnswer) -> Result<()> {
    let OwnAnswer {
        status,
        content_type,
        body,
        mut headers,
        close,
    } = answer;
    ctx.own_status = Some(status);
    headers.extend(super::cors::headers(ctx.inbound.cors_origin.as_deref()));
    if ctx.inbound.api.is_some() {
        headers.push((
            "x-queue-wait-ms",
            ctx.inbound.queue_wait.as_millis().to_string(),
        ));
    }
    if close || status == 413 {
        session.set_keepalive(None);
    }
    super::errors::respond(session, status, content_type, body, &headers).await?;
    if status == 413 {
        linger(session).await;
    }
    Ok(())
}

/// Answers a CORS preflight (204; see [`super::cors::answer_preflight`]).
pub async fn preflight(session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
    ctx.own_status = Some(204);
    super::cors::answer_preflight(session, ctx.inbound.cors_origin.as_deref()).await
}

/// How long, and how much, of a refused body is read and thrown away after the answer.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 << 20;

/// Reads and discards what the client still sends of a body refused as too large, for a
/// bounded time, as nginx's lingering close does: clients that send the whole body before
/// reading (Python's `http.client`, curl without `Expect`) then read the 413 instead of
/// failing with a broken pipe. The connection is closed afterwards.
async fn linger(session: &mut Session) {
    let expects_continue = session.req_header().headers.contains_key("expect");
    if expects_continue {
        return; // the client waits for a 100 that never comes: it sends nothing more
    }
    let downstream = session.as_downstream_mut();
    let drain = async {
        let mut read = 0usize;
        while let Ok(Some(chunk)) = downstream.read_request_body().await {
            read += chunk.len();
            if read > LINGER_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}
