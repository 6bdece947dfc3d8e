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
//! - more than one `model` value is refused ([`BodyError::AmbiguousField`]), as in JSON bodies;
//! - Go's multipart reader knows many more forms than clients send: RFC 2231 parameters
//!   (`name*=`), quoted-printable parts, LF-only framing, padding after a boundary, a part that
//!   starts with the next boundary. Rather than copy each (and risk reading another `model`
//!   than Ollama), the gateway accepts the one canonical form that HTTP clients send and
//!   refuses anything else with a 400 that says what to send: `multipart/form-data` with one
//!   plain `boundary`; the body starts with `--B` CRLF; each part has one
//!   `Content-Disposition: form-data; name="…"` (with `; filename="…"` for a file) and no
//!   other parameter, no `Content-Transfer-Encoding`; each boundary line is exactly
//!   `--B` CRLF or, last, `--B--`.

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
            "the body must be multipart/form-data with one plain boundary parameter (Content-Type: multipart/form-data; boundary=…)"
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
        // First, so that it is the value Go's FormValue reads whatever else the form has.
        let spliced = with_first_field(body, &boundary, "model", rules.default_model);
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

/// The `boundary` parameter of a `multipart/form-data` content type: exactly one, plain
/// (no RFC 2231 `boundary*`, which Go would prefer), of the characters RFC 2046 allows.
fn boundary_of(content_type: &str) -> Option<String> {
    let (kind, params) = media_type(content_type)?;
    if kind != "multipart/form-data" || params.iter().any(|(name, _)| name.contains('*')) {
        return None;
    }
    let mut boundaries = params.into_iter().filter(|(name, _)| name == "boundary");
    let (_, boundary) = boundaries.next()?;
    let bchar = |c: char| c.is_ascii_alphanumeric() || "'()+_,-./:=? ".contains(c);
    (boundaries.next().is_none()
        && (1..=70).contains(&boundary.len())
        && boundary.chars().all(bchar)
        && !boundary.ends_with(' '))
    .then_some(boundary)
}

/// `type; name=value; name="quoted value"` → the type and the parameters, names in lower
/// case, as Go's `mime.ParseMediaType` reads them; `None` for anything outside that plain
/// grammar (a backslash in a quoted value, which Go reads its own way) or a repeated
/// parameter (which Go refuses).
fn media_type(value: &str) -> Option<(String, Vec<(String, String)>)> {
    fn token(c: char) -> bool {
        c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c)
    }
    fn token_len(s: &str) -> usize {
        s.find(|c: char| !token(c)).unwrap_or(s.len())
    }
    let (kind, mut rest) = value.split_at(value.find(';').unwrap_or(value.len()));
    let kind = kind.trim().to_ascii_lowercase();
    let (major, minor) = kind.split_once('/')?;
    if token_len(major) != major.len() || token_len(minor) != minor.len() || major.is_empty() {
        return None;
    }
    let mut params: Vec<(String, String)> = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Some((kind, params));
        }
        rest = rest.strip_prefix(';')?.trim_start();
        if rest.is_empty() {
            return Some((kind, params));
        }
        let name_len = token_len(rest);
        if name_len == 0 {
            return None;
        }
        let name = rest[..name_len].to_ascii_lowercase();
        rest = rest[name_len..]
            .trim_start()
            .strip_prefix('=')?
            .trim_start();
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            let inner = &quoted[..end];
            if inner.contains(['\\', '\r', '\n']) {
                return None;
            }
            rest = &quoted[end + 1..];
            inner.to_owned()
        } else {
            let len = token_len(rest);
            if len == 0 {
                return None;
            }
            let plain = rest[..len].to_owned();
            rest = &rest[len..];
            plain
        };
        if params.iter().any(|(n, _)| *n == name) {
            return None;
        }
        params.push((name, value));
    }
}

/// One part of the form: its field name, whether it is a file, and its content.
struct Part<'a> {
    name: String,
    is_file: bool,
    content: &'a [u8],
}

/// The parts of a multipart body in the canonical form (see the module's doc), up to its
/// closing delimiter; an error naming what is off for anything else.
fn parts<'a>(body: &'a [u8], boundary: &[u8]) -> Result<Vec<Part<'a>>, BodyError> {
    let refuse = |why: &str| {
        BodyError::Form(format!(
            "the multipart body is not in the form this gateway reads ({why}); send it as HTTP clients do: each part as --BOUNDARY, CRLF, Content-Disposition: form-data; name=\"…\", CRLF CRLF, the content, CRLF"
        ))
    };
    let mut dash_boundary = b"--".to_vec();
    dash_boundary.extend_from_slice(boundary);
    let mut delimiter = b"\r\n".to_vec();
    delimiter.extend_from_slice(&dash_boundary);
    if !body.starts_with(&dash_boundary) || !body[dash_boundary.len()..].starts_with(b"\r\n") {
        return Err(refuse("it must start with the boundary line"));
    }
    let finder = memmem::Finder::new(&delimiter);
    let mut at = dash_boundary.len() + 2;
    let mut out = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let (header_len, headers) = match httparse::parse_headers(&body[at..], &mut headers) {
            Ok(httparse::Status::Complete((len, headers))) => (len, headers),
            _ => return Err(refuse("a part's headers")),
        };
        let content_start = at + header_len;
        // Go reads a part that starts with the boundary as empty, and that line as the next.
        if body[content_start..].starts_with(&dash_boundary) {
            return Err(refuse("an empty part without its CRLF"));
        }
        let (name, is_file) = part_headers(headers).ok_or_else(|| refuse("a part's headers"))?;
        let content_len = finder
            .find(&body[content_start..])
            .ok_or_else(|| refuse("no closing boundary"))?;
        out.push(Part {
            name,
            is_file,
            content: &body[content_start..content_start + content_len],
        });
        let after = &body[content_start + content_len + delimiter.len()..];
        if let Some(rest) = after.strip_prefix(b"--") {
            // The close delimiter: nothing but a line end (then Go's ignored epilogue).
            return if rest.is_empty() || rest.starts_with(b"\r\n") {
                Ok(out)
            } else {
                Err(refuse("text after the closing boundary"))
            };
        }
        if !after.starts_with(b"\r\n") {
            // `--B` + anything but CRLF: Go may read padding as a boundary, or the text as
            // content: either way the gateway might not.
            return Err(refuse(
                "the boundary text inside a part, or padding after a boundary",
            ));
        }
        at = content_start + content_len + delimiter.len() + 2;
    }
}

