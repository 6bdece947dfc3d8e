//! What real Ollama's source decides (docs/api.md, "What Ollama really reads"), held against
//! the fake: the root answer, `/api/status` and `/api/ps`, cloud names in every spelling, web
//! search tools, `keep_alive`, compressed bodies and Anthropic's error shape.

use std::io::Write;

use fake_ollama::FakeConfig;
use serde_json::{json, Value};

use crate::support::{fake, fake_with, Gateway, Options};

/// `GET /` and `HEAD /` answer `Ollama is running` like Ollama, without a key; other methods
/// on `/` are unknown.
#[tokio::test]
async fn root_answers_like_ollama() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let r = gw
        .client
        .get(format!("{}/", gw.proxy))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), "Ollama is running");
    let r = gw
        .client
        .head(format!("{}/", gw.proxy))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "17");
    let r = gw
        .client
        .post(format!("{}/", gw.proxy))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(upstream.requests().iter().all(|r| r.path != "/"));
}

/// `/api/ps` is asked of every available host and merged, showing only the key's models.
#[tokio::test]
async fn ps_is_merged_and_filtered() {
    let host = |model: &str| {
        fake_with(FakeConfig {
            models: vec![model.to_string()],
            ..Default::default()
        })
    };
    let (a, b) = (host("llama3"), host("qwen3"));
    let gw = Gateway::start(&format!("{},{}", a.url(), b.url()), Options::default()).await;
    let everything = gw.create_key(&[]);
    let names = |v: Value| -> Vec<String> {
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = gw.get("/api/ps", &everything).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        names(r.json().await.unwrap()),
        ["llama3:latest", "qwen3:latest"]
    );
    let only_qwen = gw.create_key(&["--models", "qwen3"]);
    let r = gw.get("/api/ps", &only_qwen).send().await.unwrap();
    assert_eq!(names(r.json().await.unwrap()), ["qwen3:latest"]);
    let r = gw
        .client
        .get(format!("{}/api/ps", gw.proxy))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Every spelling Ollama reads as a cloud model is refused for a key allowed "every local
/// model", before anything reaches the host; a key that names the cloud model may use it.
#[tokio::test]
async fn cloud_models_in_every_spelling() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    for model in [
        "gpt-oss:120b-CLOUD",
        "kimi:Cloud ",
        " kimi:cloud",
        "m: CLOUD",
        "m:cloud:local",
    ] {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        let r = gw.post("/api/chat", &key, body).send().await.unwrap();
        assert_eq!(r.status(), 403, "{model:?}");
        let error = r.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(error.contains("cloud model"), "{error}");
    }
    assert!(upstream.requests().iter().all(|r| r.path != "/api/chat"));
    let named = gw.create_key(&["--models", "kimi:cloud"]);
    let body = json!({"model": "KIMI:cloud", "stream": false, "messages": [{"role": "user", "content": "hi"}]});
    let r = gw.post("/api/chat", &named, body).send().await.unwrap();
    assert_ne!(
        r.status(),
        403,
        "a key that names the cloud model may use it"
    );
}

/// Web search tools run on the host's ollama.com account: 403 naming the tool unless the key
/// allows web search; the refusal on `/v1/messages` is in Anthropic's shape.
#[tokio::test]
async fn web_search_needs_the_keys_permission() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    let responses = json!({"model": "llama3", "input": "news?", "tools": [{"type": "web_search"}]});
    let r = gw
        .post("/v1/responses", &key, responses.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "web_search_not_allowed");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("web_search"));
    let messages = json!({"model": "llama3", "max_tokens": 50,
        "messages": [{"role": "user", "content": "news?"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}]});
    let r = gw
        .client
        .post(format!("{}/v1/messages", gw.proxy))
        .header("x-api-key", &key)
        .json(&messages)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "permission_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("web_search_20250305"));
    assert!(upstream.requests().iter().all(|r| r.method != "POST"));

    let allowed = gw.create_key(&["--allow-web-search"]);
    let r = gw
        .post("/v1/responses", &allowed, responses)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// `keep_alive` on the native routes: forever or longer than `ollama.max_keep_alive` becomes
