//! Ollama's native `/api/*` routes: `generate` and `chat` (NDJSON streams or one JSON object),
//! `embed`, legacy `embeddings`, `show` and `ps`.

use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::body::{finished_answer, full, json_bytes, Frames, JSON_UTF8, NDJSON};
use crate::clock::{now_rfc3339, rfc3339};
use crate::gen::{bool_field, cap_of, is_zero, parse_object, str_field, Gen};
use crate::server::Shared;
use crate::text::{embedding, prompt_eval_count};

/// A native error: `{"error":"..."}` with the status.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    match json_bytes(&json!({ "error": message }), false) {
        Ok(b) => full(status, JSON_UTF8, b),
        Err(_) => full(
            status,
            JSON_UTF8,
            Bytes::from_static(b"{\"error\":\"error\"}"),
        ),
    }
}

fn internal(e: &serde_json::Error) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
}

/// `model 'x' not found`, 404.
pub(crate) fn model_not_found(model: &str) -> Response {
    error(StatusCode::NOT_FOUND, &format!("model '{model}' not found"))
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

/// One line of `/api/generate` or `/api/chat` (Ollama's `GenerateResponse` / `ChatResponse`),
/// also the whole non-streamed answer.
#[derive(Serialize)]
struct Line<'a> {
    model: &'a str,
    created_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Message<'a>>,
    done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    done_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<[u32; 3]>,
    #[serde(skip_serializing_if = "is_zero")]
    total_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    load_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    prompt_eval_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    prompt_eval_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    eval_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    eval_duration: u64,
}

impl<'a> Line<'a> {
    fn new(chat: bool, model: &'a str, created_at: &'a str, text: &'a str) -> Line<'a> {
        Line {
            model,
            created_at,
            response: (!chat).then_some(text),
            message: chat.then_some(Message {
                role: "assistant",
                content: text,
            }),
            done: false,
            done_reason: None,
            context: None,
            total_duration: 0,
            load_duration: 0,
            prompt_eval_count: 0,
            prompt_eval_duration: 0,
            eval_count: 0,
            eval_duration: 0,
        }
    }

    fn finish(mut self, chat: bool, done_reason: &'a str, gen: Option<&Gen>) -> Line<'a> {
        self.done = true;
        self.done_reason = Some(done_reason);
        if let Some(gen) = gen {
            let m = gen.metrics();
            self.context = (!chat).then_some([1, 2, 3]);
            self.total_duration = m.total_duration;
            self.load_duration = m.load_duration;
            self.prompt_eval_count = m.prompt_eval_count;
            self.prompt_eval_duration = m.prompt_eval_duration;
            self.eval_count = m.eval_count;
            self.eval_duration = m.eval_duration;
        }
        self
    }
}

/// `keep_alive` of zero (`0`, `"0"`, `"0s"`, `"0m"`): Ollama unloads the model.
fn keep_alive_zero(body: &Value) -> bool {
    match body.get("keep_alive") {
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::String(s)) => matches!(s.as_str(), "0" | "0s" | "0m" | "0h"),
        _ => false,
    }
}

/// `POST /api/generate` (`chat == false`) and `POST /api/chat` (`chat == true`).
pub(crate) async fn generate(shared: &Shared, body: &Bytes, chat: bool) -> Response {
    let go_type = if chat {
        "api.ChatRequest"
    } else {
        "api.GenerateRequest"
    };
    let req = match parse_object(body, go_type) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.message()),
    };
    let stream = match bool_field(&req, "stream", go_type) {
        Ok(s) => s.unwrap_or(true),
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let model = str_field(&req, "model");
    if model.is_empty() {
        return error(StatusCode::BAD_REQUEST, "model is required");
    }
    if shared.find_model(model).is_none() {
        return model_not_found(model);
    }
    let created_at = now_rfc3339();

    // No prompt (generate) or no messages (chat): Ollama only loads (or unloads) the model
    // and answers one JSON object, streaming or not.
    let nothing_to_do = if chat {
        req.get("messages")
            .and_then(Value::as_array)
            .is_none_or(|m| m.is_empty())
    } else {
        str_field(&req, "prompt").is_empty()
    };
    if nothing_to_do {
        let reason = if keep_alive_zero(&req) {
            "unload"
        } else {
            "load"
        };
        let line = Line::new(chat, model, &created_at, "").finish(chat, reason, None);
        return match json_bytes(&line, false) {
            Ok(b) => full(StatusCode::OK, JSON_UTF8, b),
            Err(e) => internal(&e),
        };
    }

    let cap = cap_of(req.get("options").and_then(|o| o.get("num_predict")));
    let gen = Gen::new(shared, &req, cap);

    if !stream {
        let text = shared.answer.prefix(gen.eval);
        let line =
            Line::new(chat, model, &created_at, text).finish(chat, gen.done_reason(), Some(&gen));
        return match json_bytes(&line, false) {
            Ok(b) => finished_answer(shared.timing.clone(), gen.eval, JSON_UTF8, b).await,
            Err(e) => internal(&e),
        };
    }

    let mut frames = Frames::with_capacity(gen.eval + 1);
    let result = (|| {
        if let Some(sent) = shared.config.error_after_chunks {
            // A runner that fails mid-answer: Ollama's handler sends the error as one more
            // line of the stream (`ch <- gin.H{"error": err.Error()}` in server/routes.go),
            // after a 200 and the lines so far, and no final line.
            content_lines(
                &mut frames,
                shared,
                chat,
                model,
                &created_at,
                sent.min(gen.eval),
            )?;
            return frames.json_line(&json!({ "error": MID_STREAM_ERROR }), false);
        }
        content_lines(&mut frames, shared, chat, model, &created_at, gen.eval)?;
        if shared.config.end_without_done {
            // v0.33 ends a stream whose runner produced invalid UTF-8 like this: a clean end
            // of the HTTP answer without the final line (no counts, no done_reason).
            return Ok(());
        }
        let done =
            Line::new(chat, model, &created_at, "").finish(chat, gen.done_reason(), Some(&gen));
        frames.json_line(&done, false)
    })();
    match result {
        Ok(()) => frames.into_response(NDJSON, shared.timing.clone()),
        Err(e) => internal(&e),
    }
}

