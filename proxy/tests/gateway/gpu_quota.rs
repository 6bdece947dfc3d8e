//! GPU-time quotas through the real binary: a stream ended cleanly when the key's GPU time
//! runs out, a non-streamed answer stopped at the host and answered 429, concurrent answers
//! on one instance and across two on PostgreSQL that never commit more than the limit, and
//! the key object, `/v1/quota`, the `x-ratelimit-*` headers and the usage report agreeing.

use std::time::Duration;

use fake_ollama::FakeConfig;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::support::{fake_with, postgres_url, weighted, Db, Gateway, Options};

/// A fake Ollama answering `chunks` tokens, one streamed chunk each, `delay_ms` apart (a
/// non-streamed answer waits as long before it is sent).
fn answering(chunks: usize, delay_ms: u64) -> fake_ollama::FakeOllama {
    fake_with(FakeConfig {
        chunks,
        chunk_delay: Duration::from_millis(delay_ms),
        ..Default::default()
    })
}

fn with_block(block_seconds: &str, db: Db) -> Options {
    Options {
        yaml: format!("quota:\n  gpu_block_seconds: {block_seconds}\n"),
        db,
        ..Default::default()
    }
}

/// The key's GPU milliseconds of the day once every request has settled and been flushed.
async fn settled_gpu_ms(gw: &Gateway, key_id: i64) -> i64 {
    let mut last = -1;
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = gw.counters(key_id).await.day_gpu_ms;
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

fn story(stream: bool) -> Value {
    json!({"model": "llama3", "stream": stream,
           "messages": [{"role": "user", "content": "tell me a long story"}]})
}

/// The NDJSON lines of a streamed answer read to its end (it must not break off).
async fn stream_lines(response: reqwest::Response) -> Vec<Value> {
    let mut text = String::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
            Err(e) => panic!("the answer broke off: {e}; so far: {text}"),
        }
    }
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?} in {text}")))
        .collect()
}

/// A stream that would take the host 5 s, on a key with 1 s of GPU time a day (reserved in
/// 0.25 s blocks): it ends cleanly with `done_reason: "length"` before the host's last
/// token, at most 1 s is committed, and the next request is refused with a 429 that names the
/// GPU-time limit, `Retry-After` and `x-should-retry: false`.
#[tokio::test]
async fn a_stream_ends_cleanly_when_the_gpu_time_runs_out() {
    let host = answering(100, 50);
    let gw = Gateway::start(&host.url(), with_block("0.25", Db::Sqlite)).await;
    let key = gw.create_key(&["--daily-gpu-seconds", "1"]);
    let answer = gw
        .post("/api/chat", &key, story(true))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["x-ratelimit-limit-gpu-seconds"], "1.000");
    let lines = stream_lines(answer).await;
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true, "{last}");
    assert_eq!(last["done_reason"], "length", "{last}");
    assert!(
        lines.len() < 100,
        "the host's whole answer went through: {} lines",
        lines.len()
    );
    let used = settled_gpu_ms(&gw, 1).await;
    assert!((1..=1_000).contains(&used), "{used} ms committed");

    // With the day's GPU time used up (or all but a sliver), the next request is refused;
    // when a sliver is left, the one after it.
    let mut refused = None;
    for _ in 0..2 {
        let r = gw
            .post("/api/chat", &key, story(false))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            refused = Some(r);
            break;
        }
        r.text().await.unwrap();
    }
    let refused = refused.expect("a request past the GPU-time limit was let through");
    assert_eq!(refused.headers()["x-should-retry"], "false");
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("daily GPU-time quota exceeded (limit 1.000 s"),
        "{message}"
    );
    assert!(settled_gpu_ms(&gw, 1).await <= 1_000);
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains(r#"limit="daily_gpu_seconds""#),
        "no GPU rejection label in the metrics"
    );
}

