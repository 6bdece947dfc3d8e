//! The log of received requests.
//!
//! Cheap enough for benchmark rates: each request costs one lock, one packed allocation for the
//! path and headers, and one copy of the body (bodies over [`MAX_RECORDED_BODY`] are not copied).
//! Only the last [`MAX_RECORDED_REQUESTS`] requests are kept.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use axum::http::{HeaderMap, Method};
use bytes::Bytes;

/// How many requests the log keeps (the oldest are dropped first).
pub const MAX_RECORDED_REQUESTS: usize = 10_000;
/// Bodies longer than this are recorded as empty, with their length in
/// [`RecordedRequest::body_len`].
pub const MAX_RECORDED_BODY: usize = 64 * 1024;

/// One request as the fake received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target's path, with the query string if there was one (`/api/tags?x=1`).
    pub path: String,
    /// All headers, names lower-case, values decoded lossily as UTF-8, in first-seen order
    /// (repeated names are grouped together).
    pub headers: Vec<(String, String)>,
    /// The body, or empty when it was longer than [`MAX_RECORDED_BODY`].
    pub body: Bytes,
    /// The body's real length in bytes (also when `body` was left empty).
    pub body_len: usize,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Stored form: path and headers packed into one buffer.
struct Entry {
    method: Method,
    /// path, then for each header: name, value.
    blob: Vec<u8>,
    /// End offsets into `blob`: `[path_end, name1_end, value1_end, ...]`.
    ends: Vec<u32>,
    body: Bytes,
    body_len: usize,
}

impl Entry {
    fn unpack(&self) -> RecordedRequest {
        let mut start = 0usize;
        let mut parts = self.ends.iter().map(|&end| {
            let end = end as usize;
            let s = String::from_utf8_lossy(self.blob.get(start..end).unwrap_or_default());
            start = end;
            s.into_owned()
        });
        let path = parts.next().unwrap_or_default();
        let mut headers = Vec::with_capacity(self.ends.len() / 2);
        while let (Some(n), Some(v)) = (parts.next(), parts.next()) {
            headers.push((n, v));
        }
        RecordedRequest {
            method: self.method.as_str().to_string(),
            path,
            headers,
            body: self.body.clone(),
            body_len: self.body_len,
        }
    }
}

/// Thread-safe, capped request log plus a total counter.
pub(crate) struct Recorder {
    enabled: bool,
    body_limit: usize,
    total: AtomicU64,
    log: Mutex<VecDeque<Entry>>,
}

impl Recorder {
    pub(crate) fn new(enabled: bool, body_limit: usize) -> Recorder {
        Recorder {
            enabled,
            body_limit,
            total: AtomicU64::new(0),
            log: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn record(&self, method: &Method, path: &str, headers: &HeaderMap, body: &Bytes) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if !self.enabled {
            return;
        }
        let mut size = path.len();
        for (n, v) in headers {
            size += n.as_str().len() + v.len();
        }
        let mut blob = Vec::with_capacity(size);
        let mut ends = Vec::with_capacity(1 + 2 * headers.len());
        blob.extend_from_slice(path.as_bytes());
        ends.push(blob.len() as u32);
        for (n, v) in headers {
            blob.extend_from_slice(n.as_str().as_bytes());
            ends.push(blob.len() as u32);
            blob.extend_from_slice(v.as_bytes());
            ends.push(blob.len() as u32);
        }
        // Copy the body: the received `Bytes` may share hyper's whole read buffer.
        let recorded = if body.len() <= self.body_limit {
            Bytes::copy_from_slice(body)
        } else {
            Bytes::new()
        };
        let entry = Entry {
            method: method.clone(),
            blob,
            ends,
            body: recorded,
            body_len: body.len(),
        };
        let evicted = {
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            let evicted = if log.len() >= MAX_RECORDED_REQUESTS {
                log.pop_front()
            } else {
                None
            };
            log.push_back(entry);
            evicted
        };
        // Free the evicted entry outside the lock.
        drop(evicted);
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter().map(Entry::unpack).collect()
    }

    pub(crate) fn clear(&self) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}
