//! `GET /api/tags` and `GET /v1/models`, answered by the gateway from the model lists the
//! health checks keep: the union by name over the available hosts, filtered by the key's
//! allowed models. Before any host's list is known (the first round of checks has not ended),
//! the request is proxied to one host and its answer filtered instead
//! ([`super::response::filter_listing`]).
//!
//! `GET /api/ps` changes with every request, so it is asked of every available host when a
//! key asks ([`running`]): the entries of all of them, filtered by the key's allowed models
//! (a key never learns which other models the hosts serve).

use std::sync::OnceLock;

use bytes::Bytes;
use pingora::connectors::http::Connector;
use quota_engine::ApiKey;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use super::errors::ProxyError;
use super::route::FreeRoute;
use crate::upstream::health::fetch_json;
use crate::upstream::UpstreamPool;

/// The answer body for `route` from the pool's cached lists, or `None` when no list is known.
pub fn from_cache(pool: &UpstreamPool, route: FreeRoute, key: &ApiKey) -> Option<Bytes> {
    let models = pool.merged_models()?;
    Some(render(models, route, |name| key.allows_model(name)))
}

/// Ollama's `{"models": [...]}` or OpenAI's `{"object": "list", "data": [...]}` of the
/// `/api/tags` entries that `allowed` keeps.
pub fn render(models: Vec<Value>, route: FreeRoute, allowed: impl Fn(&str) -> bool) -> Bytes {
    let kept = models
        .into_iter()
        .filter(|entry| entry_name(entry).is_some_and(&allowed));
    let body = match route {
        FreeRoute::Models => json!({
            "object": "list",
            "data": kept.map(|e| openai_model(&e)).collect::<Vec<_>>(),
        }),
        _ => json!({ "models": kept.collect::<Vec<_>>() }),
    };
    Bytes::from(body.to_string())
}

/// The `/api/ps` answer for `key`: the models in memory on every available host, each host's
/// entries in its order, hosts in configuration order, only those the key may use. A 502 when
/// no host answered.
pub async fn running(pool: &UpstreamPool, key: &ApiKey) -> Result<Bytes, ProxyError> {
    static CONNECTOR: OnceLock<std::sync::Arc<Connector>> = OnceLock::new();
    let connector = CONNECTOR.get_or_init(|| std::sync::Arc::new(Connector::new(None)));
    let timeout = pool.thresholds().timeout;
    let mut asks = JoinSet::new();
    for (index, host) in pool.hosts().iter().enumerate() {
        if !host.is_available() {
            continue;
        }
        let (connector, host) = (
            std::sync::Arc::clone(connector),
            std::sync::Arc::clone(host),
        );
        asks.spawn(async move {
            (
                index,
                fetch_json(&connector, &host, "/api/ps", timeout).await,
            )
        });
    }
    let mut answers: Vec<(usize, Value)> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    while let Some(done) = asks.join_next().await {
        match done {
            Ok((index, Ok(body))) => answers.push((index, body)),
            Ok((index, Err(e))) => errors.push(format!("{}: {e}", pool.hosts()[index].url)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if answers.is_empty() {
        // The hosts' addresses are the operator's business: in the log, not the answer.
        tracing::warn!(errors = %errors.join("; "), "no Ollama host answered GET /api/ps");
        return Err(ProxyError::bad_gateway(
            "no Ollama host answered GET /api/ps; try again shortly".into(),
        ));
    }
    answers.sort_by_key(|(index, _)| *index);
    let models: Vec<Value> = answers
        .into_iter()
        .flat_map(|(_, body)| match body {
            Value::Object(mut o) => match o.remove("models") {
                Some(Value::Array(models)) => models,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        })
        .filter(|entry| entry_name(entry).is_some_and(|name| key.allows_model(name)))
        .collect();
    Ok(Bytes::from(json!({ "models": models }).to_string()))
}

fn entry_name(entry: &Value) -> Option<&str> {
    entry
        .get("name")
        .or_else(|| entry.get("model"))
        .and_then(Value::as_str)
}

/// One `/v1/models` object for an `/api/tags` entry, as Ollama's OpenAI layer builds it: the
/// name as `id`, `modified_at` as `created`, the name's namespace as `owned_by`.
fn openai_model(entry: &Value) -> Value {
    let name = entry_name(entry).unwrap_or_default();
    let created = entry
        .get("modified_at")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(0, |t| t.timestamp());
    json!({
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": namespace(name),
    })
}

/// The namespace of `[host/][namespace/]model[:tag]`; `library` when there is none.
fn namespace(name: &str) -> &str {
    let base = name.split_once(':').map_or(name, |(base, _)| base);
    let mut parts = base.rsplit('/');
    parts.next();
    parts.next().unwrap_or("library")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entries() -> Vec<Value> {
        vec![
            json!({"name": "llama3:latest", "modified_at": "2025-01-01T00:00:00Z", "size": 1}),
            json!({"name": "someone/tiny:1b", "modified_at": "2025-01-01T01:00:00.5+01:00"}),
            json!({"name": "hf.co/org/m:q4"}),
        ]
    }

    /// The Ollama shape keeps whole entries; the key's filter applies.
    #[test]
    fn tags() {
        let out: Value = serde_json::from_slice(&render(entries(), FreeRoute::Tags, |m| {
            m.starts_with("llama3")
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({"models": [{"name": "llama3:latest", "modified_at": "2025-01-01T00:00:00Z", "size": 1}]})
        );
    }

    /// The OpenAI shape: id, object, created (Unix seconds), owned_by (namespace).
    #[test]
    fn openai() {
        let out: Value =
            serde_json::from_slice(&render(entries(), FreeRoute::Models, |_| true)).unwrap();
        assert_eq!(out["object"], "list");
        assert_eq!(
            out["data"][0],
            json!({"id": "llama3:latest", "object": "model", "created": 1_735_689_600, "owned_by": "library"})
        );
        assert_eq!(out["data"][1]["owned_by"], "someone");
        assert_eq!(out["data"][1]["created"], 1_735_689_600);
        assert_eq!(out["data"][2]["owned_by"], "org");
        assert_eq!(out["data"][2]["created"], 0);
    }
}
