//! Wire-format tests: a real server, real HTTP over TCP, exact shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{ndjson, raw, sse};
use fake_ollama::{answer_text, answer_words, FakeConfig, FakeOllama, MAX_RECORDED_BODY};
use futures_util::StreamExt;
use serde_json::{json, Value};

fn start() -> FakeOllama {
    FakeOllama::start(FakeConfig::default()).unwrap()
}

fn start_with(f: impl FnOnce(&mut FakeConfig)) -> FakeOllama {
    let mut c = FakeConfig::default();
    f(&mut c);
    FakeOllama::start(c).unwrap()
}

fn post(fake: &FakeOllama, path: &str, body: &Value) -> common::Raw {
    raw(
        fake.addr(),
        "POST",
        path,
        "127.0.0.1",
        Some(&body.to_string()),
    )
}

fn get(fake: &FakeOllama, path: &str) -> common::Raw {
    raw(fake.addr(), "GET", path, "127.0.0.1", None)
}

// ---------------------------------------------------------------- basics, routing

/// `/`, HEAD `/` and `/api/version` answer like Ollama; url() names the bound port.
#[test]
fn root_head_and_version() {
    let fake = start();
    assert_eq!(
        fake.url(),
        format!("http://127.0.0.1:{}", fake.addr().port())
    );
    let r = get(&fake, "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "Ollama is running");
    let h = raw(fake.addr(), "HEAD", "/", "127.0.0.1", None);
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    let v = get(&fake, "/api/version");
    assert_eq!(
        v.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(v.text(), r#"{"version":"0.13.5"}"#);
}

/// Unknown paths give Gin's plain-text 404; a known path with a wrong method gives 405.
#[test]
fn unknown_path_404_and_wrong_method_405() {
    let fake = start();
    let r = get(&fake, "/api/pull");
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "404 page not found");
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let r = get(&fake, "/api/chat");
    assert_eq!(r.status, 405);
    let r = raw(fake.addr(), "POST", "/api/tags", "127.0.0.1", Some("{}"));
    assert_eq!(r.status, 405);
    assert_eq!(get(&fake, "/v1/models/a/b").status, 404);
}

/// `/api/tags`, `/api/ps` and `/api/show` list the configured models with Ollama's fields.
#[test]
fn tags_ps_and_show() {
    let fake = start();
    let tags = get(&fake, "/api/tags").json();
    let models = tags["models"].as_array().unwrap();
    let names: Vec<_> = models.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["llama3:latest", "qwen3:0.6b", "all-minilm:latest"]);
    for m in models {
        for k in ["name", "model", "modified_at", "size", "digest", "details"] {
            assert!(m.get(k).is_some(), "tags entry lacks {k}");
        }
        assert_eq!(m["digest"].as_str().unwrap().len(), 64);
        assert_eq!(m["details"]["format"], "gguf");
    }

    let ps = get(&fake, "/api/ps").json();
    let loaded = ps["models"].as_array().unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0]["name"], "llama3:latest");
    assert!(loaded[0]["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(loaded[0]["size_vram"].as_u64().unwrap() > 0);

    let show = post(&fake, "/api/show", &json!({"model": "llama3"}));
    assert_eq!(show.status, 200);
    let show = show.json();
    assert_eq!(show["capabilities"], json!(["completion", "tools"]));
    assert!(show["model_info"]["general.architecture"].is_string());
    let legacy = post(&fake, "/api/show", &json!({"name": "all-minilm"})).json();
    assert_eq!(legacy["capabilities"], json!(["embedding"]));
    let missing = post(&fake, "/api/show", &json!({"model": "nope"}));
    assert_eq!(missing.status, 404);
    assert_eq!(missing.text(), r#"{"error":"model 'nope' not found"}"#);
}

// ---------------------------------------------------------------- native generation

/// `/api/chat` streams NDJSON by default: one chunk per line and per HTTP chunk, then a done
/// line with the deterministic metrics.
#[test]
fn chat_streams_ndjson_by_default() {
    let fake = start();
    let body =
        json!({"model":"llama3","messages":[{"role":"user","content":"why is the sky blue"}]});
    let r = post(&fake, "/api/chat", &body);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert!(r.chunked && r.complete);
    let lines = ndjson(&r.body);
    assert_eq!(lines.len(), 11);
    // every line was its own HTTP chunk
    assert_eq!(r.chunks.len(), 11);
    for c in &r.chunks {
        assert_eq!(c.iter().filter(|b| **b == b'\n').count(), 1);
        assert!(c.ends_with(b"\n"));
    }
    let words = answer_words(10);
    for (line, word) in lines.iter().zip(&words) {
        assert_eq!(line["model"], "llama3");
        assert!(line["created_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(line["message"], json!({"role":"assistant","content":word}));
        assert_eq!(line["done"], false);
        assert!(line.get("eval_count").is_none());
    }
    let done = &lines[10];
    assert_eq!(done["done"], true);
    assert_eq!(done["done_reason"], "stop");
    assert_eq!(done["message"], json!({"role":"assistant","content":""}));
    assert_eq!(done["prompt_eval_count"], 5);
    assert_eq!(done["eval_count"], 10);
    for k in [
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    ] {
        assert!(done[k].as_u64().unwrap() > 0, "{k}");
    }
    assert!(done.get("context").is_none());
}

/// `/api/generate` streams `response` pieces and its done line carries `context`.
#[test]
fn generate_streams_with_context() {
    let fake = start_with(|c| c.chunks = 3);
    let r = post(
        &fake,
        "/api/generate",
        &json!({"model":"qwen3:0.6b","prompt":"a b c","stream":true}),
    );
    let lines = ndjson(&r.body);
    let pieces: Vec<_> = lines[..3]
        .iter()
        .map(|l| l["response"].as_str().unwrap())
        .collect();
    assert_eq!(pieces, ["Hello", " world", " from"]);
    assert_eq!(lines[3]["response"], "");
    assert_eq!(lines[3]["context"], json!([1, 2, 3]));
    assert_eq!(lines[3]["prompt_eval_count"], 3);
    assert_eq!(lines[3]["eval_count"], 3);
}

/// `stream:false` answers one `application/json; charset=utf-8` object with the whole text.
#[test]
fn stream_false_is_one_json_object() {
    let fake = start();
    let r = post(
        &fake,
        "/api/chat",
        &json!({"model":"llama3","stream":false,"messages":[{"role":"user","content":"hi there"}]}),
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert!(!r.chunked);
    let v = r.json();
    assert_eq!(v["message"]["content"], answer_text(10));
    assert_eq!(v["done"], true);
    assert_eq!(v["done_reason"], "stop");
    assert_eq!(v["prompt_eval_count"], 2);
    assert_eq!(v["eval_count"], 10);

    let g = post(
        &fake,
        "/api/generate",
        &json!({"model":"llama3","stream":false,"prompt":"x"}),
    )
    .json();
    assert_eq!(g["response"], answer_text(10));
    assert_eq!(g["context"], json!([1, 2, 3]));
}

/// `options.num_predict` caps the answer and turns `done_reason` into `length`.
#[test]
fn num_predict_caps_chunks() {
    let fake = start();
    let r = post(
        &fake,
        "/api/chat",
        &json!({"model":"llama3","options":{"num_predict":3},"messages":[{"role":"user","content":"x"}]}),
    );
    let lines = ndjson(&r.body);
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3]["done_reason"], "length");
    assert_eq!(lines[3]["eval_count"], 3);
    let unlimited = post(
        &fake,
        "/api/chat",
        &json!({"model":"llama3","options":{"num_predict":-1},"messages":[{"role":"user","content":"x"}]}),
    );
    assert_eq!(ndjson(&unlimited.body).len(), 11);
}

/// Native errors: missing body, invalid JSON, empty model (400), unknown model (404).
#[test]
fn native_errors() {
    let fake = start();
    let r = raw(fake.addr(), "POST", "/api/chat", "127.0.0.1", Some(""));
    assert_eq!(r.status, 400);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(r.text(), r#"{"error":"missing request body"}"#);
    let r = raw(
        fake.addr(),
        "POST",
        "/api/generate",
        "127.0.0.1",
        Some("{not json"),
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().len() > 3);
    let r = post(&fake, "/api/chat", &json!({"model":"","messages":[]}));
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), r#"{"error":"model is required"}"#);
    let r = post(
        &fake,
        "/api/chat",
        &json!({"model":"foo","messages":[{"role":"user","content":"x"}]}),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), r#"{"error":"model 'foo' not found"}"#);
    let r = post(&fake, "/api/embed", &json!({"model":"foo","input":"x"}));
    assert_eq!(r.status, 404);
}

/// An empty prompt only loads the model (`done_reason:"load"`), `keep_alive:0` unloads.
#[test]
fn empty_prompt_loads_or_unloads() {
    let fake = start();
    let r = post(&fake, "/api/chat", &json!({"model":"llama3"}));
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let v = r.json();
    assert_eq!(v["done_reason"], "load");
    assert!(v.get("eval_count").is_none() && v.get("prompt_eval_count").is_none());
    let v = post(
        &fake,
        "/api/generate",
        &json!({"model":"llama3","keep_alive":0}),
    )
    .json();
    assert_eq!(v["done_reason"], "unload");
}

/// `/api/embed` returns one vector per input plus counts; legacy `/api/embeddings` only a vector.
#[test]
fn embed_and_legacy_embeddings() {
    let fake = start();
    let v = post(
        &fake,
        "/api/embed",
        &json!({"model":"all-minilm","input":["a b","c"]}),
    )
    .json();
    assert_eq!(v["model"], "all-minilm");
    let e = v["embeddings"].as_array().unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].as_array().unwrap().len(), fake_ollama::EMBEDDING_DIMS);
    assert_eq!(v["prompt_eval_count"], 3);
    assert!(v["total_duration"].as_u64().unwrap() > 0);
    assert!(v["load_duration"].as_u64().unwrap() > 0);
    let single = post(
        &fake,
        "/api/embed",
        &json!({"model":"all-minilm","input":"a b"}),
    )
    .json();
    assert_eq!(single["embeddings"][0], e[0]);

    let legacy = post(
        &fake,
        "/api/embeddings",
        &json!({"model":"all-minilm","prompt":"a b"}),
    )
    .json();
    let keys: Vec<_> = legacy.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["embedding"]);
    assert_eq!(legacy["embedding"], e[0]);
}

