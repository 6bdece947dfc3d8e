//! A minimal HTTP/1.1 keep-alive load generator (hyper's client connection, nothing else), so
//! that every target is measured with the same, cheap client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

#[derive(Clone)]
pub struct Target {
    pub name: String,
    /// `host:port` of each instance; connection `i` goes to `addrs[i % addrs.len()]`.
    pub addrs: Vec<String>,
    pub key: Option<String>,
}

impl Target {
    pub(crate) fn addr(&self, connection: usize) -> &str {
        match self.addrs.len() {
            0 => "",
            n => &self.addrs[connection % n],
        }
    }
}

pub struct Throughput {
    pub rate: f64,
    pub errors: u64,
    /// Keep-alive connections closed by the server between requests and reopened (not errors).
    pub reopened: u64,
}

pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// p99 of the requests scheduled in each second of the run (ms; NaN for an empty second).
    pub p99_per_second_ms: Vec<f64>,
    pub errors: u64,
    /// Keep-alive connections closed by the server between requests and reopened (not errors).
    pub reopened: u64,
}

pub(crate) type Sender = http1::SendRequest<Full<Bytes>>;

pub(crate) async fn connect(addr: &str) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one `POST /api/chat` and returns the response once its headers are in.
pub(crate) async fn send(
    sender: &mut Sender,
    target: &Target,
    addr: &str,
    body: &'static str,
) -> anyhow::Result<Response<Incoming>> {
    let mut req = Request::post("/api/chat")
        .header("host", addr)
        .header("content-type", "application/json");
    if let Some(key) = &target.key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    sender.ready().await?;
    Ok(sender
        .send_request(req.body(Full::new(Bytes::from_static(body.as_bytes())))?)
        .await?)
}

/// A keep-alive connection to one address that is reopened transparently when the server
/// closed it between two requests (nginx after `keepalive_requests`, an idle timeout, a
/// `Connection: close` answer): a request that fails before its response headers on a
/// connection that already served one is retried once on a fresh connection. Only a failure on
/// a fresh connection (or after the response started, or a bad status) is an error.
pub(crate) struct Conn {
    addr: String,
    sender: Option<Sender>,
    /// Whether `sender` already carried a complete request.
    reused: bool,
    /// Connections reopened because the server had closed the previous one.
    reopened: u64,
}

impl Conn {
    pub(crate) fn new(addr: &str) -> Conn {
        Conn {
            addr: addr.to_owned(),
            sender: None,
            reused: false,
            reopened: 0,
        }
    }

    /// (Re)connects now, dropping the current connection.
    async fn open(&mut self) -> anyhow::Result<()> {
        self.sender = None;
        self.sender = Some(connect(&self.addr).await?);
        self.reused = false;
        Ok(())
    }

    /// The response headers of one request, on the current connection when it is still usable
    /// (else on a fresh one).
    pub(crate) async fn send(
        &mut self,
        target: &Target,
        body: &'static str,
    ) -> anyhow::Result<Response<Incoming>> {
        if let Some(mut sender) = self.sender.take() {
            let reused = self.reused;
            if !sender.is_closed() {
                match send(&mut sender, target, &self.addr, body).await {
                    Ok(resp) => {
                        self.sender = Some(sender);
                        return Ok(resp);
                    }
                    Err(e) if !reused => return Err(e),
                    Err(_) => {} // closed by the server meanwhile: retry below
                }
            }
            if reused {
                self.reopened += 1;
            }
        }
        let mut sender = connect(&self.addr).await?;
        self.reused = false;
        let resp = send(&mut sender, target, &self.addr, body).await?;
        self.sender = Some(sender);
        Ok(resp)
    }

    /// One request, its whole body read.
    pub(crate) async fn request(
        &mut self,
        target: &Target,
        body: &'static str,
    ) -> anyhow::Result<()> {
        let resp = self.send(target, body).await?;
        let status = resp.status();
        let bytes = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                self.sender = None;
                return Err(e.into());
            }
        };
        self.reused = true;
        if !status.is_success() || bytes.is_empty() {
            anyhow::bail!("status {status}");
        }
        Ok(())
    }
}

/// N connections sending back to back for `duration`.
pub async fn closed_loop(
    target: &Target,
    body: &'static str,
    connections: usize,
    duration: Duration,
) -> Throughput {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let reopened = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for i in 0..connections {
        let (done, errors, reopened) = (
            Arc::clone(&done),
            Arc::clone(&errors),
            Arc::clone(&reopened),
        );
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(target.addr(i));
            if conn.open().await.is_err() {
                errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
            while Instant::now() < deadline {
                match conn.request(&target, body).await {
                    Ok(()) => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        if conn.open().await.is_err() {
                            break;
                        }
                    }
                }
            }
            reopened.fetch_add(conn.reopened, Ordering::Relaxed);
        }));
    }
    let started = Instant::now();
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64().max(duration.as_secs_f64());
    Throughput {
        rate: done.load(Ordering::Relaxed) as f64 / elapsed,
        errors: errors.load(Ordering::Relaxed),
        reopened: reopened.load(Ordering::Relaxed),
    }
}

