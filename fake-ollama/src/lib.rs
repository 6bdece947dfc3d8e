//! `fake-ollama`: a real HTTP server speaking Ollama's exact wire formats, for llm-quota's
//! integration tests and benchmarks.
//!
//! This crate owns the fake upstream: the routes, bodies, streaming framing (NDJSON and SSE),
//! error shapes and status codes of Ollama's native API and of its OpenAI and Anthropic
//! compatibility layers, as Ollama 0.13 sends them (docs/api.md lists the routes), plus a
//! deterministic answer so tests can assert exact token counts. It does not run a model.
//!
//! ```no_run
//! use fake_ollama::{FakeConfig, FakeOllama};
//! let fake = FakeOllama::start(FakeConfig::default())?;
//! // point the gateway at fake.url(), send requests, then:
//! assert!(fake.requests().iter().all(|r| r.method == "POST" || r.method == "GET"));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Deterministic answers
//! - Every answer is the first `n` pieces of [`answer_words`]: `"Hello"`, `" world"`, `" from"`,
//!   `" fake"`, `" the"`, ... each exactly one `cl100k_base` token. `n` is
//!   [`FakeConfig::chunks`], capped by `options.num_predict` (native), `max_tokens`
//!   (`/v1/chat/completions`, `/v1/completions`, `/v1/messages`; like Ollama, the fake ignores
//!   `max_completion_tokens`)
//!   or `max_output_tokens` (`/v1/responses`) when that is a positive number smaller than
//!   `chunks`; the finish reason is then `length` (`max_tokens` on `/v1/messages`).
//!   Output tokens (`eval_count`, `completion_tokens`, `output_tokens`) = `n`.
//! - Input tokens (`prompt_eval_count`, `prompt_tokens`, `input_tokens`) =
//!   [`prompt_eval_count`] of the request body: whitespace-separated words of the prompt text.
//! - Native metric fields are `omitempty` as in Ollama: a zero count is left out.
//! - Durations (ns): `load_duration` 1 ms, `prompt_eval_duration` 0.1 ms per prompt token,
//!   `eval_duration` 1 ms per output token, `total_duration` their sum + 0.5 ms.
//! - Embeddings are [`EMBEDDING_DIMS`] floats, a function of the input text only.
//!
//! # Streaming and faults
//! Every streamed event is its own HTTP chunk. [`FakeConfig::chunk_delay`] sleeps before each
//! content chunk (and non-streamed answers wait `chunk_delay × n` before answering).
//! [`FakeConfig::drop_after_chunks`] cuts the connection right after that many content chunks
//! (never sending the final/usage events or the terminating chunk); a non-streamed answer is
//! then cut halfway through its body.
//!
//! # Layout
//! - `server`: [`FakeOllama`] (background thread + runtime), [`serve`], recording, host check
//!   and the route table (unknown path → 404 `404 page not found`, wrong method → 405).
//! - `native`: `/api/generate`, `/api/chat`, `/api/embed`, `/api/embeddings`, `/api/show`,
//!   `/api/ps` (`/`, `/api/version`, `/api/tags` are precomputed in `server`).
//! - `openai`: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `/v1/models`,
//!   `/v1/models/{model}`, `/v1/responses`.
//! - `anthropic`: `/v1/messages`.
//! - `transcription`: `/v1/audio/transcriptions` (a multipart form; the answer whole).
//! - `gen`: body parsing, answer size and metrics shared by the generating routes.
//! - `body`: pre-serialised frames sent one chunk each, chunk delay and connection drop.
//! - `text`: [`answer_words`], [`prompt_eval_count`], embeddings.
//! - `models`: the model catalogue (`llama3` is listed as `llama3:latest`; both names match).
//! - `record`: [`RecordedRequest`] and the capped request log.
//! - `host`: [`host_allowed`], Ollama's `Host`-header rule.
//! - `clock`: RFC 3339 and Unix timestamps.
//! - `concurrency`: generating requests in flight and their peak ([`FakeOllama::peak_concurrency`]).

