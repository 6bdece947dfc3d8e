//! Request side: read a counted request's JSON body once, default its model, decide whether
//! the answer streams, count the prompt text and (for OpenAI streams) ask Ollama for usage.
//!
//! Ollama decodes request bodies with Go's `encoding/json`, which matches keys
//! case-insensitively and lets the last duplicate win. The gateway must see the same `model`
//! as Ollama (it authorises on it), so more than one key matching `model`, `stream` or
//! `stream_options` is rejected ([`BodyError::AmbiguousField`]); a single differently-cased
//! key is read as Go reads it. Counted text fields are summed over every matching key, so
//! re-casing or repeating a key cannot hide prompt text from the meter.

use std::borrow::Cow;

use bytes::Bytes;

use super::json::{go_key_matches, Json};
use super::keep_alive::{number_seconds, string_seconds, KeepAlive, Verdict};
use super::tokens::count_tokens;
use super::Api;

/// What the operator's configuration asks of every counted request body.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    /// Written when `model` is absent, null or `""` (unless this is empty, in which case the
    /// body is left for Ollama to refuse).
    pub default_model: &'a str,
    /// Ask Ollama for usage on OpenAI chat/completions streams (`upstream` counting).
    pub inject_usage: bool,
    /// Prompt tokens counted per image or audio part (`quota.image_tokens`): Ollama renders
    /// each into hundreds of tokens of the prompt, none of them visible as text.
    pub image_tokens: u64,
    /// Bounds on `keep_alive` on the native routes.
    pub keep_alive: KeepAlive,
}

/// What the gateway needs to know about a counted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// The model, after defaulting.
    pub model: String,
    /// Effective streaming: `/api/generate` and `/api/chat` stream when `stream` is absent or
    /// null; every other API only on `"stream": true`.
    pub stream: bool,
    /// `cl100k_base` count of all prompt text (see [`inspect_request`]).
    pub prompt_tokens: u64,
    /// `Some(new body)` only when the body had to be rewritten; `None` = forward the original
    /// bytes untouched.
    pub body: Option<Bytes>,
    /// OpenAI chat/completions stream whose client set `stream_options.include_usage: true`.
    pub client_wants_usage: bool,
    /// We added `stream_options.include_usage: true` ourselves, so the usage chunk must be
    /// stripped from the response ([`super::Meter::new`] with `strip_usage_chunk`).
    pub usage_injected: bool,
    /// The client's own output limit (`options.num_predict`, `max_tokens`…), if it set one.
    pub client_output_limit: Option<u64>,
    /// The first web search tool the request gives the model (`/v1/responses` tool
    /// `type: "web_search"`, `/v1/messages` tools `web_search_*`): Ollama runs those searches
    /// on the host's ollama.com account.
    pub web_search_tool: Option<String>,
}

/// Why a counted request body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// Not parseable as JSON (includes an empty body).
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// Valid JSON, but not an object.
    #[error("request body must be a JSON object")]
    NotAnObject,
    /// A multipart form (`/v1/audio/transcriptions`) that cannot be read as Ollama reads it.
    #[error("{0}")]
    Form(String),
    /// `model` is present but neither a string nor null.
    #[error("request field `model` must be a string")]
    BadModel,
    /// More than one key that Ollama would read as this field (a repeated key, or keys that
    /// differ only in letter case): the gateway and Ollama could disagree on its value.
    #[error(
        "request body has more than one `{0}` field (repeated, or differing only in letter case)"
    )]
    AmbiguousField(&'static str),
    /// A field the prompt is counted from has a type Ollama does not accept there (it would
    /// fail or read it as empty, and the gateway would count nothing).
    #[error("request field `{field}` must be {expected}")]
    FieldType {
        field: &'static str,
        expected: &'static str,
    },
}

/// How the `model` member has to change.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ModelEdit {
    Keep,
    /// Absent: add `"model": default`.
    Add,
    /// Null or empty at this member index: replace it.
    Replace(usize),
}

