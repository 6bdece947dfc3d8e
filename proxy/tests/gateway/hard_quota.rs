//! Hard token quotas through the real binary: answers bounded by the room left (the forwarded
//! body carries it), reservations that grow with a stream, streams ended cleanly when the
//! quota runs out, commits that never pass a limit; and the key holder's own quota endpoint.

use std::time::Duration;

use fake_ollama::FakeConfig;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::support::{fake_with, postgres_url, tokens, Db, Gateway, Options};

/// A fake Ollama answering `chunks` tokens, one streamed chunk each, `delay` apart.
fn answering(chunks: usize, delay_ms: u64) -> fake_ollama::FakeOllama {
    fake_with(FakeConfig {
        chunks,
        chunk_delay: Duration::from_millis(delay_ms),
        record_body_limit: 4 << 20,
        ..Default::default()
    })
}

fn counting(mode: &str) -> Options {
    Options {
        yaml: format!("quota:\n  token_counting: {mode}\n"),
        ..Default::default()
    }
}

/// One gateway on SQLite, or two instances sharing a PostgreSQL database.
async fn gateways(upstream: &str, mode: &str, postgres: bool) -> Vec<Gateway> {
    if !postgres {
        return vec![Gateway::start(upstream, counting(mode)).await];
    }
    let first = Gateway::start(
        upstream,
        Options {
            db: Db::Postgres,
            ..counting(mode)
        },
    )
    .await;
    let second = Gateway::start(
        upstream,
        Options {
            db: Db::Shared(first.database_url.clone()),
            ..counting(mode)
        },
    )
    .await;
    vec![first, second]
}

fn databases() -> Vec<bool> {
    if postgres_url().is_some() {
        vec![false, true]
    } else {
        vec![false]
    }
}

/// The whole answer body as text (a stream read to its end).
async fn read_all(response: reqwest::Response) -> String {
    let mut text = String::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
            Err(e) => panic!("the answer broke off: {e}; so far: {text}"),
        }
    }
    text
}

/// Sends `n` concurrent chats (streamed or not) spread over the gateways; returns each
/// answer's status and body.
async fn concurrent_chats(
    gws: &[Gateway],
    key: &str,
    n: usize,
    stream: bool,
) -> Vec<(u16, String)> {
    concurrent_chats_with(gws, key, n, stream, 0).await
}

/// Like [`concurrent_chats`], each body carrying an image of `image_bytes` base64 bytes (not
/// counted as prompt tokens): above 64 KiB, requests take the gateway's large-body loop.
async fn concurrent_chats_with(
    gws: &[Gateway],
    key: &str,
    n: usize,
    stream: bool,
    image_bytes: usize,
) -> Vec<(u16, String)> {
    let image = "A".repeat(image_bytes);
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let gw = &gws[i % gws.len()];
            let request = gw.post(
                "/api/chat",
                key,
                json!({"model": "llama3", "stream": stream,
                       "messages": [{"role": "user", "content": "tell me a story",
                                     "images": if image.is_empty() { vec![] } else { vec![image.clone()] }}]}),
            );
            async move {
                let r = request.send().await.unwrap();
                let status = r.status().as_u16();
                (status, read_all(r).await)
            }
        })
        .collect();
    futures_util::future::join_all(tasks).await
}

/// The key's day usage once every request has settled and been flushed.
async fn settled_day_tokens(gw: &Gateway, key_id: i64) -> i64 {
    let mut last = -1;
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = gw.counters(key_id).await.day_tokens;
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// 20 concurrent chats on a key with 1,000 tokens left, Ollama answering 200 tokens each when
/// not limited, in every combination of counting mode and database; returns each answer.
async fn twenty_chats_on_1000_tokens(stream: bool, check: impl Fn(&str, bool, &[(u16, String)])) {
    for postgres in databases() {
        for mode in ["tiktoken", "upstream"] {
            let upstream = answering(200, if stream { 2 } else { 0 });
            let gws = gateways(&upstream.url(), mode, postgres).await;
            let key = gws[0].create_key(&["--daily-tokens", "1000"]);
            let answers = concurrent_chats(&gws, &key, 20, stream).await;
            check(mode, postgres, &answers);
            let used = settled_day_tokens(&gws[0], 1).await;
            assert!(
                (1_000 - 256..=1_000).contains(&used),
                "{mode}, postgres {postgres}: {used} tokens committed"
            );
        }
    }
}

/// Streamed: the committed day usage ends at most 1,000 and within one reservation block of
/// it, in both counting modes, on SQLite and across two instances on PostgreSQL. Every answer
/// that was let through ends cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_streams_never_pass_the_token_limit() {
    twenty_chats_on_1000_tokens(true, |mode, _, answers| {
        for (status, body) in answers {
            assert!(*status == 200 || *status == 429, "{mode} {status}: {body}");
            if *status == 200 {
                let last: Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
                assert_eq!(last["done"], true, "{body}");
            }
        }
    })
    .await;
}

