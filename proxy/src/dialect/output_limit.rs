//! The output limit of a counted request: reading the client's own, and writing the gateway's
//! into the body when a token quota leaves less room than the client asked for.
//!
//! The field is the one Ollama reads on the route (its `openai/openai.go`, `openai/responses.go`,
//! `anthropic/anthropic.go` turn it into `num_predict`): `options.num_predict` (`/api/generate`,
//! `/api/chat`), `max_tokens` (`/v1/chat/completions`, `/v1/completions`, `/v1/messages`),
//! `max_output_tokens` (`/v1/responses`). Ollama ignores `max_completion_tokens`, the field
//! current OpenAI SDKs send: it is never the client's limit, and when present it is capped as
//! well, so the client's own view of the request agrees with what runs. The body is
//! edited in place: one value replaced or one member inserted, every other byte kept, so a
//! prompt of megabytes is copied once and never re-serialised.

use std::borrow::Cow;
use std::ops::Range;

use super::json::{go_key_matches, Json};
use super::Api;

/// The client's own output limit in a parsed request body, read as Ollama reads it: per
/// field, the last member Go decodes into it wins (repeated `options` objects merge), and only
/// a positive number is a limit (Ollama generates without one for 0 or a negative
/// `num_predict`). The smallest over the route's fields; `None` when it set none.
pub(crate) fn client_limit(api: Api, root: &Json<'_>) -> Option<u64> {
    match api {
        Api::Generate | Api::Chat => root
            .fields("options")
            .flat_map(|o| o.members().iter())
            .filter(|(k, _)| k == "num_predict")
            .last()
            .and_then(|(_, v)| positive(v)),
        _ => output_field(api).and_then(|f| root.fields(f).last().and_then(positive)),
    }
}

/// A positive whole number of tokens.
fn positive(v: &Json<'_>) -> Option<u64> {
    match v {
        Json::Num(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 1.0).map(|f| f as u64))
            .filter(|n| *n > 0),
        _ => None,
    }
}

/// The top-level field Ollama reads as the output limit on `api` (`None` for routes without
/// one, and for the native routes, whose limit is `options.num_predict`).
fn output_field(api: Api) -> Option<&'static str> {
    match api {
        Api::OpenAiChat | Api::OpenAiCompletions | Api::Messages => Some("max_tokens"),
        Api::Responses => Some("max_output_tokens"),
        _ => None,
    }
}

/// Fields Ollama ignores but a client may read as its limit: capped with the real one.
fn shadow_fields(api: Api) -> &'static [&'static str] {
    match api {
        Api::OpenAiChat => &["max_completion_tokens"],
        _ => &[],
    }
}

/// `body` (a JSON object, already validated) with its output limit set to `cap`: every
/// output field present is replaced, or the route's field is added. `None` when the body
/// cannot carry one (e.g. `options` that is not an object): the answer is then bounded by
/// the quota while it streams and at the commit.
pub fn set_output_limit(api: Api, body: &[u8], cap: u64) -> Option<Vec<u8>> {
    let top = Object::scan(body, skip_ws(body, 0))?;
    let value = cap.to_string();
    // A member's value becomes min(its own limit, cap).
    let capped = |span: &Range<usize>| match std::str::from_utf8(&body[span.clone()])
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
    {
        Some(own) if own > 0 && own <= cap => None,
        _ => Some((span.clone(), value.clone())),
    };
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    match api {
        Api::Generate | Api::Chat => {
            // Go merges repeated `options` objects: every `num_predict` in them is capped,
            // or one is added to the last of them.
            let options: Vec<Range<usize>> = top.all("options", body);
            let mut found = false;
            for span in &options {
                if body[span.start] == b'{' {
                    let object = Object::scan(body, span.start)?;
                    for at in object.all_exact("num_predict", body) {
                        found = true;
                        edits.extend(capped(&at));
                    }
                }
            }
            if !found {
                match options.last() {
                    None => {
                        edits.push(top.insert(&format!("\"options\":{{\"num_predict\":{value}}}")))
                    }
                    Some(span) if &body[span.clone()] == b"null" => {
                        edits.push((span.clone(), format!("{{\"num_predict\":{value}}}")));
                    }
                    Some(span) if body[span.start] == b'{' => {
                        let object = Object::scan(body, span.start)?;
                        edits.push(object.insert(&format!("\"num_predict\":{value}")));
                    }
                    Some(_) => return None,
                }
            }
        }
        _ => {
            let field = output_field(api)?;
            let mut found = false;
            for (key, span) in &top.members {
                let key = key_text(body, key.clone());
                if go_key_matches(&key, field) {
                    found = true;
                    edits.extend(capped(span));
                } else if shadow_fields(api).iter().any(|f| go_key_matches(&key, f)) {
                    edits.extend(capped(span));
                }
            }
            if !found {
                edits.push(top.insert(&format!("\"{field}\":{value}")));
            }
        }
    }
    edits.sort_by_key(|(range, _)| range.start);
    let mut out = Vec::with_capacity(body.len() + 40);
    let mut at = 0;
    for (range, text) in edits {
        out.extend_from_slice(&body[at..range.start]);
        out.extend_from_slice(text.as_bytes());
        at = range.end;
    }
    out.extend_from_slice(&body[at..]);
    Some(out)
}

