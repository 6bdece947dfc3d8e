//! The OpenAI compatibility routes (`middleware/openai.go`, `openai/*.go`):
//! `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `/v1/models[/{model}]` and
//! `/v1/responses`.

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};

use crate::body::{finished_answer, full, json_bytes, Frames, JSON, SSE};
use crate::clock::unix_now;
use crate::gen::{bool_field, cap_of, json_kind, parse_object, str_field, Gen};
use crate::native::embed_inputs;
use crate::server::Shared;
use crate::text::{embedding, prompt_eval_count, word};

/// An OpenAI-style error (`{"error":{"message","type","param":null,"code":null}}`), status kept.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    let kind = match status {
        StatusCode::BAD_REQUEST => "invalid_request_error",
        StatusCode::NOT_FOUND => "not_found_error",
        _ => "api_error",
    };
    let v = json!({ "error": { "message": message, "type": kind, "param": null, "code": null } });
    match json_bytes(&v, true) {
        Ok(b) => full(status, JSON, b),
        Err(_) => full(status, JSON, Bytes::from_static(b"{\"error\":{}}\n")),
    }
}

fn internal(e: &serde_json::Error) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
}

/// Parsed fields every generating `/v1` route needs.
struct Common<'a> {
    model: &'a str,
    stream: bool,
    include_usage: bool,
}

/// Checks `model` (required, known) and reads `stream` / `stream_options.include_usage`.
/// `pre_check` runs after body parsing and before the model checks (request validation).
fn common<'a>(
    shared: &Shared,
    req: &'a Value,
    go_type: &str,
    pre_check: impl FnOnce(&Value) -> Result<(), String>,
) -> Result<Common<'a>, (StatusCode, String)> {
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    let stream = bool_field(req, "stream", go_type)
        .map_err(bad)?
        .unwrap_or(false);
    let include_usage = match req.get("stream_options") {
        Some(opts) => bool_field(opts, "include_usage", "openai.StreamOptions")
            .map_err(bad)?
            .unwrap_or(false),
        None => false,
    };
    pre_check(req).map_err(bad)?;
    let model = str_field(req, "model");
    if model.is_empty() {
        return Err(bad("model is required".to_string()));
    }
    if shared.find_model(model).is_none() {
        return Err((StatusCode::NOT_FOUND, format!("model '{model}' not found")));
    }
    Ok(Common {
        model,
        stream,
        include_usage,
    })
}

fn parse(body: &Bytes, go_type: &str) -> Result<Value, (StatusCode, String)> {
    parse_object(body, go_type).map_err(|e| (StatusCode::BAD_REQUEST, e.message()))
}

#[derive(Serialize, Clone, Copy)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

impl Usage {
    fn of(gen: &Gen) -> Usage {
        Usage {
            prompt_tokens: gen.prompt_tokens,
            completion_tokens: gen.output_tokens(),
            total_tokens: gen.total_tokens(),
        }
    }

    const ZERO: Usage = Usage {
        prompt_tokens: 0,
        completion_tokens: 0,
        total_tokens: 0,
    };
}

