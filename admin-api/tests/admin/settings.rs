//! `/api/settings`: overrides set and cleared, stored, validated, handed to the gateway.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{harness, CONFIGURED_MODEL, CONFIGURED_URL};

/// Without overrides, GET shows the configured values and says nothing is overridden.
#[tokio::test]
async fn defaults_come_from_the_configuration() {
    let h = harness().await;
    let answer = h.get("/api/settings").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!({
            "ollama_url": CONFIGURED_URL,
            "ollama_urls": [CONFIGURED_URL],
            "default_model": CONFIGURED_MODEL,
            "overrides": {"ollama_urls": false, "default_model": false},
            "configured": {"ollama_urls": [CONFIGURED_URL], "default_model": CONFIGURED_MODEL},
            "updated_at": null
        })
    );
}

/// PUT stores overrides, answers the new state, and hands the freshly loaded overrides to
/// the gateway; `null` clears one and the configured value applies again.
#[tokio::test]
async fn overrides_set_and_cleared() {
    let h = harness().await;
    let answer = h
        .call(
            Method::PUT,
            "/api/settings",
            Some(json!({"ollama_urls": ["http://gpu-a:11434", "http://gpu-b:11434/"], "default_model": "qwen3"})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["ollama_url"], "http://gpu-a:11434");
    assert_eq!(
        body["ollama_urls"],
        json!(["http://gpu-a:11434", "http://gpu-b:11434"])
    );
    assert_eq!(body["default_model"], "qwen3");
    assert_eq!(
        body["overrides"],
        json!({"ollama_urls": true, "default_model": true})
    );
    assert_eq!(body["configured"]["default_model"], CONFIGURED_MODEL);
    assert!(body["updated_at"].is_string());
    assert_eq!(
        h.get("/api/settings").await.json(),
        body,
        "GET shows what PUT answered"
    );
    {
        let changes = h.hooks.settings_changes.lock();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].default_model.as_deref(), Some("qwen3"));
        assert_eq!(
            changes[0].ollama_urls,
            Some(vec![
                "http://gpu-a:11434".to_string(),
                "http://gpu-b:11434".to_string()
            ])
        );
    }

    // Clear one, leave the other.
    let body = h
        .call(
            Method::PUT,
            "/api/settings",
            Some(json!({"default_model": null})),
        )
        .await
        .json();
    assert_eq!(body["default_model"], CONFIGURED_MODEL);
    assert_eq!(body["ollama_url"], "http://gpu-a:11434");
    assert_eq!(
        body["overrides"],
        json!({"ollama_urls": true, "default_model": false})
    );
    let stored = quota_engine::settings::load(&h.db).await.unwrap();
    assert_eq!(stored.default_model, None);
    assert_eq!(h.hooks.settings_changes.lock().last(), Some(&stored));

    // `ollama_url: null` clears the URL override as well.
    let body = h
        .call(
            Method::PUT,
            "/api/settings",
            Some(json!({"ollama_url": null})),
        )
        .await
        .json();
    assert_eq!(body["ollama_urls"], json!([CONFIGURED_URL]));
    assert_eq!(
        body["overrides"],
        json!({"ollama_urls": false, "default_model": false})
    );
    assert_eq!(body["updated_at"], Value::Null);
    assert_eq!(h.hooks.settings_changes.lock().len(), 3);
}

/// `ollama_url` alone sets the URL list (one URL, or several separated by commas).
#[tokio::test]
async fn single_url_shorthand() {
    let h = harness().await;
    let body = h
        .call(
            Method::PUT,
            "/api/settings",
            Some(json!({"ollama_url": "http://10.0.0.5:11434"})),
        )
        .await
        .json();
    assert_eq!(body["ollama_urls"], json!(["http://10.0.0.5:11434"]));
    assert_eq!(body["ollama_url"], "http://10.0.0.5:11434");
    assert_eq!(
        body["default_model"], CONFIGURED_MODEL,
        "left out = unchanged"
    );
}

/// Invalid values are 422 naming the field, and nothing is stored or applied.
#[tokio::test]
async fn invalid_settings_are_422() {
    let h = harness().await;
    for (body, field) in [
        (json!({"ollama_url": "localhost:11434"}), "ollama_url"),
        (json!({"ollama_url": "http://gpu:11434/api"}), "ollama_url"),
        (
            json!({"ollama_urls": ["http://ok:1", "https://gpu:11434"]}),
            "ollama_urls",
        ),
        (json!({"ollama_urls": []}), "ollama_urls"),
        (json!({"ollama_urls": "http://gpu:1"}), "ollama_urls"),
        (json!({"ollama_urls": [5]}), "ollama_urls[0]"),
        (json!({"default_model": ""}), "default_model"),
        (json!({"default_model": 3}), "default_model"),
        (
            json!({"ollama_url": "http://a:1", "ollama_urls": ["http://b:1"]}),
            "ollama_url",
        ),
        (json!({"timezone": "UTC"}), "timezone"),
        (
            json!({"default_model": "ok", "ollama_urls": ["nope"]}),
            "ollama_urls",
        ),
    ] {
        let answer = h
            .call(Method::PUT, "/api/settings", Some(body.clone()))
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            answer.error().starts_with(&format!("{field}: ")),
            "{body}: {}",
            answer.error()
        );
    }
    assert!(h.hooks.settings_changes.lock().is_empty());
    let stored = quota_engine::settings::load(&h.db).await.unwrap();
    assert_eq!(stored, Default::default());
}
