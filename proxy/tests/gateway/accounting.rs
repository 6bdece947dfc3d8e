use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::support::{fake, fake_with, tokens, Gateway, Options};

/// A streamed native chat is charged exactly: cl100k tokens of the prompt plus those of the
/// answer (the fake answers 10 one-token pieces), and the answer carries x-ratelimit headers.
#[tokio::test]
async fn streamed_chat_is_charged_exactly() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&["--daily-tokens", "100000", "--daily-requests", "10"]);
    let prompt = "Why is the sky blue? Explain briefly.";
    let r = gw
        .post(
            "/api/chat",
            &key,
            json!({"model": "llama3", "messages": [{"role": "user", "content": prompt}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    assert_eq!(r.headers()["x-ratelimit-limit-requests"], "10");
    assert_eq!(r.headers()["x-ratelimit-remaining-requests"], "9");
    assert_eq!(r.headers()["x-ratelimit-limit-tokens"], "100000");
    // Both limits are daily: the time to the next local midnight, in OpenAI's format.
    let now = chrono::Utc::now();
    let periods = quota_engine::Periods::from_name("Europe/Berlin")
        .unwrap()
        .at(now);
    let to_midnight = (periods.day_resets_at.with_timezone(&chrono::Utc) - now).num_seconds();
    for name in ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"] {
        let value = r.headers()[name].to_str().unwrap().to_owned();
        let secs = parse_openai_duration(&value);
        assert!(
            (to_midnight - 5..=to_midnight).contains(&secs),
            "{name}: {value} is not the time to midnight ({to_midnight} s)"
        );
    }
    let body = r.text().await.unwrap();
    assert_eq!(body.lines().count(), 11);
    let expected = tokens(prompt) + 10;
    let c = gw.wait_for_counters(1, |c| c.day_tokens == expected).await;
    assert_eq!((c.day_requests, c.month_tokens), (1, expected));
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains("llm_quota_requests_total{api_key=\"sk-"),
        "{metrics}"
    );
    assert!(metrics.contains("kind=\"completion\""), "{metrics}");
}

/// In upstream mode a /v1 stream gets include_usage injected, and the extra usage chunk is
/// removed when the client did not ask for it (kept when it did); Ollama's counts are charged.
#[tokio::test]
async fn upstream_mode_injects_and_strips_usage() {
    let upstream = fake();
    let options = Options {
        yaml: "quota:\n  token_counting: upstream\n".into(),
        ..Default::default()
    };
    let gw = Gateway::start(&upstream.url(), options).await;
    let key = gw.create_key(&[]);
    let messages = json!([{"role": "user", "content": "one two three four"}]);
    let plain = gw
        .post(
            "/v1/chat/completions",
            &key,
            json!({"model": "llama3", "stream": true, "messages": messages}),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !plain.contains("\"usage\""),
        "usage chunk must be stripped: {plain}"
    );
    assert!(plain.trim_end().ends_with("data: [DONE]"));
    let sent = upstream
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/chat/completions")
        .unwrap();
    assert_eq!(
        sent.json().unwrap()["stream_options"]["include_usage"],
        true
    );
    let asked = gw
        .post("/v1/chat/completions", &key, json!({"model": "llama3", "stream": true, "stream_options": {"include_usage": true}, "messages": messages}))
        .send().await.unwrap().text().await.unwrap();
    assert!(asked.contains("\"usage\""), "{asked}");
    // fake: prompt_tokens = 4 words, completion = 10; two requests
    gw.wait_for_counters(1, |c| c.day_tokens == 28 && c.day_requests == 2)
        .await;
}

/// The first streamed chunk reaches the client before Ollama has finished: nothing is buffered.
#[tokio::test]
async fn streaming_is_not_buffered() {
    let upstream = fake_with(fake_ollama::FakeConfig {
        chunk_delay: std::time::Duration::from_millis(150),
        chunks: 6,
        ..Default::default()
    });
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    let r = gw
        .post(
            "/api/generate",
            &key,
            json!({"model": "llama3", "prompt": "hi"}),
        )
        .send()
        .await
        .unwrap();
    let mut stream = r.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    let first = String::from_utf8_lossy(&first).into_owned();
    assert!(first.contains("\"done\":false"), "{first}");
    assert!(
        !first.contains("\"done\":true"),
        "the whole answer arrived at once: {first}"
    );
    let mut rest = String::new();
    while let Some(chunk) = stream.next().await {
        rest.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(rest.contains("\"done\":true"));
}

/// A client that hangs up mid-stream is charged for what it received, the request counts, and
/// the host connection is closed so that Ollama stops.
#[tokio::test]
async fn disconnect_charges_what_was_streamed() {
    let upstream = fake_with(fake_ollama::FakeConfig {
        chunk_delay: std::time::Duration::from_millis(100),
        chunks: 50,
        ..Default::default()
    });
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    let prompt = "count to fifty";
    let r = gw
        .post(
            "/api/generate",
            &key,
            json!({"model": "llama3", "prompt": prompt}),
        )
        .send()
        .await
        .unwrap();
    let mut stream = r.bytes_stream();
    let mut lines = 0;
    while lines < 3 {
        let chunk = stream.next().await.unwrap().unwrap();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    drop(stream);
    let c = gw
        .wait_for_counters(1, |c| c.day_tokens > tokens(prompt))
        .await;
    assert_eq!(c.day_requests, 1);
    let completion = c.day_tokens - tokens(prompt);
    assert!(
        (3..50).contains(&completion),
        "charged {completion} completion tokens for a stream cut after about 3"
    );
    // the gateway recorded the request as ended early
    let c2 = gw.counters(1).await;
    assert_eq!(c2.day_tokens, c.day_tokens, "charged once");
    // The host connection is closed, not drained: Ollama stops generating for nobody.
    for _ in 0..400 {
        if upstream.streams_abandoned() == 1 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the fake Ollama never saw its stream abandoned");
}

/// Over quota: 429 with Retry-After, x-should-retry: false and a message naming the limit,
/// in both dialects; the refusal consumes nothing.
#[tokio::test]
async fn quota_exceeded() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&["--daily-requests", "1"]);
    let ok = gw
        .post(
            "/api/embed",
            &key,
            json!({"model": "all-minilm", "input": ["a b", "c"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let r = gw
        .post(
            "/api/embed",
            &key,
            json!({"model": "all-minilm", "input": "x"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 25 * 3600);
    assert_eq!(r.headers()["x-should-retry"], "false");
    let msg = r.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.starts_with("daily request quota exceeded (limit 1, used 1), resets "),
        "{msg}"
    );
    let r = gw
        .post(
            "/v1/embeddings",
            &key,
            json!({"model": "all-minilm", "input": "x"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (
            body["error"]["type"].as_str(),
            body["error"]["code"].as_str()
        ),
        (Some("rate_limit_error"), Some("quota_exceeded"))
    );
    // Usage reaches the database with the ledger's next flush; the refusals added nothing.
    gw.wait_for_counters(1, |c| c.day_requests == 1).await;
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains("llm_quota_quota_rejections_total{api_key=\"sk-"),
        "{metrics}"
    );
}

/// Seconds of `13h2m5s`, `6m0s` or `1s`.
fn parse_openai_duration(value: &str) -> i64 {
    let mut total = 0;
    let mut number = String::new();
    for c in value.chars() {
        match c {
            '0'..='9' => number.push(c),
            'h' | 'm' | 's' => {
                let n: i64 = number.parse().unwrap();
                number.clear();
                total += n * match c {
                    'h' => 3600,
                    'm' => 60,
                    _ => 1,
                };
            }
            other => panic!("unexpected {other:?} in {value:?}"),
        }
    }
    assert!(number.is_empty() && value.ends_with('s'), "{value:?}");
    total
}
