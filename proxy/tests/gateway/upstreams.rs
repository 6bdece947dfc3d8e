//! Several Ollama hosts: health checks, model-aware routing, spreading, failover when a host
//! dies, 502 when all are down, merged listings, the admin views and the per-upstream metrics.
//! Health checks run every second here; every wait is a bounded poll.

use std::future::Future;
use std::time::Duration;

use fake_ollama::{FakeConfig, FakeOllama};
use serde_json::{json, Value};

use crate::support::{fake_with, metric, Gateway, Options};

const PASSWORD: &str = "test-password";

fn host(models: &[&str]) -> FakeOllama {
    fake_with(FakeConfig {
        models: models.iter().map(|m| m.to_string()).collect(),
        ..Default::default()
    })
}

async fn start(hosts: &[&FakeOllama]) -> Gateway {
    let urls: Vec<String> = hosts.iter().map(|h| h.url()).collect();
    Gateway::start(
        &urls.join(","),
        Options {
            yaml: "ollama:\n  health:\n    interval_seconds: 1\n    timeout_ms: 500\n".into(),
            ..Default::default()
        },
    )
    .await
}

/// Polls `check` every 25 ms until it holds; fails after 15 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never happened: {what}");
}

async fn upstreams(gw: &Gateway) -> Vec<Value> {
    gw.client
        .get(format!("{}/api/upstreams", gw.admin))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap()
}

/// Waits until every host passed a health check and its model list is known.
async fn all_checked(gw: &Gateway) {
    eventually("every host checked", || async {
        upstreams(gw).await.iter().all(|u| {
            u["healthy"] == true
                && u["last_check"].is_string()
                && !u["models"].as_array().unwrap().is_empty()
        })
    })
    .await;
}

fn generated(host: &FakeOllama) -> usize {
    host.requests()
        .iter()
        .filter(|r| r.path == "/api/generate")
        .count()
}

async fn generate(gw: &Gateway, key: &str, model: &str) -> reqwest::Response {
    gw.post(
        "/api/generate",
        key,
        json!({"model": model, "prompt": "hi", "stream": false}),
    )
    .send()
    .await
    .unwrap()
}

/// A model present on one host only is always routed there; a model on both goes to both;
/// when the only host with a model is down, its requests get 502 naming the model while
/// other models keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_by_model() {
    let a = host(&["llama3", "mistral"]);
    let b = host(&["llama3", "qwen3:0.6b"]);
    let gw = start(&[&a, &b]).await;
    let key = gw.create_key(&[]);
    all_checked(&gw).await;
    for _ in 0..10 {
        assert_eq!(generate(&gw, &key, "qwen3:0.6b").await.status(), 200);
        assert_eq!(generate(&gw, &key, "mistral").await.status(), 200);
    }
    let models_seen = |h: &FakeOllama| -> Vec<String> {
        h.requests()
            .iter()
            .filter(|r| r.path == "/api/generate")
            .map(|r| r.json().unwrap()["model"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(models_seen(&a).iter().all(|m| m == "mistral"));
    assert!(models_seen(&b).iter().all(|m| m == "qwen3:0.6b"));
    assert_eq!((generated(&a), generated(&b)), (10, 10));

    for _ in 0..10 {
        assert_eq!(generate(&gw, &key, "llama3").await.status(), 200);
    }
    assert!(
        generated(&a) > 10 && generated(&b) > 10,
        "llama3 is on both"
    );

    b.stop();
    let r = generate(&gw, &key, "qwen3:0.6b").await;
    assert_eq!(r.status(), 502);
    let message = r.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("qwen3:0.6b"), "{message}");
    assert_eq!(generate(&gw, &key, "llama3").await.status(), 200);
}

/// Sequential requests to equal hosts reach all of them, and the per-upstream selection
/// counters add up to the requests sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_across_equal_hosts() {
    let a = host(&["llama3"]);
    let b = host(&["llama3"]);
    let gw = start(&[&a, &b]).await;
    let key = gw.create_key(&[]);
    all_checked(&gw).await;
    for _ in 0..20 {
        assert_eq!(generate(&gw, &key, "llama3").await.status(), 200);
    }
    assert!(generated(&a) > 0 && generated(&b) > 0);
    assert_eq!(generated(&a) + generated(&b), 20);
    let text = gw.metrics_text().await;
    let selections = |h: &FakeOllama| {
        metric(
            &text,
            "llm_quota_upstream_selections_total",
            &[("upstream", &h.url())],
        )
        .unwrap()
    };
    assert_eq!(selections(&a), generated(&a) as f64);
    assert_eq!(selections(&b), generated(&b) as f64);
}

