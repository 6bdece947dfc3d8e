//! How many generating requests the fake serves at once, and the most it ever served at once:
//! tests check that the gateway keeps a host under its `max_concurrency` or a key under its
//! `max_parallel_requests`. A request counts from its arrival until its body is done or
//! dropped (a streamed answer counts while it streams).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http_body::Frame;

#[derive(Debug, Default)]
pub(crate) struct Concurrency {
    active: AtomicU64,
    peak: AtomicU64,
}

impl Concurrency {
    /// Counts a request in until the guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> Active {
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Active(Arc::clone(self))
    }

    pub(crate) fn active(&self) -> u64 {
        self.active.load(Ordering::SeqCst)
    }

    pub(crate) fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }

    pub(crate) fn reset_peak(&self) {
        self.peak.store(self.active(), Ordering::SeqCst);
    }
}

/// One request in flight.
pub(crate) struct Active(Arc<Concurrency>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `response` with `active` held until its body is done or dropped.
pub(crate) fn hold_until_sent(response: Response, active: Active) -> Response {
    response.map(|inner| {
        Body::new(Held {
            inner,
            active: Some(active),
        })
    })
}

struct Held {
    inner: Body,
    active: Option<Active>,
}

impl http_body::Body for Held {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.active = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