/// Not streamed: each answer's output is capped by the room at its admission, and the
/// commits together stay within the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_answers_never_pass_the_token_limit() {
    twenty_chats_on_1000_tokens(false, |mode, _, answers| {
        assert!(
            answers.iter().any(|(s, _)| *s == 200),
            "{mode}: none passed"
        );
    })
    .await;
}

/// Streams that outgrow their reservations extend it while the quota has room; when it has
/// none, they end with `"done": true, "done_reason": "length"`, the fake Ollama sees the
/// connection close, and the key's usage is exactly its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_are_cut_cleanly_when_the_quota_runs_out() {
    // Small bodies (Pingora's loop) and large ones (the gateway's own loop).
    for (mode, image_bytes) in [("tiktoken", 0), ("upstream", 0), ("tiktoken", 100_000)] {
        let upstream = answering(1_000, 2);
        let mut options = counting(mode);
        // The image only makes the body large (the gateway's own loop): it costs no tokens
        // here, so that the three streams share the same room as the small bodies.
        options.yaml.push_str("  image_tokens: 0\n");
        let gw = Gateway::start(&upstream.url(), options).await;
        let key = gw.create_key(&["--daily-tokens", "600"]);
        let answers =
            concurrent_chats_with(std::slice::from_ref(&gw), &key, 3, true, image_bytes).await;
        let mut cut = 0;
        for (status, body) in &answers {
            assert_eq!(*status, 200, "{body}");
            let lines: Vec<Value> = body
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect();
            let last = lines.last().unwrap();
            assert_eq!(last["done"], true, "{mode}: {body}");
            assert_eq!(last["done_reason"], "length", "{mode}");
            assert_eq!(
                lines.iter().filter(|l| l["done"] == true).count(),
                1,
                "one end only"
            );
            cut += usize::from(last.get("total_duration").is_none());
        }
        assert!(cut >= 1, "{mode}: no stream was ended by the gateway");
        let used = settled_day_tokens(&gw, 1).await;
        assert!((600 - 16..=600).contains(&used), "{mode}: {used} tokens");
        let mut abandoned = 0;
        for _ in 0..100 {
            abandoned = upstream.streams_abandoned();
            if abandoned as usize >= cut {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(abandoned as usize, cut, "{mode}: Ollama kept generating");
    }
}

/// The same cut on the OpenAI dialect: `finish_reason: "length"`, then `data: [DONE]`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn openai_streams_are_cut_with_finish_reason_length() {
    let upstream = answering(1_000, 1);
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&["--daily-tokens", "400"]);
    let send = || {
        gw.post(
            "/v1/chat/completions",
            &key,
            json!({"model": "llama3", "stream": true,
                   "messages": [{"role": "user", "content": "go on"}]}),
        )
        .send()
    };
    let (a, b) = tokio::join!(send(), send());
    for r in [a.unwrap(), b.unwrap()] {
        assert_eq!(r.status(), 200);
        let body = read_all(r).await;
        assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
        let events: Vec<Value> = body
            .split("\n\n")
            .filter_map(|e| e.trim().strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
            .collect();
        let last = events.last().unwrap();
        assert_eq!(last["choices"][0]["finish_reason"], "length", "{body}");
        assert_eq!(body.matches("data: [DONE]").count(), 1);
    }
    let used = settled_day_tokens(&gw, 1).await;
    assert!(used <= 400, "{used}");
}

