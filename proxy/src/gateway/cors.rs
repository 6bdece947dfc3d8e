//! CORS on the proxy listener: only origins listed in `ALLOWED_ORIGINS` get CORS headers
//! (`*` in the list allows any). Preflights are answered here, without a key.

use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::Result;

/// The request's `Origin` when it is allowed (the admin listener's rule,
/// [`admin_api::origin_allowed`]).
pub fn allowed_origin(req: &RequestHeader, allowed: &[String]) -> Option<String> {
    let origin = req.headers.get("origin")?.to_str().ok()?;
    admin_api::origin_allowed(origin, allowed).then(|| origin.to_owned())
}

/// A CORS preflight: `OPTIONS` with `Access-Control-Request-Method`.
pub fn is_preflight(req: &RequestHeader) -> bool {
    req.method == "OPTIONS" && req.headers.contains_key("access-control-request-method")
}

/// The headers a browser client may read: the quota and retry headers.
const EXPOSED: &str = "retry-after, x-should-retry, x-ratelimit-limit-requests, \
     x-ratelimit-remaining-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, \
     x-ratelimit-limit-gpu-seconds, x-ratelimit-remaining-gpu-seconds, \
     x-ratelimit-reset-requests, x-ratelimit-reset-tokens";

/// Adds the CORS answer headers for an allowed origin.
pub fn decorate(resp: &mut ResponseHeader, origin: &str) -> Result<()> {
    resp.insert_header("access-control-allow-origin", origin)?;
    resp.insert_header("access-control-expose-headers", EXPOSED)?;
    resp.append_header("vary", "Origin")?;
    Ok(())
}

/// The CORS headers of an answer the gateway writes itself (errors, refusals, `/healthz`,
/// the quota endpoint): the same as for proxied answers, so a browser client can read
/// `Retry-After` on a 429. Empty when the origin is not allowed.
pub fn headers(origin: Option<&str>) -> Vec<(&'static str, String)> {
    match origin {
        Some(origin) => vec![
            ("access-control-allow-origin", origin.to_owned()),
            ("access-control-expose-headers", EXPOSED.to_owned()),
            ("vary", "Origin".to_owned()),
        ],
        None => Vec::new(),
    }
}

/// Answers a preflight: 204, with CORS headers only for an allowed origin.
pub async fn answer_preflight(session: &mut Session, origin: Option<&str>) -> Result<()> {
    let mut resp = ResponseHeader::build(204, Some(6))?;
    if let Some(origin) = origin {
        let requested = session
            .req_header()
            .headers
            .get("access-control-request-headers")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("authorization, content-type")
            .to_owned();
        resp.insert_header("access-control-allow-origin", origin)?;
        resp.insert_header("access-control-allow-methods", "GET, POST, DELETE, OPTIONS")?;
        resp.insert_header("access-control-allow-headers", requested)?;
        resp.insert_header("access-control-max-age", "600")?;
        resp.append_header("vary", "Origin")?;
    }
    resp.insert_header("content-length", "0")?;
    session.write_response_header(Box::new(resp), true).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Only listed origins are echoed back.
    #[test]
    fn origins() {
        let mut req = RequestHeader::build("GET", b"/api/tags", None).unwrap();
        let allowed = vec!["http://localhost:5173".to_string()];
        assert_eq!(allowed_origin(&req, &allowed), None);
        req.insert_header("origin", "http://localhost:5173")
            .unwrap();
        assert_eq!(
            allowed_origin(&req, &allowed).as_deref(),
            Some("http://localhost:5173")
        );
        req.insert_header("origin", "http://evil.example").unwrap();
        assert_eq!(allowed_origin(&req, &allowed), None);
        assert!(allowed_origin(&req, &["*".to_string()]).is_some());
    }

    /// Answers the gateway writes itself expose the retry and quota headers too.
    #[test]
    fn error_answers_expose_retry_after() {
        assert!(headers(None).is_empty());
        let h = headers(Some("http://localhost:5173"));
        assert!(h.contains(&(
            "access-control-allow-origin",
            "http://localhost:5173".into()
        )));
        let exposed = &h
            .iter()
            .find(|(n, _)| *n == "access-control-expose-headers")
            .unwrap()
            .1;
        assert!(exposed.contains("retry-after") && exposed.contains("x-ratelimit-reset-tokens"));
    }
}