/// What a failed runner reports in the middle of a stream (one of Ollama's llama-server
/// errors).
pub(crate) const MID_STREAM_ERROR: &str =
    "an error was encountered while running the model: unexpected EOF";

/// The `n` content lines of a native stream. Same bytes as serialising [`Line`] for each piece
/// (checked by a unit test), but rendered from a per-request prefix and the pre-escaped pieces.
fn content_lines(
    frames: &mut Frames,
    shared: &Shared,
    chat: bool,
    model: &str,
    created_at: &str,
    n: usize,
) -> Result<(), serde_json::Error> {
    let mut head = Vec::with_capacity(64 + model.len() + created_at.len());
    head.extend_from_slice(b"{\"model\":");
    serde_json::to_writer(&mut head, model)?;
    head.extend_from_slice(b",\"created_at\":");
    serde_json::to_writer(&mut head, created_at)?;
    let (open, close): (&[u8], &[u8]) = if chat {
        (
            b",\"message\":{\"role\":\"assistant\",\"content\":",
            b"},\"done\":false}\n",
        )
    } else {
        (b",\"response\":", b",\"done\":false}\n")
    };
    for i in 0..n {
        let piece = shared.answer.word_json(i).as_bytes();
        frames.raw(&[&head, open, piece, close], true);
    }
    Ok(())
}

/// The inputs of an embedding request: a string, a list of strings, or absent/null (none).
pub(crate) fn embed_inputs(input: Option<&Value>) -> Option<Vec<&str>> {
    match input {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::String(s)) => Some(vec![s.as_str()]),
        Some(Value::Array(items)) => items.iter().map(Value::as_str).collect(),
        Some(_) => None,
    }
}