// ---------------------------------------------------------------- OpenAI compatibility

/// Non-streamed `/v1/chat/completions` (the default) carries `usage` and Ollama's ids.
#[test]
fn v1_chat_non_stream() {
    let fake = start();
    let r = post(
        &fake,
        "/v1/chat/completions",
        &json!({"model":"llama3","messages":[{"role":"user","content":"one two three"}]}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["system_fingerprint"], "fp_ollama");
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role":"assistant","content":answer_text(10)})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens":3,"completion_tokens":10,"total_tokens":13})
    );
}

/// Streamed chat without include_usage: role chunk, deltas, finish chunk, `[DONE]`, no usage.
#[test]
fn v1_chat_stream_without_usage() {
    let fake = start_with(|c| c.chunks = 4);
    let r = post(
        &fake,
        "/v1/chat/completions",
        &json!({"model":"llama3","stream":true,"messages":[{"role":"user","content":"x"}]}),
    );
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let events = sse(&r.body);
    assert_eq!(r.chunks.len(), events.len());
    assert_eq!(events.len(), 4 + 1 + 1);
    assert!(events.iter().all(|e| e.event.is_none()));
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let first = events[0].json();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(
        first["choices"][0]["delta"],
        json!({"role":"assistant","content":"Hello"})
    );
    assert_eq!(first["choices"][0]["finish_reason"], Value::Null);
    assert_eq!(
        events[1].json()["choices"][0]["delta"],
        json!({"content":" world"})
    );
    let finish = events[4].json();
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert!(!String::from_utf8_lossy(&r.body).contains("usage"));
    let ids: Vec<_> = events[..5].iter().map(|e| e.json()["id"].clone()).collect();
    assert!(ids.iter().all(|i| *i == ids[0]));
}