/// A non-streamed answer that would take the host 5 s, on a key with 1 s of GPU time: the
/// gateway stops waiting when the key's GPU time is used up, drops the connection to the host
/// and answers 429 naming the limit; the key is charged its GPU time, never more than 1 s.
#[tokio::test]
async fn a_non_streamed_answer_is_stopped_at_the_host() {
    let host = answering(100, 50);
    let gw = Gateway::start(&host.url(), with_block("5", Db::Sqlite)).await;
    let key = gw.create_key(&["--daily-gpu-seconds", "1"]);
    let answer = gw
        .post("/api/chat", &key, story(false))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 429);
    assert_eq!(answer.headers()["x-should-retry"], "false");
    assert!(answer.headers().contains_key("retry-after"));
    let body: Value = answer.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("daily GPU-time quota exceeded") && message.contains("stopped"),
        "{message}"
    );
    let used = settled_gpu_ms(&gw, 1).await;
    assert!((1..=1_000).contains(&used), "{used} ms committed");
    // The host was charged for: the request counts, and its prompt.
    let counters = gw.counters(1).await;
    assert_eq!(counters.day_requests, 1);
    assert!(counters.day_tokens > 0, "{counters:?}");
}

/// 20 concurrent streams of 2 s each on a key with 3 s of GPU time, reserved in 0.25 s
/// blocks: on one instance (SQLite) and across two sharing PostgreSQL, every answer is a
/// clean stream or a 429, and the key's committed GPU time never passes 3 s.
#[tokio::test]
async fn concurrent_answers_never_pass_the_gpu_time_limit() {
    let mut setups = vec![false];
    if postgres_url().is_some() {
        setups.push(true);
    }
    for postgres in setups {
        let host = answering(100, 20);
        let first = Gateway::start(
            &host.url(),
            with_block("0.25", if postgres { Db::Postgres } else { Db::Sqlite }),
        )
        .await;
        let mut gws = vec![first];
        if postgres {
            let shared = Db::Shared(gws[0].database_url.clone());
            gws.push(Gateway::start(&host.url(), with_block("0.25", shared)).await);
        }
        let key = gws[0].create_key(&["--daily-gpu-seconds", "3"]);
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let request = gws[i % gws.len()].post("/api/chat", &key, story(true));
                async move {
                    let r = request.send().await.unwrap();
                    let status = r.status().as_u16();
                    if status == 200 {
                        let lines = stream_lines(r).await;
                        (status, lines.last().cloned())
                    } else {
                        r.text().await.unwrap();
                        (status, None)
                    }
                }
            })
            .collect();
        let answers = futures_util::future::join_all(tasks).await;
        let mut passed = 0;
        for (status, last) in &answers {
            match status {
                200 => {
                    passed += 1;
                    let last = last.as_ref().unwrap();
                    assert_eq!(last["done"], true, "postgres {postgres}: {last}");
                }
                429 => {}
                other => panic!("postgres {postgres}: status {other}"),
            }
        }
        assert!(passed > 0, "postgres {postgres}: nothing passed");
        let used = settled_gpu_ms(&gws[0], 1).await;
        assert!(
            (1..=3_000).contains(&used),
            "postgres {postgres}: {used} ms committed on a 3 s limit"
        );
    }
}