/// A key far from its limit (10,000,000 tokens left) gets a 3,000-token answer uncut.
#[tokio::test]
async fn a_key_far_from_its_limit_is_never_shortened() {
    let upstream = answering(3_000, 0);
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&["--daily-tokens", "10000000"]);
    let r = gw.chat_hi(&key).send().await.unwrap();
    let body = read_all(r).await;
    let last: Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["eval_count"], 3_000);
    assert_eq!(body.lines().count(), 3_001);
    let used = settled_day_tokens(&gw, 1).await;
    assert_eq!(used, tokens("hi") + 3_000);
}

/// The last forwarded body of the fake, parsed.
fn forwarded(upstream: &fake_ollama::FakeOllama) -> Value {
    upstream.requests().last().unwrap().json().unwrap()
}

/// Each of the seven counted routes that generate gets the room in its own field; a client's
/// own smaller limit is kept and the body forwarded as sent.
#[tokio::test]
async fn forwarded_bodies_carry_the_room() {
    let upstream = answering(5, 0);
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let prompt = "what is the capital of France";
    let p = tokens(prompt);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/api/generate",
            json!({"model": "llama3", "prompt": prompt, "stream": false}),
            "/options/num_predict",
        ),
        (
            "/api/chat",
            json!({"model": "llama3", "stream": false, "options": {"temperature": 0},
            "messages": [{"role": "user", "content": prompt}]}),
            "/options/num_predict",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3",
            "messages": [{"role": "user", "content": prompt}]}),
            "/max_tokens",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3", "max_completion_tokens": 5000,
            "messages": [{"role": "user", "content": prompt}]}),
            // Ollama reads max_tokens only: the cap must land there, whatever else was sent.
            "/max_tokens",
        ),
        (
            "/v1/completions",
            json!({"model": "llama3", "prompt": prompt}),
            "/max_tokens",
        ),
        (
            "/v1/messages",
            json!({"model": "llama3", "max_tokens": 4096,
            "messages": [{"role": "user", "content": prompt}]}),
            "/max_tokens",
        ),
        (
            "/v1/responses",
            json!({"model": "llama3", "input": prompt}),
            "/max_output_tokens",
        ),
    ];
    for (path, body, field) in cases {
        // A fresh key each: the room is 1000 - the prompt.
        let key = gw.create_key(&["--daily-tokens", "1000"]);
        let r = gw.post(path, &key, body.clone()).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}: {}", r.text().await.unwrap());
        let sent = forwarded(&upstream);
        assert_eq!(
            sent.pointer(field),
            Some(&json!(1_000 - p)),
            "{path}: {sent}"
        );
        let mut expected = sent.clone();
        if let Some(v) = expected.get_mut("max_completion_tokens") {
            // Capped with max_tokens, so that the client's view agrees with what runs.
            assert_eq!(*v, json!(1_000 - p), "{path}: {sent}");
            *v = body["max_completion_tokens"].clone();
        }
        if let Some(v) = expected.pointer_mut(field) {
            *v = body.pointer(field).cloned().unwrap_or(Value::Null);
        }
        if body.pointer(field).is_none() {
            // Only the field was added: removing it gives the client's body back.
            let (parent, name) = field.rsplit_once('/').unwrap();
            let parent = if parent.is_empty() {
                &mut expected
            } else {
                expected.pointer_mut(parent).unwrap()
            };
            parent.as_object_mut().unwrap().remove(name);
            if parent.as_object().is_some_and(|o| o.is_empty()) {
                expected.as_object_mut().unwrap().remove("options");
            }
        }
        assert_eq!(expected, body, "{path}: nothing else in the body changes");
    }
    // The client's own smaller limit is kept: the body goes out as it came.
    let key = gw.create_key(&["--daily-tokens", "1000"]);
    let raw = r#"{"model":"llama3","max_tokens":7,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.proxy))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        &upstream.requests().last().unwrap().body[..],
        raw.as_bytes()
    );
}