/// Streamed chat with include_usage: one extra `choices:[]` chunk with the usage before `[DONE]`.
#[test]
fn v1_chat_stream_with_usage() {
    let fake = start_with(|c| c.chunks = 4);
    let r = post(
        &fake,
        "/v1/chat/completions",
        &json!({"model":"llama3","stream":true,"stream_options":{"include_usage":true},"max_tokens":2,"messages":[{"role":"user","content":"a b c"}]}),
    );
    let events = sse(&r.body);
    assert_eq!(events.len(), 2 + 1 + 1 + 1);
    assert_eq!(events[2].json()["choices"][0]["finish_reason"], "length");
    let usage = events[3].json();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens":3,"completion_tokens":2,"total_tokens":5})
    );
    assert!(events[..3].iter().all(|e| e.json().get("usage").is_none()));
    assert_eq!(events[4].data, "[DONE]");
}

/// `/v1/completions` quirk: with include_usage every text chunk has an all-zero usage and the
/// real usage comes last with `choices:[]`.
#[test]
fn v1_completions_usage_quirk() {
    let fake = start_with(|c| c.chunks = 3);
    let r = post(
        &fake,
        "/v1/completions",
        &json!({"model":"llama3","prompt":"say hi","stream":true,"stream_options":{"include_usage":true}}),
    );
    let events = sse(&r.body);
    assert_eq!(events.len(), 3 + 1 + 1 + 1);
    let zero = json!({"prompt_tokens":0,"completion_tokens":0,"total_tokens":0});
    for (i, e) in events[..3].iter().enumerate() {
        let v = e.json();
        assert_eq!(v["object"], "text_completion");
        assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
        assert_eq!(v["choices"][0]["text"], answer_words(3)[i]);
        assert_eq!(v["usage"], zero);
    }
    let finish = events[3].json();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["usage"], zero);
    let last = events[4].json();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens":2,"completion_tokens":3,"total_tokens":5})
    );
    assert_eq!(events[5].data, "[DONE]");

    // without include_usage: no usage anywhere
    let r = post(
        &fake,
        "/v1/completions",
        &json!({"model":"llama3","prompt":"say hi","stream":true}),
    );
    assert!(!String::from_utf8_lossy(&r.body).contains("usage"));
    // non-stream
    let v = post(
        &fake,
        "/v1/completions",
        &json!({"model":"llama3","prompt":"say hi"}),
    )
    .json();
    assert_eq!(v["choices"][0]["text"], answer_text(3));
    assert_eq!(v["usage"]["total_tokens"], 5);
}

