//! What every generating route shares: request-body parsing, the answer size (chunks, caps),
//! and the deterministic metrics.

use bytes::Bytes;
use serde_json::Value;

use crate::server::Shared;
use crate::text::prompt_eval_count;

/// Why a request body was refused.
pub(crate) enum BodyError {
    /// Empty body: Ollama's `missing request body`.
    Missing,
    /// Not JSON, or not a JSON object: the message.
    Invalid(String),
}

impl BodyError {
    pub(crate) fn message(&self) -> String {
        match self {
            BodyError::Missing => "missing request body".to_string(),
            BodyError::Invalid(m) => m.clone(),
        }
    }
}

/// Parses a request body that must be a JSON object. `go_type` names the Go type in the error
/// for a non-object (as Go's `encoding/json` would: `json: cannot unmarshal array into Go value
/// of type api.ChatRequest`).
pub(crate) fn parse_object(body: &Bytes, go_type: &str) -> Result<Value, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Missing);
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| BodyError::Invalid(e.to_string()))?;
    let kind = match &v {
        Value::Object(_) => return Ok(v),
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => return Err(BodyError::Missing),
    };
    Err(BodyError::Invalid(format!(
        "json: cannot unmarshal {kind} into Go value of type {go_type}"
    )))
}

/// A string field, `""` when absent or not a string.
pub(crate) fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// An optional bool field; `Err(message)` when present with another type (null counts as absent).
pub(crate) fn bool_field(v: &Value, key: &str, go_type: &str) -> Result<Option<bool>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go struct field {go_type}.{key} of type bool",
            json_kind(other)
        )),
    }
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A positive token cap from a `num_predict` / `max_tokens`-like value; zero, negative (Ollama's
/// `-1` = unlimited) or non-numbers mean no cap.
pub(crate) fn cap_of(v: Option<&Value>) -> Option<usize> {
    let v = v?;
    if let Some(n) = v.as_u64() {
        return (n > 0).then_some(usize::try_from(n).unwrap_or(usize::MAX));
    }
    let f = v.as_f64()?;
    (f >= 1.0).then_some(f as usize)
}

/// The size of one answer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gen {
    /// [`prompt_eval_count`] of the request plus [`crate::FakeConfig::template_tokens`]: Ollama
    /// counts the prompt as the model's template renders it.
    pub(crate) prompt_tokens: u64,
    /// Content chunks (one output token each): the configured chunk count, capped.
    pub(crate) eval: usize,
    /// Tokens generated before the content and never sent (thinking that the route drops);
    /// counted in the output.
    pub(crate) hidden: usize,
    /// The cap cut the answer short (`done_reason:"length"`).
    pub(crate) truncated: bool,
}

impl Gen {
    pub(crate) fn new(shared: &Shared, body: &Value, cap: Option<usize>) -> Gen {
        Gen::thinking_first(shared, body, cap, 0)
    }

    /// An answer that first generates `hidden` tokens the route does not send. Ollama's
    /// `num_predict` (the cap) counts them too: what is left of it bounds the content.
    pub(crate) fn thinking_first(
        shared: &Shared,
        body: &Value,
        cap: Option<usize>,
        hidden: usize,
    ) -> Gen {
        let chunks = shared.config.chunks;
        let (hidden, eval, truncated) = match cap {
            Some(c) if c < hidden + chunks => (hidden.min(c), c.saturating_sub(hidden), true),
            _ => (hidden, chunks, false),
        };
        Gen {
            prompt_tokens: prompt_eval_count(body) + shared.config.template_tokens,
            eval,
            hidden,
            truncated,
        }
    }

    /// Output tokens as Ollama counts them (`eval_count`, `completion_tokens`…).
    pub(crate) fn output_tokens(&self) -> u64 {
        (self.eval + self.hidden) as u64
    }

    pub(crate) fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.output_tokens()
    }

    /// Native `done_reason`.
    pub(crate) fn done_reason(&self) -> &'static str {
        if self.truncated {
            "length"
        } else {
            "stop"
        }
    }

    /// Deterministic native metrics (durations in nanoseconds).
    pub(crate) fn metrics(&self) -> Metrics {
        let load = 1_000_000;
        let prompt_eval_duration = 100_000 * self.prompt_tokens;
        let eval_duration = 1_000_000 * self.output_tokens();
        Metrics {
            total_duration: load + prompt_eval_duration + eval_duration + 500_000,
            load_duration: load,
            prompt_eval_count: self.prompt_tokens,
            prompt_eval_duration,
            eval_count: self.output_tokens(),
            eval_duration,
        }
    }
}

/// Ollama's `api.Metrics`; every field is `omitempty` there, so zeros are left out here too.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub(crate) struct Metrics {
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) total_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) load_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) prompt_eval_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) prompt_eval_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) eval_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) eval_duration: u64,
}

pub(crate) fn is_zero(v: &u64) -> bool {
    *v == 0
}
