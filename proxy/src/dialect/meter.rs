//! Response side: an incremental meter over a response body that arrives in chunks with
//! arbitrary boundaries.
//!
//! - NDJSON and SSE bodies are split into lines with `memchr`. Whole lines are parsed in place
//!   from the chunk; only a line split across chunks is copied into the line buffer.
//! - Each JSON payload is parsed once into a small typed struct that borrows its strings and
//!   skips unknown fields (`context` arrays, response echoes) without building values.
//! - Generated text goes to incremental token counters (see `tokens.rs`), so a streamed answer
//!   counts exactly like the same answer in one piece, whatever the chunking.
//! - With `strip_usage_chunk`, the SSE event that carries `"choices":[]` and `usage` (the one
//!   the gateway asked for with `stream_options.include_usage`) is removed; every other byte is
//!   forwarded unchanged. Only an incomplete line at the end of a chunk is held back, until
//!   the rest of it arrives (or [`Meter::finish`]).
//! - A JSON (non-streamed) body is accumulated and parsed once at [`Meter::finish`].

use bytes::Bytes;
use memchr::memchr;
use serde::Deserialize;

use super::json::{Count, Json as JsonTree, Text};
use super::tokens::{count_tokens, TokenCounter};
use super::{Api, TokenCounting};

/// Longest NDJSON/SSE line that is parsed; longer lines pass through uncounted.
const MAX_LINE: usize = 16 << 20;

/// Largest non-streamed JSON body that is parsed; a longer one is forwarded uncounted.
const MAX_BODY: usize = 64 << 20;

/// How a response body is framed, from its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `application/x-ndjson`: one JSON object per line (Ollama native streams).
    Ndjson,
    /// `text/event-stream`: server-sent events (`/v1` streams).
    Sse,
    /// Anything else: one JSON document, parsed whole at the end.
    Json,
    /// A transcription's successful `text/plain` answer (`response_format: "text"`): the
    /// whole body is generated text. Never derived from a content type alone, since Ollama's
    /// own error pages are plain text too (see [`Framing::of_answer`]).
    Text,
}

impl Framing {
    /// The framing of an answer on `api`: [`Framing::from_content_type`], except that a
    /// successful plain-text transcription is [`Framing::Text`].
    pub fn of_answer(api: Api, content_type: Option<&str>, success: bool) -> Framing {
        let mime = content_type
            .and_then(|ct| ct.split(';').next())
            .unwrap_or("")
            .trim();
        if api == Api::Transcriptions && success && mime.eq_ignore_ascii_case("text/plain") {
            Framing::Text
        } else {
            Framing::from_content_type(content_type)
        }
    }

    /// `application/x-ndjson` (or `application/ndjson`) → [`Framing::Ndjson`],
    /// `text/event-stream` → [`Framing::Sse`], anything else or nothing → [`Framing::Json`].
    /// Parameters (`; charset=utf-8`) and letter case are ignored.
    pub fn from_content_type(ct: Option<&str>) -> Framing {
        let mime = ct.and_then(|ct| ct.split(';').next()).unwrap_or("").trim();
        if mime.eq_ignore_ascii_case("application/x-ndjson")
            || mime.eq_ignore_ascii_case("application/ndjson")
        {
            Framing::Ndjson
        } else if mime.eq_ignore_ascii_case("text/event-stream") {
            Framing::Sse
        } else {
            Framing::Json
        }
    }
}

/// Token usage of one response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens reported by Ollama (`prompt_eval_count`, `usage.prompt_tokens`,
    /// `usage.input_tokens`): the last non-zero value seen. Zeros are ignored, which handles
    /// the `/v1/completions` quirk (a zero usage on every chunk) and lets `message_delta`
    /// replace the estimate of `message_start` on `/v1/messages`.
    pub upstream_prompt: Option<u64>,
    /// Completion tokens reported by Ollama (`eval_count`, `usage.completion_tokens`,
    /// `usage.output_tokens`), same rule.
    pub upstream_completion: Option<u64>,
    /// `cl100k_base` count of the generated text that passed through: content, response,
    /// thinking/reasoning, tool-call names and arguments.
    pub counted_completion: u64,
    /// The final chunk (`done:true`, `[DONE]`, `response.completed`, `message_stop`) or the
    /// whole JSON body was seen.
    pub complete: bool,
    /// The durations Ollama reports on its native routes (the `/v1` routes carry none).
    pub durations: OllamaDurations,
}

/// What Ollama says its time went to, in nanoseconds as it reports them (`load_duration`,
/// `prompt_eval_duration`, `eval_duration` of the final native chunk); `None` where not
/// reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OllamaDurations {
    pub load_ns: Option<u64>,
    pub prompt_eval_ns: Option<u64>,
    pub eval_ns: Option<u64>,
}

impl Usage {
    /// `(prompt, completion)` to charge, given the answer's `output_chunks`
    /// ([`Meter::output_chunks`]). Tiktoken: `(request_prompt_tokens, counted_completion)`,
    /// but never fewer completion tokens than Ollama reports (thinking that `/v1/completions`
    /// generates but never sends, a tool call Ollama parsed out of the text: they ran on the
    /// GPU all the same) or than chunks of text streamed. Upstream: exactly Ollama's values
    /// where present; where they never came (the client hung up, the host broke off), the
    /// request's own prompt count and one token per chunk streamed (Ollama sends one token a
    /// chunk), never less than the tiktoken count of the text.
    pub fn charge(
        &self,
        mode: TokenCounting,
        request_prompt_tokens: u64,
        output_chunks: u64,
    ) -> (u64, u64) {
        let seen = self.counted_completion.max(output_chunks);
        match mode {
            TokenCounting::Tiktoken => (
                request_prompt_tokens,
                seen.max(self.upstream_completion.unwrap_or(0)),
            ),
            TokenCounting::Upstream => (
                self.upstream_prompt.unwrap_or(request_prompt_tokens),
                self.upstream_completion.unwrap_or(seen),
            ),
        }
    }
}

/// Incremental usage meter for one response body.
#[derive(Debug)]
pub struct Meter {
    api: Api,
    framing: Framing,
    /// Remove the injected `choices:[]` + `usage` SSE event.
    strip: bool,
    /// The pending partial line (NDJSON/SSE; in strip mode these bytes are also held back
    /// from the client), or the body so far (JSON).
    buf: Vec<u8>,
    /// Inside a line longer than [`MAX_LINE`] (bytes pass through unparsed up to the next
    /// newline), or the JSON body exceeded [`MAX_BODY`].
    overflow: bool,
    /// Strip mode: the next line, if blank, ends an event whose data line was removed.
    drop_blank: bool,
    content: TokenCounter,
    reasoning: TokenCounter,
    tool_args: TokenCounter,
    /// Upstream values and flags; `counted_completion` holds the tokens counted directly
    /// (whole tool calls), the counters hold the rest.
    usage: Usage,
    finished: bool,
    /// Payloads that carried generated text: Ollama streams one token per chunk, so this is
    /// the running count of an answer in progress when counting Ollama's way.
    output_chunks: u64,
    /// SSE: the last complete line was part of an event whose blank line has not come yet.
    event_open: bool,
    /// Where the unterminated tail of the last chunk fed began, when it began in that chunk.
    tail_from: Option<usize>,
}