fn finish_reason(gen: &Gen) -> &'static str {
    if gen.truncated {
        "length"
    } else {
        "stop"
    }
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct ChatChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: [Choice<'a>; 1],
    usage: Usage,
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(shared: &Shared, body: &Bytes) -> Response {
    let req = match parse(body, "openai.ChatCompletionRequest") {
        Ok(v) => v,
        Err((status, m)) => return error(status, &m),
    };
    let c = match common(shared, &req, "openai.ChatCompletionRequest", |req| {
        match req.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() => Ok(()),
            None | Some(Value::Null) | Some(Value::Array(_)) => {
                Err("[] is too short - 'messages'".to_string())
            }
            Some(other) => Err(format!(
                "json: cannot unmarshal {} into Go struct field ChatCompletionRequest.messages of type []openai.Message",
                json_kind(other)
            )),
        }
    }) {
        Ok(c) => c,
        Err((status, m)) => return error(status, &m),
    };
    // Ollama's `openai.ChatCompletionRequest` has `MaxTokens` (`json:"max_tokens"`) only, which
    // becomes `num_predict` (openai/openai.go, `FromChatRequest`): `max_completion_tokens` is
    // ignored, so an answer runs on however small the client set it.
    let cap = cap_of(req.get("max_tokens"));
    let gen = Gen::new(shared, &req, cap);
    let id = format!("chatcmpl-{}", shared.next_id() % 999);
    let created = unix_now();
    let finish = finish_reason(&gen);

    if !c.stream {
        let v = ChatCompletion {
            id: &id,
            object: "chat.completion",
            created,
            model: c.model,
            system_fingerprint: "fp_ollama",
            choices: [Choice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant",
                    content: shared.answer.prefix(gen.eval),
                },
                finish_reason: finish,
            }],
            usage: Usage::of(&gen),
        };
        return match json_bytes(&v, true) {
            Ok(b) => finished_answer(shared.timing.clone(), gen.eval, JSON, b).await,
            Err(e) => internal(&e),
        };
    }

    let chunk =
        |choices: &[ChunkChoice<'_>], usage: Option<Usage>, frames: &mut Frames, content| {
            frames.sse_data(
                &ChatChunk {
                    id: &id,
                    object: "chat.completion.chunk",
                    created,
                    model: c.model,
                    system_fingerprint: "fp_ollama",
                    choices,
                    usage,
                },
                content,
            )
        };
    let mut frames = Frames::with_capacity(gen.eval + 3);
    let result = (|| {
        chat_content_chunks(&mut frames, shared, &id, created, c.model, gen.eval)?;
        let finish_choice = ChunkChoice {
            index: 0,
            delta: Delta {
                role: None,
                content: None,
            },
            finish_reason: Some(finish),
        };
        chunk(&[finish_choice], None, &mut frames, false)?;
        if c.include_usage {
            chunk(&[], Some(Usage::of(&gen)), &mut frames, false)?;
        }
        frames.sse_done();
        Ok::<(), serde_json::Error>(())
    })();
    match result {
        Ok(()) => frames.into_response(SSE, shared.timing.clone()),
        Err(e) => internal(&e),
    }
}

/// The `n` content chunks of a chat stream. Same bytes as serialising [`ChatChunk`] (checked by
/// a unit test), but rendered from a per-request prefix and the pre-escaped pieces.
fn chat_content_chunks(
    frames: &mut Frames,
    shared: &Shared,
    id: &str,
    created: u64,
    model: &str,
    n: usize,
) -> Result<(), serde_json::Error> {
    let mut head = Vec::with_capacity(160 + model.len());
    head.extend_from_slice(b"data: {\"id\":");
    serde_json::to_writer(&mut head, id)?;
    head.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
    serde_json::to_writer(&mut head, &created)?;
    head.extend_from_slice(b",\"model\":");
    serde_json::to_writer(&mut head, model)?;
    head.extend_from_slice(
        b",\"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"index\":0,\"delta\":{",
    );
    const TAIL: &[u8] = b"},\"finish_reason\":null}]}\n\n";
    for i in 0..n {
        // v0.33 names the role in the first chunk only; v0.24 in every chunk.
        let role: &[u8] = if i == 0 || shared.config.openai_role_every_chunk {
            b"\"role\":\"assistant\",\"content\":"
        } else {
            b"\"content\":"
        };
        let piece = shared.answer.word_json(i).as_bytes();
        frames.raw(&[&head, role, piece, TAIL], true);
    }
    Ok(())
}

#[derive(Serialize)]
struct TextChoice<'a> {
    text: &'a str,
    index: u32,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: &'a [TextChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