/// `/v1` errors keep the status and use OpenAI's error object.
#[test]
fn v1_errors() {
    let fake = start();
    let r = post(
        &fake,
        "/v1/chat/completions",
        &json!({"model":"foo","messages":[{"role":"user","content":"x"}]}),
    );
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"error":{"message":"model 'foo' not found","type":"not_found_error","param":null,"code":null}})
    );
    let r = post(
        &fake,
        "/v1/chat/completions",
        &json!({"model":"llama3","messages":[]}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert_eq!(r.json()["error"]["message"], "[] is too short - 'messages'");
    let r = post(
        &fake,
        "/v1/completions",
        &json!({"model":"llama3","prompt":["a"]}),
    );
    assert_eq!(r.status, 400);
    let r = raw(
        fake.addr(),
        "POST",
        "/v1/chat/completions",
        "127.0.0.1",
        Some("nope"),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
}

/// `/v1/embeddings` returns OpenAI's list with usage; `encoding_format:"base64"` encodes floats.
#[test]
fn v1_embeddings() {
    let fake = start();
    let v = post(
        &fake,
        "/v1/embeddings",
        &json!({"model":"all-minilm","input":["a b","c d e"]}),
    )
    .json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "all-minilm");
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["data"][0]["object"], "embedding");
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(v["usage"], json!({"prompt_tokens":5,"total_tokens":5}));
    let b = post(
        &fake,
        "/v1/embeddings",
        &json!({"model":"all-minilm","input":"a b","encoding_format":"base64"}),
    )
    .json();
    let s = b["data"][0]["embedding"].as_str().unwrap();
    assert_eq!(s.len(), 44); // 8 × 4 bytes, base64
    let r = post(&fake, "/v1/embeddings", &json!({"model":"all-minilm"}));
    assert_eq!(r.status, 400);
}

/// `/v1/models` lists the models; `/v1/models/{model}` retrieves one or gives an OpenAI 404.
#[test]
fn v1_models() {
    let fake = start();
    let v = get(&fake, "/v1/models").json();
    assert_eq!(v["object"], "list");
    assert_eq!(
        v["data"][0],
        json!({"id":"llama3:latest","object":"model","created":1735689600,"owned_by":"library"})
    );
    let one = get(&fake, "/v1/models/qwen3:0.6b");
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["id"], "qwen3:0.6b");
    assert_eq!(
        get(&fake, "/v1/models/llama3%3Alatest").json()["id"],
        "llama3:latest"
    );
    let missing = get(&fake, "/v1/models/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["type"], "not_found_error");
}