/// Where a stream can be ended (see [`Meter::cut_point`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutPoint {
    /// Forward this many bytes of the last chunk's output, then the ending.
    At(usize),
    /// A line that the client already has the start of is still open: wait for its end.
    NotYet,
}

impl Meter {
    /// A meter for a response of `api` framed as `framing`. `strip_usage_chunk` (set when the
    /// request had [`super::RequestInfo::usage_injected`]) removes the usage-only SSE event.
    pub fn new(api: Api, framing: Framing, strip_usage_chunk: bool) -> Meter {
        Meter {
            api,
            framing,
            strip: strip_usage_chunk && framing == Framing::Sse,
            buf: Vec::new(),
            overflow: false,
            drop_blank: false,
            content: TokenCounter::default(),
            reasoning: TokenCounter::default(),
            tool_args: TokenCounter::default(),
            usage: Usage::default(),
            finished: false,
            output_chunks: 0,
            event_open: false,
            tail_from: None,
        }
    }

    /// Payloads that carried generated text so far (Ollama streams one token per chunk).
    pub fn output_chunks(&self) -> u64 {
        self.output_chunks
    }

    /// The completion tokens of the answer so far: Ollama's count once reported, else one per
    /// chunk of generated text (`upstream`); or the tiktoken count so far (`tiktoken`). The
    /// tiktoken count encodes text in batches, so while a stream runs it is at least the
    /// number of chunks of generated text (Ollama sends one token per chunk).
    pub fn running_completion(&self, mode: TokenCounting) -> u64 {
        match mode {
            TokenCounting::Tiktoken => self.usage().counted_completion.max(self.output_chunks),
            TokenCounting::Upstream => self.usage.upstream_completion.unwrap_or(self.output_chunks),
        }
    }

    /// Where the stream can be ended after the last chunk fed, whose output (what
    /// [`Meter::feed`] returned, or the chunk) is `output_len` bytes long, so that the client
    /// has only whole lines: the end of the output, the start of a line the chunk left open,
    /// or not yet when the client already has part of an open line.
    pub fn cut_point(&self, output_len: usize) -> CutPoint {
        if self.strip || (self.buf.is_empty() && !self.overflow) {
            return CutPoint::At(output_len);
        }
        match self.tail_from {
            Some(at) if !self.overflow => CutPoint::At(at.min(output_len)),
            _ => CutPoint::NotYet,
        }
    }

    /// Whether everything forwarded so far ends on a line boundary: an ending can follow
    /// without a chunk to cut (the host stopped between lines).
    pub fn at_line_boundary(&self) -> bool {
        self.strip || (self.buf.is_empty() && !self.overflow)
    }