/// Stopping one of two hosts mid-test costs no request: every request after it succeeds
/// (the dead host is skipped or failed over at once), the host's health metric goes 1 → 0,
/// the admin API reports it unhealthy, and the other host's selections keep growing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_host_costs_no_request() {
    let a = host(&["llama3"]);
    let b = host(&["llama3"]);
    let (a_url, b_url) = (a.url(), b.url());
    let gw = start(&[&a, &b]).await;
    let key = gw.create_key(&[]);
    all_checked(&gw).await;
    let text = gw.metrics_text().await;
    assert_eq!(
        metric(&text, "llm_quota_upstream_healthy", &[("upstream", &b_url)]),
        Some(1.0)
    );
    for i in 0..10 {
        assert_eq!(generate(&gw, &key, "llama3").await.status(), 200, "#{i}");
    }
    let before = metric(
        &gw.metrics_text().await,
        "llm_quota_upstream_selections_total",
        &[("upstream", &a_url)],
    )
    .unwrap();

    b.stop();
    for i in 0..30 {
        // streamed and not, both dialects
        let r = if i % 2 == 0 {
            generate(&gw, &key, "llama3").await
        } else {
            gw.post(
                "/v1/chat/completions",
                &key,
                json!({"model": "llama3", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
            )
            .send()
            .await
            .unwrap()
        };
        assert_eq!(r.status(), 200, "request #{i} after the kill");
        assert!(!r.text().await.unwrap().is_empty());
    }
    eventually("the killed host's health metric drops to 0", || async {
        metric(
            &gw.metrics_text().await,
            "llm_quota_upstream_healthy",
            &[("upstream", &b_url)],
        ) == Some(0.0)
    })
    .await;
    let text = gw.metrics_text().await;
    assert_eq!(
        metric(&text, "llm_quota_upstream_healthy", &[("upstream", &a_url)]),
        Some(1.0)
    );
    let after = metric(
        &text,
        "llm_quota_upstream_selections_total",
        &[("upstream", &a_url)],
    )
    .unwrap();
    assert!(after >= before + 30.0, "{before} → {after}");
    // the last request leaves the gauge once the gateway has finished with it, which may be
    // a moment after the client read the last byte
    eventually("nothing left in flight", || async {
        metric(
            &gw.metrics_text().await,
            "llm_quota_upstream_inflight",
            &[("upstream", &a_url)],
        ) == Some(0.0)
    })
    .await;
    let ups = upstreams(&gw).await;
    assert_eq!(ups[0]["healthy"], true);
    assert_eq!(ups[1]["healthy"], false);
    gw.wait_for_counters(1, |c| c.day_requests == 40).await;
}

/// With every host down the gateway answers 502 in the route's dialect, and keeps doing so
/// without trying the dead hosts again and again; nothing is charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_hosts_down() {
    let a = host(&["llama3"]);
    let b = host(&["llama3"]);
    let urls = [a.url(), b.url()];
    let gw = start(&[&a, &b]).await;
    let key = gw.create_key(&[]);
    all_checked(&gw).await;
    a.stop();
    b.stop();
    for _ in 0..3 {
        let r = generate(&gw, &key, "llama3").await;
        assert_eq!(r.status(), 502);
        assert!(r.json::<Value>().await.unwrap()["error"].is_string());
        let r = gw
            .post(
                "/v1/chat/completions",
                &key,
                json!({"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 502);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["type"], "api_error");
        assert_eq!(body["error"]["code"], "upstream_unavailable");
    }
    let text = gw.metrics_text().await;
    for url in urls {
        assert_eq!(
            metric(&text, "llm_quota_upstream_healthy", &[("upstream", &url)]),
            Some(0.0)
        );
        assert!(
            metric(
                &text,
                "llm_quota_upstream_failures_total",
                &[("upstream", &url)]
            )
            .unwrap()
                >= 1.0
        );
    }
    let c = gw.wait_for_counters(1, |c| c.day_requests == 0).await;
    assert_eq!(c.day_tokens, 0);
}

/// `/api/tags` and `/v1/models` are the union of the hosts' lists, filtered by the key's
/// models; the admin API shows each host's models and check time, and the merged list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_listings() {
    let a = host(&["llama3", "mistral"]);
    let b = host(&["qwen3:0.6b", "llama3"]);
    let gw = start(&[&a, &b]).await;
    let all = gw.create_key(&[]);
    let limited = gw.create_key(&["--models", "qwen3:0.6b,mistral"]);
    all_checked(&gw).await;
    let names = |body: &Value, list: &str, field: &str| -> Vec<String> {
        body[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m[field].as_str().unwrap().to_owned())
            .collect()
    };
    let get = |path: &str, key: &str| {
        gw.client
            .get(format!("{}{path}", gw.proxy))
            .bearer_auth(key)
            .send()
    };
    let tags: Value = get("/api/tags", &all).await.unwrap().json().await.unwrap();
    assert_eq!(
        names(&tags, "models", "name"),
        ["llama3:latest", "mistral:latest", "qwen3:0.6b"]
    );
    assert!(tags["models"][0]["digest"].is_string(), "whole entries");
    let tags: Value = get("/api/tags", &limited)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        names(&tags, "models", "name"),
        ["mistral:latest", "qwen3:0.6b"]
    );
    let models: Value = get("/v1/models", &limited)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(
        names(&models, "data", "id"),
        ["mistral:latest", "qwen3:0.6b"]
    );
    assert_eq!(
        models["data"][1],
        json!({"id": "qwen3:0.6b", "object": "model", "created": 1_735_689_600_i64, "owned_by": "library"})
    );

    let ups = upstreams(&gw).await;
    assert_eq!(ups[0]["url"], a.url());
    assert_eq!(ups[0]["models"], json!(["llama3:latest", "mistral:latest"]));
    assert_eq!(ups[1]["models"], json!(["qwen3:0.6b", "llama3:latest"]));
    assert_eq!(ups[1]["inflight"], 0);
    let merged: Value = gw
        .client
        .get(format!("{}/api/ollama-models", gw.admin))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        names(&merged, "models", "name"),
        ["llama3:latest", "mistral:latest", "qwen3:0.6b"]
    );
}

