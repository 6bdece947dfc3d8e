//! Response bodies.
//!
//! A streamed answer is serialised up front into one buffer ([`Frames`]) and then sent as one
//! HTTP chunk per frame by [`FrameBody`], which slices the buffer (no per-chunk allocation),
//! sleeps before each content frame when a chunk delay is configured, and aborts the connection
//! at the configured point (the body returns an error, so hyper closes the connection without
//! the terminating zero-length chunk).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use serde::Serialize;
use tokio::time::Sleep;

/// `Content-Type` of native JSON answers and errors (Gin's `c.JSON`).
pub(crate) const JSON_UTF8: &str = "application/json; charset=utf-8";
/// `Content-Type` of the OpenAI / Anthropic compatibility layers' JSON.
pub(crate) const JSON: &str = "application/json";
/// `Content-Type` of native streams.
pub(crate) const NDJSON: &str = "application/x-ndjson";
/// `Content-Type` of compatibility streams.
pub(crate) const SSE: &str = "text/event-stream";
/// `Content-Type` of plain-text answers.
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// How streamed answers are paced and cut (from [`crate::FakeConfig`]).
#[derive(Clone, Debug)]
pub(crate) struct Timing {
    pub(crate) chunk_delay: Duration,
    pub(crate) drop_after_chunks: Option<usize>,
    /// Streams whose client (the gateway) closed the connection before their last frame.
    pub(crate) abandoned: Arc<AtomicU64>,
}

/// Serialised frames of a streamed answer; "content" frames carry answer text.
pub(crate) struct Frames {
    buf: Vec<u8>,
    /// End offset of each frame and whether it is a content frame.
    ends: Vec<(usize, bool)>,
}

impl Frames {
    pub(crate) fn with_capacity(frames: usize) -> Frames {
        Frames {
            buf: Vec::with_capacity(frames * 192),
            ends: Vec::with_capacity(frames),
        }
    }

    fn end(&mut self, content: bool) {
        self.ends.push((self.buf.len(), content));
    }

    /// One NDJSON line: `{json}\n`.
    pub(crate) fn json_line<T: Serialize>(
        &mut self,
        v: &T,
        content: bool,
    ) -> Result<(), serde_json::Error> {
        serde_json::to_writer(&mut self.buf, v)?;
        self.buf.push(b'\n');
        self.end(content);
        Ok(())
    }

    /// One frame made of these byte slices, concatenated (for pre-rendered JSON).
    pub(crate) fn raw(&mut self, parts: &[&[u8]], content: bool) {
        for p in parts {
            self.buf.extend_from_slice(p);
        }
        self.end(content);
    }

    /// One unnamed SSE event: `data: {json}\n\n`.
    pub(crate) fn sse_data<T: Serialize>(
        &mut self,
        v: &T,
        content: bool,
    ) -> Result<(), serde_json::Error> {
        self.buf.extend_from_slice(b"data: ");
        serde_json::to_writer(&mut self.buf, v)?;
        self.buf.extend_from_slice(b"\n\n");
        self.end(content);
        Ok(())
    }

    /// The OpenAI stream terminator `data: [DONE]\n\n`.
    pub(crate) fn sse_done(&mut self) {
        self.buf.extend_from_slice(b"data: [DONE]\n\n");
        self.end(false);
    }

