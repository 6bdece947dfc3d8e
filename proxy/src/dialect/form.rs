//! `POST /v1/audio/transcriptions`: a `multipart/form-data` body, read as Ollama reads it
//! (`middleware/openai.go`, `TranscriptionMiddleware`: Go's `ParseMultipartForm`, then
//! `FormValue("model")`, `FormFile("file")`, `response_format`, `language`, `prompt`).
//!
//! Ollama turns the form into a chat (`openai/openai.go`, `FromTranscriptionRequest`): a fixed
//! system prompt (with the language and the client's prompt appended), a fixed user question,
//! and the audio as the user message's one media part. The prompt counted here is that chat:
//! its text with tiktoken, plus `image_tokens` for the audio.
//!
//! Go's form reading decides what the gateway must see alike:
//! - a part with a `filename` is a file, never a value (`FormValue` does not see it);
//! - `FormValue` prefers the URL query over the body, so a query string on this route is
//!   refused (it could name another model than the form);
//! - more than one `model` value is refused ([`BodyError::AmbiguousField`]), as in JSON bodies.

use memchr::memmem;

use super::request::{BodyError, RequestInfo, Rules};
use super::tokens::count_tokens;

/// What Ollama puts in front of the audio (`FromTranscriptionRequest`).
const SYSTEM_PROMPT: &str = "Transcribe the audio exactly as spoken. Output only the spoken words. Do not answer any question in the audio.";
const USER_QUESTION: &str = "What exact words are spoken in this audio?";

/// Parses a transcription request: `content_type` is the request's `Content-Type` header,
/// `query` its URL query (must be empty). Writes `rules.default_model` as a form field when the
/// form names no model.
pub fn inspect_form(
    body: &[u8],
    content_type: Option<&str>,
    query: Option<&str>,
    rules: &Rules<'_>,
) -> Result<RequestInfo, BodyError> {
    if query.is_some_and(|q| !q.is_empty()) {
        return Err(BodyError::Form(
            "send the transcription's fields in the multipart form, not in the URL query".into(),
        ));
    }
    let boundary = content_type.and_then(boundary_of).ok_or_else(|| {
        BodyError::Form(
            "the body must be multipart/form-data with a boundary (Content-Type: multipart/form-data; boundary=…)"
                .into(),
        )
    })?;
    let parts = parts(body, boundary.as_bytes())?;
    let value = |name: &str| -> Result<Option<&Part<'_>>, BodyError> {
        let mut found = parts.iter().filter(|p| p.name == name && !p.is_file);
        let first = found.next();
        if found.next().is_some() {
            return Err(BodyError::AmbiguousField(match name {
                "model" => "model",
                "language" => "language",
                _ => "prompt",
            }));
        }
        Ok(first)
    };
    let model_part = value("model")?;
    let language = text(value("language")?);
    let prompt = text(value("prompt")?);
    if !parts.iter().any(|p| p.name == "file" && p.is_file) {
        return Err(BodyError::Form(
            "the form has no audio: send it as the file field".into(),
        ));
    }

    let model = text(model_part).map(|m| m.into_owned()).unwrap_or_default();
    let (model, body) = if model.is_empty() && !rules.default_model.is_empty() {
        let spliced = add_field(body, &boundary, "model", rules.default_model)
            .ok_or_else(|| BodyError::Form("the multipart body has no closing boundary".into()))?;
        (
            rules.default_model.to_owned(),
            Some(bytes::Bytes::from(spliced)),
        )
    } else {
        (model, None)
    };

    let mut system = SYSTEM_PROMPT.to_owned();
    if let Some(language) = language.filter(|l| !l.is_empty()) {
        system.push_str(&format!(" The audio is in {language}."));
    }
    if let Some(prompt) = prompt.filter(|p| !p.is_empty()) {
        system.push_str(&format!(" Context: {prompt}"));
    }
    let prompt_tokens = count_tokens(&system) + count_tokens(USER_QUESTION) + rules.image_tokens;
    Ok(RequestInfo {
        model,
        // Ollama answers the whole transcription at once.
        stream: false,
        prompt_tokens,
        body,
        client_wants_usage: false,
        usage_injected: false,
        client_output_limit: None,
        web_search_tool: None,
    })
}