    pub fn api(&self) -> Api {
        self.api
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// SSE: an event is open (its data was sent, its blank line not yet): an ending must
    /// start with a blank line.
    pub fn event_open(&self) -> bool {
        self.event_open
    }

    fn text_pieces(&self) -> u64 {
        self.content.pieces() + self.reasoning.pieces() + self.tool_args.pieces()
    }

    /// Feeds one response body chunk. `None`: forward the chunk unchanged (always the case
    /// unless stripping). `Some(bytes)`: forward these instead (possibly empty, when the whole
    /// chunk is held back as part of an incomplete line).
    pub fn feed(&mut self, chunk: &[u8]) -> Option<Bytes> {
        if self.finished || chunk.is_empty() {
            return None;
        }
        match self.framing {
            Framing::Json | Framing::Text => {
                self.feed_body(chunk);
                None
            }
            Framing::Ndjson | Framing::Sse => self.feed_lines(chunk),
        }
    }

    /// End of the response, clean or not: parses the pending partial line (or the JSON
    /// body), flushes the token counters and returns the usage, plus any bytes held back that
    /// must still be forwarded (only in strip mode). Calling it again returns the same usage
    /// and no bytes.
    pub fn finish(&mut self) -> (Usage, Option<Bytes>) {
        if self.finished {
            return (self.usage(), None);
        }
        self.finished = true;
        let mut held = None;
        match self.framing {
            Framing::Json | Framing::Text => self.finish_body(),
            Framing::Ndjson | Framing::Sse => {
                if !self.overflow && !self.buf.is_empty() {
                    let line = std::mem::take(&mut self.buf);
                    let keep = self.line(&line);
                    if self.strip && keep {
                        held = Some(Bytes::from(line));
                    }
                }
            }
        }
        self.content.finish();
        self.reasoning.finish();
        self.tool_args.finish();
        (self.usage(), held)
    }

    /// Usage so far, without flushing the pending text (the last few words of a stream in
    /// progress are not yet in `counted_completion`).
    pub fn usage(&self) -> Usage {
        let mut usage = self.usage;
        usage.counted_completion +=
            self.content.total() + self.reasoning.total() + self.tool_args.total();
        usage
    }

    fn feed_body(&mut self, chunk: &[u8]) {
        if self.overflow {
            return;
        }
        if self.buf.len() + chunk.len() > MAX_BODY {
            self.overflow = true;
            self.buf = Vec::new();
            return;
        }
        self.buf.extend_from_slice(chunk);
    }

    fn finish_body(&mut self) {
        if self.overflow {
            return;
        }
        let body = std::mem::take(&mut self.buf);
        let parsed = match self.api {
            Api::Generate | Api::Chat | Api::Embed | Api::EmbeddingsLegacy => self.native(&body),
            Api::OpenAiChat | Api::OpenAiCompletions | Api::OpenAiEmbeddings => {
                self.openai(&body).is_some()
            }
            Api::Responses => self.responses_body(&body),
            Api::Messages => self.messages_body(&body),
            Api::Transcriptions => self.transcription_body(&body),
        };
        if parsed {
            self.usage.complete = true;
        }
    }

    fn feed_lines(&mut self, chunk: &[u8]) -> Option<Bytes> {
        let mut out = Output::default();
        let mut pos = 0;
        self.tail_from = None;
        if self.overflow || !self.buf.is_empty() {
            let Some(nl) = memchr(b'\n', chunk) else {
                self.continue_partial(chunk, &mut out);
                return out.finish(chunk);
            };
            if self.overflow {
                // The end of an over-long line: it passed through unparsed.
                self.overflow = false;
            } else {
                self.buf.extend_from_slice(&chunk[..=nl]);
                let line = std::mem::take(&mut self.buf);
                let keep = self.line(&line);
                if self.strip {
                    // The held start of this line goes out now, with its end, or not at all.
                    out.modified = true;
                    if keep {
                        out.bytes.extend_from_slice(&line);
                    }
                    out.kept_from = nl + 1;
                }
                self.buf = line;
                self.buf.clear();
            }
            pos = nl + 1;
        }
        while let Some(offset) = memchr(b'\n', &chunk[pos..]) {
            let end = pos + offset + 1;
            let keep = self.line(&chunk[pos..end]);
            if !keep && self.strip {
                out.cut(chunk, pos, end);
            }
            pos = end;
        }
        if pos < chunk.len() {
            let tail = &chunk[pos..];
            if tail.len() > MAX_LINE {
                self.overflow = true;
            } else {
                self.tail_from = Some(pos);
                self.buf.extend_from_slice(tail);
                if self.strip {
                    out.cut(chunk, pos, chunk.len());
                }
            }
        }
        out.finish(chunk)
    }

    /// A chunk without a newline, inside a pending (or over-long) line.
    fn continue_partial(&mut self, chunk: &[u8], out: &mut Output) {
        if self.overflow {
            return;
        }
        if self.buf.len() + chunk.len() > MAX_LINE {
            // Give up on this line: release what was held, let the rest pass unparsed.
            self.overflow = true;
            if self.strip {
                out.modified = true;
                out.bytes.extend_from_slice(&self.buf);
            }
            self.buf = Vec::new();
        } else {
            self.buf.extend_from_slice(chunk);
            if self.strip {
                out.cut(chunk, 0, chunk.len());
            }
        }
    }

    /// One complete line (with or without its line end). Returns false when it must be
    /// removed from the output (strip mode only).
    fn line(&mut self, raw: &[u8]) -> bool {
        let line = trim_eol(raw);
        match self.framing {
            Framing::Ndjson => {
                if !line.is_empty() {
                    self.payload(line);
                }
                true
            }
            Framing::Sse => self.sse_line(line),
            Framing::Json | Framing::Text => true,
        }
    }

    fn sse_line(&mut self, line: &[u8]) -> bool {
        if line.is_empty() {
            self.event_open = false;
            return !std::mem::take(&mut self.drop_blank);
        }
        self.event_open = true;
        self.drop_blank = false;
        let Some(rest) = line.strip_prefix(b"data:") else {
            return true; // event:, id:, retry:, comments
        };
        let data = rest.strip_prefix(b" ").unwrap_or(rest);
        if data == b"[DONE]" {
            self.usage.complete = true;
            return true;
        }
        if self.payload(data) && self.strip {
            self.drop_blank = true;
            return false;
        }
        true
    }

    /// One JSON payload of a stream. Returns true for a usage-only OpenAI chunk.
    fn payload(&mut self, data: &[u8]) -> bool {
        let pieces = self.text_pieces();
        let usage_only = self.payload_of_api(data);
        if self.text_pieces() > pieces {
            self.output_chunks += 1;
        }
        usage_only
    }

    fn payload_of_api(&mut self, data: &[u8]) -> bool {
        match self.api {
            Api::Generate | Api::Chat | Api::Embed | Api::EmbeddingsLegacy => {
                self.native(data);
                false
            }
            Api::OpenAiChat | Api::OpenAiCompletions | Api::OpenAiEmbeddings => {
                self.openai(data).unwrap_or(false)
            }
            Api::Responses => {
                self.responses_event(data);
                false
            }
            Api::Messages => {
                self.messages_event(data);
                false
            }
            // Ollama answers a transcription whole, never as a stream.
            Api::Transcriptions => false,
        }
    }

    /// A transcription's answer: `{"text": …}`, or the text itself ([`Framing::Text`]).
    /// Returns whether it was one.
    fn transcription_body(&mut self, body: &[u8]) -> bool {
        #[derive(Deserialize)]
        struct Transcription<'a> {
            #[serde(borrow)]
            text: Text<'a>,
        }
        if self.framing == Framing::Text {
            self.content.push(&String::from_utf8_lossy(body));
            return true;
        }
        match serde_json::from_slice::<Transcription<'_>>(body) {
            Ok(t) => {
                self.content.push(t.text.get().unwrap_or(""));
                true
            }
            Err(_) => false,
        }
    }

    /// An Ollama native chunk or answer. Returns whether it parsed.
    fn native(&mut self, data: &[u8]) -> bool {
        let Ok(c) = serde_json::from_slice::<NativeChunk<'_>>(data) else {
            return false;
        };
        self.content.push(c.response.get().unwrap_or(""));
        self.reasoning.push(c.thinking.get().unwrap_or(""));
        if let Some(m) = &c.message {
            self.content.push(m.content.get().unwrap_or(""));
            self.reasoning.push(m.thinking.get().unwrap_or(""));
        }
        let calls = c.message.iter().flat_map(|m| m.tool_calls.iter().flatten());
        for f in calls
            .chain(c.tool_calls.iter().flatten())
            .filter_map(|t| t.function.as_ref())
        {
            self.count_direct(f.name.get());
            if let Some(args) = &f.arguments {
                self.count_json(args);
            }
        }
        self.report(c.prompt_eval_count.0, c.eval_count.0);
        let durations = &mut self.usage.durations;
        for (reported, kept) in [
            (c.load_duration.0, &mut durations.load_ns),
            (c.prompt_eval_duration.0, &mut durations.prompt_eval_ns),
            (c.eval_duration.0, &mut durations.eval_ns),
        ] {
            if reported.is_some() {
                *kept = reported;
            }
        }
        if c.done == Some(true) {
            self.usage.complete = true;
        }
        true
    }

    /// An OpenAI chunk or answer. `None` if it does not parse, else whether it is a
    /// usage-only chunk (`"choices":[]` with a `usage` object).
    fn openai(&mut self, data: &[u8]) -> Option<bool> {
        let c = serde_json::from_slice::<OaiChunk<'_>>(data).ok()?;
        for choice in c.choices.iter().flatten() {
            self.content.push(choice.text.get().unwrap_or(""));
            for m in [&choice.delta, &choice.message].into_iter().flatten() {
                self.content.push(m.content.get().unwrap_or(""));
                self.content.push(m.refusal.get().unwrap_or(""));
                self.reasoning.push(m.reasoning.get().unwrap_or(""));
                self.reasoning.push(m.reasoning_content.get().unwrap_or(""));
                for f in m
                    .tool_calls
                    .iter()
                    .flatten()
                    .filter_map(|t| t.function.as_ref())
                {
                    self.count_direct(f.name.get());
                    self.tool_args.push(f.arguments.get().unwrap_or(""));
                }
            }
        }
        if let Some(u) = &c.usage {
            self.report_usage(u);
        }
        Some(matches!(&c.choices, Some(v) if v.is_empty()) && c.usage.is_some())
    }

    fn responses_event(&mut self, data: &[u8]) {
        let Ok(e) = serde_json::from_slice::<RespEvent<'_>>(data) else {
            return;
        };
        let delta = e.delta.get().unwrap_or("");
        match e.kind.get().unwrap_or("") {
            "response.output_text.delta" | "response.refusal.delta" => self.content.push(delta),
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                self.reasoning.push(delta);
            }
            "response.function_call_arguments.delta" => self.tool_args.push(delta),
            "response.output_item.added" => {
                if let Some(item) = e
                    .item
                    .as_ref()
                    .filter(|i| i.kind.get() == Some("function_call"))
                {
                    self.count_direct(item.name.get());
                }
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                self.usage.complete = true;
            }
            _ => {}
        }
        if let Some(u) = e.response.as_ref().and_then(|r| r.usage.as_ref()) {
            self.report_usage(u);
        }
    }

    fn responses_body(&mut self, data: &[u8]) -> bool {
        let Ok(r) = serde_json::from_slice::<RespBody<'_>>(data) else {
            return false;
        };
        let items = r.output.as_deref().unwrap_or_default();
        for item in items {
            for part in item.content.iter().flatten() {
                self.content.push(part.text.get().unwrap_or(""));
            }
            for part in item.summary.iter().flatten() {
                self.reasoning.push(part.text.get().unwrap_or(""));
            }
            self.count_direct(item.name.get());
            self.tool_args.push(item.arguments.get().unwrap_or(""));
        }
        if items.is_empty() {
            self.content.push(r.output_text.get().unwrap_or(""));
        }
        if let Some(u) = &r.usage {
            self.report_usage(u);
        }
        true
    }

    fn messages_event(&mut self, data: &[u8]) {
        let Ok(e) = serde_json::from_slice::<MsgEvent<'_>>(data) else {
            return;
        };
        match e.kind.get().unwrap_or("") {
            "content_block_start" => {
                if let Some(b) = &e.content_block {
                    self.content.push(b.text.get().unwrap_or(""));
                    self.reasoning.push(b.thinking.get().unwrap_or(""));
                    self.count_direct(b.name.get());
                }
            }
            "content_block_delta" => {
                if let Some(d) = &e.delta {
                    self.content.push(d.text.get().unwrap_or(""));
                    self.reasoning.push(d.thinking.get().unwrap_or(""));
                    self.tool_args.push(d.partial_json.get().unwrap_or(""));
                }
            }
            "message_stop" => self.usage.complete = true,
            _ => {}
        }
        if let Some(u) = e.message.as_ref().and_then(|m| m.usage.as_ref()) {
            self.report_usage(u);
        }
        if let Some(u) = &e.usage {
            self.report_usage(u);
        }
    }

    fn messages_body(&mut self, data: &[u8]) -> bool {
        let Ok(m) = serde_json::from_slice::<MsgBody<'_>>(data) else {
            return false;
        };
        for b in m.content.iter().flatten() {
            self.content.push(b.text.get().unwrap_or(""));
            self.reasoning.push(b.thinking.get().unwrap_or(""));
            self.count_direct(b.name.get());
            if let Some(input) = &b.input {
                self.count_json(input);
            }
        }
        if let Some(u) = &m.usage {
            self.report_usage(u);
        }
        true
    }

    fn report_usage(&mut self, u: &TokenUsage) {
        self.report(
            u.prompt_tokens.0.or(u.input_tokens.0),
            u.completion_tokens.0.or(u.output_tokens.0),
        );
    }

    /// Records upstream counts: the last non-zero value wins.
    fn report(&mut self, prompt: Option<u64>, completion: Option<u64>) {
        if let Some(p) = prompt.filter(|&p| p > 0) {
            self.usage.upstream_prompt = Some(p);
        }
        if let Some(c) = completion.filter(|&c| c > 0) {
            self.usage.upstream_completion = Some(c);
        }
    }

    fn count_direct(&mut self, text: Option<&str>) {
        if let Some(text) = text {
            self.usage.counted_completion += count_tokens(text);
        }
    }

    /// Counts a JSON value (tool-call arguments given as an object) as its compact text.
    fn count_json(&mut self, value: &JsonTree<'_>) {
        if let Ok(text) = serde_json::to_string(value) {
            self.count_direct(Some(&text));
        }
    }
}

