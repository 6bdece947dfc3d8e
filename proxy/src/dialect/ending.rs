//! The end of an answer that its key's token quota cut short, in the stream's own dialect, so
//! that clients see an ordinary end with the reason `length` (`max_tokens` on `/v1/messages`,
//! `max_output_tokens` on `/v1/responses`) instead of a broken stream.

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use serde_json::json;

use super::{Api, Framing};

/// What the ending reports.
#[derive(Clone, Copy, Debug)]
pub struct Ending<'a> {
    pub api: Api,
    pub framing: Framing,
    pub model: &'a str,
    /// Tokens charged for the prompt and the answer so far.
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// SSE: the last event sent is not terminated yet (see [`super::Meter::event_open`]).
    pub event_open: bool,
    /// `/v1/chat/completions`, `/v1/completions`: the client asked for a usage chunk.
    pub with_usage: bool,
}

impl Ending<'_> {
    /// The bytes to send as the last of the body. Empty for a body that is not a stream.
    pub fn bytes(&self) -> Bytes {
        let (p, c) = (self.prompt_tokens, self.completion_tokens);
        let model = self.model;
        let mut out = String::new();
        match (self.framing, self.api) {
            (Framing::Ndjson, Api::Chat) => {
                push_line(
                    &mut out,
                    &json!({"model": model, "created_at": now_rfc3339(),
                        "message": {"role": "assistant", "content": ""},
                        "done": true, "done_reason": "length",
                        "prompt_eval_count": p, "eval_count": c}),
                );
            }
            (Framing::Ndjson, _) => {
                push_line(
                    &mut out,
                    &json!({"model": model, "created_at": now_rfc3339(), "response": "",
                        "done": true, "done_reason": "length",
                        "prompt_eval_count": p, "eval_count": c}),
                );
            }
            (Framing::Sse, api) => {
                if self.event_open {
                    out.push('\n');
                }
                let created = Utc::now().timestamp();
                let usage =
                    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c});
                match api {
                    Api::Messages => {
                        push_event(
                            &mut out,
                            Some("message_delta"),
                            &json!({"type": "message_delta",
                                "delta": {"stop_reason": "max_tokens", "stop_sequence": null},
                                "usage": {"output_tokens": c}}),
                        );
                        push_event(
                            &mut out,
                            Some("message_stop"),
                            &json!({"type": "message_stop"}),
                        );
                    }
                    Api::Responses => push_event(
                        &mut out,
                        Some("response.incomplete"),
                        &json!({"type": "response.incomplete", "response": {
                            "id": "resp_llm_quota", "object": "response", "created_at": created,
                            "status": "incomplete",
                            "incomplete_details": {"reason": "max_output_tokens"},
                            "model": model, "output": [],
                            "usage": {"input_tokens": p, "output_tokens": c, "total_tokens": p + c}}}),
                    ),
                    _ => {
                        // Chat completions and completions: a last choice that says why, the
                        // usage chunk when the client asked for one, then `[DONE]`.
                        let (id, object, choice) = if api == Api::OpenAiCompletions {
                            (
                                "cmpl-llm-quota",
                                "text_completion",
                                json!({"text": "", "index": 0, "finish_reason": "length"}),
                            )
                        } else {
                            (
                                "chatcmpl-llm-quota",
                                "chat.completion.chunk",
                                json!({"index": 0, "delta": {"role": "assistant", "content": ""},
                                    "finish_reason": "length"}),
                            )
                        };
                        let chunk = |choices: serde_json::Value| {
                            json!({"id": id, "object": object, "created": created,
                                "model": model, "choices": choices})
                        };
                        push_event(&mut out, None, &chunk(json!([choice])));
                        if self.with_usage {
                            let mut last = chunk(json!([]));
                            last["usage"] = usage;
                            push_event(&mut out, None, &last);
                        }
                        out.push_str("data: [DONE]\n\n");
                    }
                }
            }
            (Framing::Json | Framing::Text, _) => {}
        }
        Bytes::from(out)
    }
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn push_line(out: &mut String, value: &serde_json::Value) {
    out.push_str(&value.to_string());
    out.push('\n');
}

fn push_event(out: &mut String, event: Option<&str>, value: &serde_json::Value) {
    if let Some(event) = event {
        out.push_str("event: ");
        out.push_str(event);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(&value.to_string());
    out.push_str("\n\n");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ending(api: Api, framing: Framing, event_open: bool, with_usage: bool) -> String {
        let e = Ending {
            api,
            framing,
            model: "llama3",
            prompt_tokens: 5,
            completion_tokens: 7,
            event_open,
            with_usage,
        };
        String::from_utf8(e.bytes().to_vec()).unwrap()
    }

    /// NDJSON endings are one `done` line with the reason `length` and the counts.
    #[test]
    fn ndjson_endings() {
        for api in [Api::Chat, Api::Generate] {
            let text = ending(api, Framing::Ndjson, false, false);
            assert!(text.ends_with('\n') && text.matches('\n').count() == 1);
            let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
            assert_eq!(v["done"], true);
            assert_eq!(v["done_reason"], "length");
            assert_eq!(
                (v["prompt_eval_count"].as_u64(), v["eval_count"].as_u64()),
                (Some(5), Some(7))
            );
            assert_eq!(v.get("message").is_some(), api == Api::Chat);
        }
    }

    /// SSE endings close an open event first, finish with `length`, carry usage only when
    /// asked, and end with `[DONE]`.
    #[test]
    fn sse_endings() {
        let text = ending(Api::OpenAiChat, Framing::Sse, true, true);
        assert!(text.starts_with("\ndata: "));
        assert!(text.ends_with("data: [DONE]\n\n"));
        let events: Vec<serde_json::Value> = text
            .split("\n\n")
            .filter_map(|e| e.trim().strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(events[0]["choices"][0]["finish_reason"], "length");
        assert_eq!(events[1]["usage"]["total_tokens"], 12);
        let text = ending(Api::OpenAiCompletions, Framing::Sse, false, false);
        assert!(!text.contains("usage") && text.starts_with("data: "));
        let text = ending(Api::Messages, Framing::Sse, false, false);
        assert!(
            text.contains("\"stop_reason\":\"max_tokens\"") && text.contains("event: message_stop")
        );
        let text = ending(Api::Responses, Framing::Sse, false, false);
        assert!(text.contains("event: response.incomplete"));
        assert!(ending(Api::Chat, Framing::Json, false, false).is_empty());
    }
}