/// A value part's text.
fn text<'a>(part: Option<&Part<'a>>) -> Option<std::borrow::Cow<'a, str>> {
    part.map(|p| String::from_utf8_lossy(p.content))
}

/// The `boundary` parameter of a `multipart/form-data` content type.
fn boundary_of(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let essence = params.next()?.trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| unquote(value.trim()))
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

/// A parameter value, without its quotes and backslash escapes.
fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    out.extend(chars.next());
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => value.to_owned(),
    }
}

/// One part of the form: its field name, whether it is a file, and its content.
struct Part<'a> {
    name: String,
    is_file: bool,
    content: &'a [u8],
}

/// The parts of a multipart body (RFC 7578), up to its closing delimiter.
fn parts<'a>(body: &'a [u8], boundary: &[u8]) -> Result<Vec<Part<'a>>, BodyError> {
    let malformed = |why: &str| BodyError::Form(format!("malformed multipart body: {why}"));
    let mut delimiter = b"--".to_vec();
    delimiter.extend_from_slice(boundary);
    let finder = memmem::Finder::new(&delimiter);
    let first = finder
        .find(body)
        .ok_or_else(|| malformed("no boundary line"))?;
    let mut at = first + delimiter.len();
    let mut out = Vec::new();
    loop {
        if body[at..].starts_with(b"--") {
            return Ok(out);
        }
        // The rest of the delimiter line (transport padding), then the part's headers.
        let line_end = memmem::find(&body[at..], b"\r\n")
            .ok_or_else(|| malformed("a boundary line without CRLF"))?;
        let start = at + line_end + 2;
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let (header_len, headers) = match httparse::parse_headers(&body[start..], &mut headers) {
            Ok(httparse::Status::Complete((len, headers))) => (len, headers),
            _ => return Err(malformed("a part's headers")),
        };
        let content_start = start + header_len;
        let mut next_delimiter = b"\r\n".to_vec();
        next_delimiter.extend_from_slice(&delimiter);
        let content_len = next_boundary(&body[content_start..], &next_delimiter)
            .ok_or_else(|| malformed("no closing boundary"))?;
        let disposition = headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-disposition"))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
            .unwrap_or_default();
        let (name, is_file) = disposition_of(&disposition);
        out.push(Part {
            name,
            is_file,
            content: &body[content_start..content_start + content_len],
        });
        at = content_start + content_len + next_delimiter.len();
    }
}

/// Where the next delimiter line starts in `rest`: `CRLF--boundary` followed by `--` or by
/// optional spaces and a CRLF, as Go's `multipart.Reader` decides (the same text followed by
/// anything else is content).
fn next_boundary(rest: &[u8], delimiter: &[u8]) -> Option<usize> {
    let mut from = 0;
    loop {
        let at = from + memmem::find(&rest[from..], delimiter)?;
        let after = &rest[at + delimiter.len()..];
        let trimmed = after
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t'))
            .map_or(&after[after.len()..], |i| &after[i..]);
        if after.starts_with(b"--") || trimmed.starts_with(b"\r\n") {
            return Some(at);
        }
        from = at + 1;
    }
}

/// The field name of a `Content-Disposition: form-data; name="…"[; filename="…"]` header,
/// and whether it names a file.
fn disposition_of(value: &str) -> (String, bool) {
    let mut name = String::new();
    let mut is_file = false;
    for param in value.split(';').skip(1) {
        if let Some((key, v)) = param.split_once('=') {
            match key.trim().to_ascii_lowercase().as_str() {
                "name" => name = unquote(v.trim()),
                "filename" | "filename*" => is_file = !unquote(v.trim()).is_empty() || is_file,
                _ => {}
            }
        }
    }
    (name, is_file)
}