/// An `ollama_urls` override that adds a host takes effect without a restart: the new host is
/// checked, its models become routable, and the host kept from before keeps its counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_adds_a_host() {
    let a = host(&["llama3"]);
    let b = host(&["qwen3:0.6b"]);
    let gw = start(&[&a]).await;
    let key = gw.create_key(&[]);
    all_checked(&gw).await;
    assert_eq!(generate(&gw, &key, "llama3").await.status(), 200);
    let put = gw
        .client
        .put(format!("{}/api/settings", gw.admin))
        .bearer_auth(PASSWORD)
        .json(&json!({"ollama_urls": [a.url(), b.url()]}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    eventually("the new host is checked", || async {
        let ups = upstreams(&gw).await;
        ups.len() == 2 && ups[1]["models"] == json!(["qwen3:0.6b"])
    })
    .await;
    assert_eq!(generate(&gw, &key, "qwen3:0.6b").await.status(), 200);
    assert_eq!(generated(&b), 1);
    let text = gw.metrics_text().await;
    assert_eq!(
        metric(
            &text,
            "llm_quota_upstream_selections_total",
            &[("upstream", &a.url())]
        ),
        Some(1.0),
        "the kept host's counter survived the rebuild"
    );
}

/// The documented request metrics move with the traffic: requests by route and status,
/// tokens by kind, latency histograms, the in-flight gauge back at zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_metrics_move() {
    let a = host(&["llama3"]);
    let gw = start(&[&a]).await;
    let key = gw.create_key(&["--daily-requests", "2"]);
    let prefix = &key[..11];
    all_checked(&gw).await;
    for _ in 0..3 {
        generate(&gw, &key, "llama3").await;
    }
    let wanted = |text: &str| {
        metric(
            text,
            "llm_quota_requests_total",
            &[
                ("route", "/api/generate"),
                ("status", "200"),
                ("api_key", prefix),
            ],
        ) == Some(2.0)
            && metric(
                text,
                "llm_quota_requests_total",
                &[("route", "/api/generate"), ("status", "429")],
            ) == Some(1.0)
    };
    eventually("requests counted", || async {
        wanted(&gw.metrics_text().await)
    })
    .await;
    let text = gw.metrics_text().await;
    assert_eq!(
        metric(
            &text,
            "llm_quota_tokens_total",
            &[("model", "llama3"), ("kind", "completion")]
        ),
        Some(20.0)
    );
    assert_eq!(
        metric(
            &text,
            "llm_quota_quota_rejections_total",
            &[("api_key", prefix), ("limit", "daily_requests")]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            "llm_quota_request_duration_seconds_count",
            &[("route", "/api/generate")]
        )
        .unwrap()
            >= 3.0
    );
    assert_eq!(
        metric(
            &text,
            "llm_quota_time_to_first_token_seconds_count",
            &[("model", "llama3")]
        ),
        Some(2.0)
    );
    assert!(text.contains("le=\"600\""), "buckets up to 10 minutes");
    assert_eq!(metric(&text, "llm_quota_inflight_requests", &[]), Some(0.0));
    assert!(!text.contains(&key), "never the key itself");
}