/// Strip-mode output of one chunk: kept byte ranges of the chunk, after any held bytes.
#[derive(Default)]
struct Output {
    bytes: Vec<u8>,
    /// The output differs from the chunk.
    modified: bool,
    /// Start of the chunk bytes not yet copied to `bytes`.
    kept_from: usize,
}

impl Output {
    /// Leaves `chunk[start..end]` out of the output (removed, or held back).
    fn cut(&mut self, chunk: &[u8], start: usize, end: usize) {
        self.modified = true;
        self.bytes.extend_from_slice(&chunk[self.kept_from..start]);
        self.kept_from = end;
    }

    fn finish(mut self, chunk: &[u8]) -> Option<Bytes> {
        if !self.modified {
            return None;
        }
        self.bytes.extend_from_slice(&chunk[self.kept_from..]);
        Some(Bytes::from(self.bytes))
    }
}

/// The line without its `\n` / `\r\n`.
fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

// ---- payload shapes (borrowed strings, unknown fields skipped) ----

/// `/api/generate`, `/api/chat` chunk or answer; `/api/embed` answer.
#[derive(Deserialize, Default)]
#[serde(default)]
struct NativeChunk<'a> {
    #[serde(borrow)]
    response: Text<'a>,
    #[serde(borrow)]
    thinking: Text<'a>,
    #[serde(borrow)]
    message: Option<NativeMessage<'a>>,
    /// `/api/generate` answers carry tool calls at the top level (`api.GenerateResponse`).
    #[serde(borrow)]
    tool_calls: Option<Vec<NativeToolCall<'a>>>,
    done: Option<bool>,
    prompt_eval_count: Count,
    eval_count: Count,
    load_duration: Count,
    prompt_eval_duration: Count,
    eval_duration: Count,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NativeMessage<'a> {
    #[serde(borrow)]
    content: Text<'a>,
    #[serde(borrow)]
    thinking: Text<'a>,
    #[serde(borrow)]
    tool_calls: Option<Vec<NativeToolCall<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NativeToolCall<'a> {
    #[serde(borrow)]
    function: Option<NativeFunction<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NativeFunction<'a> {
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    arguments: Option<JsonTree<'a>>,
}

/// OpenAI chat/completions chunk or answer; embeddings answer.
#[derive(Deserialize, Default)]
#[serde(default)]
struct OaiChunk<'a> {
    #[serde(borrow)]
    choices: Option<Vec<OaiChoice<'a>>>,
    usage: Option<TokenUsage>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OaiChoice<'a> {
    #[serde(borrow)]
    delta: Option<OaiMessage<'a>>,
    #[serde(borrow)]
    message: Option<OaiMessage<'a>>,
    #[serde(borrow)]
    text: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OaiMessage<'a> {
    #[serde(borrow)]
    content: Text<'a>,
    #[serde(borrow)]
    refusal: Text<'a>,
    #[serde(borrow)]
    reasoning: Text<'a>,
    #[serde(borrow)]
    reasoning_content: Text<'a>,
    #[serde(borrow)]
    tool_calls: Option<Vec<OaiToolCall<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OaiToolCall<'a> {
    #[serde(borrow)]
    function: Option<OaiFunction<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OaiFunction<'a> {
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    arguments: Text<'a>,
}

/// Any of the usage objects: OpenAI (`prompt_tokens`/`completion_tokens`), Responses and
/// Anthropic (`input_tokens`/`output_tokens`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenUsage {
    prompt_tokens: Count,
    completion_tokens: Count,
    input_tokens: Count,
    output_tokens: Count,
}

/// `/v1/responses` stream event.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RespEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    #[serde(borrow)]
    delta: Text<'a>,
    #[serde(borrow)]
    item: Option<RespEventItem<'a>>,
    response: Option<RespUsageHolder>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RespEventItem<'a> {
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    #[serde(borrow)]
    name: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RespUsageHolder {
    usage: Option<TokenUsage>,
}

/// `/v1/responses` answer.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RespBody<'a> {
    #[serde(borrow)]
    output: Option<Vec<RespOutputItem<'a>>>,
    #[serde(borrow)]
    output_text: Text<'a>,
    usage: Option<TokenUsage>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RespOutputItem<'a> {
    #[serde(borrow)]
    content: Option<Vec<RespPart<'a>>>,
    #[serde(borrow)]
    summary: Option<Vec<RespPart<'a>>>,
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    arguments: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RespPart<'a> {
    #[serde(borrow)]
    text: Text<'a>,
}

