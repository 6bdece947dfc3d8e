//! `/api/upstreams` and `/api/ollama-models`, through the gateway hooks.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{harness_with, upstream, Options, Recorder};

/// The upstream list is what the gateway reports, in the documented fields.
#[tokio::test]
async fn upstreams_list() {
    let h = harness_with(Options {
        hooks: Recorder {
            upstreams: vec![
                upstream("http://a:11434", true),
                upstream("http://b:11434", false),
            ],
            ..Recorder::default()
        },
        ..Options::default()
    })
    .await;
    let answer = h.get("/api/upstreams").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!([
            {"url": "http://a:11434", "healthy": true, "last_check": "2026-11-29T10:00:00+01:00",
             "models": ["llama3:latest"], "inflight": 2},
            {"url": "http://b:11434", "healthy": false, "last_check": "2026-11-29T10:00:00+01:00",
             "models": ["llama3:latest"], "inflight": 2},
        ])
    );
}

/// Models are merged over the upstreams by name, the first entry kept; a failed upstream is
/// skipped.
#[tokio::test]
async fn models_are_merged() {
    let h = harness_with(Options {
        hooks: Recorder {
            tags: vec![
                ("http://a:11434".into(), Ok(json!({"models": [{"name": "llama3:latest", "size": 1}]}))),
                ("http://b:11434".into(), Err("connection refused".into())),
                (
                    "http://c:11434".into(),
                    Ok(json!({"models": [{"name": "llama3:latest", "size": 2}, {"name": "qwen3:8b"}]})),
                ),
            ],
            ..Recorder::default()
        },
        ..Options::default()
    })
    .await;
    let answer = h.get("/api/ollama-models").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!({"models": [{"name": "llama3:latest", "size": 1}, {"name": "qwen3:8b"}]})
    );
}

/// With every upstream failing, or none at all, the answer is 502 with a generic JSON error.
#[tokio::test]
async fn no_upstream_answers_is_502() {
    for tags in [
        vec![
            (
                "http://a:11434".to_string(),
                Err("connection refused".to_string()),
            ),
            ("http://b:11434".to_string(), Err("timeout".to_string())),
        ],
        vec![],
    ] {
        let h = harness_with(Options {
            hooks: Recorder {
                tags,
                ..Recorder::default()
            },
            ..Options::default()
        })
        .await;
        let answer = h.get("/api/ollama-models").await;
        assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
        let message = answer.error();
        assert!(message.contains("no Ollama upstream answered"), "{message}");
        assert!(
            !message.contains("refused"),
            "details stay in the log: {message}"
        );
    }
}