/// The key's GPU time as the key object, `/v1/quota`, the `x-ratelimit-*` headers and the
/// usage report show it, after answers on a host whose `gpu_weight` is 2: the report's sum is
/// the key's usage, `/v1/quota` shows the rest of the limit, a limit with three decimals
/// reads back as written, and bad limits are refused with the field named.
#[tokio::test]
async fn usage_remaining_and_reports_agree() {
    let host = answering(5, 20);
    let gw = Gateway::start("", weighted(&host, 2.0)).await;
    let key = gw.create_key(&["--daily-gpu-seconds", "3600.125"]);
    for _ in 0..2 {
        let r = gw.chat_hi(&key).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let remaining: f64 = r.headers()["x-ratelimit-remaining-gpu-seconds"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(remaining <= 3600.125, "{remaining}");
        r.text().await.unwrap();
    }
    let used_ms = settled_gpu_ms(&gw, 1).await;
    // Two answers of 5 chunks 20 ms apart, at weight 2: at least 2 × 2 × 100 ms.
    assert!(used_ms >= 400, "{used_ms} ms");
    let object = gw.admin_json("/api/api-keys/1").await;
    assert_eq!(object["daily_gpu_seconds_limit"], 3600.125);
    assert_eq!(object["monthly_gpu_seconds_limit"], Value::Null);
    let day_seconds = object["usage"]["day"]["gpu_seconds"].as_f64().unwrap();
    assert_eq!((day_seconds * 1000.0).round() as i64, used_ms);

    let quota: Value = gw
        .get("/v1/quota", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let remaining = quota["remaining"]["day"]["gpu_seconds"].as_f64().unwrap();
    assert_eq!(
        ((3600.125 - remaining) * 1000.0).round() as i64,
        used_ms,
        "{quota}"
    );
    assert_eq!(quota["remaining"]["month"]["gpu_seconds"], Value::Null);

    // The usage log is written every 100 ms: wait for both requests.
    let mut report = Value::Null;
    for _ in 0..200 {
        report = gw.admin_json("/api/usage?group_by=key").await;
        if report[0]["requests"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let reported = report[0]["gpu_seconds"].as_f64().unwrap();
    assert_eq!((reported * 1000.0).round() as i64, used_ms, "{report}");

    // Limits with more than three decimals, or below zero, are refused with the field named.
    let client = reqwest::Client::new();
    for bad in [json!(1.2345), json!(-1), json!("1")] {
        let r = client
            .patch(format!("{}/api/api-keys/1/quota", gw.admin))
            .bearer_auth("test-password")
            .json(&json!({"daily_gpu_seconds_limit": bad}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{bad}");
        let text = r.text().await.unwrap();
        assert!(text.contains("daily_gpu_seconds_limit"), "{text}");
    }
    let r = client
        .patch(format!("{}/api/api-keys/1/quota", gw.admin))
        .bearer_auth("test-password")
        .json(&json!({"daily_gpu_seconds_limit": null, "monthly_gpu_seconds_limit": 7200.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let object: Value = r.json().await.unwrap();
    assert_eq!(object["daily_gpu_seconds_limit"], Value::Null);
    assert_eq!(object["monthly_gpu_seconds_limit"], 7200.5);

    // `keys list` shows the GPU time in seconds against the limit.
    let (code, table, _) = gw.cli(&["keys", "list"]);
    assert_eq!(code, 0);
    assert!(table.contains("GPU S DAY"), "{table}");
    assert!(table.contains("/7200.500"), "{table}");

    // The CLI refuses a limit it cannot hold exactly, naming the flag.
    let (code, _, stderr) = gw.cli(&[
        "keys",
        "create",
        "--name",
        "x",
        "--daily-gpu-seconds",
        "0.0001",
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--daily-gpu-seconds"), "{stderr}");
}

/// A client that hangs up while its non-streamed answer is being generated: the host worked
/// on it, so the request counts and is charged its prompt and the GPU time until the hang-up
/// (well under the host's 5 s).
#[tokio::test]
async fn a_client_that_hangs_up_before_the_answer_is_charged_its_gpu_time() {
    let host = answering(100, 50);
    let gw = Gateway::start(&host.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    let gave_up = gw
        .post("/api/chat", &key, story(false))
        .timeout(Duration::from_millis(400))
        .send()
        .await;
    assert!(gave_up.unwrap_err().is_timeout());
    let counters = gw.wait_for_counters(1, |c| c.day_gpu_ms > 0).await;
    assert_eq!(counters.day_requests, 1);
    assert!(counters.day_tokens > 0, "{counters:?}");
    assert!(counters.day_gpu_ms < 5_000, "{counters:?}");
}