    /// One named SSE event: `event: NAME\ndata: {json}\n\n`.
    pub(crate) fn sse_event<T: Serialize>(
        &mut self,
        event: &str,
        v: &T,
        content: bool,
    ) -> Result<(), serde_json::Error> {
        self.buf.extend_from_slice(b"event: ");
        self.buf.extend_from_slice(event.as_bytes());
        self.buf.extend_from_slice(b"\ndata: ");
        serde_json::to_writer(&mut self.buf, v)?;
        self.buf.extend_from_slice(b"\n\n");
        self.end(content);
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// A `200` streaming response of these frames (chunked transfer encoding).
    pub(crate) fn into_response(self, content_type: &'static str, timing: Timing) -> Response {
        let abort_at = timing
            .drop_after_chunks
            .map(|n| abort_position(&self.ends, n));
        let body = FrameBody {
            data: Bytes::from(self.buf),
            ends: self.ends,
            next: 0,
            start: 0,
            abort_at,
            abort_armed: false,
            delay: timing.chunk_delay,
            sleep: None,
            exact_len: None,
            abandoned: Some(timing.abandoned),
        };
        with_type(StatusCode::OK, content_type, Body::new(body))
    }
}

/// The frame index before which the connection is cut: right after the `n`-th content frame
/// (or after the last content frame when there are fewer), so the final frames never go out.
/// With `n == 0` it is the first content frame (or the very start when there is none).
fn abort_position(ends: &[(usize, bool)], n: usize) -> usize {
    let mut seen = 0usize;
    let mut first_content = None;
    let mut after_last_content = None;
    for (i, &(_, content)) in ends.iter().enumerate() {
        if !content {
            continue;
        }
        first_content.get_or_insert(i);
        seen += 1;
        after_last_content = Some(i + 1);
        if seen == n {
            return i + 1;
        }
    }
    if n == 0 {
        return first_content.unwrap_or(0);
    }
    after_last_content.unwrap_or(0)
}

/// An `http_body::Body` sending pre-serialised frames one HTTP chunk each.
pub(crate) struct FrameBody {
    data: Bytes,
    ends: Vec<(usize, bool)>,
    next: usize,
    start: usize,
    abort_at: Option<usize>,
    abort_armed: bool,
    delay: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    exact_len: Option<u64>,
    /// Counted when the body is dropped unfinished (the client went away mid-stream).
    abandoned: Option<Arc<AtomicU64>>,
}

impl Drop for FrameBody {
    fn drop(&mut self) {
        if self.next < self.ends.len() {
            if let Some(abandoned) = &self.abandoned {
                abandoned.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl http_body::Body for FrameBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let Some(&(end, content)) = this.ends.get(this.next) else {
            return Poll::Ready(None);
        };
        if this.abort_at == Some(this.next) {
            if !this.abort_armed {
                // Yield once so hyper flushes what it has buffered before the abort; an error
                // returned right away would make it drop the unflushed frames too.
                this.abort_armed = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            this.next = this.ends.len();
            this.abort_at = None;
            // Cut by the configuration, not abandoned by the client.
            this.abandoned = None;
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "fake-ollama: connection dropped (drop_after_chunks)",
            ))));
        }
        if content && !this.delay.is_zero() {
            let delay = this.delay;
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            ready!(sleep.as_mut().poll(cx));
            this.sleep = None;
        }
        let chunk = this.data.slice(this.start..end);
        this.start = end;
        this.next += 1;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.ends.len()
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact_len {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// A response with a complete body and a `Content-Type`.
pub(crate) fn full(status: StatusCode, content_type: &'static str, body: Bytes) -> Response {
    with_type(status, content_type, Body::from(body))
}

/// A response with no body and no `Content-Type` (Gin's `AbortWithStatus`).
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

fn with_type(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Serialise `v` as a complete JSON body, with `newline` appended when the Ollama layer that
/// writes it uses Go's `json.Encoder` (the compatibility layers do, Gin's `c.JSON` does not).
pub(crate) fn json_bytes<T: Serialize>(v: &T, newline: bool) -> Result<Bytes, serde_json::Error> {
    let mut buf = Vec::with_capacity(256);
    serde_json::to_writer(&mut buf, v)?;
    if newline {
        buf.push(b'\n');
    }
    Ok(Bytes::from(buf))
}

/// A finished (non-streamed) answer of `eval_count` chunks: waits `chunk_delay × eval_count`
/// (the model "generates" before answering), and with `drop_after_chunks` set sends only the
/// first half of the body (under the full `Content-Length`) and then cuts the connection.
pub(crate) async fn finished_answer(
    timing: Timing,
    eval_count: usize,
    content_type: &'static str,
    body: Bytes,
) -> Response {
    if !timing.chunk_delay.is_zero() && eval_count > 0 {
        let total = timing
            .chunk_delay
            .saturating_mul(u32::try_from(eval_count).unwrap_or(u32::MAX));
        tokio::time::sleep(total).await;
    }
    if timing.drop_after_chunks.is_none() {
        return full(StatusCode::OK, content_type, body);
    }
    let half = body.len() / 2;
    let total = body.len();
    let frames = FrameBody {
        data: body,
        ends: vec![(half, false), (total, false)],
        next: 0,
        start: 0,
        abort_at: Some(1),
        abort_armed: false,
        delay: Duration::ZERO,
        sleep: None,
        exact_len: Some(total as u64),
        abandoned: None,
    };
    with_type(StatusCode::OK, content_type, Body::new(frames))
}

#[cfg(test)]
mod tests {
    use super::abort_position;

    /// The cut lands right after the n-th content frame, never after the last content frame.
    #[test]
    fn abort_positions() {
        // prefix, 3 content frames, 2 trailing frames
        let ends = [
            (1, false),
            (2, true),
            (3, true),
            (4, true),
            (5, false),
            (6, false),
        ];
        assert_eq!(abort_position(&ends, 0), 1);
        assert_eq!(abort_position(&ends, 1), 2);
        assert_eq!(abort_position(&ends, 3), 4);
        assert_eq!(abort_position(&ends, 9), 4);
        assert_eq!(abort_position(&[(1, false), (2, false)], 2), 0);
    }
}