/// `POST /v1/completions` (`prompt` must be a string).
pub(crate) async fn completions(shared: &Shared, body: &Bytes) -> Response {
    let req = match parse(body, "openai.CompletionRequest") {
        Ok(v) => v,
        Err((status, m)) => return error(status, &m),
    };
    let c = match common(shared, &req, "openai.CompletionRequest", |req| {
        match req.get("prompt") {
            None | Some(Value::Null) | Some(Value::String(_)) => Ok(()),
            Some(other) => Err(format!(
                "json: cannot unmarshal {} into Go struct field CompletionRequest.prompt of type string",
                json_kind(other)
            )),
        }
    }) {
        Ok(c) => c,
        Err((status, m)) => return error(status, &m),
    };
    // A thinking model thinks first; Ollama's `openai.ToCompletion` / `ToCompleteChunk` send
    // only the response, so the thinking is counted in the usage and never shown.
    let gen = Gen::thinking_first(
        shared,
        &req,
        cap_of(req.get("max_tokens")),
        shared.config.completions_thinking_tokens,
    );
    let id = format!("cmpl-{}", shared.next_id() % 999);
    let created = unix_now();
    let finish = finish_reason(&gen);

    fn completion<'a>(
        head: (&'a str, u64, &'a str),
        choices: &'a [TextChoice<'a>],
        usage: Option<Usage>,
    ) -> Completion<'a> {
        Completion {
            id: head.0,
            object: "text_completion",
            created: head.1,
            model: head.2,
            system_fingerprint: "fp_ollama",
            choices,
            usage,
        }
    }
    let head = (id.as_str(), created, c.model);

    if !c.stream {
        let choice = TextChoice {
            text: shared.answer.prefix(gen.eval),
            index: 0,
            finish_reason: Some(finish),
        };
        return match json_bytes(&completion(head, &[choice], Some(Usage::of(&gen))), true) {
            Ok(b) => finished_answer(shared.timing.clone(), gen.eval, JSON, b).await,
            Err(e) => internal(&e),
        };
    }

    // Ollama's quirk: with include_usage every text chunk carries an all-zero usage, and the
    // real usage follows in a last chunk with no choices.
    let chunk_usage = c.include_usage.then_some(Usage::ZERO);
    let mut frames = Frames::with_capacity(gen.eval + 3);
    let result = (|| {
        for i in 0..gen.eval {
            let choice = TextChoice {
                text: word(i),
                index: 0,
                finish_reason: None,
            };
            frames.sse_data(&completion(head, &[choice], chunk_usage), true)?;
        }
        let finish_choice = TextChoice {
            text: "",
            index: 0,
            finish_reason: Some(finish),
        };
        frames.sse_data(&completion(head, &[finish_choice], chunk_usage), false)?;
        if c.include_usage {
            frames.sse_data(&completion(head, &[], Some(Usage::of(&gen))), false)?;
        }
        frames.sse_done();
        Ok::<(), serde_json::Error>(())
    })();
    match result {
        Ok(()) => frames.into_response(SSE, shared.timing.clone()),
        Err(e) => internal(&e),
    }
}

/// `POST /v1/embeddings` (`input` string or list; `encoding_format` `float` or `base64`;
/// `dimensions` truncates the vectors).
pub(crate) fn embeddings(shared: &Shared, body: &Bytes) -> Response {
    let req = match parse(body, "openai.EmbedRequest") {
        Ok(v) => v,
        Err((status, m)) => return error(status, &m),
    };
    let base64 = match str_field(&req, "encoding_format") {
        "" | "float" => false,
        "base64" => true,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "invalid value for 'encoding_format' = {other}. Supported values: ['float', 'base64']."
                ),
            )
        }
    };
    let inputs = match req.get("input") {
        None | Some(Value::Null) => return error(StatusCode::BAD_REQUEST, "invalid input"),
        Some(Value::Array(items)) if items.iter().all(Value::is_array) => {
            // token arrays: embed their JSON text
            Some(items.iter().map(|t| t.to_string()).collect::<Vec<_>>())
        }
        Some(v) => embed_inputs(Some(v)).map(|v| v.into_iter().map(str::to_string).collect()),
    };
    let Some(inputs) = inputs else {
        return error(StatusCode::BAD_REQUEST, "invalid input");
    };
    let model = str_field(&req, "model");
    if model.is_empty() {
        return error(StatusCode::BAD_REQUEST, "model is required");
    }
    if shared.find_model(model).is_none() {
        return error(StatusCode::NOT_FOUND, &format!("model '{model}' not found"));
    }
    let dims = req
        .get("dimensions")
        .and_then(Value::as_u64)
        .filter(|d| *d > 0)
        .map(|d| d as usize);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let v = embedding(text);
            let v = &v[..dims.unwrap_or(v.len()).min(v.len())];
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({ "object": "embedding", "embedding": embedding, "index": index })
        })
        .collect();
    let tokens = prompt_eval_count(&req);
    let v = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    });
    match json_bytes(&v, true) {
        Ok(b) => full(StatusCode::OK, JSON, b),
        Err(e) => internal(&e),
    }
}