mod anthropic;
mod body;
mod clock;
mod concurrency;
mod gen;
mod host;
mod models;
mod native;
mod openai;
mod record;
mod server;
mod text;
mod transcription;

use std::time::Duration;

pub use host::host_allowed;
pub use record::{RecordedRequest, MAX_RECORDED_BODY, MAX_RECORDED_REQUESTS};
pub use server::{serve, FakeOllama};
pub use text::{answer_text, answer_words, embedding, prompt_eval_count, EMBEDDING_DIMS};

/// How the fake behaves.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// Known model names (default `["llama3", "qwen3:0.6b", "all-minilm"]`). A name without a
    /// tag is listed as `NAME:latest`; requests may use either form. Unknown models get 404.
    pub models: Vec<String>,
    /// Content chunks (= output tokens) of an answer, default 10.
    pub chunks: usize,
    /// Delay before each streamed content chunk, default 0.
    pub chunk_delay: Duration,
    /// Close the connection abruptly after this many content chunks (no done line).
    pub drop_after_chunks: Option<usize>,
    /// Tokens the model's chat template adds to every generating request's prompt count
    /// (`prompt_eval_count`, `prompt_tokens`, `input_tokens`), as Ollama counts the rendered
    /// prompt (`server/prompt.go`, `chatPrompt`): 24 for one message with the real-Ollama
    /// suite's tiny model. Default 0, so that
    /// counts equal the words of the prompt.
    pub template_tokens: u64,
    /// A thinking model on `/v1/completions`: this many tokens are generated before the answer
    /// and counted in `completion_tokens`, but never sent (Ollama's `openai.ToCompletion`
    /// sends the response only). They count against `max_tokens`. Default 0.
    pub completions_thinking_tokens: usize,
    /// Native streams: after this many content lines, one `{"error": …}` line and the end of
    /// the answer (a 200; no final line), as Ollama reports a runner failing mid-answer.
    pub error_after_chunks: Option<usize>,
    /// Native streams end after their content without the final `done` line (no counts), as
    /// v0.33 does when its runner produces invalid UTF-8.
    pub end_without_done: bool,
    /// `/v1/chat/completions` streams repeat `"role":"assistant"` in every chunk, as v0.24
    /// does (v0.33 sends it in the first chunk only: `middleware/openai.go`, `ChatWriter`,
    /// pinned by `TestChatWriter_StreamRoleOnlyOnFirstChunk`). Default false.
    pub openai_role_every_chunk: bool,
    /// Generating routes answer this status and then never send the body: a host that fails
    /// and hangs (for what the gateway does with a failed answer it has to abandon). Not
    /// something Ollama's source does on purpose; a broken host or network does.
    pub error_then_stall: Option<u16>,
    /// Answer 403 with an empty body when `Host` is not loopback / localhost / private, like
    /// Ollama listening on loopback (see [`host_allowed`]). Default false.
    pub host_check: bool,
    /// `/api/version`'s version, default `0.13.5`.
    pub version: String,
    /// Request bodies up to this many bytes are kept in the request log (default
    /// [`MAX_RECORDED_BODY`]); longer ones are recorded with their length only.
    pub record_body_limit: usize,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            models: vec![
                "llama3".to_string(),
                "qwen3:0.6b".to_string(),
                "all-minilm".to_string(),
            ],
            chunks: 10,
            chunk_delay: Duration::ZERO,
            drop_after_chunks: None,
            template_tokens: 0,
            completions_thinking_tokens: 0,
            error_after_chunks: None,
            end_without_done: false,
            openai_role_every_chunk: false,
            error_then_stall: None,
            host_check: false,
            version: "0.13.5".to_string(),
            record_body_limit: MAX_RECORDED_BODY,
        }
    }
}