/// The members of one JSON object, as byte ranges of its text.
struct Object {
    /// (key without quotes, value)
    members: Vec<(Range<usize>, Range<usize>)>,
    /// Position of the closing brace.
    close: usize,
}

impl Object {
    /// Scans the object that starts at `open` (its `{`).
    fn scan(b: &[u8], open: usize) -> Option<Object> {
        if b.get(open) != Some(&b'{') {
            return None;
        }
        let mut members = Vec::new();
        let mut i = skip_ws(b, open + 1);
        if b.get(i) == Some(&b'}') {
            return Some(Object { members, close: i });
        }
        loop {
            let key_end = string_end(b, i)?;
            let key = i + 1..key_end - 1;
            i = skip_ws(b, key_end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            let start = skip_ws(b, i + 1);
            let end = value_end(b, start)?;
            members.push((key, start..end));
            i = skip_ws(b, end);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => return Some(Object { members, close: i }),
                _ => return None,
            }
        }
    }

    /// The values of every member Go would read as `name`, in document order.
    fn all(&self, name: &str, b: &[u8]) -> Vec<Range<usize>> {
        self.members
            .iter()
            .filter(|(k, _)| go_key_matches(&key_text(b, k.clone()), name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The values of every member named exactly `name`.
    fn all_exact(&self, name: &str, b: &[u8]) -> Vec<Range<usize>> {
        self.members
            .iter()
            .filter(|(k, _)| key_text(b, k.clone()) == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// An edit that adds `member` as the last member.
    fn insert(&self, member: &str) -> (Range<usize>, String) {
        let text = if self.members.is_empty() {
            member.to_owned()
        } else {
            format!(",{member}")
        };
        (self.close..self.close, text)
    }
}

/// A key's text, escapes decoded.
fn key_text(b: &[u8], key: Range<usize>) -> Cow<'_, str> {
    let raw = &b[key.clone()];
    if !raw.contains(&b'\\') {
        return String::from_utf8_lossy(raw);
    }
    serde_json::from_slice::<String>(&b[key.start - 1..key.end + 1])
        .map(Cow::Owned)
        .unwrap_or_else(|_| String::from_utf8_lossy(raw))
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// The position after the string that starts at `i` (its opening quote).
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        let k = j + memchr::memchr2(b'"', b'\\', &b[j..])?;
        if b[k] == b'\\' {
            j = k + 2;
        } else {
            return Some(k + 1);
        }
    }
}

/// The position after the value that starts at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let len = b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(b.len() - i);
            Some(i + len)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{json, Value};

    fn set(api: Api, body: &str, cap: u64) -> Value {
        serde_json::from_slice(&set_output_limit(api, body.as_bytes(), cap).unwrap()).unwrap()
    }

    fn limit(api: Api, body: &Value) -> Option<u64> {
        let text = body.to_string();
        let root: Json<'_> = serde_json::from_str(&text).unwrap();
        client_limit(api, &root)
    }

    /// Native routes get `options.num_predict`: added with the options, inside them, or in
    /// place of a larger one; a null options object is replaced.
    #[test]
    fn native_num_predict() {
        assert_eq!(
            set(Api::Chat, r#"{"model":"m"}"#, 9),
            json!({"model":"m","options":{"num_predict":9}})
        );
        assert_eq!(
            set(
                Api::Generate,
                r#"{"options":{"temperature":0.5},"prompt":"x"}"#,
                9
            ),
            json!({"options":{"temperature":0.5,"num_predict":9},"prompt":"x"})
        );
        assert_eq!(
            set(Api::Chat, r#"{"options":{ }}"#, 9),
            json!({"options":{"num_predict":9}})
        );
        assert_eq!(
            set(Api::Chat, r#"{"options":{"num_predict":500,"seed":1}}"#, 9),
            json!({"options":{"num_predict":9,"seed":1}})
        );
        assert_eq!(
            set(Api::Chat, r#"{"options":null}"#, 9),
            json!({"options":{"num_predict":9}})
        );
        assert_eq!(set_output_limit(Api::Chat, br#"{"options":"x"}"#, 9), None);
    }

    /// OpenAI chat: the cap goes into `max_tokens`, the only field Ollama reads, whatever else
    /// the client sent; `max_completion_tokens` is capped too. Other routes have their own
    /// field.
    #[test]
    fn openai_fields() {
        assert_eq!(
            set(Api::OpenAiChat, r#"{"messages":[]}"#, 7),
            json!({"messages":[],"max_tokens":7})
        );
        assert_eq!(
            set(Api::OpenAiChat, r#"{"max_completion_tokens":100}"#, 7),
            json!({"max_completion_tokens":7,"max_tokens":7})
        );
        assert_eq!(
            set(Api::OpenAiChat, r#"{"max_completion_tokens":3}"#, 7),
            json!({"max_completion_tokens":3,"max_tokens":7})
        );
        assert_eq!(
            set(
                Api::OpenAiChat,
                r#"{"Max_Tokens":100,"max_completion_tokens":50}"#,
                7
            ),
            json!({"Max_Tokens":7,"max_completion_tokens":7})
        );
        assert_eq!(
            set(Api::OpenAiCompletions, r#"{"prompt":"a"}"#, 7)["max_tokens"],
            7
        );
        assert_eq!(
            set(Api::Messages, r#"{"max_tokens":4096}"#, 7)["max_tokens"],
            7
        );
        assert_eq!(
            set(Api::Responses, r#"{"input":"a"}"#, 7)["max_output_tokens"],
            7
        );
        assert_eq!(set_output_limit(Api::Embed, br#"{"input":"a"}"#, 7), None);
    }

    /// The rest of the body is kept byte for byte: strings with braces, quotes and escapes
    /// included.
    #[test]
    fn bytes_are_kept() {
        let body = r#"{ "messages" : [{"content":"a } \" { ] [ \\"}], "n":1 }"#;
        let out = set_output_limit(Api::OpenAiChat, body.as_bytes(), 3).unwrap();
        let close = body.rfind('}').unwrap();
        assert_eq!(&out[..close], &body.as_bytes()[..close]);
        assert_eq!(&out[close..], b",\"max_tokens\":3}");
    }

    /// The client's own limit: the smallest one set; a negative num_predict is no limit.
    #[test]
    fn client_limits() {
        assert_eq!(
            limit(Api::Chat, &json!({"options":{"num_predict":40}})),
            Some(40)
        );
        assert_eq!(
            limit(Api::Chat, &json!({"options":{"num_predict":-1}})),
            None
        );
        assert_eq!(limit(Api::Generate, &json!({"prompt":"x"})), None);
        assert_eq!(
            limit(
                Api::OpenAiChat,
                &json!({"max_tokens":90,"max_completion_tokens":30})
            ),
            Some(90)
        );
        // Ollama ignores max_completion_tokens: it limits nothing.
        assert_eq!(
            limit(Api::OpenAiChat, &json!({"max_completion_tokens":30})),
            None
        );
        assert_eq!(
            limit(Api::Responses, &json!({"max_output_tokens":5})),
            Some(5)
        );
        assert_eq!(limit(Api::Messages, &json!({"max_tokens":null})), None);
        // Ollama reads 0 as no limit, and the last of repeated keys.
        assert_eq!(limit(Api::Messages, &json!({"max_tokens":0})), None);
        let root: Json<'_> =
            serde_json::from_str(r#"{"max_tokens":1,"MAX_TOKENS":100000}"#).unwrap();
        assert_eq!(client_limit(Api::OpenAiCompletions, &root), Some(100_000));
        let root: Json<'_> =
            serde_json::from_str(r#"{"options":{"num_predict":5},"Options":{"seed":1}}"#).unwrap();
        assert_eq!(client_limit(Api::Chat, &root), Some(5));
    }
}

#[cfg(test)]
mod properties {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    /// Arbitrary JSON values, a few levels deep, with keys that collide with the limit
    /// fields now and then.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            "[ -~\\\\\"{}\\[\\]é\u{1F600}]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("max_tokens".to_string()),
            Just("options".to_string()),
            Just("num_predict".to_string()),
            "[a-z_\"\\\\]{1,8}",
        ]
    }

    proptest! {
        /// Whatever object a client sends, the spliced body is valid JSON that Ollama reads
        /// with the cap (or less) in the route's field, and everything else unchanged.
        #[test]
        fn splicing_keeps_the_body_and_sets_the_cap(
            members in prop::collection::vec((key(), json_value()), 0..6),
            cap in 1u64..1_000_000,
        ) {
            let object: serde_json::Map<String, Value> = members.into_iter().collect();
            let body = serde_json::to_vec(&Value::Object(object.clone())).unwrap();
            for api in [Api::OpenAiCompletions, Api::Chat] {
                let Some(out) = set_output_limit(api, &body, cap) else {
                    // Only native options that are neither an object nor null.
                    prop_assert!(api == Api::Chat);
                    prop_assert!(object.get("options").is_some_and(|o| !o.is_object() && !o.is_null()));
                    continue;
                };
                let parsed: Value = serde_json::from_slice(&out).unwrap();
                let limit = match api {
                    Api::Chat => parsed["options"]["num_predict"].as_u64(),
                    _ => parsed["max_tokens"].as_u64(),
                };
                prop_assert!(limit.is_some_and(|l| l >= 1 && l <= cap), "{parsed}");
                let mut rest = parsed.clone();
                let mut original = Value::Object(object.clone());
                for v in [&mut rest, &mut original] {
                    let map = v.as_object_mut().unwrap();
                    match api {
                        Api::Chat => {
                            if let Some(Value::Object(o)) = map.get_mut("options") {
                                o.remove("num_predict");
                            }
                            if map.get("options").is_some_and(|o| o.as_object().is_some_and(|o| o.is_empty()) || o.is_null()) {
                                map.remove("options");
                            }
                        }
                        _ => {
                            map.remove("max_tokens");
                        }
                    }
                }
                prop_assert_eq!(rest, original);
            }
        }
    }
}
