//! `/api/proxy-info`, `/api/openapi.json`, CORS, unknown routes and methods.

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use serde_json::json;

use crate::support::{harness, harness_with, request, Options, ORIGIN, PASSWORD};

/// Without a public URL, proxy-info derives the proxy URL from the admin request's host and
/// the proxy port, and fills the examples with it and the default model in force.
#[tokio::test]
async fn proxy_info_from_host_header() {
    let h = harness().await;
    h.call(
        Method::PUT,
        "/api/settings",
        Some(json!({"default_model": "qwen3:8b"})),
    )
    .await;
    let answer = h
        .send(
            request(Method::GET, "/api/proxy-info", "127.0.0.1:1")
                .header(header::HOST, "gpu-box.lan:8001")
                .header(header::AUTHORIZATION, format!("Bearer {PASSWORD}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let info = answer.json();
    assert_eq!(info["proxy_url"], "http://gpu-box.lan:8000");
    assert_eq!(info["openai_base_url"], "http://gpu-box.lan:8000/v1");
    assert_eq!(info["default_model"], "qwen3:8b");
    let endpoints = info["endpoints"].as_array().unwrap();
    assert!(endpoints.iter().any(|e| e["path"] == "/v1/chat/completions"
        && e["counts_toward_quota"] == true
        && e["url"] == "http://gpu-box.lan:8000/v1/chat/completions"));
    assert!(endpoints
        .iter()
        .any(|e| e["path"] == "/api/tags" && e["counts_toward_quota"] == false));
    let examples = &info["examples"];
    for (name, needle) in [
        ("curl", "http://gpu-box.lan:8000/api/chat"),
        ("ollama_python", "host=\"http://gpu-box.lan:8000\""),
        ("openai_python", "base_url=\"http://gpu-box.lan:8000/v1\""),
    ] {
        let text = examples[name].as_str().unwrap();
        assert!(text.contains(needle), "{name}: {text}");
        assert!(text.contains("qwen3:8b"), "{name}: {text}");
        assert!(text.contains("LLM_QUOTA_API_KEY"), "{name}: {text}");
    }
}

/// A configured public URL wins over the Host header.
#[tokio::test]
async fn proxy_info_from_public_url() {
    let h = harness_with(Options {
        public_url: Some("https://llm.example.com/".into()),
        ..Options::default()
    })
    .await;
    let info = h.get("/api/proxy-info").await.json();
    assert_eq!(info["proxy_url"], "https://llm.example.com");
    assert!(info["examples"]["curl"]
        .as_str()
        .unwrap()
        .contains("https://llm.example.com/api/chat"));
}

/// The OpenAPI document is served without a password and lists every admin path and the
/// bearer scheme.
#[tokio::test]
async fn openapi_lists_the_paths() {
    let h = harness().await;
    let answer = h
        .send(
            request(Method::GET, "/api/openapi.json", "10.1.1.1:1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let doc = answer.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/health",
        "/api/api-keys",
        "/api/api-keys/{id}",
        "/api/api-keys/{id}/activate",
        "/api/api-keys/{id}/deactivate",
        "/api/api-keys/{id}/quota",
        "/api/api-keys/{id}/usage",
        "/api/api-keys/{id}/rotate",
        "/api/usage",
        "/api/audit",
        "/api/settings",
        "/api/ollama-models",
        "/api/upstreams",
        "/api/proxy-info",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys()
        );
    }
    for method in ["get", "patch", "delete"] {
        assert!(
            paths["/api/api-keys/{id}"].get(method).is_some(),
            "{method}"
        );
    }
    assert!(paths["/api/settings"].get("put").is_some());
    let mut operation_ids: Vec<&str> = paths
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let count = operation_ids.len();
    operation_ids.sort_unstable();
    operation_ids.dedup();
    assert_eq!(
        operation_ids.len(),
        count,
        "operation ids are unique (generated clients)"
    );
    assert_eq!(count, 24);
    assert!(doc["components"]["securitySchemes"]["admin_password"].is_object());
    for schema in [
        "KeyView",
        "CreatedKeyView",
        "SettingsView",
        "ErrorBody",
        "UpstreamStatus",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

/// An allowed origin gets CORS headers (also on errors); another origin gets none.
#[tokio::test]
async fn cors_allowed_and_refused_origin() {
    let h = harness().await;
    let from = |origin: &str, password: &str| {
        request(Method::GET, "/api/settings", "127.0.0.1:1")
            .header(header::ORIGIN, origin)
            .header(header::AUTHORIZATION, format!("Bearer {password}"))
            .body(Body::empty())
            .unwrap()
    };
    let allowed = h.send(from(ORIGIN, PASSWORD)).await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(
        allowed.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(ORIGIN)
    );
    let denied = h.send(from(ORIGIN, "wrong")).await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        denied.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(ORIGIN)
    );
    let foreign = h.send(from("http://evil.example", PASSWORD)).await;
    assert_eq!(foreign.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), None);
    // The proxy listener's rule: origins compare without regard to ASCII case.
    let upper = ORIGIN.to_ascii_uppercase();
    let shouted = h.send(from(&upper, PASSWORD)).await;
    assert_eq!(
        shouted.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(upper.as_str())
    );
}

/// A preflight from an allowed origin is answered without a password, naming the methods and
/// headers the UI needs; a preflight from another origin gets no CORS headers.
#[tokio::test]
async fn cors_preflight() {
    let h = harness().await;
    let preflight = |origin: &str| {
        request(Method::OPTIONS, "/api/api-keys/1/quota", "127.0.0.1:1")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "PATCH")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization,content-type",
            )
            .body(Body::empty())
            .unwrap()
    };
    let answer = h.send(preflight(ORIGIN)).await;
    assert!(answer.status.is_success(), "{:?}", answer.status);
    assert_eq!(
        answer.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(ORIGIN)
    );
    let methods = answer
        .header(header::ACCESS_CONTROL_ALLOW_METHODS)
        .unwrap()
        .to_ascii_uppercase();
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(methods.contains(m), "{methods}");
    }
    let headers = answer
        .header(header::ACCESS_CONTROL_ALLOW_HEADERS)
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );

    let foreign = h.send(preflight("http://evil.example")).await;
    assert_eq!(foreign.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), None);
    assert_eq!(foreign.header(header::ACCESS_CONTROL_ALLOW_METHODS), None);
}

/// Unknown routes are 404 and wrong methods 405, both with a JSON error body.
#[tokio::test]
async fn unknown_route_and_method() {
    let h = harness().await;
    let answer = h.get("/api/nope").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.error(), "no such endpoint");
    let answer = h.call(Method::POST, "/api/settings", Some(json!({}))).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(!answer.error().is_empty());
}
