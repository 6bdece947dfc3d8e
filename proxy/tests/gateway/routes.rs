use serde_json::{json, Value};

use crate::support::{fake, fake_with, Gateway, Options};

/// `/healthz` needs no key; a key is accepted from Bearer, bare `sk-` Authorization and
/// x-api-key; the free routes pass through.
#[tokio::test]
async fn auth_forms_and_free_routes() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    let health = gw
        .client
        .get(format!("{}/healthz", gw.proxy))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    let c = &gw.client;
    let tags = format!("{}/api/tags", gw.proxy);
    assert_eq!(
        c.get(&tags)
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(&tags)
            .header("authorization", format!("bEaReR {key}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(&tags)
            .header("authorization", &key)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(&tags)
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for path in [
        "/api/version",
        "/api/versions",
        "/api/ps",
        "/v1/models",
        "/v1/models/llama3",
    ] {
        let r = c
            .get(format!("{}{path}", gw.proxy))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let show = gw
        .post("/api/show", &key, json!({"model": "llama3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(show.status(), 200);
    // free routes are never counted
    assert_eq!(gw.counters(1).await.day_requests, 0);
}

/// 401s say what is wrong (missing, invalid, deactivated, expired), in each route's dialect.
#[tokio::test]
async fn unauthorized_in_both_dialects() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let active = gw.create_key(&[]);
    let inactive = gw.create_key(&[]);
    assert_eq!(gw.cli(&["keys", "deactivate", "2"]).0, 0);
    // the CLI refuses to create an expired key: make one through the engine
    let past = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let new = quota_engine::NewKey {
        name: "old".into(),
        expires_at: Some(past),
        ..Default::default()
    };
    let (_, expired) = quota_engine::keys::create(&gw.db().await, &new, past)
        .await
        .unwrap();
    let _ = active;
    let cases: [(&str, Option<&str>, &str); 4] = [
        ("missing", None, "missing API key"),
        ("invalid", Some("sk-not-a-key"), "invalid API key"),
        ("deactivated", Some(inactive.as_str()), "deactivated"),
        ("expired", Some(expired.as_str()), "expired"),
    ];
    for (what, key, needle) in cases {
        let mut r = gw
            .client
            .post(format!("{}/api/chat", gw.proxy))
            .json(&json!({"model": "llama3"}));
        let mut o = gw
            .client
            .post(format!("{}/v1/chat/completions", gw.proxy))
            .json(&json!({"model": "llama3"}));
        if let Some(k) = key {
            r = r.bearer_auth(k);
            o = o.bearer_auth(k);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 401, "{what}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{what}: {body}"
        );
        let o = o.send().await.unwrap();
        assert_eq!(o.status(), 401);
        let body: Value = o.json().await.unwrap();
        assert_eq!(body["error"]["type"], "authentication_error", "{body}");
        assert_eq!(body["error"]["code"], "invalid_api_key");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(needle),
            "{what}: {body}"
        );
    }
}

/// Refused administration routes are 403, unknown routes 404, models outside the key's list
/// and cloud models 403, malformed JSON 400, each in its dialect.
#[tokio::test]
async fn refusals() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    let limited = gw.create_key(&["--models", "llama3"]);
    let status = |r: &reqwest::Response| r.status().as_u16();
    for path in [
        "/api/pull",
        "/api/delete",
        "/api/copy",
        "/api/create",
        "/api/push",
        "/api/blobs/sha256:x",
        "/api/experimental/web_search",
    ] {
        let r = gw.post(path, &key, json!({})).send().await.unwrap();
        assert_eq!(status(&r), 403, "{path}");
        assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    }
    let r = gw
        .client
        .get(format!("{}/nothing", gw.proxy))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(status(&r), 404);
    let r = gw
        .client
        .get(format!("{}/v1/nothing", gw.proxy))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(status(&r), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );

    let r = gw
        .post(
            "/api/chat",
            &limited,
            json!({"model": "qwen3:0.6b", "messages": []}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(status(&r), 403);
    assert!(r.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("not allowed"));
    let r = gw
        .post(
            "/v1/chat/completions",
            &limited,
            json!({"model": "qwen3:0.6b", "messages": []}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(status(&r), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (
            body["error"]["type"].as_str(),
            body["error"]["code"].as_str()
        ),
        (Some("permission_error"), Some("model_not_allowed"))
    );
    let r = gw
        .post("/api/chat", &key, json!({"model": "gpt-oss:120b-cloud"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status(&r), 403);
    assert!(r.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("cloud"));
    let r = gw
        .client
        .get(format!("{}/v1/models/qwen3:0.6b", gw.proxy))
        .bearer_auth(&limited)
        .send()
        .await
        .unwrap();
    assert_eq!(status(&r), 403);

    let r = gw
        .client
        .post(format!("{}/api/generate", gw.proxy))
        .bearer_auth(&key)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(status(&r), 400);
    let r = gw
        .client
        .post(format!("{}/v1/completions", gw.proxy))
        .bearer_auth(&key)
        .body("[1,2]")
        .send()
        .await
        .unwrap();
    assert_eq!(status(&r), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );
    // nothing of this was counted, nothing reached Ollama but nothing at all
    assert_eq!(gw.counters(1).await.day_requests, 0);
    assert!(upstream
        .requests()
        .iter()
        .all(|r| r.path != "/api/pull" && r.path != "/api/chat"));
}

/// Listings show only the models the key may use.
#[tokio::test]
async fn listings_are_filtered() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let limited = gw.create_key(&["--models", "llama3,all-minilm"]);
    let tags: Value = gw
        .client
        .get(format!("{}/api/tags", gw.proxy))
        .bearer_auth(&limited)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["llama3:latest", "all-minilm:latest"]);
    let models: Value = gw
        .client
        .get(format!("{}/v1/models", gw.proxy))
        .bearer_auth(&limited)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"].as_array().unwrap().len(), 2, "{models}");
}

/// The upstream sees its own authority as Host (Ollama 403s a foreign one), never the
/// client's credentials, and the default model when the request names none.
#[tokio::test]
async fn upstream_request_rewrite() {
    let upstream = fake_with(fake_ollama::FakeConfig {
        host_check: true,
        ..Default::default()
    });
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    let r = gw
        .client
        .post(format!("{}/api/generate", gw.proxy))
        .bearer_auth(&key)
        .header("x-api-key", &key)
        .header("host", "gateway.example.com")
        .json(&json!({"prompt": "hello", "stream": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = upstream
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/generate")
        .unwrap();
    assert_eq!(
        seen.header("host"),
        Some(upstream.addr().to_string().as_str())
    );
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.header("x-api-key"), None);
    assert_eq!(seen.json().unwrap()["model"], "llama3");
}

/// Every upstream down: 502 in the route's dialect, and the request consumes nothing.
#[tokio::test]
async fn upstream_unreachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = Gateway::start(&format!("http://{closed}"), Options::default()).await;
    let key = gw.create_key(&["--daily-requests", "1"]);
    let r = gw
        .post(
            "/api/chat",
            &key,
            json!({"model": "llama3", "messages": []}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let r = gw
        .post(
            "/v1/chat/completions",
            &key,
            json!({"model": "llama3", "messages": []}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        502,
        "the refund freed the only request of the day"
    );
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "api_error"
    );
    let c = gw.wait_for_counters(1, |c| c.day_requests == 0).await;
    assert_eq!(c.day_tokens, 0);
}

/// CORS on the proxy: a listed origin gets CORS headers (also on errors and preflights), an
/// unlisted one gets none.
#[tokio::test]
async fn cors_on_the_proxy() {
    let upstream = fake();
    let options = Options {
        env: vec![("ALLOWED_ORIGINS".into(), "http://app.example:3000".into())],
        ..Default::default()
    };
    let gw = Gateway::start(&upstream.url(), options).await;
    let key = gw.create_key(&[]);
    let tags = format!("{}/api/tags", gw.proxy);
    let ok = gw
        .client
        .get(&tags)
        .bearer_auth(&key)
        .header("origin", "http://app.example:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://app.example:3000"
    );
    let denied = gw
        .client
        .get(&tags)
        .bearer_auth(&key)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 200);
    assert!(denied
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    let unauthorized = gw
        .client
        .get(&tags)
        .header("origin", "http://app.example:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(
        unauthorized.headers()["access-control-allow-origin"],
        "http://app.example:3000"
    );
    let preflight = gw
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/chat/completions", gw.proxy),
        )
        .header("origin", "http://app.example:3000")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://app.example:3000"
    );
    assert!(preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    let refused = gw
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/chat/completions", gw.proxy),
        )
        .header("origin", "http://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}