/// `/v1/responses`: an object with usage, or named SSE events ending in `response.completed`.
#[test]
fn v1_responses() {
    let fake = start_with(|c| c.chunks = 3);
    let v = post(
        &fake,
        "/v1/responses",
        &json!({"model":"llama3","input":"tell me"}),
    )
    .json();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["output"][0]["content"][0]["text"], answer_text(3));
    assert_eq!(v["usage"]["input_tokens"], 2);
    assert_eq!(v["usage"]["output_tokens"], 3);
    assert_eq!(v["usage"]["total_tokens"], 5);

    let r = post(
        &fake,
        "/v1/responses",
        &json!({"model":"llama3","input":"tell me","stream":true}),
    );
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let events = sse(&r.body);
    assert_eq!(events[0].event.as_deref(), Some("response.created"));
    let deltas: Vec<_> = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("response.output_text.delta"))
        .map(|e| e.json()["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deltas, answer_words(3));
    for e in &events {
        assert_eq!(e.json()["type"].as_str(), e.event.as_deref());
    }
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("response.completed"));
    let usage = &last.json()["response"]["usage"];
    assert_eq!(usage["input_tokens"], 2);
    assert_eq!(usage["output_tokens"], 3);
}

/// `/v1/messages`: Anthropic message objects, named events with usage, Anthropic errors.
#[test]
fn v1_messages() {
    let fake = start_with(|c| c.chunks = 3);
    let body = json!({"model":"llama3","max_tokens":100,"system":"be nice","messages":[{"role":"user","content":"hello you"}]});
    let v = post(&fake, "/v1/messages", &body).json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"], json!([{"type":"text","text":answer_text(3)}]));
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"], json!({"input_tokens":4,"output_tokens":3}));

    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    let r = post(&fake, "/v1/messages", &sbody);
    let events = sse(&r.body);
    let names: Vec<_> = events.iter().map(|e| e.event.clone().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(events[0].json()["message"]["usage"]["input_tokens"], 4);
    assert_eq!(
        events[2].json()["delta"],
        json!({"type":"text_delta","text":"Hello"})
    );
    assert_eq!(events[6].json()["usage"]["output_tokens"], 3);
    assert_eq!(events[6].json()["delta"]["stop_reason"], "end_turn");

    let capped = post(
        &fake,
        "/v1/messages",
        &json!({"model":"llama3","max_tokens":1,"messages":[{"role":"user","content":"x"}]}),
    )
    .json();
    assert_eq!(capped["stop_reason"], "max_tokens");

    let e = post(
        &fake,
        "/v1/messages",
        &json!({"model":"nope","max_tokens":5,"messages":[{"role":"user","content":"x"}]}),
    );
    assert_eq!(e.status, 404);
    let e = e.json();
    assert_eq!(e["type"], "error");
    assert_eq!(e["error"]["type"], "not_found_error");
    let e = post(
        &fake,
        "/v1/messages",
        &json!({"model":"llama3","messages":[{"role":"user","content":"x"}]}),
    );
    assert_eq!(e.status, 400);
}

// ---------------------------------------------------------------- host check, faults, pacing

/// With host_check, a public Host gets 403 with an empty body; loopback/localhost pass.
#[test]
fn host_check_403() {
    let fake = start_with(|c| c.host_check = true);
    let r = raw(fake.addr(), "GET", "/api/tags", "example.com", None);
    assert_eq!(r.status, 403);
    assert!(r.body.is_empty());
    assert!(r.header("content-type").is_none());
    let r = raw(fake.addr(), "GET", "/api/tags", "evil.com:11434", None);
    assert_eq!(r.status, 403);
    for ok in ["127.0.0.1:11434", "localhost", "[::1]:11434", "192.168.1.5"] {
        assert_eq!(
            raw(fake.addr(), "GET", "/api/tags", ok, None).status,
            200,
            "{ok}"
        );
    }
    // without host_check anything goes
    let open = start();
    assert_eq!(
        raw(open.addr(), "GET", "/api/tags", "example.com", None).status,
        200
    );
}

/// drop_after_chunks cuts the connection after n content chunks: no done line and no
/// terminating chunk, so an HTTP client sees an error instead of a clean end.
#[tokio::test]
async fn drop_mid_stream() {
    let fake = start_with(|c| c.drop_after_chunks = Some(2));
    let body = json!({"model":"llama3","messages":[{"role":"user","content":"x"}]});
    let addr = fake.addr();
    let b = body.to_string();
    let r =
        tokio::task::spawn_blocking(move || raw(addr, "POST", "/api/chat", "127.0.0.1", Some(&b)))
            .await
            .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.chunked);
    assert!(!r.complete, "the terminating chunk must not arrive");
    let lines = ndjson(&r.body);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["done"] == false));

    // a real client sees an incomplete body
    let resp = reqwest::Client::new()
        .post(format!("{}/api/chat", fake.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err());

    // SSE is cut before the finish chunk and [DONE]
    let sse_body =
        json!({"model":"llama3","stream":true,"messages":[{"role":"user","content":"x"}]});
    let b = sse_body.to_string();
    let r = tokio::task::spawn_blocking(move || {
        raw(addr, "POST", "/v1/chat/completions", "127.0.0.1", Some(&b))
    })
    .await
    .unwrap();
    assert!(!r.complete);
    let text = String::from_utf8_lossy(&r.body);
    assert_eq!(text.matches("data: ").count(), 2);
    assert!(!text.contains("[DONE]"));

    // a non-streamed answer is cut inside its body
    let resp = reqwest::Client::new()
        .post(format!("{}/api/chat", fake.url()))
        .json(&json!({"model":"llama3","stream":false,"messages":[{"role":"user","content":"x"}]}))
        .send()
        .await
        .unwrap();
    assert!(resp.bytes().await.is_err());
}

