//! Pacing through the real binary: the fair queue in front of a host at its
//! `max_concurrency` (round robin across keys, weighted by priority; a client that hangs up
//! leaves it and is charged nothing), the parallel cap of a key, per-minute limits on one
//! instance and across two sharing PostgreSQL, and the admin API's new fields.

use std::sync::Arc;
use std::time::Duration;

use fake_ollama::{FakeConfig, FakeOllama};
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::support::{postgres_url, Db, Gateway, Options};

/// A fake whose answers take `chunks × delay_ms`.
fn slow(chunks: usize, delay_ms: u64) -> FakeOllama {
    FakeOllama::start(FakeConfig {
        chunks,
        chunk_delay: Duration::from_millis(delay_ms),
        ..Default::default()
    })
    .unwrap()
}

/// A gateway whose only host takes one request at a time.
async fn one_slot_gateway(fake: &FakeOllama, extra_yaml: &str) -> Gateway {
    Gateway::start(
        "",
        Options {
            yaml: format!(
                "ollama:\n  urls:\n    - url: {}\n      max_concurrency: 1\n{extra_yaml}",
                fake.url()
            ),
            ..Default::default()
        },
    )
    .await
}

fn chat(stream: bool) -> Value {
    json!({"model": "llama3", "stream": stream,
           "messages": [{"role": "user", "content": "hi"}]})
}

fn openai_chat() -> Value {
    json!({"model": "llama3", "messages": [{"role": "user", "content": "hi"}]})
}