/// A part's field name and whether it is a file, from exactly one
/// `Content-Disposition: form-data; name="…"[; filename="…"]` header; `None` for anything
/// else (other parameters, RFC 2231 forms, a transfer encoding Go would decode).
fn part_headers(headers: &[httparse::Header<'_>]) -> Option<(String, bool)> {
    if headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("content-transfer-encoding"))
    {
        return None;
    }
    let mut dispositions = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-disposition"));
    let disposition = std::str::from_utf8(dispositions.next()?.value).ok()?;
    if dispositions.next().is_some() {
        return None;
    }
    let (kind, params) = media_type_disposition(disposition)?;
    if kind != "form-data" {
        return None;
    }
    let mut name = None;
    let mut is_file = false;
    for (param, value) in params {
        match param.as_str() {
            "name" => name = Some(value),
            "filename" => is_file = !value.is_empty(),
            _ => return None,
        }
    }
    Some((name?, is_file))
}

/// A `Content-Disposition` value: a type without a slash, then parameters as in
/// [`media_type`].
fn media_type_disposition(value: &str) -> Option<(String, Vec<(String, String)>)> {
    let (kind, rest) = value.split_at(value.find(';').unwrap_or(value.len()));
    let (_, params) = media_type(&format!("x/{}{rest}", kind.trim()))?;
    Some((kind.trim().to_ascii_lowercase(), params))
}

/// `body` with a text field added as its first part.
fn with_first_field(body: &[u8], boundary: &str, name: &str, value: &str) -> Vec<u8> {
    let field = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
    );
    let mut out = Vec::with_capacity(body.len() + field.len());
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(body);
    out
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
            ("file", Some("a.wav"), "RIFF\r\n--Xy-almost\r\nbytes"),
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

    /// Forms that Go's reader would read another way than a simple parser (RFC 2231 names,
    /// quoted-printable, padding, an empty part, a quoted semicolon, a second boundary
    /// parameter): refused, never read as another model.
    #[test]
    fn refuses_every_form_but_the_canonical_one() {
        let part = |disposition: &str, extra: &str, content: &str| {
            format!(
                "--XyZ\r\nContent-Disposition: {disposition}\r\n{extra}\r\n{content}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF\r\n--XyZ--\r\n"
            )
        };
        for body in [
            part("form-data; name*=utf-8''model", "", "kimi:cloud"),
            part("form-data; name=\"model\"; x=\"; name=zzz\"", "", "kimi:cloud"),
            part("form-data; name=\"model\"; filename*=bogus", "", "kimi:cloud"),
            part("attachment; name=\"model\"", "", "kimi:cloud"),
            part("form-data; name=\"model\"; name=\"x\"", "", "kimi:cloud"),
            part(
                "form-data; name=\"model\"",
                "Content-Transfer-Encoding: quoted-printable\r\n",
                "kimi=3Acloud",
            ),
            part("form-data; name=\"m\\odel\"", "", "kimi:cloud"),
            // A part that starts with the next boundary line.
            "--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nkimi:cloud\r\n--XyZ--\r\n".into(),
            // Padding after a boundary, which Go accepts as a boundary line.
            "--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nx\r\n--XyZ \r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nkimi:cloud\r\n--XyZ--\r\n".into(),
            // LF-only framing, and a preamble.
            "--XyZ\nContent-Disposition: form-data; name=\"model\"\n\nkimi:cloud\n--XyZ--\n".into(),
            "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--XyZ--\r\n".into(),
            // Text after the close delimiter on its line.
            "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--XyZ--x".into(),
        ] {
            let err = inspect_form(body.as_bytes(), Some(CT), None, &rules("d"));
            assert!(matches!(err, Err(BodyError::Form(_))), "{body:?}: {:?}", err.map(|i| i.model));
        }
        let ok = form(&[("model", None, "a"), ("file", Some("a.wav"), "x")]);
        for ct in [
            "multipart/form-data; boundary=XyZ; boundary*=utf-8''Other",
            "multipart/form-data; boundary=XyZ; boundary=XyZ",
            "multipart/mixed; boundary=XyZ",
        ] {
            assert!(
                inspect_form(&ok, Some(ct), None, &rules("d")).is_err(),
                "{ct}"
            );
        }
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
        assert_eq!(boundary_of("multipart/form-data; boundary=\"a b \""), None);
    }
}
