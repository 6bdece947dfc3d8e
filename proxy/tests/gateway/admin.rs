use serde_json::{json, Value};

use crate::support::{fake, fake_with, postgres_url, Db, Gateway, Options};

const PASSWORD: &str = "test-password";

/// The admin API answers on its loopback listener: health without a password, keys with it;
/// a key created there works on the proxy at once, and a deactivation there bites at once.
#[tokio::test]
async fn admin_key_lifecycle_reaches_the_proxy() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let c = &gw.client;
    let health = c
        .get(format!("{}/api/health", gw.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        c.get(format!("{}/api/api-keys", gw.admin))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let created = c
        .post(format!("{}/api/api-keys", gw.admin))
        .bearer_auth(PASSWORD)
        .json(&json!({"name": "admin-made", "daily_request_limit": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();
    let chat = json!({"model": "llama3", "messages": [{"role": "user", "content": "hi"}], "stream": false});
    assert_eq!(
        gw.post("/api/chat", &key, chat.clone())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let off = c
        .put(format!("{}/api/api-keys/{id}/deactivate", gw.admin))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 200);
    assert_eq!(off.json::<Value>().await.unwrap()["is_active"], false);
    let r = gw
        .post("/api/chat", &key, chat.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "deactivation bites at once on this instance"
    );
    assert!(r.text().await.unwrap().contains("deactivated"));
    // quota lowered below usage: refused at once
    c.put(format!("{}/api/api-keys/{id}/activate", gw.admin))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .unwrap();
    let q = c
        .patch(format!("{}/api/api-keys/{id}/quota", gw.admin))
        .bearer_auth(PASSWORD)
        .json(&json!({"daily_request_limit": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(q.status(), 200);
    assert_eq!(
        gw.post("/api/chat", &key, chat)
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
    // Usage reaches the database with the ledger's next flush (within milliseconds).
    gw.wait_for_counters(1, |c| c.day_requests == 1).await;
    let list: Value = c
        .get(format!("{}/api/api-keys", gw.admin))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["usage"]["day"]["requests"], 1);
    assert!(list[0].get("key").is_none());
}

/// A default-model override made in the admin API is used by the proxy without a restart, and
/// clearing it falls back to the configured value.
#[tokio::test]
async fn settings_override_reaches_the_proxy() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    let c = &gw.client;
    let put = c
        .put(format!("{}/api/settings", gw.admin))
        .bearer_auth(PASSWORD)
        .json(&json!({"default_model": "qwen3:0.6b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    wait_for_default_model(&gw, &upstream, &key, "qwen3:0.6b").await;
    let settings: Value = c
        .get(format!("{}/api/settings", gw.admin))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(settings["default_model"], "qwen3:0.6b");
    c.put(format!("{}/api/settings", gw.admin))
        .bearer_auth(PASSWORD)
        .json(&json!({"default_model": null}))
        .send()
        .await
        .unwrap();
    wait_for_default_model(&gw, &upstream, &key, "llama3").await;
}

/// Repeated wrong passwords from one address are throttled with 429 and Retry-After; CORS
/// headers go to listed origins only.
#[tokio::test]
async fn throttle_and_cors() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let c = &gw.client;
    let keys = format!("{}/api/api-keys", gw.admin);
    let ok = c
        .get(&keys)
        .bearer_auth(PASSWORD)
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let other = c
        .get(&keys)
        .bearer_auth(PASSWORD)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(
            c.get(&keys)
                .bearer_auth("wrong")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert!(statuses[..10].iter().all(|s| *s == 401), "{statuses:?}");
    let throttled = c.get(&keys).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().contains_key("retry-after"));
}

/// The admin API's upstream views query the real upstream.
#[tokio::test]
async fn upstream_views() {
    let upstream = fake_with(fake_ollama::FakeConfig {
        models: vec!["llama3".into(), "mistral".into()],
        ..Default::default()
    });
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let c = &gw.client;
    let models: Value = c
        .get(format!("{}/api/ollama-models", gw.admin))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["llama3:latest", "mistral:latest"]);
    let ups: Value = c
        .get(format!("{}/api/upstreams", gw.admin))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ups[0]["url"], upstream.url());
    assert_eq!(ups[0]["healthy"], true);
    let info: Value = c
        .get(format!("{}/api/proxy-info", gw.admin))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        info["examples"]["curl"]
            .as_str()
            .unwrap()
            .contains("/api/chat"),
        "{info}"
    );
}

/// A deactivation made through one instance's admin API reaches a second instance sharing
/// PostgreSQL within 5 seconds.
#[tokio::test]
async fn deactivation_reaches_a_second_instance_on_postgres() {
    if postgres_url().is_none() {
        return;
    }
    let upstream = fake();
    let first = Gateway::start(
        &upstream.url(),
        Options {
            db: Db::Postgres,
            ..Default::default()
        },
    )
    .await;
    let second = Gateway::start(
        &upstream.url(),
        Options {
            db: Db::Shared(first.database_url.clone()),
            ..Default::default()
        },
    )
    .await;
    let key = first.create_key(&[]);
    let tags = |gw: &Gateway| {
        gw.client
            .get(format!("{}/api/tags", gw.proxy))
            .bearer_auth(&key)
            .send()
    };
    assert_eq!(
        tags(&second).await.unwrap().status(),
        200,
        "cached as active on the second instance"
    );
    let r = first
        .client
        .put(format!("{}/api/api-keys/1/deactivate", first.admin))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let started = std::time::Instant::now();
    let mut status = 200;
    while started.elapsed() < std::time::Duration::from_secs(10) {
        status = tags(&second).await.unwrap().status().as_u16();
        if status == 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, 401,
        "the second instance never saw the deactivation"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

/// Sends model-less generates until the upstream receives `expected` as the model (the
/// override is applied asynchronously); fails after a bounded number of tries.
async fn wait_for_default_model(
    gw: &Gateway,
    upstream: &fake_ollama::FakeOllama,
    key: &str,
    expected: &str,
) {
    let body = json!({"prompt": "hello", "stream": false});
    let mut seen = String::new();
    for _ in 0..100 {
        upstream.clear_requests();
        let status = gw
            .post("/api/generate", key, body.clone())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        // find it among the health checks' GETs
        let sent = upstream
            .requests()
            .into_iter()
            .find(|r| r.path == "/api/generate")
            .unwrap();
        seen = sent.json().unwrap()["model"].as_str().unwrap().to_owned();
        if seen == expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the upstream never received model {expected:?}; last was {seen:?}");
}