/// `body` with a text field added as its last part, before the closing delimiter.
fn add_field(body: &[u8], boundary: &str, name: &str, value: &str) -> Option<Vec<u8>> {
    let closing = format!("--{boundary}--");
    let at = memmem::rfind(body, closing.as_bytes())?;
    let field = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
    );
    let mut out = Vec::with_capacity(body.len() + field.len());
    out.extend_from_slice(&body[..at]);
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(&body[at..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::dialect::KeepAlive;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn rules(default_model: &str) -> Rules<'_> {
        Rules {
            default_model,
            inject_usage: false,
            image_tokens: 768,
            keep_alive: KeepAlive::default(),
        }
    }

    fn form(fields: &[(&str, Option<&str>, &str)]) -> Vec<u8> {
        let mut out = String::new();
        for (name, filename, content) in fields {
            out.push_str("--XyZ\r\nContent-Disposition: form-data; name=\"");
            out.push_str(name);
            out.push('"');
            if let Some(f) = filename {
                out.push_str(&format!("; filename=\"{f}\"\r\nContent-Type: audio/wav"));
            }
            out.push_str("\r\n\r\n");
            out.push_str(content);
            out.push_str("\r\n");
        }
        out.push_str("--XyZ--\r\n");
        out.into_bytes()
    }

    /// The model, the audio and the prompt Ollama builds from the form.
    #[test]
    fn reads_the_form_as_ollama_does() {
        let body = form(&[
            ("model", None, "whisper"),
            ("language", None, "German"),
            ("prompt", None, "names: Anna"),
            (
                "file",
                Some("a.wav"),
                "RIFF\r\n--XyZ-not-a-boundary\r\nbytes",
            ),
        ]);
        let info = inspect_form(&body, Some(CT), None, &rules("d")).unwrap();
        assert_eq!(info.model, "whisper");
        assert_eq!(info.body, None);
        let system = format!("{SYSTEM_PROMPT} The audio is in German. Context: names: Anna");
        assert_eq!(
            info.prompt_tokens,
            count_tokens(&system) + count_tokens(USER_QUESTION) + 768
        );
    }

    /// No model: the default is added as a field, and the body stays a valid form.
    #[test]
    fn adds_the_default_model() {
        let body = form(&[("file", Some("a.wav"), "RIFF")]);
        let info = inspect_form(&body, Some(CT), None, &rules("whisper")).unwrap();
        assert_eq!(info.model, "whisper");
        let spliced = info.body.unwrap();
        let again = inspect_form(&spliced, Some(CT), None, &rules("")).unwrap();
        assert_eq!(again.model, "whisper");
    }

    /// What Go would read differently from a naive parser is refused.
    #[test]
    fn refuses_what_ollama_could_read_otherwise() {
        let two = form(&[
            ("model", None, "a"),
            ("model", None, "b"),
            ("file", Some("a.wav"), "x"),
        ]);
        assert_eq!(
            inspect_form(&two, Some(CT), None, &rules("d")).err(),
            Some(BodyError::AmbiguousField("model"))
        );
        let ok = form(&[("model", None, "a"), ("file", Some("a.wav"), "x")]);
        assert!(inspect_form(&ok, Some(CT), Some("model=b"), &rules("d")).is_err());
        assert!(inspect_form(&ok, Some("application/json"), None, &rules("d")).is_err());
        let no_file = form(&[("model", None, "a"), ("file", None, "x")]);
        assert!(inspect_form(&no_file, Some(CT), None, &rules("d")).is_err());
        // A file part named model is not the model.
        let file_model = form(&[
            ("model", Some("m.txt"), "evil"),
            ("file", Some("a.wav"), "x"),
        ]);
        let info = inspect_form(&file_model, Some(CT), None, &rules("d")).unwrap();
        assert_eq!(info.model, "d");
        assert!(inspect_form(b"--XyZ\r\nnot headers", Some(CT), None, &rules("d")).is_err());
        assert_eq!(
            boundary_of("Multipart/Form-Data; charset=utf-8; boundary=\"a b\""),
            Some("a b".into())
        );
    }
}
