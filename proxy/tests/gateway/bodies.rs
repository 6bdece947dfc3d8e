use base64::Engine as _;
use serde_json::{json, Value};

use crate::support::{fake, tokens, Gateway, Options};

/// A 1 MiB prompt (beyond Pingora's 64 KiB pre-read) is forwarded whole and its tokens counted.
#[tokio::test]
async fn one_mebibyte_prompt() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    let words = 1024 * 1024 / 8;
    let prompt = "quantum ".repeat(words);
    let body = json!({"model": "llama3", "prompt": prompt, "stream": false});
    let sent_len = serde_json::to_vec(&body).unwrap().len();
    let r = gw.post("/api/generate", &key, body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(
        answer["prompt_eval_count"], words as u64,
        "the upstream saw every word"
    );
    let seen = upstream
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/generate")
        .unwrap();
    assert_eq!(seen.body_len, sent_len);
    let expected = tokens(&prompt) + 10;
    gw.wait_for_counters(1, |c| c.day_tokens == expected).await;
}

/// A 20 MiB base64 image is forwarded byte for byte; the model default is injected into a
/// large body too; the streamed answer passes through the large-body loop.
#[tokio::test]
async fn twenty_mebibyte_image() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    let raw: Vec<u8> = (0..15 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let image = base64::engine::general_purpose::STANDARD.encode(&raw);
    assert!(image.len() >= 20 * 1024 * 1024);
    let body =
        json!({"messages": [{"role": "user", "content": "what is this", "images": [image]}]});
    let r = gw.post("/api/chat", &key, body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.lines().last().unwrap().contains("\"done\":true"));
    let seen = upstream
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/chat")
        .unwrap();
    let with_model = json!({"messages": [{"role": "user", "content": "what is this", "images": [image]}], "model": "llama3"});
    assert!(
        seen.body_len >= image.len(),
        "forwarded {} bytes",
        seen.body_len
    );
    assert!(seen.body_len <= serde_json::to_vec(&with_model).unwrap().len() + 16);
    // The image costs quota.image_tokens (768 by default), however large it is.
    gw.wait_for_counters(1, |c| c.day_tokens == tokens("what is this") + 768 + 10)
        .await;
}

/// Bodies above proxy.max_request_body_bytes get 413 and consume nothing.
#[tokio::test]
async fn too_large() {
    let upstream = fake();
    let options = Options {
        yaml: "  max_request_body_bytes: 2000\n".into(),
        ..Default::default()
    };
    let gw = Gateway::start(&upstream.url(), options).await;
    let key = gw.create_key(&[]);
    let r = gw
        .post(
            "/api/generate",
            &key,
            json!({"model": "llama3", "prompt": "x".repeat(5000)}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = gw
        .post(
            "/v1/completions",
            &key,
            json!({"model": "llama3", "prompt": "x".repeat(5000)}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "request_too_large"
    );
    assert_eq!(gw.counters(1).await.day_requests, 0);
}
