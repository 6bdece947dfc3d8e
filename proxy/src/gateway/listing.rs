//! `GET /api/tags` and `GET /v1/models`, answered by the gateway from the model lists the
//! health checks keep: the union by name over the available hosts, filtered by the key's
//! allowed models. Before any host's list is known (the first round of checks has not ended),
//! the request is proxied to one host and its answer filtered instead
//! ([`super::response::filter_listing`]).

use bytes::Bytes;
use quota_engine::ApiKey;
use serde_json::{json, Value};

use super::route::FreeRoute;
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