/// `GET /v1/models/{model}`.
pub(crate) fn model(shared: &Shared, raw: &str) -> Response {
    let name = percent_decode(raw);
    match shared.find_model(&name) {
        Some(m) => match json_bytes(&m.openai_object(), true) {
            Ok(b) => full(StatusCode::OK, JSON, b),
            Err(e) => internal(&e),
        },
        None => error(StatusCode::NOT_FOUND, &format!("model '{name}' not found")),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let (hi, lo) = (bytes[i + 1], bytes[i + 2]);
            if let (Some(hi), Some(lo)) = (hex_val(hi), hex_val(lo)) {
                out.push(hi * 16 + lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The Responses API `usage`.
fn responses_usage(gen: &Gen) -> Value {
    json!({
        "input_tokens": gen.prompt_tokens,
        "input_tokens_details": { "cached_tokens": 0 },
        "output_tokens": gen.output_tokens(),
        "output_tokens_details": { "reasoning_tokens": 0 },
        "total_tokens": gen.total_tokens(),
    })
}

struct ResponseIds<'a> {
    id: &'a str,
    msg_id: &'a str,
    created: u64,
    model: &'a str,
}

fn output_item(ids: &ResponseIds<'_>, status: &str, text: Option<&str>) -> Value {
    let content: Vec<Value> = text
        .map(|t| {
            vec![json!({ "type": "output_text", "text": t, "annotations": [], "logprobs": [] })]
        })
        .unwrap_or_default();
    json!({
        "id": ids.msg_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    })
}

fn response_object(
    ids: &ResponseIds<'_>,
    req: &Value,
    status: &str,
    output: Vec<Value>,
    usage: Value,
) -> Value {
    json!({
        "id": ids.id,
        "object": "response",
        "created_at": ids.created,
        "status": status,
        "error": null,
        "incomplete_details": null,
        "instructions": req.get("instructions").cloned().unwrap_or(Value::Null),
        "max_output_tokens": req.get("max_output_tokens").cloned().unwrap_or(Value::Null),
        "model": ids.model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "temperature": 1.0,
        "text": { "format": { "type": "text" } },
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "metadata": {},
    })
}

/// `POST /v1/responses` (stateless; `max_output_tokens` caps the answer).
pub(crate) async fn responses(shared: &Shared, body: &Bytes) -> Response {
    let req = match parse(body, "openai.ResponsesRequest") {
        Ok(v) => v,
        Err((status, m)) => return error(status, &m),
    };
    let c = match common(shared, &req, "openai.ResponsesRequest", |_| Ok(())) {
        Ok(c) => c,
        Err((status, m)) => return error(status, &m),
    };
    let gen = Gen::new(shared, &req, cap_of(req.get("max_output_tokens")));
    let n = shared.next_id();
    let id = format!("resp_{n:024x}");
    let msg_id = format!("msg_{n:024x}");
    let ids = ResponseIds {
        id: &id,
        msg_id: &msg_id,
        created: unix_now(),
        model: c.model,
    };
    let text = shared.answer.prefix(gen.eval);

    if !c.stream {
        let out = response_object(
            &ids,
            &req,
            "completed",
            vec![output_item(&ids, "completed", Some(text))],
            responses_usage(&gen),
        );
        return match json_bytes(&out, true) {
            Ok(b) => finished_answer(shared.timing.clone(), gen.eval, JSON, b).await,
            Err(e) => internal(&e),
        };
    }

    let mut frames = Frames::with_capacity(gen.eval + 8);
    let mut seq = 0u64;
    let mut event = |frames: &mut Frames, name: &str, mut data: Value, content: bool| {
        if let Value::Object(m) = &mut data {
            m.insert("type".into(), json!(name));
            m.insert("sequence_number".into(), json!(seq));
        }
        seq += 1;
        frames.sse_event(name, &data, content)
    };
    let part =
        |t: &str| json!({ "type": "output_text", "text": t, "annotations": [], "logprobs": [] });
    let result = (|| {
        let in_progress = response_object(&ids, &req, "in_progress", vec![], Value::Null);
        event(
            &mut frames,
            "response.created",
            json!({ "response": in_progress }),
            false,
        )?;
        event(
            &mut frames,
            "response.in_progress",
            json!({ "response": in_progress }),
            false,
        )?;
        event(
            &mut frames,
            "response.output_item.added",
            json!({ "output_index": 0, "item": output_item(&ids, "in_progress", None) }),
            false,
        )?;
        event(
            &mut frames,
            "response.content_part.added",
            json!({ "item_id": msg_id, "output_index": 0, "content_index": 0, "part": part("") }),
            false,
        )?;
        for i in 0..gen.eval {
            event(
                &mut frames,
                "response.output_text.delta",
                json!({ "item_id": msg_id, "output_index": 0, "content_index": 0, "delta": word(i), "logprobs": [] }),
                true,
            )?;
        }
        event(
            &mut frames,
            "response.output_text.done",
            json!({ "item_id": msg_id, "output_index": 0, "content_index": 0, "text": text, "logprobs": [] }),
            false,
        )?;
        event(
            &mut frames,
            "response.content_part.done",
            json!({ "item_id": msg_id, "output_index": 0, "content_index": 0, "part": part(text) }),
            false,
        )?;
        let item = output_item(&ids, "completed", Some(text));
        event(
            &mut frames,
            "response.output_item.done",
            json!({ "output_index": 0, "item": item }),
            false,
        )?;
        let done = response_object(&ids, &req, "completed", vec![item], responses_usage(&gen));
        event(
            &mut frames,
            "response.completed",
            json!({ "response": done }),
            false,
        )
    })();
    match result {
        Ok(()) => frames.into_response(SSE, shared.timing.clone()),
        Err(e) => internal(&e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::FakeConfig;

    /// The pre-rendered chat chunks are byte-identical to serialising `ChatChunk` with serde.
    #[test]
    fn fast_chunks_match_serde() {
        let shared = Shared::new(FakeConfig::default(), false);
        let (id, created, model) = ("chatcmpl-7", 1_785_578_400, "m\"x");
        let mut fast = Frames::with_capacity(10);
        chat_content_chunks(&mut fast, &shared, id, created, model, 10).unwrap();
        let mut slow = Frames::with_capacity(10);
        for i in 0..10 {
            let choice = ChunkChoice {
                index: 0,
                delta: Delta {
                    role: (i == 0).then_some("assistant"),
                    content: Some(word(i)),
                },
                finish_reason: None,
            };
            let chunk = ChatChunk {
                id,
                object: "chat.completion.chunk",
                created,
                model,
                system_fingerprint: "fp_ollama",
                choices: &[choice],
                usage: None,
            };
            slow.sse_data(&chunk, true).unwrap();
        }
        assert_eq!(fast.bytes(), slow.bytes());
    }

    /// Model names in the path are percent-decoded like Gin's `c.Param`.
    #[test]
    fn decodes_paths() {
        assert_eq!(percent_decode("llama3%3Alatest"), "llama3:latest");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