/// `POST /api/embed`.
pub(crate) fn embed(shared: &Shared, body: &Bytes) -> Response {
    let req = match parse_object(body, "api.EmbedRequest") {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.message()),
    };
    let model = str_field(&req, "model");
    if model.is_empty() {
        return error(StatusCode::BAD_REQUEST, "model is required");
    }
    if shared.find_model(model).is_none() {
        return model_not_found(model);
    }
    let Some(inputs) = embed_inputs(req.get("input")) else {
        return error(StatusCode::BAD_REQUEST, "invalid input type");
    };
    let embeddings: Vec<_> = inputs.iter().map(|t| embedding(t).to_vec()).collect();
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("embeddings".into(), json!(embeddings));
    if !inputs.is_empty() {
        let count = prompt_eval_count(&req);
        let prompt_eval_duration = 100_000 * count;
        out.insert(
            "total_duration".into(),
            json!(1_500_000 + prompt_eval_duration),
        );
        out.insert("load_duration".into(), json!(1_000_000));
        if count > 0 {
            out.insert("prompt_eval_count".into(), json!(count));
        }
    }
    match json_bytes(&Value::Object(out), false) {
        Ok(b) => full(StatusCode::OK, JSON_UTF8, b),
        Err(e) => internal(&e),
    }
}

/// `POST /api/embeddings` (legacy): `{"embedding":[...]}` only, no counts.
pub(crate) fn embeddings(shared: &Shared, body: &Bytes) -> Response {
    let req = match parse_object(body, "api.EmbeddingRequest") {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.message()),
    };
    let model = str_field(&req, "model");
    if model.is_empty() {
        return error(StatusCode::BAD_REQUEST, "model is required");
    }
    if shared.find_model(model).is_none() {
        return model_not_found(model);
    }
    let prompt = str_field(&req, "prompt");
    let vector: Vec<f32> = if prompt.is_empty() {
        Vec::new()
    } else {
        embedding(prompt).to_vec()
    };
    match json_bytes(&json!({ "embedding": vector }), false) {
        Ok(b) => full(StatusCode::OK, JSON_UTF8, b),
        Err(e) => internal(&e),
    }
}

/// `POST /api/show` (`model`, or the legacy `name`).
pub(crate) fn show(shared: &Shared, body: &Bytes) -> Response {
    let req = match parse_object(body, "api.ShowRequest") {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.message()),
    };
    let model = match str_field(&req, "model") {
        "" => str_field(&req, "name"),
        m => m,
    };
    if model.is_empty() {
        return error(StatusCode::BAD_REQUEST, "model is required");
    }
    let Some(info) = shared.find_model(model) else {
        return model_not_found(model);
    };
    match json_bytes(&info.show(), false) {
        Ok(b) => full(StatusCode::OK, JSON_UTF8, b),
        Err(e) => internal(&e),
    }
}

/// `GET /api/ps`: the first configured model, loaded, expiring in 5 minutes.
pub(crate) fn ps(shared: &Shared) -> Response {
    let expires_at = rfc3339(SystemTime::now() + Duration::from_secs(300));
    let models: Vec<_> = shared
        .models
        .first()
        .map(|m| m.ps_entry(&expires_at))
        .into_iter()
        .collect();
    match json_bytes(&json!({ "models": models }), false) {
        Ok(b) => full(StatusCode::OK, JSON_UTF8, b),
        Err(e) => internal(&e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::FakeConfig;

    /// The pre-rendered content lines are byte-identical to serialising `Line` with serde.
    #[test]
    fn fast_lines_match_serde() {
        let shared = Shared::new(FakeConfig::default(), false);
        for chat in [false, true] {
            let model = "we\"ird\\model";
            let at = "2026-08-01T10:00:00.1Z";
            let mut fast = Frames::with_capacity(10);
            content_lines(&mut fast, &shared, chat, model, at, 10).unwrap();
            let mut slow = Frames::with_capacity(10);
            for i in 0..10 {
                slow.json_line(&Line::new(chat, model, at, crate::text::word(i)), true)
                    .unwrap();
            }
            assert_eq!(fast.bytes(), slow.bytes());
        }
    }
}