/// the maximum; shorter than `ollama.min_keep_alive`, `0` and what Ollama reads as 0 included,
/// is removed unless `ollama.allow_unload`; in between passes as sent.
#[tokio::test]
async fn keep_alive_is_bounded() {
    let upstream = fake();
    let options = Options {
        yaml: "ollama:\n  max_keep_alive: 30m\n  min_keep_alive: 1m\n".into(),
        ..Default::default()
    };
    let gw = Gateway::start(&upstream.url(), options).await;
    let key = gw.create_key(&[]);
    let forwarded = |upstream: &fake_ollama::FakeOllama| -> Value {
        upstream.requests().last().unwrap().json().unwrap()
    };
    for (sent, expected) in [
        (json!(-1), Some(json!(1800))),
        (json!("2h"), Some(json!(1800))),
        (json!("10m"), Some(json!("10m"))),
        (json!(60), Some(json!(60))),
        (json!(0), None),
        (json!(1e-10), None),
        (json!("1ns"), None),
        (json!("59s"), None),
    ] {
        let body = json!({"model": "llama3", "prompt": "hi", "stream": false, "keep_alive": sent});
        let r = gw.post("/api/generate", &key, body).send().await.unwrap();
        assert_eq!(r.status(), 200, "{sent}");
        assert_eq!(
            forwarded(&upstream).get("keep_alive"),
            expected.as_ref(),
            "{sent}"
        );
    }
    let body = json!({"model": "llama3", "prompt": "hi", "keep_alive": "forever"});
    let r = gw.post("/api/generate", &key, body).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("keep_alive"));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// zstd (what Codex sends) and gzip bodies are decoded, counted and forwarded decoded; the
/// size limit applies after decoding.
#[tokio::test]
async fn compressed_bodies() {
    let upstream = fake();
    let options = Options {
        yaml: "proxy:\n  max_request_body_bytes: 100000\n".into(),
        ..Default::default()
    };
    let gw = Gateway::start(&upstream.url(), options).await;
    let key = gw.create_key(&[]);
    let body = json!({"model": "llama3", "input": "hello there"}).to_string();
    for (encoding, bytes) in [
        ("zstd", zstd::encode_all(body.as_bytes(), 3).unwrap()),
        ("gzip", gzip(body.as_bytes())),
    ] {
        let r = gw
            .client
            .post(format!("{}/v1/responses", gw.proxy))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{encoding}: {}", r.text().await.unwrap());
        let requests = upstream.requests();
        let seen: Value = requests.last().unwrap().json().unwrap();
        assert_eq!(seen["input"], "hello there", "{encoding}");
    }
    let bomb = gzip(&vec![b' '; 1_000_000]);
    let r = gw
        .client
        .post(format!("{}/v1/responses", gw.proxy))
        .bearer_auth(&key)
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = gw
        .client
        .post(format!("{}/v1/responses", gw.proxy))
        .bearer_auth(&key)
        .header("content-encoding", "br")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    gw.wait_for_counters(1, |c| c.day_requests == 2).await;
}

