//! The Anthropic Messages compatibility route `POST /v1/messages` (`anthropic/anthropic.go`,
//! `middleware/anthropic.go`): message objects, named SSE events, Anthropic-shaped errors.

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::body::{finished_answer, full, json_bytes, Frames, JSON, SSE};
use crate::gen::{bool_field, cap_of, parse_object, str_field, Gen};
use crate::server::Shared;
use crate::text::word;

/// An Anthropic error: `{"type":"error","error":{"type","message"},"request_id"}`.
pub(crate) fn error(shared: &Shared, status: StatusCode, message: &str) -> Response {
    let kind = match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    };
    let v = json!({
        "type": "error",
        "error": { "type": kind, "message": message },
        "request_id": format!("req_{:024x}", shared.next_id()),
    });
    match json_bytes(&v, true) {
        Ok(b) => full(status, JSON, b),
        Err(_) => full(status, JSON, Bytes::from_static(b"{\"type\":\"error\"}\n")),
    }
}

/// `POST /v1/messages`. `max_tokens` is required (and caps the answer); `stream` defaults to
/// false.
pub(crate) async fn messages(shared: &Shared, body: &Bytes) -> Response {
    let req = match parse_object(body, "anthropic.MessagesRequest") {
        Ok(v) => v,
        Err(e) => return error(shared, StatusCode::BAD_REQUEST, &e.message()),
    };
    let stream = match bool_field(&req, "stream", "MessagesRequest") {
        Ok(s) => s.unwrap_or(false),
        Err(m) => return error(shared, StatusCode::BAD_REQUEST, &m),
    };
    let model = str_field(&req, "model");
    if model.is_empty() {
        return error(shared, StatusCode::BAD_REQUEST, "model is required");
    }
    let Some(max_tokens) = cap_of(req.get("max_tokens")) else {
        return error(
            shared,
            StatusCode::BAD_REQUEST,
            "max_tokens is required and must be positive",
        );
    };
    if req
        .get("messages")
        .and_then(Value::as_array)
        .is_none_or(|m| m.is_empty())
    {
        return error(shared, StatusCode::BAD_REQUEST, "messages is required");
    }
    if shared.find_model(model).is_none() {
        return error(
            shared,
            StatusCode::NOT_FOUND,
            &format!("model '{model}' not found"),
        );
    }
    let gen = Gen::new(shared, &req, Some(max_tokens));
    let id = format!("msg_{:024x}", shared.next_id());
    let stop_reason = if gen.truncated {
        "max_tokens"
    } else {
        "end_turn"
    };
    let text = shared.answer.prefix(gen.eval);

    if !stream {
        let content: Vec<Value> = if text.is_empty() {
            Vec::new()
        } else {
            vec![json!({ "type": "text", "text": text })]
        };
        let v = json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "usage": { "input_tokens": gen.prompt_tokens, "output_tokens": gen.output_tokens() },
        });
        return match json_bytes(&v, true) {
            Ok(b) => finished_answer(shared.timing.clone(), gen.eval, JSON, b).await,
            Err(e) => error(shared, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
    }

    let mut frames = Frames::with_capacity(gen.eval + 6);
    let result = (|| {
        frames.sse_event(
            "message_start",
            &json!({
                "type": "message_start",
                "message": {
                    "id": id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "usage": { "input_tokens": gen.prompt_tokens, "output_tokens": 0 },
                },
            }),
            false,
        )?;
        if gen.eval > 0 {
            frames.sse_event(
                "content_block_start",
                &json!({
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": { "type": "text", "text": "" },
                }),
                false,
            )?;
            for i in 0..gen.eval {
                frames.sse_event(
                    "content_block_delta",
                    &json!({
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": { "type": "text_delta", "text": word(i) },
                    }),
                    true,
                )?;
            }
            frames.sse_event(
                "content_block_stop",
                &json!({ "type": "content_block_stop", "index": 0 }),
                false,
            )?;
        }
        frames.sse_event(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": { "stop_reason": stop_reason },
                "usage": { "input_tokens": gen.prompt_tokens, "output_tokens": gen.output_tokens() },
            }),
            false,
        )?;
        frames.sse_event("message_stop", &json!({ "type": "message_stop" }), false)
    })();
    match result {
        Ok(()) => frames.into_response(SSE, shared.timing.clone()),
        Err(e) => error(shared, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
