//! `/api/upstreams` (health, models and load of each Ollama host), `/api/ollama-models`
//! (the models of every healthy host, merged) and `/api/queue` (running and waiting requests
//! per model). All three ask the running gateway through
//! [`GatewayHooks`](crate::GatewayHooks).

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::views::{ModelList, QueueView};
use crate::{AdminState, UpstreamStatus};

pub fn router() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/api/upstreams", get(list))
        .route("/api/ollama-models", get(models))
        .route("/api/queue", get(queue))
}

/// Counted requests per model on this instance: running on a host, and waiting (for a
/// parallel slot of their key, or in the fair queue for a host at its `max_concurrency`).
#[utoipa::path(get, path = "/api/queue", operation_id = "show_queue", tag = "upstreams",
    responses(
        (status = 200, description = "running and waiting requests per model", body = QueueView),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn queue(State(state): State<Arc<AdminState>>) -> Json<QueueView> {
    Json(QueueView {
        models: state.hooks.model_load(),
    })
}

/// Each upstream: url, health, last check, models, requests in flight.
#[utoipa::path(get, path = "/api/upstreams", operation_id = "list_upstreams", tag = "upstreams",
    responses(
        (status = 200, description = "every configured upstream", body = Vec<UpstreamStatus>),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn list(State(state): State<Arc<AdminState>>) -> Json<Vec<UpstreamStatus>> {
    Json(state.hooks.upstreams())
}

/// Ollama's `/api/tags` merged over the healthy upstreams: one entry per model name, the first
/// upstream's entry winning.
#[utoipa::path(get, path = "/api/ollama-models", operation_id = "list_ollama_models", tag = "upstreams",
    responses(
        (status = 200, description = "the models of every upstream that answered", body = ModelList),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 502, description = "no upstream answered", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn models(State(state): State<Arc<AdminState>>) -> ApiResult<Json<ModelList>> {
    let answers = state.hooks.upstream_tags().await;
    match merge_tags(answers) {
        Ok(models) => Ok(Json(ModelList { models })),
        Err(failures) => {
            tracing::warn!(
                failures = ?failures,
                "admin: no upstream answered /api/tags"
            );
            Err(ApiError::BadGateway)
        }
    }
}

/// The union of the `models` arrays by `name`, first occurrence kept, or, when no upstream
/// gave a usable answer (or there is none), what went wrong with each.
fn merge_tags(answers: Vec<(String, Result<Value, String>)>) -> Result<Vec<Value>, Vec<String>> {
    let mut seen = HashSet::new();
    let mut merged = Vec::new();
    let mut answered = false;
    let mut failures = Vec::new();
    for (url, answer) in answers {
        let body = match answer {
            Ok(body) => body,
            Err(e) => {
                failures.push(format!("{url}: {e}"));
                continue;
            }
        };
        let Some(models) = body.get("models").and_then(Value::as_array) else {
            failures.push(format!("{url}: the answer has no \"models\" array"));
            continue;
        };
        answered = true;
        for model in models {
            if let Some(name) = model.get("name").and_then(Value::as_str) {
                if seen.insert(name.to_owned()) {
                    merged.push(model.clone());
                }
            }
        }
    }
    if answered {
        Ok(merged)
    } else {
        if failures.is_empty() {
            failures.push("no healthy upstream".into());
        }
        Err(failures)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    /// Models are merged by name, the first upstream's entry kept; failed upstreams are skipped.
    #[test]
    fn merge_keeps_first_by_name() {
        let merged = merge_tags(vec![
            (
                "http://a".into(),
                Ok(json!({"models": [{"name": "llama3", "size": 1}, {"name": "qwen"}]})),
            ),
            ("http://b".into(), Err("connection refused".into())),
            (
                "http://c".into(),
                Ok(json!({"models": [{"name": "llama3", "size": 2}, {"name": "phi"}]})),
            ),
        ])
        .unwrap();
        assert_eq!(
            merged,
            vec![
                json!({"name": "llama3", "size": 1}),
                json!({"name": "qwen"}),
                json!({"name": "phi"})
            ]
        );
    }

    /// No upstream, or none with a usable answer, is a failure; an empty list is not.
    #[test]
    fn merge_failures() {
        assert!(merge_tags(vec![]).is_err());
        let failures = merge_tags(vec![
            ("http://a".into(), Err("timeout".into())),
            ("http://b".into(), Ok(json!({"error": "x"}))),
        ])
        .unwrap_err();
        assert_eq!(failures.len(), 2);
        assert_eq!(
            merge_tags(vec![("http://a".into(), Ok(json!({"models": []})))]).unwrap(),
            Vec::<Value>::new()
        );
    }
}