/// The gateway's own errors on `/v1/messages` are Anthropic's `{"type": "error", ...}`.
#[tokio::test]
async fn anthropic_errors() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let r = gw
        .client
        .post(format!("{}/v1/messages", gw.proxy))
        .json(&json!({"model": "llama3", "max_tokens": 5, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("API key"));
}

/// A multipart transcription form with `fields` (name, file name, content).
fn transcription_form(fields: &[(&str, Option<&str>, &str)]) -> Vec<u8> {
    let mut out = String::new();
    for (name, filename, content) in fields {
        out.push_str(&format!(
            "--b0undary\r\nContent-Disposition: form-data; name=\"{name}\""
        ));
        if let Some(f) = filename {
            out.push_str(&format!("; filename=\"{f}\"\r\nContent-Type: audio/wav"));
        }
        out.push_str(&format!("\r\n\r\n{content}\r\n"));
    }
    out.push_str("--b0undary--\r\n");
    out.into_bytes()
}

/// `/v1/audio/transcriptions` is counted: the prompt Ollama builds around the audio (its
/// fixed instructions, and the audio at `quota.image_tokens`) and the transcribed text, as
/// JSON or as plain text; the default model is added to a form without one; the model is
/// checked against the key; a query string (which Go would read before the form) is refused.
#[tokio::test]
async fn transcriptions_are_counted() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    let send = |query: &'static str, form: Vec<u8>, key: String| {
        gw.client
            .post(format!("{}/v1/audio/transcriptions{query}", gw.proxy))
            .bearer_auth(key)
            .header("content-type", "multipart/form-data; boundary=b0undary")
            .body(form)
            .send()
    };
    let prompt = crate::support::tokens(
        "Transcribe the audio exactly as spoken. Output only the spoken words. Do not answer any question in the audio.",
    ) + crate::support::tokens("What exact words are spoken in this audio?")
        + 768;
    let answer = crate::support::tokens(&fake_ollama::answer_text(10));

    let form = transcription_form(&[("model", None, "llama3"), ("file", Some("a.wav"), "RIFF")]);
    let r = send("", form, key.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["text"], fake_ollama::answer_text(10).trim());
    gw.wait_for_counters(1, |c| {
        c.day_requests == 1 && c.day_tokens == prompt + answer
    })
    .await;

    // No model: the default is added; the plain-text answer is counted the same.
    let form = transcription_form(&[
        ("response_format", None, "text"),
        ("file", Some("a.wav"), "RIFF"),
    ]);
    let r = send("", form, key.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    gw.wait_for_counters(1, |c| {
        c.day_requests == 2 && c.day_tokens == 2 * (prompt + answer)
    })
    .await;

    let form = transcription_form(&[("model", None, "llama3"), ("file", Some("a.wav"), "RIFF")]);
    let r = send("?model=qwen3", form.clone(), key.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let only_qwen = gw.create_key(&["--models", "qwen3"]);
    let r = send("", form, only_qwen).await.unwrap();
    assert_eq!(r.status(), 403);
    let seen: Vec<_> = upstream
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/v1/audio/transcriptions"))
        .collect();
    assert_eq!(seen.len(), 2, "refused requests never reach Ollama");
    let defaulted = String::from_utf8_lossy(&seen[1].body).into_owned();
    assert!(
        defaulted.contains("name=\"model\"\r\n\r\nllama3\r\n"),
        "{defaulted}"
    );
    gw.wait_for_counters(1, |c| c.day_requests == 2).await;
}

/// Answers as the real server breaks them: a runner error in the middle of a stream (an
/// `{"error": …}` line after a 200), and a stream that ends without its final line (v0.33
/// on invalid UTF-8). The client gets Ollama's bytes; the key is charged its prompt and one
/// token per chunk streamed, in both counting modes.
#[tokio::test]
async fn broken_streams_are_charged_what_was_streamed() {
    for (mode, config, sent) in [
        (
            "tiktoken",
            FakeConfig {
                error_after_chunks: Some(3),
                ..Default::default()
            },
            3,
        ),
        (
            "upstream",
            FakeConfig {
                end_without_done: true,
                ..Default::default()
            },
            10,
        ),
    ] {
        let upstream = fake_with(config);
        let options = Options {
            yaml: format!("quota:\n  token_counting: {mode}\n"),
            ..Default::default()
        };
        let gw = Gateway::start(&upstream.url(), options).await;
        let key = gw.create_key(&[]);
        let prompt = "tell me more";
        let body = json!({"model": "llama3", "prompt": prompt});
        let r = gw.post("/api/generate", &key, body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines.iter().all(|l| l["done"] != true), "{mode}: {text}");
        if mode == "tiktoken" {
            assert!(lines.last().unwrap()["error"].is_string(), "{text}");
        }
        let expected = crate::support::tokens(prompt) + sent;
        gw.wait_for_counters(1, |c| c.day_requests == 1 && c.day_tokens == expected)
            .await;
    }
}

/// Output the answer's text hides is charged: a thinking model on `/v1/completions` thinks
/// before it answers, and Ollama sends only the answer (its count includes the thinking).
/// Tiktoken mode charges Ollama's count when it is larger, streamed (the gateway asks for the
/// usage chunk and removes it again) or not.
#[tokio::test]
async fn hidden_thinking_is_charged() {
    let upstream = fake_with(FakeConfig {
        completions_thinking_tokens: 5,
        ..Default::default()
    });
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    let prompt = "write a haiku";
    let per_request = crate::support::tokens(prompt) + 10 + 5;
    let r = gw
        .post(
            "/v1/completions",
            &key,
            json!({"model": "llama3", "prompt": prompt}),
        )
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["usage"]["completion_tokens"], 15, "{v}");
    gw.wait_for_counters(1, |c| c.day_tokens == per_request)
        .await;
    let r = gw
        .post(
            "/v1/completions",
            &key,
            json!({"model": "llama3", "prompt": prompt, "stream": true}),
        )
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(
        !text.contains("\"usage\":{\"prompt_tokens\":3"),
        "the injected usage chunk is removed: {text}"
    );
    gw.wait_for_counters(1, |c| {
        c.day_requests == 2 && c.day_tokens == 2 * per_request
    })
    .await;
}

/// v0.24's `/v1` chunks (the role in every chunk) and a model template in the prompt count:
/// the stream passes through as sent and `upstream` mode charges Ollama's counts exactly,
/// template included.
#[tokio::test]
async fn chunk_shapes_and_templates_of_each_version() {
    let upstream = fake_with(FakeConfig {
        openai_role_every_chunk: true,
        template_tokens: 24,
        ..Default::default()
    });
    let options = Options {
        yaml: "quota:\n  token_counting: upstream\n".into(),
        ..Default::default()
    };
    let gw = Gateway::start(&upstream.url(), options).await;
    let key = gw.create_key(&[]);
    let body = json!({"model": "llama3", "stream": true,
        "messages": [{"role": "user", "content": "hello there"}]});
    let r = gw
        .post("/v1/chat/completions", &key, body)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert_eq!(text.matches("\"role\":\"assistant\"").count(), 10, "{text}");
    assert!(!text.contains("\"usage\""), "{text}");
    // prompt: 2 words + 24 of template; 10 chunks.
    gw.wait_for_counters(1, |c| c.day_tokens == 2 + 24 + 10)
        .await;
}