/// Parses a counted request's JSON body.
///
/// - Writes `rules.default_model` when `model` is absent, null or `""`.
/// - When `rules.inject_usage` is set and the API is OpenAI chat/completions with
///   `stream: true` and the client did not ask already, adds
///   `"stream_options":{"include_usage":true}` (merged into an existing `stream_options`
///   object).
/// - Bounds `keep_alive` on the native routes ([`KeepAlive`]): too long or forever becomes
///   the maximum in seconds, an unload is removed unless allowed, a value Ollama would refuse
///   is a [`BodyError::FieldType`].
/// - The body is re-encoded only when something changed. Added members are spliced in before
///   the closing brace, so the original bytes are kept; a replaced `model` or a merged
///   `stream_options` re-serialises the (order-preserving) tree.
///
/// Prompt text counted (each string separately, with [`count_tokens`]), plus
/// `rules.image_tokens` for each image or audio part (native `images`, OpenAI `image_url` and
/// `input_audio`, Responses `input_image`, Anthropic `image` blocks):
/// - Generate: `system`, `prompt`, `suffix`, `template` (Ollama renders the prompt with it),
///   plus one token per id of the legacy `context`.
/// - Chat / OpenAiChat: every `messages[].content` (a string, or content parts: `text` of
///   each part; image parts are skipped), `messages[].thinking` (native) or `.reasoning`
///   (OpenAI), `messages[].tool_calls[].function.name` and `.arguments`, and the `tools`
///   definitions (every key and string).
/// - Embed / OpenAiEmbeddings: `input` (a string or an array of strings; token-id arrays
///   count one token per id). EmbeddingsLegacy: `prompt`.
/// - OpenAiCompletions: `prompt` (string, array of strings or token ids) and `suffix`.
/// - Responses: `instructions` + `input` (a string, or items: `content` as a string or parts
///   with `text`, function-call `arguments`, function-call `output`, reasoning
///   `encrypted_content`) + `tools`.
/// - Messages: `system` (a string or text blocks) + `messages[].content` (a string, or
///   blocks: `text`, `thinking`, tool_use `input`, tool_result `content`) + `tools`.
pub fn inspect_request(api: Api, body: &[u8], rules: &Rules<'_>) -> Result<RequestInfo, BodyError> {
    if api == Api::Transcriptions {
        return Err(BodyError::Form(
            "a transcription is a multipart form, not JSON".into(),
        ));
    }
    let default_model = rules.default_model;
    let mut root: Json<'_> =
        serde_json::from_slice(body).map_err(|e| BodyError::InvalidJson(e.to_string()))?;
    let Json::Obj(members) = &root else {
        return Err(BodyError::NotAnObject);
    };
    let model_at = unique_field(members, "model")?;
    let stream_at = unique_field(members, "stream")?;
    let options_at = unique_field(members, "stream_options")?;
    let keep_alive = match api.takes_keep_alive() {
        true => match unique_field(members, "keep_alive")? {
            Some(i) => Some((i, keep_alive_verdict(&members[i].1, &rules.keep_alive)?))
                .filter(|(_, verdict)| *verdict != Verdict::Keep),
            None => None,
        },
        false => None,
    };

    let (model, model_edit) = match model_at.map(|i| (i, &members[i].1)) {
        Some((_, Json::Str(s))) if !s.is_empty() => (s.to_string(), ModelEdit::Keep),
        Some((_, Json::Str(_) | Json::Null)) | None if default_model.is_empty() => {
            (String::new(), ModelEdit::Keep)
        }
        Some((i, Json::Str(_) | Json::Null)) => (default_model.to_owned(), ModelEdit::Replace(i)),
        None => (default_model.to_owned(), ModelEdit::Add),
        Some(_) => return Err(BodyError::BadModel),
    };

    let stream = match stream_at.map(|i| &members[i].1) {
        Some(Json::Bool(b)) => *b,
        _ => api.streams_by_default(),
    };
    let usage_api = api.takes_stream_options() && stream;
    let client_wants_usage = usage_api
        && options_at.is_some_and(|i| {
            matches!(
                members[i].1.fields("include_usage").last(),
                Some(Json::Bool(true))
            )
        });
    let usage_injected = rules.inject_usage && usage_api && !client_wants_usage;

    check_types(api, &root)?;
    let prompt_tokens = prompt_tokens(api, &root) + rules.image_tokens * media_parts(api, &root);
    let client_output_limit = super::output_limit::client_limit(api, &root);
    let web_search_tool = web_search_tool(api, &root);

    // A replaced model or a merged stream_options needs the tree; additions are spliced.
    let edit_tree = matches!(model_edit, ModelEdit::Replace(_))
        || (usage_injected && options_at.is_some())
        || keep_alive.is_some();
    let body = if model_edit == ModelEdit::Keep && !usage_injected && keep_alive.is_none() {
        None
    } else if !edit_tree {
        // Only members to add: splice them in front of the closing brace.
        let model_value = Json::Str(Cow::Borrowed(&model));
        let usage_value = include_usage_object();
        let mut additions: Vec<(&str, &Json<'_>)> = Vec::with_capacity(2);
        if model_edit == ModelEdit::Add {
            additions.push(("model", &model_value));
        }
        if usage_injected {
            additions.push(("stream_options", &usage_value));
        }
        Some(append_members(body, !members.is_empty(), &additions)?)
    } else {
        if let Json::Obj(members) = &mut root {
            match model_edit {
                ModelEdit::Keep => {}
                ModelEdit::Add => members.push(("model".into(), Json::Str(model.clone().into()))),
                ModelEdit::Replace(i) => {
                    members[i] = ("model".into(), Json::Str(model.clone().into()));
                }
            }
            if usage_injected {
                match options_at {
                    Some(i) => {
                        members[i].0 = "stream_options".into();
                        merge_include_usage(&mut members[i].1);
                    }
                    None => members.push(("stream_options".into(), include_usage_object())),
                }
            }
            // Last: the edits above only replace or append, so the index still holds.
            match keep_alive {
                Some((i, Verdict::Clamp(seconds))) => members[i].1 = seconds_value(seconds),
                Some((i, Verdict::Remove)) => {
                    members.remove(i);
                }
                Some((_, Verdict::Keep)) | None => {}
            }
        }
        Some(serde_json::to_vec(&root).map_err(|e| BodyError::InvalidJson(e.to_string()))?)
    };

    Ok(RequestInfo {
        model,
        stream,
        prompt_tokens,
        body: body.map(Bytes::from),
        client_wants_usage,
        usage_injected,
        client_output_limit,
        web_search_tool,
    })
}

/// The `type` of the first tool Ollama would run as a web search: `web_search` on
/// `/v1/responses` (`openai/responses.go`, `isWebSearchTool`), any `web_search*` on
/// `/v1/messages` (`middleware/anthropic.go`, `hasWebSearchTool`). Matched without regard to
/// case, so that no future spelling slips through.
fn web_search_tool(api: Api, root: &Json<'_>) -> Option<String> {
    if !matches!(api, Api::Responses | Api::Messages) {
        return None;
    }
    root.fields("tools")
        .flat_map(Json::items)
        .flat_map(|tool| tool.fields("type"))
        .filter_map(Json::as_str)
        .find(|t| {
            // Ollama's cloud proxy trims the type (`server/cloud_proxy.go`).
            t.trim()
                .get(..10)
                .is_some_and(|head| head.eq_ignore_ascii_case("web_search"))
        })
        .map(str::to_owned)
}

/// Index of the one member Go would decode into field `name`; an error if several would.
fn unique_field(
    members: &[(Cow<'_, str>, Json<'_>)],
    name: &'static str,
) -> Result<Option<usize>, BodyError> {
    let mut found = None;
    for (i, (key, _)) in members.iter().enumerate() {
        if go_key_matches(key, name) {
            if found.is_some() {
                return Err(BodyError::AmbiguousField(name));
            }
            found = Some(i);
        }
    }
    Ok(found)
}

/// The counted fields have the types their API accepts (absent or null is fine: Ollama
/// treats them as empty).
fn check_types(api: Api, root: &Json<'_>) -> Result<(), BodyError> {
    const STRING: &str = "a string";
    const ARRAY: &str = "an array of messages";
    const STRING_OR_ARRAY: &str = "a string or an array";
    let (string, array) = (
        |v: &Json<'_>| matches!(v, Json::Str(_)),
        |v: &Json<'_>| matches!(v, Json::Arr(_)),
    );
    let checks: &[(&'static str, &'static str)] = match api {
        Api::Generate => &[("prompt", STRING), ("system", STRING), ("suffix", STRING)],
        Api::Chat | Api::OpenAiChat => &[("messages", ARRAY)],
        Api::Messages => &[("messages", ARRAY), ("system", STRING_OR_ARRAY)],
        Api::EmbeddingsLegacy => &[("prompt", STRING)],
        Api::Embed | Api::OpenAiEmbeddings => &[("input", STRING_OR_ARRAY)],
        Api::OpenAiCompletions => &[("prompt", STRING_OR_ARRAY), ("suffix", STRING)],
        Api::Responses => &[("input", STRING_OR_ARRAY), ("instructions", STRING)],
        Api::Transcriptions => &[],
    };
    for &(field, expected) in checks {
        for value in root.fields(field) {
            let ok = matches!(value, Json::Null)
                || match expected {
                    STRING => string(value),
                    ARRAY => array(value),
                    _ => string(value) || array(value),
                };
            if !ok {
                return Err(BodyError::FieldType { field, expected });
            }
        }
    }
    Ok(())
}

/// How `keep_alive` must change; a value Ollama would refuse (`api.Duration` takes a number or
/// a Go duration string) is an error here too.
fn keep_alive_verdict(value: &Json<'_>, rules: &KeepAlive) -> Result<Verdict, BodyError> {
    let refused = BodyError::FieldType {
        field: "keep_alive",
        expected: "a number of seconds or a duration such as \"5m\"",
    };
    let seconds = match value {
        // Go leaves a pointer field nil for null: the host's default applies.
        Json::Null => return Ok(Verdict::Keep),
        Json::Num(n) => number_seconds(n.as_f64().ok_or(refused)?),
        Json::Str(s) => string_seconds(s).ok_or(refused)?,
        _ => return Err(refused),
    };
    Ok(rules.judge(seconds))
}

fn seconds_value(seconds: u64) -> Json<'static> {
    Json::Num(serde_json::Number::from(seconds))
}