/// With a chunk delay the client receives the first chunk before the stream ends (order of
/// events only, no timing asserted).
#[tokio::test]
async fn chunk_delay_streams_incrementally() {
    let fake = start_with(|c| {
        c.chunks = 5;
        c.chunk_delay = Duration::from_millis(40);
    });
    let resp = reqwest::Client::new()
        .post(format!("{}/api/chat", fake.url()))
        .json(&json!({"model":"llama3","messages":[{"role":"user","content":"x"}]}))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    let first_text = String::from_utf8(first.to_vec()).unwrap();
    assert!(first_text.contains("\"Hello\""));
    assert!(
        !first_text.contains("\"done\":true"),
        "first chunk arrived with the end"
    );
    let mut all = first.to_vec();
    let mut pieces = 1;
    while let Some(c) = stream.next().await {
        all.extend_from_slice(&c.unwrap());
        pieces += 1;
    }
    assert!(pieces >= 2);
    let lines = ndjson(&all);
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[5]["done"], true);
}

// ---------------------------------------------------------------- recording, lifecycle

/// Every request is recorded in order with method, path, headers and body; big bodies keep
/// only their length.
#[test]
fn records_requests() {
    let fake = start();
    get(&fake, "/api/tags?x=1");
    let body = json!({"model":"llama3","messages":[{"role":"user","content":"x"}]});
    post(&fake, "/api/chat", &body);
    let big = format!(
        r#"{{"model":"llama3","prompt":"{}"}}"#,
        "a ".repeat(MAX_RECORDED_BODY)
    );
    let r = raw(
        fake.addr(),
        "POST",
        "/api/generate",
        "127.0.0.1",
        Some(&big),
    );
    assert_eq!(r.status, 200);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(fake.request_count(), 3);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path, "/api/tags?x=1");
    assert_eq!(reqs[0].header("host"), Some("127.0.0.1"));
    assert!(reqs[0].body.is_empty());
    assert_eq!(reqs[1].method, "POST");
    assert_eq!(reqs[1].path, "/api/chat");
    assert_eq!(reqs[1].header("Content-Type"), Some("application/json"));
    assert_eq!(reqs[1].json(), Some(body.clone()));
    assert_eq!(reqs[1].body_len, body.to_string().len());
    assert!(reqs[2].body.is_empty());
    assert_eq!(reqs[2].body_len, big.len());
    fake.clear_requests();
    assert!(fake.requests().is_empty());
    assert_eq!(fake.request_count(), 3);
}

/// The server starts from inside another runtime, and stop() closes the listening socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_inside_a_runtime_and_stops() {
    let fake = start();
    let addr = fake.addr();
    let v: Value = reqwest::get(format!("{}/api/version", fake.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["version"], "0.13.5");
    fake.stop();
    assert!(std::net::TcpStream::connect(addr).is_err());
}
