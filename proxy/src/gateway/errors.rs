//! Every answer the gateway writes itself, in the dialect of the route: Ollama's
//! `{"error": "..."}` on `/api/*`, Anthropic's `{"type": "error", "error": {...}}` on
//! `/v1/messages`, OpenAI's error object on the other `/v1/*` routes (docs/api.md, "Errors").

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

/// Which API's clients will read the answer (each route's is in `route::ROUTES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Ollama,
    OpenAi,
    /// `/v1/messages`: the Anthropic SDK reads `error.type` and `error.message`.
    Anthropic,
}

/// Why the request phase ends before anything goes upstream: every refusal of
/// `request_filter` travels as `Err(Stop)` and is written in one place.
pub enum Stop {
    /// Answer with this error, in the route's dialect.
    Refuse(ProxyError),
    /// The client is gone: nothing to answer (the settlement gives back what was taken).
    Gone,
    /// The downstream connection failed under Pingora.
    Fail(Box<pingora::Error>),
}

impl From<ProxyError> for Stop {
    fn from(e: ProxyError) -> Stop {
        Stop::Refuse(e)
    }
}

impl From<Box<pingora::Error>> for Stop {
    fn from(e: Box<pingora::Error>) -> Stop {
        Stop::Fail(e)
    }
}

impl From<quota_engine::EngineError> for Stop {
    fn from(e: quota_engine::EngineError) -> Stop {
        Stop::Refuse(e.into())
    }
}

/// The one mapping of the quota engine's errors to the gateway's answers: an unknown key is a
/// 401; everything else means the database cannot be read or written now, a 503 that says to
/// retry shortly (admission fails closed: nothing passes unaccounted).
impl From<quota_engine::EngineError> for ProxyError {
    fn from(e: quota_engine::EngineError) -> ProxyError {
        use quota_engine::EngineError;
        match e {
            EngineError::KeyNotFound(_) => ProxyError::unauthorized("invalid API key".into()),
            EngineError::UsageNotLanding(_) => {
                ProxyError::database_unavailable(format!("the quota database is unavailable: {e}"))
            }
            _ => ProxyError::database_unavailable(
                "the quota database is unavailable; try again shortly".into(),
            ),
        }
    }
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

/// An answer travels as the cause of a Pingora error from `upstream_peer` and the retry
/// hooks to `fail_to_proxy`.
impl std::error::Error for ProxyError {}

/// The Anthropic error type of a status, as Ollama's own Anthropic layer maps it
/// (`anthropic/anthropic.go`, `NewError`).
fn anthropic_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    }
}

/// An error answer: status, message, OpenAI type and code, extra headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyError {
    pub status: u16,
    pub message: String,
    pub openai_type: &'static str,
    pub code: &'static str,
    pub headers: Vec<(&'static str, String)>,
}

impl ProxyError {
    fn new(
        status: u16,
        openai_type: &'static str,
        code: &'static str,
        message: String,
    ) -> ProxyError {
        ProxyError {
            status,
            message,
            openai_type,
            code,
            headers: Vec::new(),
        }
    }
    pub fn bad_request(message: String) -> ProxyError {
        ProxyError::new(400, "invalid_request_error", "invalid_request", message)
    }
    /// The client's own request body broke off, was malformed, or never arrived in time:
    /// the client's fault, never blamed on Ollama.
    pub fn client_body(error: &pingora::Error) -> ProxyError {
        if matches!(error.etype(), pingora::ErrorType::ReadTimedout) {
            return ProxyError::new(
                408,
                "invalid_request_error",
                "request_timeout",
                "the request body did not arrive in time: send the whole body without pausing"
                    .into(),
            );
        }
        ProxyError::new(
            400,
            "invalid_request_error",
            "invalid_request_body",
            "the request body is incomplete or malformed (shorter than its Content-Length, \
             or broken chunked encoding): send it whole"
                .into(),
        )
    }