/// Waits until the fake serves one generation.
async fn until_running(fake: &FakeOllama) {
    for _ in 0..400 {
        if fake.active_requests() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the first request never reached the fake");
}

/// Requests waiting for llama3, as the admin API reports them.
async fn waiting(gw: &Gateway) -> i64 {
    let queue = gw.admin_json("/api/queue").await;
    queue["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["model"] == "llama3")
        .map(|m| m["waiting"].as_i64().unwrap())
        .sum()
}

async fn until_waiting(gw: &Gateway, n: i64) {
    for _ in 0..400 {
        if waiting(gw).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never {n} waiting (now {})", waiting(gw).await);
}

/// Sends `n` chats with `key`, each pushing `label` onto `finished` when its answer is read.
fn send(
    gw: &Gateway,
    key: &str,
    n: usize,
    label: &'static str,
    finished: &Arc<Mutex<Vec<&'static str>>>,
) -> Vec<tokio::task::JoinHandle<u16>> {
    (0..n)
        .map(|_| {
            let request = gw.post("/api/chat", key, chat(false));
            let finished = Arc::clone(finished);
            tokio::spawn(async move {
                let r = request.send().await.unwrap();
                let status = r.status().as_u16();
                assert!(r.headers().contains_key("x-queue-wait-ms"));
                let _ = r.bytes().await.unwrap();
                finished.lock().push(label);
                status
            })
        })
        .collect()
}

/// Key A has 20 chats waiting for the one slot; key B's one chat, sent after them, is served
/// second or third, not twenty-first.
#[tokio::test]
async fn fair_queue_alternates_keys() {
    let fake = slow(5, 10);
    let gw = one_slot_gateway(&fake, "").await;
    let a = gw.create_key(&[]);
    let b = gw.create_key(&[]);
    let finished = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = send(&gw, &a, 20, "a", &finished);
    until_waiting(&gw, 19).await;
    tasks.extend(send(&gw, &b, 1, "b", &finished));
    until_waiting(&gw, 20).await;
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let order = finished.lock().clone();
    let b_at = order.iter().position(|l| *l == "b").unwrap();
    assert!(b_at <= 2, "b finished {}th: {order:?}", b_at + 1);
    assert_eq!(fake.peak_concurrency(), 1, "the host's cap held");
    assert_eq!(waiting(&gw).await, 0);
}

/// With priority 3 against 1, B's six chats all finish before A's sixth.
#[tokio::test]
async fn fair_queue_weights_priority() {
    let fake = slow(5, 10);
    let gw = one_slot_gateway(&fake, "").await;
    let a = gw.create_key(&[]);
    let b = gw.create_key(&["--priority", "3"]);
    let finished = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = send(&gw, &a, 8, "a", &finished);
    until_waiting(&gw, 7).await;
    tasks.extend(send(&gw, &b, 6, "b", &finished));
    until_waiting(&gw, 13).await;
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let order = finished.lock().clone();
    let sixth_a = order
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == "a")
        .nth(5)
        .unwrap()
        .0;
    let last_b = order.iter().rposition(|l| *l == "b").unwrap();
    assert!(last_b < sixth_a, "order: {order:?}");
}

/// A client that hangs up while queued leaves the queue (the depth metric says 0) and its
/// request is charged nothing; one that waits past `ollama.queue_timeout_seconds` gets 503
/// with Retry-After, also for nothing.
#[tokio::test]
async fn queued_clients_that_leave_are_not_charged() {
    let fake = slow(60, 50);
    let gw = one_slot_gateway(&fake, "  queue_timeout_seconds: 1\n").await;
    let key = gw.create_key(&[]);
    let running = gw.post("/api/chat", &key, chat(false)).send();
    let running = tokio::spawn(running);
    until_running(&fake).await;
    // Hangs up after 300 ms in the queue.
    let hung_up = gw
        .post("/api/chat", &key, chat(false))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung_up.unwrap_err().is_timeout());
    for _ in 0..200 {
        if gw
            .metrics_text()
            .await
            .contains("llm_quota_queue_depth{model=\"llama3\"} 0")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gw
        .metrics_text()
        .await
        .contains("llm_quota_queue_depth{model=\"llama3\"} 0"));
    assert_eq!(waiting(&gw).await, 0);
    // Waits 1 s, then 503.
    let timed_out = gw
        .post("/v1/chat/completions", &key, openai_chat())
        .send()
        .await
        .unwrap();
    assert_eq!(timed_out.status(), 503);
    assert!(timed_out.headers().contains_key("retry-after"));
    let body: Value = timed_out.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_concurrency"),
        "{body}"
    );
    assert_eq!(running.await.unwrap().unwrap().status(), 200);
    let counters = gw.wait_for_counters(1, |c| c.day_requests >= 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(gw.counters(1).await.day_requests, 1, "{counters:?}");
    let generations = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat") || r.path.ends_with("/completions"))
        .count();
    assert_eq!(generations, 1, "the queued requests never reached Ollama");
    assert!(gw
        .metrics_text()
        .await
        .contains("llm_quota_queue_wait_seconds_count"));
}

/// `max_parallel_requests: 2` with six concurrent chats: never more than two reach Ollama at
/// once, and all six succeed. With the cap reached for longer than
/// `quota.queue_timeout_seconds`, the request gets 429 naming the cap, retry allowed.
#[tokio::test]
async fn parallel_cap_queues_per_key() {
    let fake = slow(5, 20);
    let gw = Gateway::start(
        &fake.url(),
        Options {
            yaml: "quota:\n  queue_timeout_seconds: 1\n".into(),
            ..Default::default()
        },
    )
    .await;
    let key = gw.create_key(&["--max-parallel", "2"]);
    let finished = Arc::new(Mutex::new(Vec::new()));
    for t in send(&gw, &key, 6, "k", &finished) {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(fake.peak_concurrency(), 2);
    let other = gw.create_key(&[]);
    let finished = Arc::new(Mutex::new(Vec::new()));
    for t in send(&gw, &other, 4, "o", &finished) {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert!(fake.peak_concurrency() >= 3, "other keys are not capped");

    let slow_fake = slow(40, 50);
    let gw = Gateway::start(
        &slow_fake.url(),
        Options {
            yaml: "quota:\n  queue_timeout_seconds: 1\n".into(),
            ..Default::default()
        },
    )
    .await;
    let key = gw.create_key(&["--max-parallel", "1"]);
    let first = tokio::spawn(gw.post("/api/chat", &key, chat(false)).send());
    until_running(&slow_fake).await;
    let refused = gw
        .post("/api/chat", &key, chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["x-should-retry"], "true");
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("max parallel requests reached (limit 1)"),
        "{body}"
    );
    assert!(gw
        .metrics_text()
        .await
        .contains("limit=\"max_parallel_requests\""));
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
}

/// `requests_per_minute: 5`: five pass, the sixth gets 429 with `Retry-After` within a minute
/// and `x-should-retry: true`, and the key's own quota shows no requests left this minute.
/// A prompt larger than `tokens_per_minute` can never fit: no retry.
#[tokio::test]
async fn requests_per_minute() {
    let fake = slow(3, 0);
    let gw = Gateway::start(&fake.url(), Options::default()).await;
    let key = gw.create_key(&["--rpm", "5"]);
    for _ in 0..5 {
        let r = gw
            .post("/api/chat", &key, chat(false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let refused = gw
        .post("/v1/chat/completions", &key, openai_chat())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["x-should-retry"], "true");
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("requests per minute limit exceeded (limit 5, used 5 in the last 60 s)"));
    let mine: Value = gw
        .get("/api/quota", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["requests_per_minute"], 5);
    assert_eq!(mine["remaining"]["minute"]["requests"], 0);
    assert_eq!(mine["remaining"]["minute"]["tokens"], Value::Null);
    assert!(gw
        .metrics_text()
        .await
        .contains("limit=\"requests_per_minute\""));
    // The refused request consumed nothing.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(gw.counters(1).await.day_requests, 5);

    let tight = gw.create_key(&["--tpm", "5"]);
    let r = gw
        .post(
            "/api/generate",
            &tight,
            json!({"model": "llama3", "stream": false,
            "prompt": "one two three four five six seven eight nine ten"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-should-retry"], "false");
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("shorter prompt"),
        "{body}"
    );
}

/// Two instances sharing PostgreSQL: `requests_per_minute: 10` holds across both.
#[tokio::test]
async fn requests_per_minute_across_instances() {
    if postgres_url().is_none() {
        eprintln!("skipped: set TEST_DATABASE_URL to run the PostgreSQL tests");
        return;
    }
    let fake = slow(2, 0);
    let first = Gateway::start(
        &fake.url(),
        Options {
            db: Db::Postgres,
            ..Default::default()
        },
    )
    .await;
    let second = Gateway::start(
        &fake.url(),
        Options {
            db: Db::Shared(first.database_url.clone()),
            ..Default::default()
        },
    )
    .await;
    let key = first.create_key(&["--rpm", "10"]);
    let (ok, limited) = crate::support::split_burst(&[&first, &second], &key, &[8, 8]).await;
    assert_eq!((ok, limited), (10, 6));
    let (ok, limited) = crate::support::split_burst(&[&first, &second], &key, &[3, 3]).await;
    assert_eq!((ok, limited), (0, 6), "the window is still full");

    // Larger limits take blocks of a sixteenth: never more than the limit, and little of it
    // left unused in the blocks (one live grant per instance at a time).
    let key = first.create_key(&["--rpm", "64"]);
    let (ok, limited) = crate::support::split_burst(&[&first, &second], &key, &[50, 50]).await;
    assert_eq!(ok + limited, 100);
    assert!(
        (56..=64).contains(&ok),
        "{ok} of 100 admitted under 64 per minute"
    );
}

/// The admin API takes the pacing fields on create and on PATCH …/quota, shows them in the
/// key object, and refuses a priority outside 1–10 with a message naming it.
#[tokio::test]
async fn admin_pacing_fields() {
    let fake = slow(1, 0);
    let gw = Gateway::start(&fake.url(), Options::default()).await;
    let c = &gw.client;
    let created: Value = c
        .post(format!("{}/api/api-keys", gw.admin))
        .bearer_auth("test-password")
        .json(
            &json!({"name": "paced", "requests_per_minute": 60, "tokens_per_minute": 10000,
                      "max_parallel_requests": 4, "priority": 5}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (field, value) in [
        ("requests_per_minute", json!(60)),
        ("tokens_per_minute", json!(10000)),
        ("max_parallel_requests", json!(4)),
        ("priority", json!(5)),
    ] {
        assert_eq!(created[field], value, "{field}: {created}");
    }
    let id = created["id"].as_i64().unwrap();
    let patched: Value = c
        .patch(format!("{}/api/api-keys/{id}/quota", gw.admin))
        .bearer_auth("test-password")
        .json(&json!({"requests_per_minute": null, "priority": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["requests_per_minute"], Value::Null);
    assert_eq!(patched["priority"], 1);
    assert_eq!(patched["max_parallel_requests"], 4);
    for bad in [
        json!({"priority": 11}),
        json!({"priority": 0}),
        json!({"max_parallel_requests": -1}),
    ] {
        let r = c
            .patch(format!("{}/api/api-keys/{id}/quota", gw.admin))
            .bearer_auth("test-password")
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{bad}");
        let body: Value = r.json().await.unwrap();
        let field = bad.as_object().unwrap().keys().next().unwrap().clone();
        assert!(body["error"].as_str().unwrap().contains(&field), "{body}");
    }
    let (code, _, stderr) = gw.cli(&["keys", "create", "--name", "x", "--priority", "12"]);
    assert_eq!(code, 2, "{stderr}");
}