/// `/v1/messages` stream event.
#[derive(Deserialize, Default)]
#[serde(default)]
struct MsgEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    message: Option<RespUsageHolder>,
    #[serde(borrow)]
    delta: Option<MsgDelta<'a>>,
    usage: Option<TokenUsage>,
    #[serde(borrow)]
    content_block: Option<MsgBlock<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MsgDelta<'a> {
    #[serde(borrow)]
    text: Text<'a>,
    #[serde(borrow)]
    thinking: Text<'a>,
    #[serde(borrow)]
    partial_json: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MsgBlock<'a> {
    #[serde(borrow)]
    text: Text<'a>,
    #[serde(borrow)]
    thinking: Text<'a>,
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    input: Option<JsonTree<'a>>,
}

/// `/v1/messages` answer.
#[derive(Deserialize, Default)]
#[serde(default)]
struct MsgBody<'a> {
    #[serde(borrow)]
    content: Option<Vec<MsgBlock<'a>>>,
    usage: Option<TokenUsage>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Feeds `chunks` and returns the usage and the bytes the client would receive.
    fn run<'c>(
        api: Api,
        framing: Framing,
        strip: bool,
        chunks: impl IntoIterator<Item = &'c [u8]>,
    ) -> (Usage, Vec<u8>) {
        let mut meter = Meter::new(api, framing, strip);
        let mut out = Vec::new();
        for chunk in chunks {
            match meter.feed(chunk) {
                None => out.extend_from_slice(chunk),
                Some(bytes) => out.extend_from_slice(&bytes),
            }
        }
        let (usage, held) = meter.finish();
        if let Some(held) = held {
            out.extend_from_slice(&held);
        }
        assert_eq!(meter.finish(), (usage, None), "finish is idempotent");
        (usage, out)
    }

    fn random_splits(data: &[u8], seed: u64) -> Vec<&[u8]> {
        let mut state = seed | 1;
        let mut pieces = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let n = usize::try_from(state % 40 + 1).unwrap().min(rest.len());
            pieces.push(&rest[..n]);
            rest = &rest[n..];
        }
        pieces
    }

    /// Runs the body whole, byte by byte and in several random splits; asserts that every
    /// way gives the same usage and the same forwarded bytes, and returns them.
    fn run_all_splits(api: Api, framing: Framing, strip: bool, body: &[u8]) -> (Usage, Vec<u8>) {
        let whole = run(api, framing, strip, [body]);
        let bytewise = run(api, framing, strip, body.chunks(1));
        assert_eq!(bytewise, whole, "byte by byte");
        for seed in [1, 7, 42, 1234, 99_999] {
            let split = run(api, framing, strip, random_splits(body, seed));
            assert_eq!(split, whole, "random split, seed {seed}");
        }
        whole
    }

    fn ct(parts: &[&str]) -> u64 {
        count_tokens(&parts.concat())
    }

    fn lines(lines: &[&str]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|l| [l.as_bytes(), b"\n"])
            .flatten()
            .copied()
            .collect()
    }

    fn sse(events: &[&str]) -> Vec<u8> {
        events
            .iter()
            .flat_map(|e| [e.as_bytes(), b"\n\n"])
            .flatten()
            .copied()
            .collect()
    }

    const CHAT_NDJSON: &[&str] = &[
        r#"{"model":"qwen3:0.6b","created_at":"2026-08-01T10:00:00.1Z","message":{"role":"assistant","content":"","thinking":"User says hi"},"done":false}"#,
        r#"{"model":"qwen3:0.6b","created_at":"2026-08-01T10:00:00.1Z","message":{"role":"assistant","content":"","thinking":", so greet."},"done":false}"#,
        r#"{"model":"qwen3:0.6b","created_at":"2026-08-01T10:00:00.2Z","message":{"role":"assistant","content":"Hello"},"done":false}"#,
        r#"{"model":"qwen3:0.6b","created_at":"2026-08-01T10:00:00.2Z","message":{"role":"assistant","content":" there, caf\u00e9 friend"},"done":false}"#,
        r#"{"model":"qwen3:0.6b","created_at":"2026-08-01T10:00:00.3Z","message":{"role":"assistant","content":"! How are you ☕?"},"done":false}"#,
        r#"{"model":"qwen3:0.6b","created_at":"2026-08-01T10:00:00.4Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":812000000,"load_duration":21000000,"prompt_eval_count":14,"prompt_eval_duration":90000000,"eval_count":9,"eval_duration":650000000}"#,
    ];

    /// An /api/chat NDJSON stream gives the same usage fed whole, byte by byte (splitting
    /// lines and UTF-8 characters) and in random splits; content and thinking are counted,
    /// Ollama's counts are read from the final chunk, and nothing is ever rewritten.
    #[test]
    fn ndjson_chat_any_split() {
        let body = lines(CHAT_NDJSON);
        let (usage, out) = run_all_splits(Api::Chat, Framing::Ndjson, false, &body);
        assert_eq!(out, body);
        assert_eq!(
            usage,
            Usage {
                upstream_prompt: Some(14),
                upstream_completion: Some(9),
                counted_completion: ct(&["Hello", " there, café friend", "! How are you ☕?"])
                    + ct(&["User says hi", ", so greet."]),
                complete: true,
                durations: OllamaDurations {
                    load_ns: Some(21_000_000),
                    prompt_eval_ns: Some(90_000_000),
                    eval_ns: Some(650_000_000),
                },
            }
        );
        // \r\n line ends and a last line without a line end are read too.
        let crlf = CHAT_NDJSON.join("\r\n");
        assert_eq!(
            run(Api::Chat, Framing::Ndjson, false, [crlf.as_bytes()]).0,
            usage
        );
    }

    /// An /api/generate NDJSON stream (with the large `context` array on the final chunk)
    /// gives the same usage however it is split.
    #[test]
    fn ndjson_generate_any_split() {
        let context: Vec<String> = (0..2000).map(|i| (i * 37 % 128_000).to_string()).collect();
        let last = format!(
            r#"{{"model":"m","created_at":"t","response":"","done":true,"done_reason":"stop","context":[{}],"prompt_eval_count":26,"eval_count":298}}"#,
            context.join(",")
        );
        let body = lines(&[
            r#"{"model":"m","created_at":"t","response":"The","done":false}"#,
            r#"{"model":"m","created_at":"t","response":" sky","done":false}"#,
            r#"{"model":"m","created_at":"t","response":" is blue\nbecause of Rayleigh scattering.","done":false}"#,
            &last,
        ]);
        let (usage, out) = run_all_splits(Api::Generate, Framing::Ndjson, false, &body);
        assert_eq!(out, body);
        assert_eq!(usage.upstream_prompt, Some(26));
        assert_eq!(usage.upstream_completion, Some(298));
        assert_eq!(
            usage.counted_completion,
            count_tokens("The sky is blue\nbecause of Rayleigh scattering.")
        );
        assert!(usage.complete);
    }

    /// `/api/generate` answers carry tool calls at the top level (`api.GenerateResponse`,
    /// `tool_calls`): their names and arguments are generated output too.
    #[test]
    fn generate_top_level_tool_calls() {
        let body = lines(&[
            r#"{"model":"m","response":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}],"done":true,"done_reason":"stop"}"#,
        ]);
        let (usage, _) = run_all_splits(Api::Generate, Framing::Ndjson, false, &body);
        assert!(
            usage.counted_completion >= count_tokens("get_weather") + count_tokens("Paris"),
            "{usage:?}"
        );
    }

    /// A stream cut in the middle of a line: finish() counts the text of the lines that
    /// arrived whole, has no upstream counts and is not complete.
    #[test]
    fn stream_cut_mid_line() {
        let body = lines(CHAT_NDJSON);
        let cut = body.len() - 60;
        let (usage, out) = run(Api::Chat, Framing::Ndjson, false, body[..cut].chunks(17));
        assert_eq!(out, &body[..cut]);
        assert_eq!(usage.upstream_prompt, None);
        assert_eq!(usage.upstream_completion, None);
        assert!(!usage.complete);
        assert_eq!(
            usage.counted_completion,
            ct(&["Hello", " there, café friend", "! How are you ☕?"])
                + ct(&["User says hi", ", so greet."])
        );
        assert_eq!(
            usage.charge(TokenCounting::Upstream, 30, 0),
            (30, usage.counted_completion)
        );
    }

    /// An `{"error":..}` line mid-stream is not a final chunk.
    #[test]
    fn ndjson_error_line() {
        let body = lines(&[CHAT_NDJSON[2], r#"{"error":"model runner crashed"}"#]);
        let (usage, _) = run(Api::Chat, Framing::Ndjson, false, [body.as_slice()]);
        assert!(!usage.complete);
        assert_eq!(usage.counted_completion, count_tokens("Hello"));
    }

    const CHAT_SSE: &[&str] = &[
        r#"data: {"id":"chatcmpl-417","object":"chat.completion.chunk","created":1785578400,"model":"qwen3:0.6b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#,
        r#"data: {"id":"chatcmpl-417","object":"chat.completion.chunk","created":1785578400,"model":"qwen3:0.6b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"reasoning":"Short answer."},"finish_reason":null}]}"#,
        r#"data: {"id":"chatcmpl-417","object":"chat.completion.chunk","created":1785578400,"model":"qwen3:0.6b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"content":"lo wörld, \"quoted\"!"},"finish_reason":null}]}"#,
        r#"data: {"id":"chatcmpl-417","object":"chat.completion.chunk","created":1785578400,"model":"qwen3:0.6b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
    ];
    const USAGE_EVENT: &str = r#"data: {"id":"chatcmpl-417","object":"chat.completion.chunk","created":1785578400,"model":"qwen3:0.6b","system_fingerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":14,"completion_tokens":9,"total_tokens":23}}"#;

    fn chat_sse(with_usage: bool) -> Vec<u8> {
        let mut events = CHAT_SSE.to_vec();
        if with_usage {
            events.push(USAGE_EVENT);
        }
        events.push("data: [DONE]");
        sse(&events)
    }

    fn chat_sse_text() -> u64 {
        count_tokens("Hello wörld, \"quoted\"!") + count_tokens("Short answer.")
    }

    /// An OpenAI chat SSE stream with the usage chunk (the client asked for it): usage is
    /// read, every byte is forwarded, the result does not depend on the split.
    #[test]
    fn sse_chat_with_usage_chunk() {
        let body = chat_sse(true);
        let (usage, out) = run_all_splits(Api::OpenAiChat, Framing::Sse, false, &body);
        assert_eq!(out, body);
        assert_eq!(
            usage,
            Usage {
                upstream_prompt: Some(14),
                upstream_completion: Some(9),
                counted_completion: chat_sse_text(),
                complete: true,
                durations: OllamaDurations::default(),
            }
        );
    }

    /// Without include_usage the stream has no usage: only the tiktoken count, and
    /// `[DONE]` marks it complete.
    #[test]
    fn sse_chat_without_usage_chunk() {
        let body = chat_sse(false);
        let (usage, out) = run_all_splits(Api::OpenAiChat, Framing::Sse, true, &body);
        assert_eq!(out, body, "nothing to strip");
        assert_eq!(
            usage,
            Usage {
                upstream_prompt: None,
                upstream_completion: None,
                counted_completion: chat_sse_text(),
                complete: true,
                durations: OllamaDurations::default(),
            }
        );
    }

    /// Strip mode removes exactly the injected usage event (data line and its blank line)
    /// and forwards every other byte unchanged, also when events are split across chunks;
    /// the usage is still read.
    #[test]
    fn strip_removes_exactly_the_usage_event() {
        let body = chat_sse(true);
        let expected = chat_sse(false);
        let (usage, out) = run_all_splits(Api::OpenAiChat, Framing::Sse, true, &body);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(expected).unwrap()
        );
        assert_eq!(usage.upstream_prompt, Some(14));
        assert_eq!(usage.upstream_completion, Some(9));
        assert!(usage.complete);

        // Chunks of whole events other than the usage one are forwarded as they are (None).
        let mut meter = Meter::new(Api::OpenAiChat, Framing::Sse, true);
        let first = sse(&CHAT_SSE[..2]);
        assert_eq!(meter.feed(&first), None);
        // A partial line is held back, then released with its end.
        let second = sse(&CHAT_SSE[2..3]);
        assert_eq!(meter.feed(&second[..10]), Some(Bytes::new()));
        assert_eq!(meter.feed(&second[10..]).unwrap(), second);
        // The usage event alone disappears; the blank line after it may come separately.
        let usage_line = format!("{USAGE_EVENT}\n");
        assert_eq!(meter.feed(usage_line.as_bytes()).unwrap(), Bytes::new());
        assert_eq!(
            meter.feed(b"\ndata: [DONE]\n\n").unwrap(),
            &b"data: [DONE]\n\n"[..]
        );
        // A held partial line is returned by finish().
        assert_eq!(meter.feed(b"data: {\"partial"), Some(Bytes::new()));
        assert_eq!(meter.finish().1.unwrap(), &b"data: {\"partial"[..]);
    }

    /// /v1/completions with include_usage: every chunk carries a zero usage, the real one
    /// comes last. The zeros are ignored (a cut stream falls back to the tiktoken count),
    /// and strip mode removes only the final usage-only event.
    #[test]
    fn completions_zero_usage_quirk() {
        let zero = r#""usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}"#;
        let chunk = |text: &str, finish: &str| {
            format!(
                r#"data: {{"id":"cmpl-5","object":"text_completion","created":1,"model":"m","system_fingerprint":"fp_ollama","choices":[{{"text":"{text}","index":0,"finish_reason":{finish}}}],{zero}}}"#
            )
        };
        let events = [
            chunk("Once", "null"),
            chunk(" upon a", "null"),
            chunk(" time.", "\"stop\""),
            r#"data: {"id":"cmpl-5","object":"text_completion","created":1,"model":"m","system_fingerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9}}"#.to_owned(),
            "data: [DONE]".to_owned(),
        ];
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        let body = sse(&refs);
        let text = count_tokens("Once upon a time.");

        let (usage, out) = run_all_splits(Api::OpenAiCompletions, Framing::Sse, true, &body);
        assert_eq!(out, sse(&[refs[0], refs[1], refs[2], refs[4]]));
        assert_eq!(
            usage,
            Usage {
                upstream_prompt: Some(5),
                upstream_completion: Some(4),
                counted_completion: text,
                complete: true,
                durations: OllamaDurations::default(),
            }
        );

        let cut = sse(&refs[..3]);
        let (usage, _) = run(Api::OpenAiCompletions, Framing::Sse, true, [cut.as_slice()]);
        assert_eq!(usage.upstream_prompt, None);
        assert_eq!(usage.upstream_completion, None);
        assert!(!usage.complete);
        assert_eq!(usage.charge(TokenCounting::Upstream, 6, 0), (6, text));
    }

    /// A /v1/responses stream: named events; text and reasoning deltas are counted (the
    /// `.done` events and the final response echo are not counted again); usage comes
    /// from `response.completed`.
    #[test]
    fn responses_stream() {
        let body = sse(&[
            "event: response.created\ndata: {\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"output\":[],\"usage\":null,\"tools\":[]},\"sequence_number\":0,\"type\":\"response.created\"}",
            "event: response.in_progress\ndata: {\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"output\":[],\"usage\":null},\"sequence_number\":1,\"type\":\"response.in_progress\"}",
            "event: response.output_item.added\ndata: {\"item\":{\"id\":\"rs_1\",\"summary\":[],\"type\":\"reasoning\"},\"output_index\":0,\"sequence_number\":2,\"type\":\"response.output_item.added\"}",
            "event: response.reasoning_summary_text.delta\ndata: {\"delta\":\"Think about\",\"item_id\":\"rs_1\",\"output_index\":0,\"sequence_number\":3,\"summary_index\":0,\"type\":\"response.reasoning_summary_text.delta\"}",
            "event: response.reasoning_summary_text.delta\ndata: {\"delta\":\" it.\",\"item_id\":\"rs_1\",\"output_index\":0,\"sequence_number\":4,\"summary_index\":0,\"type\":\"response.reasoning_summary_text.delta\"}",
            "event: response.reasoning_summary_text.done\ndata: {\"item_id\":\"rs_1\",\"output_index\":0,\"sequence_number\":5,\"summary_index\":0,\"text\":\"Think about it.\",\"type\":\"response.reasoning_summary_text.done\"}",
            "event: response.output_text.delta\ndata: {\"content_index\":0,\"delta\":\"Hello\",\"item_id\":\"msg_1\",\"logprobs\":[],\"output_index\":1,\"sequence_number\":6,\"type\":\"response.output_text.delta\"}",
            "event: response.output_text.delta\ndata: {\"content_index\":0,\"delta\":\" from responses.\",\"item_id\":\"msg_1\",\"logprobs\":[],\"output_index\":1,\"sequence_number\":7,\"type\":\"response.output_text.delta\"}",
            "event: response.output_text.done\ndata: {\"content_index\":0,\"item_id\":\"msg_1\",\"logprobs\":[],\"output_index\":1,\"sequence_number\":8,\"text\":\"Hello from responses.\",\"type\":\"response.output_text.done\"}",
            "event: response.completed\ndata: {\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hello from responses.\"}]}],\"usage\":{\"input_tokens\":14,\"output_tokens\":9,\"total_tokens\":23,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens_details\":{\"reasoning_tokens\":0}}},\"sequence_number\":9,\"type\":\"response.completed\"}",
        ]);
        let (usage, out) = run_all_splits(Api::Responses, Framing::Sse, false, &body);
        assert_eq!(out, body);
        assert_eq!(
            usage,
            Usage {
                upstream_prompt: Some(14),
                upstream_completion: Some(9),
                counted_completion: count_tokens("Hello from responses.")
                    + count_tokens("Think about it."),
                complete: true,
                durations: OllamaDurations::default(),
            }
        );
    }

    fn messages_stream() -> Vec<u8> {
        sse(&[
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":10,\"output_tokens\":0}}}",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Hmm, a greeting.\"}}",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\" there!\"}}",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"input_tokens\":14,\"output_tokens\":9}}",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}",
        ])
    }

    /// A /v1/messages stream: text and thinking deltas are counted; the estimated
    /// input_tokens of message_start is replaced by message_delta's counts; message_stop
    /// completes it. Cut after message_start, only the estimate is known.
    #[test]
    fn messages_stream_usage() {
        let body = messages_stream();
        let (usage, out) = run_all_splits(Api::Messages, Framing::Sse, false, &body);
        assert_eq!(out, body);
        assert_eq!(
            usage,
            Usage {
                upstream_prompt: Some(14),
                upstream_completion: Some(9),
                counted_completion: count_tokens("Hello there!") + count_tokens("Hmm, a greeting."),
                complete: true,
                durations: OllamaDurations::default(),
            }
        );
        let first_event_end = body.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
        let (usage, _) = run(
            Api::Messages,
            Framing::Sse,
            false,
            [&body[..first_event_end]],
        );
        assert_eq!(
            (usage.upstream_prompt, usage.upstream_completion),
            (Some(10), None)
        );
        assert!(!usage.complete);
    }

    /// Non-streamed JSON answers of every API: the answer text and Ollama's counts are
    /// extracted once at finish (the body may arrive in pieces); embeddings count no
    /// completion; legacy embeddings report nothing upstream.
    #[test]
    fn non_stream_json_of_each_api() {
        let case = |api: Api, body: &str| {
            let usage = run_all_splits(api, Framing::Json, false, body.as_bytes()).0;
            assert!(usage.complete, "{api:?}");
            (
                usage.upstream_prompt,
                usage.upstream_completion,
                usage.counted_completion,
            )
        };
        assert_eq!(
            case(
                Api::Generate,
                r#"{"model":"m","created_at":"t","response":"The sky is blue.","thinking":"Because.","done":true,"context":[1,2,3],"prompt_eval_count":12,"eval_count":5}"#
            ),
            (
                Some(12),
                Some(5),
                count_tokens("The sky is blue.") + count_tokens("Because.")
            )
        );
        assert_eq!(
            case(
                Api::Chat,
                r#"{"model":"m","message":{"role":"assistant","content":"Hi!","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Oslo"}}}]},"done":true,"prompt_eval_count":20,"eval_count":7}"#
            ),
            (
                Some(20),
                Some(7),
                count_tokens("Hi!")
                    + count_tokens("get_weather")
                    + count_tokens(r#"{"city":"Oslo"}"#)
            )
        );
        assert_eq!(
            case(
                Api::Embed,
                r#"{"model":"e","embeddings":[[0.1,-0.2],[0.3,0.4]],"total_duration":1,"load_duration":1,"prompt_eval_count":4}"#
            ),
            (Some(4), None, 0)
        );
        assert_eq!(
            case(Api::EmbeddingsLegacy, r#"{"embedding":[0.1,0.2,0.3]}"#),
            (None, None, 0)
        );
        assert_eq!(
            case(
                Api::OpenAiChat,
                r#"{"id":"chatcmpl-9","object":"chat.completion","created":1,"model":"m","system_fingerprint":"fp_ollama","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","reasoning":"Greet back."},"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":9,"total_tokens":23}}"#
            ),
            (
                Some(14),
                Some(9),
                count_tokens("Hello!") + count_tokens("Greet back.")
            )
        );
        assert_eq!(
            case(
                Api::OpenAiCompletions,
                r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"text":"Once upon a time","index":0,"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#
            ),
            (Some(3), Some(4), count_tokens("Once upon a time"))
        );
        assert_eq!(
            case(
                Api::OpenAiEmbeddings,
                r#"{"object":"list","data":[{"object":"embedding","embedding":[0.1,0.2],"index":0}],"model":"e","usage":{"prompt_tokens":12,"total_tokens":12}}"#
            ),
            (Some(12), None, 0)
        );
        assert_eq!(
            case(
                Api::Responses,
                r#"{"id":"resp_1","object":"response","status":"completed","output":[{"id":"rs_1","type":"reasoning","summary":[{"type":"summary_text","text":"Thinking it over"}],"encrypted_content":"Thinking it over"},{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Answer text","annotations":[],"logprobs":[]}]}],"usage":{"input_tokens":14,"output_tokens":9,"total_tokens":23}}"#
            ),
            (
                Some(14),
                Some(9),
                count_tokens("Answer text") + count_tokens("Thinking it over")
            )
        );
        assert_eq!(
            case(
                Api::Responses,
                r#"{"output_text":"Only the shortcut","usage":{"input_tokens":2,"output_tokens":3}}"#
            ),
            (Some(2), Some(3), count_tokens("Only the shortcut"))
        );
        assert_eq!(
            case(
                Api::Messages,
                r#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"thinking","thinking":"Hmm"},{"type":"text","text":"Answer"},{"type":"tool_use","id":"t","name":"lookup","input":{"q":"x"}}],"stop_reason":"tool_use","usage":{"input_tokens":21,"output_tokens":8}}"#
            ),
            (
                Some(21),
                Some(8),
                count_tokens("Answer")
                    + count_tokens("Hmm")
                    + count_tokens("lookup")
                    + count_tokens(r#"{"q":"x"}"#)
            )
        );
        // A truncated body is not complete and reports nothing.
        let body = br#"{"model":"m","response":"The sky","done":tr"#;
        let (usage, out) = run(Api::Generate, Framing::Json, false, [&body[..]]);
        assert_eq!(out, body);
        assert_eq!(usage, Usage::default());
    }

    /// usage() is cheap and never ahead of finish(); after finish, feeding does nothing.
    #[test]
    fn usage_so_far() {
        let body = lines(CHAT_NDJSON);
        let mut meter = Meter::new(Api::Chat, Framing::Ndjson, false);
        assert_eq!(meter.feed(&body[..body.len() / 2]), None);
        let partial = meter.usage();
        assert!(!partial.complete);
        assert_eq!(meter.feed(&body[body.len() / 2..]), None);
        let (done, held) = meter.finish();
        assert_eq!(held, None);
        assert!(partial.counted_completion <= done.counted_completion);
        assert_eq!(meter.feed(b"{\"done\":true}\n"), None);
        assert_eq!(meter.usage(), done);
    }

    /// The charge picks tiktoken or upstream values, upstream falling back per field; tiktoken
    /// never charges less output than Ollama reports.
    #[test]
    fn charge_modes() {
        let u = Usage {
            upstream_prompt: Some(14),
            upstream_completion: None,
            counted_completion: 11,
            complete: true,
            durations: OllamaDurations::default(),
        };
        assert_eq!(u.charge(TokenCounting::Tiktoken, 20, 0), (20, 11));
        assert_eq!(u.charge(TokenCounting::Upstream, 20, 0), (14, 11));
        let u = Usage {
            upstream_completion: Some(9),
            ..u
        };
        assert_eq!(u.charge(TokenCounting::Upstream, 20, 0), (14, 9));
        // Tiktoken mode charges hidden output: Ollama's count when it is larger.
        assert_eq!(u.charge(TokenCounting::Tiktoken, 20, 0), (20, 11));
        let u = Usage {
            upstream_completion: Some(40),
            ..u
        };
        assert_eq!(u.charge(TokenCounting::Tiktoken, 20, 0), (20, 40));
        // Without Ollama's counts (a hang-up), one token per chunk streamed at least.
        let cut = Usage {
            upstream_prompt: None,
            upstream_completion: None,
            counted_completion: 7,
            complete: false,
            durations: OllamaDurations::default(),
        };
        assert_eq!(cut.charge(TokenCounting::Upstream, 20, 12), (20, 12));
        assert_eq!(cut.charge(TokenCounting::Upstream, 20, 3), (20, 7));
        assert_eq!(cut.charge(TokenCounting::Tiktoken, 20, 12), (20, 12));
    }

    /// Framing follows the media type, ignoring parameters and case.
    #[test]
    fn framing_from_content_type() {
        assert_eq!(
            Framing::from_content_type(Some("application/x-ndjson")),
            Framing::Ndjson
        );
        assert_eq!(
            Framing::from_content_type(Some("Text/Event-Stream; charset=utf-8")),
            Framing::Sse
        );
        assert_eq!(
            Framing::from_content_type(Some("application/json; charset=utf-8")),
            Framing::Json
        );
        assert_eq!(
            Framing::from_content_type(Some("text/plain")),
            Framing::Json
        );
        assert_eq!(Framing::from_content_type(None), Framing::Json);
    }

    /// Splits `data` at the given cut points (taken modulo its length, sorted, deduplicated).
    fn split_at_points(data: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
        let mut cuts: Vec<usize> = points.iter().map(|p| p % (data.len() + 1)).collect();
        cuts.push(0);
        cuts.push(data.len());
        cuts.sort_unstable();
        cuts.dedup();
        cuts.windows(2).map(|w| data[w[0]..w[1]].to_vec()).collect()
    }

    proptest::proptest! {
        /// The meter's counts (and what it forwards) are the same for any split of the same
        /// bytes into chunks, on NDJSON and on SSE with the injected usage chunk stripped.
        #[test]
        fn counts_do_not_depend_on_chunking(
            pieces in proptest::collection::vec("[ -~é\u{1F600}\\\"\n]{0,12}", 1..12),
            points in proptest::collection::vec(0usize..4096, 0..24),
        ) {
            let native: Vec<String> = pieces
                .iter()
                .map(|p| serde_json::json!({"message": {"content": p}, "done": false}).to_string())
                .chain([r#"{"done":true,"prompt_eval_count":3,"eval_count":9}"#.to_string()])
                .collect();
            let body = lines(&native.iter().map(String::as_str).collect::<Vec<_>>());
            let whole = run(Api::Chat, Framing::Ndjson, false, [&body[..]]);
            let chunks = split_at_points(&body, &points);
            let split = run(Api::Chat, Framing::Ndjson, false, chunks.iter().map(Vec::as_slice));
            proptest::prop_assert_eq!(&whole, &split);

            let events: Vec<String> = pieces
                .iter()
                .map(|p| format!("data: {}", serde_json::json!({"choices": [{"delta": {"content": p}}]})))
                .chain([
                    r#"data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":9}}"#.to_string(),
                    "data: [DONE]".to_string(),
                ])
                .collect();
            let body = sse(&events.iter().map(String::as_str).collect::<Vec<_>>());
            let whole = run(Api::OpenAiChat, Framing::Sse, true, [&body[..]]);
            let chunks = split_at_points(&body, &points);
            let split = run(Api::OpenAiChat, Framing::Sse, true, chunks.iter().map(Vec::as_slice));
            proptest::prop_assert_eq!(&whole, &split);
            proptest::prop_assert!(!String::from_utf8_lossy(&whole.1).contains("\"choices\":[]"));
        }
    }
}
