//! Wire formats of the counted APIs: what a request body says (model, stream, prompt text)
//! and what a response body reports (usage, generated text), for the Ollama native,
//! OpenAI-compatible, Responses and Anthropic Messages dialects that Ollama serves.
//!
//! This module is pure: no Pingora, no I/O, no async. The gateway calls
//! [`inspect_request`] once per counted request body (from `request_filter`) and feeds every
//! response body chunk to a [`Meter`] (from `response_body_filter`), so both sides are written
//! for the hot path: requests are parsed once into a borrowed tree (strings that are only
//! counted are never copied), and response chunks are forwarded unchanged unless the
//! usage chunk we injected has to be removed.
//!
//! Token counting uses tiktoken's `cl100k_base` for every model (an estimate for Llama/Qwen
//! models; [`TokenCounting::Upstream`] prefers Ollama's own counts when it reports them).
//!
//! # Layout
//! - `mod.rs`: [`Api`] (which counted route a request is on) and [`TokenCounting`].
//! - `request.rs`: [`inspect_request`] under [`Rules`] → [`RequestInfo`]: model defaulting,
//!   effective `stream`, prompt token count, `stream_options.include_usage` injection,
//!   [`BodyError`].
//! - `form.rs`: [`inspect_form`], the multipart body of `/v1/audio/transcriptions`.
//! - `keep_alive.rs`: [`KeepAlive`], the operator's bounds on `keep_alive`, and Go's duration
//!   syntax.
//! - `meter.rs`: [`Meter`] (incremental response parser over NDJSON, SSE or a whole JSON body),
//!   [`Framing`], [`Usage`] and [`Usage::charge`].
//! - `output_limit.rs`: the client's own output limit, and [`set_output_limit`], which
//!   splices the gateway's into the body when a token quota leaves less room.
//! - `ending.rs`: [`Ending`], the clean end of a stream cut short by its token quota.
//! - `tokens.rs`: [`count_tokens`], [`warm_tokenizer`] and the incremental counter that splits
//!   text only where BPE is additive and bounds the work spent on adversarial input.
//! - `json.rs`: a borrowed, order-preserving JSON tree and Go `encoding/json` key matching
//!   (Ollama decodes request keys case-insensitively; we must read them the same way).

mod ending;
mod form;
mod json;
mod keep_alive;
mod meter;
mod output_limit;
mod request;
mod tokens;

pub use ending::Ending;
pub use form::inspect_form;
pub use keep_alive::{go_duration_seconds, KeepAlive};
pub use meter::{CutPoint, Framing, Meter, OllamaDurations, Usage};
pub use output_limit::set_output_limit;
pub use request::{inspect_request, BodyError, RequestInfo, Rules};
pub use tokens::{count_tokens, warm_tokenizer};

/// Which counted API a request is on (route classification is done elsewhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `POST /api/generate` (NDJSON stream by default).
    Generate,
    /// `POST /api/chat` (NDJSON stream by default).
    Chat,
    /// `POST /api/embed`.
    Embed,
    /// `POST /api/embeddings` (legacy; Ollama reports no token counts).
    EmbeddingsLegacy,
    /// `POST /v1/chat/completions`.
    OpenAiChat,
    /// `POST /v1/completions`.
    OpenAiCompletions,
    /// `POST /v1/embeddings`.
    OpenAiEmbeddings,
    /// `POST /v1/responses`.
    Responses,
    /// `POST /v1/messages` (Anthropic compatibility).
    Messages,
    /// `POST /v1/audio/transcriptions` (a multipart form; [`inspect_form`]).
    Transcriptions,
}

impl Api {
    /// Every counted API (tests and fuzz targets go through all of them).
    pub const ALL: [Api; 10] = [
        Api::Generate,
        Api::Chat,
        Api::Embed,
        Api::EmbeddingsLegacy,
        Api::OpenAiChat,
        Api::OpenAiCompletions,
        Api::OpenAiEmbeddings,
        Api::Responses,
        Api::Messages,
        Api::Transcriptions,
    ];

    /// Whether the route generates an answer (every counted route but the embeddings): under
    /// a token limit its admission reserves room for output, even where no field can cap it.
    pub fn generates(self) -> bool {
        !matches!(
            self,
            Api::Embed | Api::EmbeddingsLegacy | Api::OpenAiEmbeddings
        )
    }

    /// Whether the route streams when the request has no `stream` field (`/api/generate`,
    /// `/api/chat`); every other route streams only on `"stream": true`.
    pub fn streams_by_default(self) -> bool {
        matches!(self, Api::Generate | Api::Chat)
    }

    /// Whether the route takes `keep_alive` (Ollama's native request types; its `/v1` layers
    /// have no such field).
    pub(crate) fn takes_keep_alive(self) -> bool {
        matches!(
            self,
            Api::Generate | Api::Chat | Api::Embed | Api::EmbeddingsLegacy
        )
    }

    /// Whether Ollama accepts `stream_options.include_usage` on this route.
    pub(crate) fn takes_stream_options(self) -> bool {
        matches!(self, Api::OpenAiChat | Api::OpenAiCompletions)
    }
}

/// Where the charged token counts come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenCounting {
    /// Our own `cl100k_base` counts of the prompt and of the generated text.
    Tiktoken,
    /// Ollama's reported counts where present, else the tiktoken counts.
    Upstream,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the native generate/chat routes stream by default.
    #[test]
    fn api_classification() {
        let all = Api::ALL;
        let streaming: Vec<Api> = all.into_iter().filter(|a| a.streams_by_default()).collect();
        assert_eq!(streaming, [Api::Generate, Api::Chat]);
    }
}