/// A 1 MiB prompt is spliced, not re-serialised: the forwarded bytes are the original ones
/// plus the inserted field.
#[tokio::test]
async fn a_large_prompt_is_spliced() {
    let upstream = answering(5, 0);
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&["--daily-tokens", "100000000"]);
    let words = "lorem ipsum dolor sit amet ".repeat(40_000);
    // Spacing and key order a re-serialisation would change.
    let raw = format!(
        "{{ \"model\" : \"llama3\", \"stream\": false, \"messages\": [{{\"role\":\"user\", \"content\": \"{words}\"}}] }}"
    );
    assert!(raw.len() > 1 << 20);
    let r = gw
        .client
        .post(format!("{}/api/chat", gw.proxy))
        .bearer_auth(&key)
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let sent = upstream.requests().last().unwrap().body.clone();
    let close = raw.rfind('}').unwrap();
    assert_eq!(&sent[..close], &raw.as_bytes()[..close]);
    let room = 100_000_000 - tokens(&words);
    assert_eq!(
        &sent[close..],
        format!(",\"options\":{{\"num_predict\":{room}}}}}").as_bytes()
    );
}

/// `/api/quota` and `/v1/quota` answer the key's own budget with the same numbers as the
/// admin API, are never counted, and refuse a wrong key in the route's dialect.
#[tokio::test]
async fn the_quota_endpoint_matches_the_admin_api() {
    let upstream = answering(10, 0);
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&["--daily-tokens", "1000", "--daily-requests", "10"]);
    let r = gw
        .post(
            "/api/chat",
            &key,
            json!({"model": "llama3", "stream": false,
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let used = settled_day_tokens(&gw, 1).await;
    let admin = gw.admin_json("/api/api-keys/1").await;
    for path in ["/api/quota", "/v1/quota"] {
        let r = gw.get(path, &key).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("x-ratelimit-limit-requests").is_none());
        let mine: Value = r.json().await.unwrap();
        assert!(mine.get("id").is_none());
        for field in [
            "name",
            "key_prefix",
            "daily_token_limit",
            "usage",
            "in_flight",
        ] {
            assert_eq!(mine[field], admin[field], "{path}: {field}");
        }
        assert_eq!(mine["usage"]["day"]["tokens"], used);
        assert_eq!(mine["remaining"]["day"]["tokens"], 1_000 - used);
        assert_eq!(mine["remaining"]["day"]["requests"], 9);
        assert_eq!(mine["remaining"]["month"]["tokens"], Value::Null);
        assert_eq!(mine["remaining"]["minute"]["requests"], Value::Null);
        assert_eq!(mine["reserved_tokens"], 0);
    }
    assert_eq!(gw.counters(1).await.day_requests, 1, "never counted");
    let wrong = |path: &str| gw.get(path, "sk-wrong").send();
    let native: Value = {
        let r = wrong("/api/quota").await.unwrap();
        assert_eq!(r.status(), 401);
        r.json().await.unwrap()
    };
    assert!(native["error"].is_string(), "{native}");
    let openai: Value = {
        let r = wrong("/v1/quota").await.unwrap();
        assert_eq!(r.status(), 401);
        r.json().await.unwrap()
    };
    assert_eq!(openai["error"]["type"], "authentication_error", "{openai}");
}

/// While an answer streams, the key object shows the tokens its reservation holds; after it,
/// none.
#[tokio::test]
async fn the_key_object_shows_reservations_in_flight() {
    let upstream = answering(40, 50);
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&["--daily-tokens", "100000"]);
    let r = gw
        .post(
            "/api/chat",
            &key,
            json!({"model": "llama3",
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    let mut stream = r.bytes_stream();
    stream.next().await.unwrap().unwrap();
    let during = gw.admin_json("/api/api-keys/1").await["in_flight"].clone();
    assert_eq!(during["requests"], 1);
    assert_eq!(during["reserved_tokens"], tokens("hi") + 256);
    while stream.next().await.is_some() {}
    let mut after = Value::Null;
    for _ in 0..50 {
        after = gw.admin_json("/api/api-keys/1").await["in_flight"].clone();
        if after["requests"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(after, json!({"requests": 0, "reserved_tokens": 0}));
}

/// Less room than `quota.min_output_tokens` after the prompt is a 429 that names the limit.
#[tokio::test]
async fn too_little_room_for_an_answer_is_refused() {
    let upstream = answering(5, 0);
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&["--daily-tokens", "20"]);
    let prompt = "one two three four five six seven eight";
    assert!(20 - tokens(prompt) < 16);
    let r = gw
        .post(
            "/api/generate",
            &key,
            json!({"model": "llama3", "prompt": prompt}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("daily token quota"),
        "{body}"
    );
    assert!(upstream.requests().iter().all(|r| r.method != "POST"));
}
