//! `request_filter`: route → key → body → model → gate, before any byte goes upstream.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use chrono::Utc;
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::Result;
use quota_engine::keys::is_cloud_model;
use quota_engine::{ApiKey, Ask, GateDecision, Payer};

use super::context::RequestCtx;
use super::errors::{ProxyError, Stop};
use super::holds::Books;
use super::own_answer::{self, OwnAnswer};
use super::pacing;
use super::route::{classify, model_in_path, FreeRoute, Route};
use crate::dialect::{inspect_form, inspect_request, set_output_limit, Api, RequestInfo, Rules};
use crate::state::{AppState, RuntimeSettings};

/// Bodies above this are inspected on a blocking thread (tokenizing a megabyte takes a while).
const INSPECT_INLINE_LIMIT: usize = 256 * 1024;

/// What `request_filter` decided.
pub enum Decision {
    /// Forward through Pingora's proxy loop (body, if read, fits the retry buffer).
    Proxy,
    /// Forward through the gateway's own loop (the body is larger than Pingora keeps).
    ProxyLarge,
    /// The gateway answered already.
    Answered,
}

/// The API key of a request: `Authorization: Bearer <key>` (any case), `Authorization: sk-…`,
/// or `x-api-key: <key>`.
pub fn key_from_headers(req: &RequestHeader) -> Option<&str> {
    if let Some(value) = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    {
        let value = value.trim();
        if let Some((scheme, rest)) = value.split_once(char::is_whitespace) {
            if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() {
                return Some(rest.trim());
            }
        }
        if value.starts_with("sk-") {
            return Some(value);
        }
    }
    req.headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Runs the request phase. Its steps return `Err(Stop)` to refuse, and every answer the
/// gateway gives itself is written by [`own_answer::write`].
pub async fn filter(
    state: &AppState,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<Decision> {
    let req = session.req_header();
    ctx.inbound.cors_origin = super::cors::allowed_origin(req, &state.config.allowed_origins);
    if super::cors::is_preflight(req) {
        own_answer::preflight(session, ctx).await?;
        return Ok(Decision::Answered);
    }
    let answer = match route(state, session, ctx).await {
        Ok(Next::Forward(decision)) => return Ok(decision),
        Ok(Next::Reply(reply)) => reply,
        Err(Stop::Refuse(error)) => OwnAnswer::refusal(ctx, error),
        Err(Stop::Gone) => {
            session.set_keepalive(None);
            return Ok(Decision::Answered);
        }
        Err(Stop::Fail(e)) => return Err(e),
    };
    own_answer::write(session, ctx, answer).await?;
    Ok(Decision::Answered)
}

/// What the request phase decided when it did not refuse.
enum Next {
    /// Forward upstream.
    Forward(Decision),
    /// The gateway answers by itself.
    Reply(OwnAnswer),
}

/// Classifies the request, authenticates it and runs its route's checks.
async fn route(state: &AppState, session: &mut Session, ctx: &mut RequestCtx) -> StepResult {
    let req = session.req_header();
    let path = req.uri.path().to_owned();
    let classified = classify(req.method.as_str(), &path);
    let route = classified.route;
    ctx.inbound.route = route;
    ctx.inbound.template = classified.template;
    ctx.inbound.dialect = classified.dialect;

    match route {
        Route::Health => return Ok(reply_json(Bytes::from_static(br#"{"status":"ok"}"#))),
        Route::Root => {
            return Ok(Next::Reply(OwnAnswer::text(Bytes::from_static(
                b"Ollama is running",
            ))))
        }
        Route::Refused => return Err(ProxyError::route_refused(&path).into()),
        Route::Unknown => return Err(ProxyError::not_found(&path).into()),
        Route::Counted(_) | Route::Free(_) => {}
    }

    let key = authenticate(state, session.req_header()).await?;
    ctx.inbound.key = Some(Arc::clone(&key));
    let runtime = state.runtime();
    ctx.inbound.runtime = Some(Arc::clone(&runtime));

    match route {
        Route::Free(FreeRoute::Model) => {
            let model = model_in_path(&path).unwrap_or_default().to_owned();
            check_model(&key, &model)?;
            ctx.inbound.model = Some(model);
            Ok(Next::Forward(Decision::Proxy))
        }
        Route::Free(FreeRoute::Show) => {
            let body = read_body(session, state.config.max_request_body_bytes).await?;
            let model = show_model(&body);
            if let Some(model) = &model {
                check_model(&key, model)?;
            }
            ctx.inbound.model = model;
            ctx.inbound.body = Some(body);
            Ok(Next::Forward(body_decision(session)))
        }
        Route::Free(listing @ (FreeRoute::Tags | FreeRoute::Models)) => {
            // Merged over the hosts from their cached lists; proxied to one host (and filtered
            // on the way back) until the first health checks have filled those lists.
            if session.req_header().method == http::Method::GET {
                if let Some(body) = super::listing::from_cache(&runtime.pool, listing, &key) {
                    return Ok(reply_json(body));
                }
            }
            ctx.inbound.filter_listing = true;
            Ok(Next::Forward(Decision::Proxy))
        }
        Route::Free(FreeRoute::Plain) => Ok(Next::Forward(Decision::Proxy)),
        Route::Free(FreeRoute::Running) => Ok(reply_json(
            super::listing::running(&runtime.pool, &key).await?,
        )),
        Route::Free(FreeRoute::Quota) => {
            Ok(reply_json(super::quota::own_quota(state, &key).await?))
        }
        Route::Counted(api) => counted(state, session, ctx, &key, api, &runtime).await,
        Route::Health | Route::Root | Route::Refused | Route::Unknown => {
            Ok(Next::Forward(Decision::Answered))
        }
    }
}

type StepResult = std::result::Result<Next, Stop>;

fn reply_json(body: Bytes) -> Next {
    Next::Reply(OwnAnswer::json(body))
}

async fn counted(
    state: &AppState,
    session: &mut Session,
    ctx: &mut RequestCtx,
    key: &Arc<ApiKey>,
    api: Api,
    runtime: &RuntimeSettings,
) -> StepResult {
    ctx.inbound.api = Some(api);
    let body = read_body(session, state.config.max_request_body_bytes).await?;
    let rules = Rules {
        default_model: &runtime.default_model,
        // In both counting modes: Ollama's count shows output that the text hides (thinking
        // `/v1/completions` never sends), and `tiktoken` charges it too.
        inject_usage: true,
        image_tokens: state.config.image_tokens,
        keep_alive: state.config.keep_alive,
    };
    let info = if api == Api::Transcriptions {
        let req = session.req_header();
        let content_type = req
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        inspect_form(&body, content_type, req.uri.query(), &rules)
            .map_err(|e| ProxyError::bad_request(e.to_string()))
    } else {
        inspect(api, body.clone(), &rules).await
    };
    let info = info?;
    check_model(key, &info.model)?;
    if let Some(tool) = info
        .web_search_tool
        .as_deref()
        .filter(|_| !key.allow_web_search)
    {
        return Err(ProxyError::web_search_not_allowed(tool).into());
    }
    ctx.inbound.model = Some(info.model.clone());
    // Upstream counting charges Ollama's prompt count, template included: the room for the
    // answer is computed with what that count has been known to add (see `overhead`).
    let upstream = state.config.token_counting == crate::dialect::TokenCounting::Upstream;
    let inbound = &mut ctx.inbound;
    inbound.prompt_overhead = match upstream && super::overhead::applies(api) {
        true => state.prompt_overhead.of(&info.model),
        false => 0,
    };
    inbound.prompt_tokens = info.prompt_tokens.saturating_add(inbound.prompt_overhead);
    inbound.usage_injected = info.usage_injected;
    inbound.client_wants_usage = info.client_wants_usage;
    let client_limit = info.client_output_limit;
    let body = info.body.unwrap_or(body);

    let prompt_tokens = i64::try_from(inbound.prompt_tokens).unwrap_or(i64::MAX);
    ctx.holds.open(Books {
        ledger: state.ledger.clone(),
        pacer: state.pacer.clone(),
        usage: state.usage.clone(),
        counting: state.config.token_counting,
    });
    let model_label = super::accounting::model_label(Some(&info.model), Some(runtime));
    let paced = pacing::before_gate(state, session, key, model_label, prompt_tokens).await;
    ctx.inbound.queue_wait = paced.waited;
    ctx.holds.keep_parallel(paced.parallel);
    ctx.holds.keep_pace(paced.pace);
    paced.result?;

    let mut now = Utc::now();
    let mut periods = state.config.periods.at(now);
    let ask = Ask {
        prompt_tokens,
        generates: api.generates(),
        client_output_limit: client_limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
    };
    let payer = Payer::of(key);
    let mut decision = state.ledger.admit(&payer, &ask, &periods).await;
    if matches!(decision, Err(quota_engine::EngineError::StalePeriods)) {
        // Timed just before a midnight that another request already passed: once more, now.
        now = Utc::now();
        periods = state.config.periods.at(now);
        decision = state.ledger.admit(&payer, &ask, &periods).await;
    }
    match decision {
        Ok(GateDecision::Admitted(admission)) => {
            // A token quota with less room than the client asked for (or than no limit):
            // the forwarded body carries the room.
            let cap = admission
                .output_cap
                .and_then(|cap| u64::try_from(cap).ok())
                .filter(|cap| client_limit.is_none_or(|own| own > *cap));
            ctx.inbound.body = Some(match cap {
                Some(cap) => with_output_limit(api, body, cap).await,
                None => body,
            });
            ctx.holds.keep_admission(admission, payer, periods);
            let host =
                pacing::take_host(state, session, key, runtime, &info.model, model_label).await;
            ctx.inbound.queue_wait += host.waited;
            let (selected, running) = host.result?;
            state
                .metrics
                .queue_wait
                .observe(ctx.inbound.queue_wait.as_secs_f64());
            ctx.holds.keep_host(selected, running);
            Ok(Next::Forward(body_decision(session)))
        }
        Ok(GateDecision::Refused(refusal)) => {
            state
                .metrics
                .quota_rejections
                .with_label_values(&[key.key_prefix.as_str(), &refusal.label()])
                .inc();
            let e = ProxyError::quota_exceeded(refusal.to_string(), refusal.retry_after_secs(now));
            Err(e.into())
        }
        Err(e) => {
            match &e {
                quota_engine::EngineError::KeyNotFound(_) => {}
                quota_engine::EngineError::UsageNotLanding(_) => {
                    tracing::debug!(error = %e, key_id = key.id, "refused: usage cannot be written");
                }
                _ => tracing::error!(error = %e, key_id = key.id, "quota gate failed"),
            }
            Err(e.into())
        }
    }
}

/// The body with its output limit set to `cap` (spliced in, see
/// [`crate::dialect::set_output_limit`]); large bodies on a blocking thread. A body that
/// cannot carry a limit is sent as it is: the answer is still bounded while it streams and
/// at the commit.
async fn with_output_limit(api: Api, body: Bytes, cap: u64) -> Bytes {
    if body.len() <= INSPECT_INLINE_LIMIT {
        return set_output_limit(api, &body, cap).map_or(body, Bytes::from);
    }
    let copy = body.clone();
    match tokio::task::spawn_blocking(move || set_output_limit(api, &copy, cap)).await {
        Ok(Some(spliced)) => Bytes::from(spliced),
        _ => body,
    }
}

/// Parses the body; large bodies on a blocking thread. A body the client got wrong is a 400;
/// the inspection itself failing (a panic on the blocking thread) is the gateway's 500.
async fn inspect(api: Api, body: Bytes, rules: &Rules<'_>) -> Result<RequestInfo, ProxyError> {
    if body.is_empty() {
        return Err(ProxyError::bad_request(
            "missing request body: send a JSON object".into(),
        ));
    }
    let result = if body.len() <= INSPECT_INLINE_LIMIT {
        inspect_request(api, &body, rules)
    } else {
        let default_model = rules.default_model.to_owned();
        let rules = Rules {
            default_model: "",
            ..*rules
        };
        match tokio::task::spawn_blocking(move || {
            let rules = Rules {
                default_model: &default_model,
                ..rules
            };
            inspect_request(api, &body, &rules)
        })
        .await
        {
            Ok(result) => result,
            Err(e) => {
                tracing::error!(error = %e, "request inspection failed");
                return Err(ProxyError::internal(
                    "the gateway failed to read this request; it is logged, please report it"
                        .into(),
                ));
            }
        }
    };
    result.map_err(|e| ProxyError::bad_request(e.to_string()))
}

fn body_decision(session: &Session) -> Decision {
    if session.as_downstream().retry_buffer_truncated() {
        Decision::ProxyLarge
    } else {
        Decision::Proxy
    }
}

/// The model named by an `/api/show` body (`model`, or legacy `name`).
fn show_model(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["model", "name"]
        .iter()
        .find_map(|f| {
            value
                .get(*f)
                .and_then(|m| m.as_str())
                .filter(|m| !m.is_empty())
        })
        .map(str::to_owned)
}

/// A model must be allowed by the key and by its team; the refusal says which refused it.
fn check_model(key: &ApiKey, model: &str) -> Result<(), ProxyError> {
    if key.allows_model(model) {
        return Ok(());
    }
    let team = key
        .team
        .as_ref()
        .filter(|t| !t.allows_model(model))
        .map(|t| t.name.as_str());
    Err(ProxyError::model_not_allowed(
        model,
        is_cloud_model(model),
        team,
    ))
}

async fn authenticate(state: &AppState, req: &RequestHeader) -> Result<Arc<ApiKey>, ProxyError> {
    let Some(plaintext) = key_from_headers(req) else {
        return Err(ProxyError::unauthorized(
            "missing API key: send it as Authorization: Bearer sk-...".into(),
        ));
    };
    let key = match state.keys.lookup(&state.db, plaintext).await {
        Ok(Some(key)) => key,
        Ok(None) => return Err(ProxyError::unauthorized("invalid API key".into())),
        Err(e) => {
            tracing::error!(error = %e, "key lookup failed");
            return Err(e.into());
        }
    };
    let now = Utc::now();
    // First: a rotated-out (perhaps leaked) secret learns nothing about the key's state.
    if key.is_rotated_out(now) {
        return Err(ProxyError::unauthorized(
            "this API key's secret was replaced (rotated); use the new secret the operator gave you"
                .into(),
        ));
    }
    if !key.is_active {
        return Err(ProxyError::unauthorized(
            "API key is deactivated; ask the operator to activate it".into(),
        ));
    }
    if key.is_expired(now) {
        let at = key
            .expires_at
            .map(|t| t.with_timezone(&state.config.periods.tz()).to_rfc3339())
            .unwrap_or_default();
        return Err(ProxyError::unauthorized(format!(
            "API key expired at {at}; ask the operator for a new one"
        )));
    }
    Ok(key)
}

/// Reads the whole request body, at most `limit` bytes, keeping Pingora's retry buffer so that
/// bodies up to 64 KiB go through Pingora's own proxy loop.
async fn read_body(session: &mut Session, limit: u64) -> std::result::Result<Bytes, Stop> {
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    let declared = session
        .req_header()
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ProxyError::too_large(limit).into());
    }
    let downstream = session.as_downstream_mut();
    if downstream
        .req_header()
        .headers
        .get("expect")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        downstream.write_continue_response().await?;
    }
    downstream.enable_retry_buffering();
    let capacity = declared
        .map_or(0, |n| usize::try_from(n).unwrap_or(0))
        .min(limit_usize);
    let mut body = BytesMut::with_capacity(capacity);
    loop {
        let chunk = match downstream.read_request_body().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "the client's request body broke off");
                // What is left of the body cannot be read: the connection ends with the answer.
                downstream.set_keepalive(None);
                return Err(ProxyError::client_body(&e).into());
            }
        };
        if body.len() + chunk.len() > limit_usize {
            return Err(ProxyError::too_large(limit).into());
        }
        body.extend_from_slice(&chunk);
    }
    let encoding = downstream
        .req_header()
        .headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let body = body.freeze();
    if encoding
        .as_deref()
        .is_none_or(|e| e.is_empty() || e == "identity")
    {
        return Ok(body);
    }
    // A few compressed kilobytes may decode to megabytes: off the proxy's threads.
    let decoded = tokio::task::spawn_blocking(move || {
        super::body_encoding::decode(encoding.as_deref(), body, limit)
    })
    .await;
    match decoded {
        Ok(decoded) => Ok(decoded?),
        Err(e) => {
            tracing::error!(error = %e, "decoding a request body failed");
            Err(ProxyError::internal(
                "the gateway failed to decode this request body; it is logged, please report it"
                    .into(),
            )
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/api/chat", None).unwrap();
        for (k, v) in headers {
            r.insert_header(k.to_string(), *v).unwrap();
        }
        r
    }

    /// A key is taken from Bearer (any case), a bare sk- Authorization, or x-api-key.
    #[test]
    fn key_sources() {
        assert_eq!(
            key_from_headers(&req(&[("authorization", "Bearer sk-a")])),
            Some("sk-a")
        );
        assert_eq!(
            key_from_headers(&req(&[("authorization", "bearer   sk-b ")])),
            Some("sk-b")
        );
        assert_eq!(
            key_from_headers(&req(&[("authorization", "BEARER sk-c")])),
            Some("sk-c")
        );
        assert_eq!(
            key_from_headers(&req(&[("authorization", "sk-d")])),
            Some("sk-d")
        );
        assert_eq!(
            key_from_headers(&req(&[("x-api-key", "sk-e")])),
            Some("sk-e")
        );
        assert_eq!(
            key_from_headers(&req(&[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(key_from_headers(&req(&[])), None);
    }

    /// `/api/show` names its model in `model` or the legacy `name`.
    #[test]
    fn show_model_field() {
        assert_eq!(show_model(br#"{"model":"a"}"#).as_deref(), Some("a"));
        assert_eq!(show_model(br#"{"name":"b"}"#).as_deref(), Some("b"));
        assert_eq!(show_model(b"nope"), None);
    }
}

#[cfg(test)]
mod properties {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any `Authorization` / `x-api-key` value: the parser never panics, and a key it
        /// returns is non-empty, trimmed, and taken from the value that was sent.
        #[test]
        fn key_headers_never_panic(auth in "[ -~]{0,40}", api_key in "[ -~]{0,40}") {
            let mut r = RequestHeader::build("POST", b"/api/chat", None).unwrap();
            if !auth.is_empty() {
                r.insert_header("authorization", auth.as_str()).unwrap();
            }
            if !api_key.is_empty() {
                r.insert_header("x-api-key", api_key.as_str()).unwrap();
            }
            if let Some(key) = key_from_headers(&r) {
                prop_assert!(!key.is_empty());
                prop_assert_eq!(key, key.trim());
                prop_assert!(auth.contains(key) || api_key.contains(key));
            }
        }
    }
}