/// Requests scheduled every 1/rate s for `duration`, each on an idle pooled connection; the
/// latency of each is measured from its scheduled start. Pooled connection `i` goes to
/// `target.addrs[i % len]`.
pub async fn open_loop(
    target: &Target,
    body: &'static str,
    rate: u64,
    duration: Duration,
) -> Latency {
    let pool_size = 64usize;
    let (tx, rx) = async_channel::<Instant>(pool_size * 64);
    let errors = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for i in 0..pool_size {
        let rx = rx.clone();
        let errors = Arc::clone(&errors);
        let target = target.clone();
        workers.push(tokio::spawn(async move {
            let addr = target.addr(i);
            // (scheduled instant, latency from it)
            let mut samples: Vec<(Instant, Duration)> = Vec::new();
            let mut conn = Conn::new(addr);
            let _ = conn.open().await;
            while let Ok(scheduled) = rx.recv().await {
                if conn.request(&target, body).await.is_ok() {
                    samples.push((scheduled, scheduled.elapsed()));
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    let _ = conn.open().await;
                }
            }
            (samples, conn.reopened)
        }));
    }
    drop(rx);
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let start = Instant::now();
    let total = rate * duration.as_secs();
    for i in 0..total {
        let at = start + interval * u32::try_from(i).unwrap_or(u32::MAX);
        tokio::time::sleep_until(at.into()).await;
        if tx.send(at).await.is_err() {
            break;
        }
    }
    drop(tx);
    let mut samples: Vec<(Instant, Duration)> = Vec::new();
    let mut reopened = 0;
    for w in workers {
        if let Ok((s, r)) = w.await {
            samples.extend(s);
            reopened += r;
        }
    }
    let seconds = usize::try_from(duration.as_secs().max(1)).unwrap_or(usize::MAX);
    let mut buckets: Vec<Vec<Duration>> = vec![Vec::new(); seconds];
    for (scheduled, latency) in &samples {
        let second = usize::try_from(scheduled.duration_since(start).as_secs()).unwrap_or(0);
        if let Some(bucket) = buckets.get_mut(second.min(seconds - 1)) {
            bucket.push(*latency);
        }
    }
    let mut all: Vec<Duration> = samples.into_iter().map(|(_, l)| l).collect();
    Latency {
        p50_ms: percentile_ms(&mut all, 0.50),
        p99_ms: percentile_ms(&mut all, 0.99),
        p999_ms: percentile_ms(&mut all, 0.999),
        p99_per_second_ms: buckets.iter_mut().map(|b| percentile_ms(b, 0.99)).collect(),
        errors: errors.load(Ordering::Relaxed),
        reopened,
    }
}

/// The outcome of [`concurrent_streams`].
pub struct Streams {
    /// Streams whose answer was a success status and ended with the `"done":true` line.
    pub ok: u64,
    pub errors: u64,
    /// The most streams that had their response headers and not yet their last byte at once.
    pub max_open: u64,
    /// The first error, for the report.
    pub first_error: Option<String>,
}

/// `n` streamed requests at once, one fresh connection each: every connection is opened first,
/// then all the requests are sent together and read to their end (each within `timeout`).
pub async fn concurrent_streams(
    target: &Target,
    body: &'static str,
    n: usize,
    timeout: Duration,
) -> Streams {
    let barrier = Arc::new(tokio::sync::Barrier::new(n + 1));
    let open = Arc::new(AtomicU64::new(0));
    let max_open = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (barrier, open, max_open) = (
            Arc::clone(&barrier),
            Arc::clone(&open),
            Arc::clone(&max_open),
        );
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let addr = target.addr(i).to_owned();
            let connected = tokio::time::timeout(timeout, connect(&addr)).await;
            // every task reaches the barrier, connected or not
            barrier.wait().await;
            let mut sender = match connected {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(e.context("connect")),
                Err(_) => anyhow::bail!("connect timed out"),
            };
            let stream = async {
                let resp = send(&mut sender, &target, &addr, body).await?;
                let now_open = open.fetch_add(1, Ordering::Relaxed) + 1;
                max_open.fetch_max(now_open, Ordering::Relaxed);
                let status = resp.status();
                let read = resp.into_body().collect().await;
                open.fetch_sub(1, Ordering::Relaxed);
                let bytes = read?.to_bytes();
                if !status.is_success() {
                    anyhow::bail!("status {status}");
                }
                let tail = &bytes[bytes.len().saturating_sub(512)..];
                if !String::from_utf8_lossy(tail).contains(r#""done":true"#) {
                    anyhow::bail!("the stream ended without its done line");
                }
                Ok(())
            };
            match tokio::time::timeout(timeout, stream).await {
                Ok(r) => r,
                Err(_) => anyhow::bail!("the stream took longer than {timeout:?}"),
            }
        }));
    }
    // all connected (or failed): send everything at once
    barrier.wait().await;
    let mut result = Streams {
        ok: 0,
        errors: 0,
        max_open: 0,
        first_error: None,
    };
    for t in tasks {
        let outcome = match t.await {
            Ok(r) => r,
            Err(e) => Err(anyhow::Error::new(e)),
        };
        match outcome {
            Ok(()) => result.ok += 1,
            Err(e) => {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    result.max_open = max_open.load(Ordering::Relaxed);
    result
}

/// The `p` quantile (nearest rank) in milliseconds, NaN when there is no sample.
fn percentile_ms(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_unstable();
    let idx = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[idx].as_secs_f64() * 1000.0
}

/// A multi-consumer channel built from tokio's mpsc and a mutex (enough for a benchmark).
fn async_channel<T: Send + 'static>(
    capacity: usize,
) -> (tokio::sync::mpsc::Sender<T>, SharedReceiver<T>) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity);
    (tx, SharedReceiver(Arc::new(tokio::sync::Mutex::new(rx))))
}

struct SharedReceiver<T>(Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<T>>>);

impl<T> Clone for SharedReceiver<T> {
    fn clone(&self) -> Self {
        SharedReceiver(Arc::clone(&self.0))
    }
}

impl<T> SharedReceiver<T> {
    async fn recv(&self) -> Result<T, ()> {
        self.0.lock().await.recv().await.ok_or(())
    }
}
