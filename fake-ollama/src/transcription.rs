//! `POST /v1/audio/transcriptions`, as Ollama's `middleware/openai.go` serves it
//! (`TranscriptionMiddleware`, `TranscriptionWriter`): a multipart form with `model`, `file`
//! (the audio), and optional `response_format`, `language`, `prompt`; the answer is the whole
//! transcription at once, `{"text": "…"}` or, with `response_format: "text"`, the text alone as
//! `text/plain`. Errors are OpenAI's error objects. The text is the deterministic answer of
//! [`crate::text::answer_text`].

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::json;

use crate::body::{full, json_bytes, JSON, TEXT};
use crate::openai::error;
use crate::server::Shared;

pub(crate) async fn transcribe(shared: &Shared, headers: &HeaderMap, body: Bytes) -> Response {
    let boundary = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok());
    let Some(boundary) = boundary else {
        return error(
            StatusCode::BAD_REQUEST,
            "failed to parse multipart form: request Content-Type isn't multipart/form-data",
        );
    };
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    // Go's FormValue: the first value of a field; parts with a file name are files.
    let (mut model, mut format, mut audio): (Option<String>, Option<String>, Option<usize>) =
        (None, None, None);
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("failed to parse multipart form: {e}"),
                )
            }
        };
        let name = field.name().unwrap_or("").to_owned();
        let is_file = field.file_name().is_some_and(|f| !f.is_empty());
        let content = match field.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("failed to parse multipart form: {e}"),
                )
            }
        };
        match (name.as_str(), is_file) {
            ("file", true) if audio.is_none() => audio = Some(content.len()),
            ("model", false) if model.is_none() => {
                model = Some(String::from_utf8_lossy(&content).into_owned())
            }
            ("response_format", false) if format.is_none() => {
                format = Some(String::from_utf8_lossy(&content).into_owned())
            }
            _ => {}
        }
    }
    let model = model.unwrap_or_default();
    if model.is_empty() {
        return error(StatusCode::BAD_REQUEST, "model is required");
    }
    match audio {
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "file is required: http: no such file",
            )
        }
        Some(0) => return error(StatusCode::BAD_REQUEST, "audio file is empty"),
        Some(_) => {}
    }
    if shared.find_model(&model).is_none() {
        return error(StatusCode::NOT_FOUND, &format!("model '{model}' not found"));
    }
    let text = crate::text::answer_text(shared.config.chunks);
    let text = text.trim();
    if format.as_deref() == Some("text") {
        return full(StatusCode::OK, TEXT, Bytes::from(text.to_owned()));
    }
    match json_bytes(&json!({ "text": text }), true) {
        Ok(b) => full(StatusCode::OK, JSON, b),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