fn include_usage_object() -> Json<'static> {
    Json::Obj(vec![("include_usage".into(), Json::Bool(true))])
}

/// Sets `include_usage: true` in a `stream_options` value (replacing a non-object).
fn merge_include_usage(options: &mut Json<'_>) {
    if let Json::Obj(members) = options {
        members.retain(|(k, _)| !go_key_matches(k, "include_usage"));
        members.push(("include_usage".into(), Json::Bool(true)));
    } else {
        *options = include_usage_object();
    }
}

/// The body with `additions` inserted as the last members of its top-level object.
fn append_members(
    body: &[u8],
    non_empty: bool,
    additions: &[(&str, &Json<'_>)],
) -> Result<Vec<u8>, BodyError> {
    let close = body
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .filter(|&i| body[i] == b'}')
        .ok_or(BodyError::NotAnObject)?;
    let mut out = Vec::with_capacity(body.len() + 64);
    out.extend_from_slice(&body[..close]);
    let mut comma = non_empty;
    for (key, value) in additions {
        if comma {
            out.push(b',');
        }
        comma = true;
        serde_json::to_writer(&mut out, key).map_err(|e| BodyError::InvalidJson(e.to_string()))?;
        out.push(b':');
        serde_json::to_writer(&mut out, value)
            .map_err(|e| BodyError::InvalidJson(e.to_string()))?;
    }
    out.extend_from_slice(&body[close..]);
    Ok(out)
}

fn prompt_tokens(api: Api, root: &Json<'_>) -> u64 {
    match api {
        // A form, read by `inspect_form`.
        Api::Transcriptions => 0,
        Api::Generate => {
            texts(root, "system")
                + texts(root, "prompt")
                + texts(root, "suffix")
                + texts(root, "template")
                + root.fields("context").map(inputs).sum::<u64>()
        }
        Api::Chat => chat_messages(root, "thinking") + tools(root),
        Api::OpenAiChat => chat_messages(root, "reasoning") + tools(root),
        Api::Embed | Api::OpenAiEmbeddings => root.fields("input").map(inputs).sum(),
        Api::EmbeddingsLegacy => texts(root, "prompt"),
        Api::OpenAiCompletions => {
            root.fields("prompt").map(inputs).sum::<u64>() + texts(root, "suffix")
        }
        Api::Responses => {
            texts(root, "instructions")
                + root.fields("input").map(responses_input).sum::<u64>()
                + tools(root)
        }
        Api::Messages => {
            root.fields("system").map(content).sum::<u64>()
                + root
                    .fields("messages")
                    .flat_map(Json::items)
                    .map(|m| m.fields("content").map(content).sum::<u64>())
                    .sum::<u64>()
                + tools(root)
        }
    }
}

fn text(v: &Json<'_>) -> u64 {
    v.as_str().map_or(0, count_tokens)
}

/// Sum over every member of `obj` that Go reads as field `name`, when it is a string.
fn texts(obj: &Json<'_>, name: &str) -> u64 {
    obj.fields(name).map(text).sum()
}

/// A prompt/input value: a string, a token id (one token), or an array of those (nested
/// arrays of token ids included).
fn inputs(v: &Json<'_>) -> u64 {
    match v {
        Json::Str(s) => count_tokens(s),
        Json::Num(_) => 1,
        Json::Arr(items) => items.iter().map(inputs).sum(),
        _ => 0,
    }
}

/// `messages` of a chat request; `reasoning` names the field that carries earlier thinking.
fn chat_messages(root: &Json<'_>, reasoning: &str) -> u64 {
    root.fields("messages")
        .flat_map(Json::items)
        .map(|m| {
            m.fields("content").map(content).sum::<u64>()
                + texts(m, reasoning)
                + m.fields("tool_calls")
                    .flat_map(Json::items)
                    .flat_map(|call| call.fields("function"))
                    .map(|f| texts(f, "name") + f.fields("arguments").map(arguments).sum::<u64>())
                    .sum::<u64>()
        })
        .sum()
}

/// Message content: a string, one part, or an array of parts.
fn content(v: &Json<'_>) -> u64 {
    match v {
        Json::Str(s) => count_tokens(s),
        Json::Arr(parts) => parts.iter().map(content).sum(),
        Json::Obj(_) => content_part(v),
        _ => 0,
    }
}

/// One content part / block / item: its text-bearing fields. Parts without any (images,
/// audio, files) count nothing.
fn content_part(p: &Json<'_>) -> u64 {
    texts(p, "text")
        + texts(p, "thinking")
        + p.fields("content").map(content).sum::<u64>()
        + p.fields("input").map(walk).sum::<u64>()
        + p.fields("arguments").map(arguments).sum::<u64>()
        + p.fields("output").map(content).sum::<u64>()
}

/// Tool-call arguments: a JSON string (OpenAI) or an object (Ollama, Anthropic).
fn arguments(v: &Json<'_>) -> u64 {
    match v {
        Json::Str(s) => count_tokens(s),
        other => walk(other),
    }
}

/// `/v1/responses` `input`: a string or an array of items.
fn responses_input(v: &Json<'_>) -> u64 {
    match v {
        Json::Str(s) => count_tokens(s),
        Json::Arr(items) => items
            .iter()
            .map(|item| match item {
                Json::Str(s) => count_tokens(s),
                Json::Obj(_) => content_part(item) + texts(item, "encrypted_content"),
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

/// Images and audio clips in the request, wherever the route carries them: native `images`
/// (on generate, and on each chat message), OpenAI `image_url` / `input_audio` parts,
/// Responses `input_image` items and Anthropic `image` blocks. Each costs the model hundreds
/// of prompt tokens that no text shows.
fn media_parts(api: Api, root: &Json<'_>) -> u64 {
    fn images(v: &Json<'_>) -> u64 {
        v.fields("images").map(|i| i.items().len() as u64).sum()
    }
    /// Parts anywhere below `v` whose `type` names an image or audio.
    fn typed(v: &Json<'_>) -> u64 {
        match v {
            Json::Arr(items) => items.iter().map(typed).sum(),
            Json::Obj(members) => {
                let media = v.fields("type").any(|t| {
                    matches!(
                        t.as_str(),
                        Some("image_url" | "input_image" | "image" | "input_audio" | "audio")
                    )
                });
                u64::from(media) + members.iter().map(|(_, v)| typed(v)).sum::<u64>()
            }
            _ => 0,
        }
    }
    match api {
        Api::Generate => images(root),
        Api::Chat => root
            .fields("messages")
            .flat_map(Json::items)
            .map(images)
            .sum(),
        Api::OpenAiChat => root.fields("messages").map(typed).sum(),
        Api::Responses => root.fields("input").map(typed).sum(),
        Api::Messages => {
            root.fields("messages").map(typed).sum::<u64>()
                + root.fields("system").map(typed).sum::<u64>()
        }
        _ => 0,
    }
}

/// Tool definitions are rendered into the prompt: count them.
fn tools(root: &Json<'_>) -> u64 {
    root.fields("tools").map(walk).sum()
}

/// Every object key and string value of a JSON value.
fn walk(v: &Json<'_>) -> u64 {
    match v {
        Json::Str(s) => count_tokens(s),
        Json::Arr(items) => items.iter().map(walk).sum(),
        Json::Obj(members) => members.iter().map(|(k, v)| count_tokens(k) + walk(v)).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    const DEFAULT: &str = "llama3.2:1b";

    /// The rules of these tests: images count nothing (their own test sets a price), the
    /// default `keep_alive` bounds.
    fn rules(default_model: &str, inject_usage: bool) -> Rules<'_> {
        Rules {
            default_model,
            inject_usage,
            image_tokens: 0,
            keep_alive: KeepAlive::default(),
        }
    }

    fn inspect(api: Api, body: &serde_json::Value) -> RequestInfo {
        inspect_request(api, body.to_string().as_bytes(), &rules(DEFAULT, true)).unwrap()
    }

    fn ct(parts: &[&str]) -> u64 {
        parts.iter().map(|p| count_tokens(p)).sum()
    }

    fn new_body(info: &RequestInfo) -> serde_json::Value {
        serde_json::from_slice(info.body.as_ref().expect("body rewritten")).unwrap()
    }

    /// `keep_alive` on the native routes, as Ollama reads it (seconds, Go durations, negative =
    /// forever): bounded by the maximum, an unload removed, a value Ollama refuses is a 400;
    /// the `/v1` routes have no such field and pass it on untouched.
    #[test]
    fn keep_alive_is_bounded() {
        let with = |api: Api, keep_alive: serde_json::Value| {
            let body = json!({"model":"m","prompt":"x","messages":[{"role":"user","content":"x"}],"keep_alive":keep_alive});
            inspect_request(api, body.to_string().as_bytes(), &rules(DEFAULT, false))
        };
        for (sent, forwarded) in [
            (json!(-1), Some(json!(3600))),
            (json!("-1m"), Some(json!(3600))),
            (json!("24h"), Some(json!(3600))),
            (json!(86400.5), Some(json!(3600))),
            (json!(0), None),
            (json!("0s"), None),
            (json!(1e-10), None),
            (json!("1ns"), None),
            (json!("10s"), None),
        ] {
            for api in [Api::Generate, Api::Chat, Api::Embed, Api::EmbeddingsLegacy] {
                let info = with(api, sent.clone()).unwrap();
                let body = new_body(&info);
                assert_eq!(body.get("keep_alive"), forwarded.as_ref(), "{api:?} {sent}");
                assert_eq!(body["model"], "m");
            }
        }
        for kept in [json!("30m"), json!(600), json!(null), json!("1h")] {
            assert_eq!(with(Api::Chat, kept.clone()).unwrap().body, None, "{kept}");
        }
        for refused in [json!("forever"), json!(true), json!([1])] {
            let err = with(Api::Generate, refused.clone()).unwrap_err();
            assert!(err.to_string().contains("keep_alive"), "{refused}: {err}");
        }
        let err = inspect_request(
            Api::Chat,
            br#"{"keep_alive":-1,"Keep_Alive":5}"#,
            &rules(DEFAULT, false),
        )
        .unwrap_err();
        assert_eq!(err, BodyError::AmbiguousField("keep_alive"));
        assert_eq!(with(Api::OpenAiChat, json!(-1)).unwrap().body, None);
        // An operator who allows unloading gets 0 through.
        let unload = Rules {
            keep_alive: KeepAlive {
                allow_unload: true,
                ..KeepAlive::default()
            },
            ..rules(DEFAULT, false)
        };
        let info = inspect_request(Api::Chat, br#"{"model":"m","keep_alive":0}"#, &unload).unwrap();
        assert_eq!(info.body, None);
    }

    /// Web search tools are found on the routes where Ollama runs them, in any case.
    #[test]
    fn web_search_tools_are_found() {
        let tools = json!([{"type":"function","name":"f"},{"type":"Web_Search_20250305","name":"web_search"}]);
        let info = inspect(
            Api::Responses,
            &json!({"input":"a","tools":[{"type":" web_search "}]}),
        );
        assert!(info.web_search_tool.is_some());
        for api in [Api::Responses, Api::Messages] {
            let info = inspect(
                api,
                &json!({"input":"a","max_tokens":5,"messages":[],"tools":tools}),
            );
            assert_eq!(
                info.web_search_tool.as_deref(),
                Some("Web_Search_20250305"),
                "{api:?}"
            );
        }
        let info = inspect(
            Api::Responses,
            &json!({"input":"a","tools":[{"type":"web_search"}]}),
        );
        assert_eq!(info.web_search_tool.as_deref(), Some("web_search"));
        let info = inspect(
            Api::Responses,
            &json!({"input":"a","tools":[{"type":"function","name":"web_search"}]}),
        );
        assert_eq!(info.web_search_tool, None);
        let info = inspect(
            Api::OpenAiChat,
            &json!({"messages":[],"tools":[{"type":"web_search"}]}),
        );
        assert_eq!(info.web_search_tool, None);
    }

    /// `template` is rendered into the prompt; every image and audio part costs
    /// `image_tokens`, on every route that carries them.
    #[test]
    fn template_and_media_are_counted() {
        let info = inspect(
            Api::Generate,
            &json!({"prompt":"hi","template":"{{ .Prompt }} please"}),
        );
        assert_eq!(info.prompt_tokens, ct(&["hi", "{{ .Prompt }} please"]));
        let priced = Rules {
            image_tokens: 768,
            ..rules(DEFAULT, false)
        };
        for (api, body, media) in [
            (
                Api::Generate,
                json!({"prompt":"a","images":["aGk=","aGk="]}),
                2,
            ),
            (
                Api::Chat,
                json!({"messages":[{"role":"user","content":"a","images":["aGk="]},{"role":"user","content":"b","images":["aGk="]}]}),
                2,
            ),
            (
                Api::OpenAiChat,
                json!({"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:image/png;base64,aGk="}},{"type":"input_audio","input_audio":{"data":"aGk=","format":"wav"}}]}]}),
                2,
            ),
            (
                Api::Responses,
                json!({"input":[{"role":"user","content":[{"type":"input_text","text":"a"},{"type":"input_image","image_url":"data:image/png;base64,aGk="}]}]}),
                1,
            ),
            (
                Api::Messages,
                json!({"max_tokens":9,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"aGk="}},{"type":"text","text":"a"}]}]}),
                1,
            ),
        ] {
            let raw = body.to_string();
            let free = inspect_request(api, raw.as_bytes(), &rules(DEFAULT, false)).unwrap();
            let paid = inspect_request(api, raw.as_bytes(), &priced).unwrap();
            assert_eq!(
                paid.prompt_tokens,
                free.prompt_tokens + 768 * media,
                "{api:?}"
            );
        }
    }

    /// /api/generate counts system + prompt + suffix (+ one per context id), not images;
    /// streams by default; a body with a model is forwarded untouched.
    #[test]
    fn generate() {
        let body = json!({"model":"m","system":"You are terse.","prompt":"Why is the sky blue?",
            "suffix":"Thanks.","images":["iVBORw0KGgoAAAANSUhEUgAA"],"context":[1,2,3]});
        let info = inspect(Api::Generate, &body);
        assert_eq!(info.model, "m");
        assert!(info.stream);
        assert_eq!(
            info.prompt_tokens,
            ct(&["You are terse.", "Why is the sky blue?", "Thanks."]) + 3
        );
        assert_eq!(info.body, None);
        assert!(!info.client_wants_usage && !info.usage_injected);
        let info = inspect(
            Api::Generate,
            &json!({"model":"m","prompt":"hi","stream":false}),
        );
        assert!(!info.stream);
    }

    /// A missing model gets the default appended as the last member; every original byte
    /// before the closing brace is kept.
    #[test]
    fn default_model_is_added() {
        let raw = br#"{ "prompt" : "Hello there", "options": {"temperature": 0.7} }
"#;
        let info = inspect_request(Api::Generate, raw, &rules(DEFAULT, true)).unwrap();
        assert_eq!(info.model, DEFAULT);
        let out = info.body.unwrap();
        let close = raw.iter().rposition(|&b| b == b'}').unwrap();
        assert!(out.starts_with(&raw[..close]));
        assert!(out.ends_with(b"}\n"));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], DEFAULT);
        assert_eq!(v["options"]["temperature"], 0.7);
        assert_eq!(info.prompt_tokens, count_tokens("Hello there"));

        let info = inspect_request(Api::Chat, b"{}", &rules(DEFAULT, true)).unwrap();
        assert_eq!(
            info.body.unwrap(),
            format!(r#"{{"model":"{DEFAULT}"}}"#).as_bytes()
        );
    }

    /// A null or empty model is replaced by the default; a non-string model is refused; an
    /// empty default leaves the body alone.
    #[test]
    fn null_or_empty_model_is_replaced() {
        for model in [json!(null), json!("")] {
            let info = inspect(Api::Chat, &json!({"model": model, "messages": []}));
            assert_eq!(info.model, DEFAULT);
            assert_eq!(new_body(&info), json!({"model": DEFAULT, "messages": []}));
        }
        let err = inspect_request(Api::Chat, br#"{"model":5}"#, &rules(DEFAULT, true)).unwrap_err();
        assert_eq!(err, BodyError::BadModel);
        let info = inspect_request(Api::Chat, br#"{"messages":[]}"#, &rules("", true)).unwrap();
        assert_eq!(info.model, "");
        assert_eq!(info.body, None);
    }

    /// /api/chat counts message contents, thinking and tool-call arguments plus the tool
    /// definitions, never the base64 images.
    #[test]
    fn chat() {
        let tools = json!([{"type":"function","function":{"name":"get_weather",
            "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]);
        let body = json!({"model":"m","messages":[
            {"role":"system","content":"Be brief."},
            {"role":"user","content":"Weather in Oslo?","images":["aGVsbG8gd29ybGQ="]},
            {"role":"assistant","content":"","thinking":"Need the tool.",
             "tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Oslo"}}}]},
            {"role":"tool","content":"12 degrees"}],
            "tools": tools});
        let info = inspect(Api::Chat, &body);
        assert!(info.stream);
        let tool_defs = ct(&[
            "type",
            "function",
            "function",
            "name",
            "get_weather",
            "parameters",
            "type",
            "object",
            "properties",
            "city",
            "type",
            "string",
        ]);
        let expected = ct(&[
            "Be brief.",
            "Weather in Oslo?",
            "",
            "Need the tool.",
            "get_weather",
            "city",
            "Oslo",
            "12 degrees",
        ]) + tool_defs;
        assert_eq!(info.prompt_tokens, expected);
        assert_eq!(info.body, None);
    }

    /// /api/embed counts a string input or every string of an array input.
    #[test]
    fn embed() {
        let info = inspect(Api::Embed, &json!({"model":"e","input":"one sentence"}));
        assert_eq!(info.prompt_tokens, count_tokens("one sentence"));
        assert!(!info.stream);
        let info = inspect(
            Api::Embed,
            &json!({"model":"e","input":["first text","second one"]}),
        );
        assert_eq!(info.prompt_tokens, ct(&["first text", "second one"]));
    }

    /// Legacy /api/embeddings counts `prompt`.
    #[test]
    fn embeddings_legacy() {
        let info = inspect(
            Api::EmbeddingsLegacy,
            &json!({"model":"e","prompt":"legacy text"}),
        );
        assert_eq!(info.prompt_tokens, count_tokens("legacy text"));
        assert!(!info.stream);
    }

    /// /v1/chat/completions: string and part contents (image parts skipped), stream only
    /// on request, usage injection on streams, no injection when disabled or not streaming.
    #[test]
    fn openai_chat() {
        let body = json!({"model":"m","messages":[
            {"role":"system","content":"Sys prompt"},
            {"role":"user","content":[{"type":"text","text":"Describe this:"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},
            {"role":"assistant","content":null,"reasoning":"hmm",
             "tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]}]});
        let info = inspect(Api::OpenAiChat, &body);
        assert!(!info.stream);
        assert_eq!(info.body, None);
        assert!(!info.usage_injected);
        assert_eq!(
            info.prompt_tokens,
            ct(&["Sys prompt", "Describe this:", "hmm", "f", "{\"a\":1}"])
        );

        let mut streaming = body.clone();
        streaming["stream"] = json!(true);
        let info = inspect(Api::OpenAiChat, &streaming);
        assert!(info.stream && info.usage_injected && !info.client_wants_usage);
        let mut expected = streaming.clone();
        expected["stream_options"] = json!({"include_usage": true});
        assert_eq!(new_body(&info), expected);

        let raw = streaming.to_string();
        let info =
            inspect_request(Api::OpenAiChat, raw.as_bytes(), &rules(DEFAULT, false)).unwrap();
        assert!(info.stream && !info.usage_injected);
        assert_eq!(info.body, None);
    }

    /// A client that asked for usage itself is left alone; an existing stream_options
    /// object is merged into; a false include_usage is overridden.
    #[test]
    fn include_usage_merge() {
        let asked = json!({"model":"m","stream":true,"messages":[],
            "stream_options":{"include_usage":true}});
        let info = inspect(Api::OpenAiChat, &asked);
        assert!(info.client_wants_usage && !info.usage_injected);
        assert_eq!(info.body, None);

        for options in [
            json!({}),
            json!({"include_usage": false, "x": 1}),
            json!(null),
        ] {
            let body = json!({"model":"m","stream":true,"messages":[],"stream_options":options});
            let info = inspect(Api::OpenAiChat, &body);
            assert!(info.usage_injected && !info.client_wants_usage);
            let v = new_body(&info);
            assert_eq!(v["stream_options"]["include_usage"], true);
            if options.get("x").is_some() {
                assert_eq!(v["stream_options"]["x"], 1);
            }
            assert_eq!(v["messages"], json!([]));
        }

        // Model defaulted and usage injected in one rewrite.
        let info = inspect(
            Api::OpenAiCompletions,
            &json!({"prompt":"Once","stream":true}),
        );
        assert!(info.usage_injected);
        assert_eq!(
            new_body(&info),
            json!({"prompt":"Once","stream":true,"model":DEFAULT,"stream_options":{"include_usage":true}})
        );
    }

    /// /v1/completions counts a string prompt, an array of prompts and the suffix.
    #[test]
    fn openai_completions() {
        let info = inspect(
            Api::OpenAiCompletions,
            &json!({"model":"m","prompt":"Once upon","suffix":"end."}),
        );
        assert_eq!(info.prompt_tokens, ct(&["Once upon", "end."]));
        assert!(!info.stream);
        let info = inspect(
            Api::OpenAiCompletions,
            &json!({"model":"m","prompt":["a b","c d"]}),
        );
        assert_eq!(info.prompt_tokens, ct(&["a b", "c d"]));
    }

    /// /v1/embeddings counts strings, and one token per id for token-id inputs.
    #[test]
    fn openai_embeddings() {
        let info = inspect(
            Api::OpenAiEmbeddings,
            &json!({"model":"e","input":"hello world"}),
        );
        assert_eq!(info.prompt_tokens, count_tokens("hello world"));
        let info = inspect(
            Api::OpenAiEmbeddings,
            &json!({"model":"e","input":["x y","z"]}),
        );
        assert_eq!(info.prompt_tokens, ct(&["x y", "z"]));
        let info = inspect(
            Api::OpenAiEmbeddings,
            &json!({"model":"e","input":[1,2,3,4]}),
        );
        assert_eq!(info.prompt_tokens, 4);
        let info = inspect(
            Api::OpenAiEmbeddings,
            &json!({"model":"e","input":[[1,2],[3]]}),
        );
        assert_eq!(info.prompt_tokens, 3);
    }

    /// /v1/responses counts instructions and input as a string or as items (string content,
    /// text parts, function calls and their outputs); image parts count nothing.
    #[test]
    fn responses() {
        let info = inspect(
            Api::Responses,
            &json!({"model":"m","instructions":"Be kind.","input":"Hi there"}),
        );
        assert_eq!(info.prompt_tokens, ct(&["Be kind.", "Hi there"]));
        assert!(!info.stream);
        assert!(!info.usage_injected);
        let body = json!({"model":"m","stream":true,"input":[
            {"role":"user","content":"plain string"},
            {"type":"message","role":"user","content":[{"type":"input_text","text":"part text"},
                {"type":"input_image","detail":"auto","image_url":"data:image/png;base64,AAAA"}]},
            {"type":"function_call","call_id":"c","name":"f","arguments":"{\"q\":2}"},
            {"type":"function_call_output","call_id":"c","output":"result text"}]});
        let info = inspect(Api::Responses, &body);
        assert!(info.stream && !info.usage_injected);
        assert_eq!(info.body, None);
        assert_eq!(
            info.prompt_tokens,
            ct(&["plain string", "part text", "{\"q\":2}", "result text"])
        );
    }

    /// /v1/messages counts system (string or blocks) and message contents (string or blocks:
    /// text, tool_use input, tool_result content), skipping images.
    #[test]
    fn messages() {
        let body = json!({"model":"m","max_tokens":100,"system":[{"type":"text","text":"System A"}],
            "messages":[
                {"role":"user","content":"Question?"},
                {"role":"assistant","content":[{"type":"text","text":"Let me check."},
                    {"type":"tool_use","id":"t1","name":"lookup","input":{"q":"x"}}]},
                {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"found it"},
                    {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]});
        let info = inspect(Api::Messages, &body);
        assert_eq!(
            info.prompt_tokens,
            ct(&[
                "System A",
                "Question?",
                "Let me check.",
                "q",
                "x",
                "found it"
            ])
        );
        assert!(!info.stream);
        let info = inspect(
            Api::Messages,
            &json!({"model":"m","system":"Plain system","messages":[]}),
        );
        assert_eq!(info.prompt_tokens, count_tokens("Plain system"));
    }

    /// Counted fields of the wrong type are refused, naming the field: Ollama would fail on
    /// them or read them as empty, and the gateway would count nothing.
    #[test]
    fn counted_field_types() {
        let cases: &[(Api, &str, &str)] = &[
            (Api::Chat, r#"{"messages":"hi"}"#, "messages"),
            (
                Api::OpenAiChat,
                r#"{"messages":{"role":"user"}}"#,
                "messages",
            ),
            (Api::Generate, r#"{"prompt":5}"#, "prompt"),
            (Api::Generate, r#"{"system":["a"]}"#, "system"),
            (Api::Embed, r#"{"input":7}"#, "input"),
            (Api::OpenAiCompletions, r#"{"prompt":true}"#, "prompt"),
            (Api::Responses, r#"{"input":{"a":1}}"#, "input"),
            (Api::Messages, r#"{"messages":[],"system":3}"#, "system"),
        ];
        for (api, body, field) in cases {
            let err = inspect_request(*api, body.as_bytes(), &rules(DEFAULT, true)).unwrap_err();
            assert!(
                matches!(err, BodyError::FieldType { field: f, .. } if f == *field),
                "{body}: {err:?}"
            );
            assert!(err.to_string().contains(field));
        }
        for (api, body) in [
            (Api::Chat, r#"{"messages":null}"#),
            (Api::Generate, r#"{"prompt":"x","system":null}"#),
            (Api::OpenAiCompletions, r#"{"prompt":["a",[1,2]]}"#),
            (Api::Embed, r#"{"input":["a"]}"#),
        ] {
            assert!(
                inspect_request(api, body.as_bytes(), &rules(DEFAULT, true)).is_ok(),
                "{body}"
            );
        }
    }

    /// Invalid JSON, an empty body and non-object bodies are refused.
    #[test]
    fn invalid_bodies() {
        for raw in [&b"{\"model\":"[..], b"", b"not json", b"{} trailing"] {
            let err = inspect_request(Api::Chat, raw, &rules(DEFAULT, true)).unwrap_err();
            assert!(matches!(err, BodyError::InvalidJson(_)), "{raw:?}: {err:?}");
        }
        for raw in [&b"[]"[..], b"\"str\"", b"42", b"null"] {
            assert_eq!(
                inspect_request(Api::Chat, raw, &rules(DEFAULT, true)).unwrap_err(),
                BodyError::NotAnObject
            );
        }
    }

    /// Keys Go would read as `model`/`stream` are honoured like Go does when alone and
    /// refused when several could win; counted fields are summed over every casing.
    #[test]
    fn go_key_semantics() {
        let err = inspect_request(
            Api::Chat,
            br#"{"model":"a","Model":"b"}"#,
            &rules(DEFAULT, true),
        );
        assert_eq!(err.unwrap_err(), BodyError::AmbiguousField("model"));
        let err = inspect_request(
            Api::Chat,
            br#"{"model":"a","model":"b"}"#,
            &rules(DEFAULT, true),
        );
        assert_eq!(err.unwrap_err(), BodyError::AmbiguousField("model"));
        let err = inspect_request(
            Api::OpenAiChat,
            r#"{"model":"a","stream":true,"ſtream":false}"#.as_bytes(),
            &rules(DEFAULT, true),
        );
        assert_eq!(err.unwrap_err(), BodyError::AmbiguousField("stream"));

        let info = inspect_request(
            Api::Generate,
            br#"{"MODEL":"big","Prompt":"hidden text","prompt":"x"}"#,
            &rules(DEFAULT, true),
        )
        .unwrap();
        assert_eq!(info.model, "big");
        assert_eq!(info.body, None);
        assert_eq!(info.prompt_tokens, ct(&["hidden text", "x"]));
        let info =
            inspect_request(Api::Generate, br#"{"Stream":false}"#, &rules(DEFAULT, true)).unwrap();
        assert!(!info.stream);
        let info =
            inspect_request(Api::Generate, br#"{"Model":null}"#, &rules(DEFAULT, true)).unwrap();
        assert_eq!(
            info.body.unwrap(),
            format!(r#"{{"model":"{DEFAULT}"}}"#).as_bytes()
        );
    }

    proptest::proptest! {
        /// Request inspection never panics: any bytes either parse or give a message, on every
        /// counted route; and a body it parsed and rewrote is still valid JSON.
        #[test]
        fn inspection_parses_or_explains(
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            text in "[ -~]{0,64}",
        ) {
            let apis = [
                Api::Generate, Api::Chat, Api::Embed, Api::EmbeddingsLegacy, Api::OpenAiChat,
                Api::OpenAiCompletions, Api::OpenAiEmbeddings, Api::Responses, Api::Messages,
            ];
            let object = format!("{{\"messages\":[{{\"content\":{text:?}}}],\"stream\":true,\"prompt\":{text:?}}}");
            for api in apis {
                for body in [&raw[..], text.as_bytes(), object.as_bytes()] {
                    match inspect_request(api, body, &rules(DEFAULT, true)) {
                        Ok(info) => {
                            if let Some(rewritten) = &info.body {
                                proptest::prop_assert!(serde_json::from_slice::<serde_json::Value>(rewritten).is_ok());
                            }
                        }
                        Err(e) => proptest::prop_assert!(!e.to_string().is_empty()),
                    }
                }
            }
        }
    }
}