    pub fn unauthorized(message: String) -> ProxyError {
        ProxyError::new(401, "authentication_error", "invalid_api_key", message)
    }
    pub fn route_refused(path: &str) -> ProxyError {
        ProxyError::new(
            403,
            "permission_error",
            "route_not_allowed",
            format!("{path} is an Ollama administration route and is not available through this gateway"),
        )
    }
    /// `team`: the key's team, when its allowed models refused the model.
    pub fn model_not_allowed(model: &str, cloud: bool, team: Option<&str>) -> ProxyError {
        let message = match (team, cloud) {
            (Some(team), true) => format!("model '{model}' is a cloud model and runs on the Ollama host's ollama.com account; it is not allowed for team {team:?} unless the team's allowed models name it"),
            (Some(team), false) => format!("model '{model}' is not allowed for team {team:?}"),
            (None, true) => format!("model '{model}' is a cloud model and runs on the Ollama host's ollama.com account; it is not allowed for this key unless the key's allowed models name it"),
            (None, false) => format!("model '{model}' is not allowed for this key"),
        };
        ProxyError::new(403, "permission_error", "model_not_allowed", message)
    }
    pub fn web_search_not_allowed(tool: &str) -> ProxyError {
        ProxyError::new(
            403,
            "permission_error",
            "web_search_not_allowed",
            format!("the {tool:?} tool runs web searches on the Ollama host's ollama.com account and is not allowed for this key; remove the tool, or ask the operator to allow web search for the key"),
        )
    }
    pub fn not_found(path: &str) -> ProxyError {
        ProxyError::new(
            404,
            "invalid_request_error",
            "not_found",
            format!("no route {path} on this gateway"),
        )
    }
    pub fn too_large(limit: u64) -> ProxyError {
        ProxyError::new(
            413,
            "invalid_request_error",
            "request_too_large",
            format!("request body is larger than {limit} bytes (proxy.max_request_body_bytes)"),
        )
    }
    pub fn unsupported_encoding(message: String) -> ProxyError {
        ProxyError::new(
            415,
            "invalid_request_error",
            "unsupported_encoding",
            message,
        )
    }
    pub fn quota_exceeded(message: String, retry_after: u64) -> ProxyError {
        let mut e = ProxyError::new(429, "rate_limit_error", "quota_exceeded", message);
        e.headers.push(("retry-after", retry_after.to_string()));
        e.headers.push(("x-should-retry", "false".into()));
        e
    }
    /// A per-minute limit or the parallel cap: room comes back soon, so SDKs may retry
    /// (unless the request can never fit, e.g. a prompt above the per-minute token limit).
    pub fn rate_limited(message: String, retry_after: u64, should_retry: bool) -> ProxyError {
        let mut e = ProxyError::new(429, "rate_limit_error", "rate_limit_exceeded", message);
        e.headers.push(("retry-after", retry_after.to_string()));
        e.headers.push(("x-should-retry", should_retry.to_string()));
        e
    }
    /// The fair queue for a host at its `max_concurrency` timed out.
    pub fn queue_timeout(message: String, retry_after: u64) -> ProxyError {
        let mut e = ProxyError::new(503, "api_error", "queue_timeout", message);
        e.headers.push(("retry-after", retry_after.to_string()));
        e
    }
    pub fn bad_gateway(message: String) -> ProxyError {
        ProxyError::new(502, "api_error", "upstream_unavailable", message)
    }
    /// Every host that could take the request is at its `max_concurrency`: a moment's wait
    /// helps, so clients are told to retry (OpenAI SDKs do so on 503 by themselves).
    pub fn at_capacity(message: String) -> ProxyError {
        let mut e = ProxyError::new(503, "api_error", "upstream_at_capacity", message);
        e.headers.push(("retry-after", "1".into()));
        e
    }
    pub fn gateway_timeout(message: String) -> ProxyError {
        ProxyError::new(504, "api_error", "upstream_timeout", message)
    }
    /// The quota database cannot be reached or written: admission fails closed, briefly.
    pub fn database_unavailable(message: String) -> ProxyError {
        let mut e = ProxyError::new(503, "api_error", "database_unavailable", message);
        e.headers.push(("retry-after", "1".into()));
        e
    }
    pub fn internal(message: String) -> ProxyError {
        ProxyError::new(500, "api_error", "internal_error", message)
    }

    /// The JSON body in `dialect`.
    pub fn body(&self, dialect: Dialect) -> Bytes {
        let value = match dialect {
            Dialect::Ollama => serde_json::json!({ "error": self.message }),
            Dialect::Anthropic => serde_json::json!({
                "type": "error",
                "error": { "type": anthropic_type(self.status), "message": self.message },
            }),
            Dialect::OpenAi => serde_json::json!({
                "error": {
                    "message": self.message,
                    "type": self.openai_type,
                    "param": null,
                    "code": self.code,
                }
            }),
        };
        Bytes::from(value.to_string())
    }
}

/// Writes `body` as a complete response of `content_type`.
pub async fn respond(
    session: &mut Session,
    status: u16,
    content_type: &'static str,
    body: Bytes,
    headers: &[(&'static str, String)],
) -> Result<()> {
    let mut header = ResponseHeader::build(status, Some(4 + headers.len()))?;
    header.insert_header("content-type", content_type)?;
    header.insert_header("content-length", body.len().to_string())?;
    for (name, value) in headers {
        header.insert_header(*name, value.as_str())?;
    }
    // The request body may be unread (413, early 401): don't try to reuse the connection.
    if !session.is_body_done() {
        session.set_keepalive(None);
    }
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session.write_response_body(Some(body), true).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Both dialects carry the message; OpenAI's object has type and code.
    #[test]
    fn shapes() {
        let e = ProxyError::quota_exceeded("daily token quota exceeded".into(), 5);
        let ollama: serde_json::Value = serde_json::from_slice(&e.body(Dialect::Ollama)).unwrap();
        assert_eq!(
            ollama,
            serde_json::json!({"error": "daily token quota exceeded"})
        );
        let openai: serde_json::Value = serde_json::from_slice(&e.body(Dialect::OpenAi)).unwrap();
        assert_eq!(openai["error"]["type"], "rate_limit_error");
        assert_eq!(openai["error"]["code"], "quota_exceeded");
        assert_eq!(
            e.headers,
            vec![
                ("retry-after", "5".to_string()),
                ("x-should-retry", "false".to_string())
            ]
        );
        let anthropic: serde_json::Value =
            serde_json::from_slice(&e.body(Dialect::Anthropic)).unwrap();
        assert_eq!(
            anthropic,
            serde_json::json!({"type": "error", "error": {"type": "rate_limit_error", "message": "daily token quota exceeded"}})
        );
    }

    /// One mapping of the engine's errors: an unknown key is a 401, a database that cannot be
    /// used a 503 with Retry-After wherever it happens (the gate, a grant, a key lookup, a
    /// quota read).
    #[test]
    fn engine_errors() {
        use quota_engine::EngineError;
        assert_eq!(ProxyError::from(EngineError::KeyNotFound(3)).status, 401);
        for e in [
            EngineError::UsageNotLanding("disk full".into()),
            EngineError::Corrupt("x".into()),
            EngineError::StalePeriods,
        ] {
            let p = ProxyError::from(e);
            assert_eq!((p.status, p.code), (503, "database_unavailable"));
            assert!(p.headers.iter().any(|(h, _)| *h == "retry-after"));
        }
    }
}
