//! A minimal HTTP/1.1 keep-alive load generator (hyper's client connection, nothing else), so
//! that every target is measured with the same, cheap client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::Request;
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
    fn addr(&self, connection: usize) -> &str {
        match self.addrs.len() {
            0 => "",
            n => &self.addrs[connection % n],
        }
    }
}

pub struct Throughput {
    pub rate: f64,
    pub errors: u64,
}

pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// p99 of the requests scheduled in each second of the run (ms; NaN for an empty second).
    pub p99_per_second_ms: Vec<f64>,
    pub errors: u64,
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(addr: &str) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn one(
    sender: &mut Sender,
    target: &Target,
    addr: &str,
    body: &'static str,
) -> anyhow::Result<()> {
    let mut req = Request::post("/api/chat")
        .header("host", addr)
        .header("content-type", "application/json");
    if let Some(key) = &target.key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    sender.ready().await?;
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from_static(body.as_bytes())))?)
        .await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    if !status.is_success() || bytes.is_empty() {
        anyhow::bail!("status {status}");
    }
    Ok(())
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
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for i in 0..connections {
        let (done, errors) = (Arc::clone(&done), Arc::clone(&errors));
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let addr = target.addr(i);
            let mut sender = match connect(addr).await {
                Ok(s) => s,
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            while Instant::now() < deadline {
                match one(&mut sender, &target, addr, body).await {
                    Ok(()) => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        match connect(addr).await {
                            Ok(s) => sender = s,
                            Err(_) => return,
                        }
                    }
                }
            }
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
            let mut sender = connect(addr).await.ok();
            while let Ok(scheduled) = rx.recv().await {
                let ok = match sender.as_mut() {
                    Some(s) => one(s, &target, addr, body).await.is_ok(),
                    None => false,
                };
                if ok {
                    samples.push((scheduled, scheduled.elapsed()));
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    sender = connect(addr).await.ok();
                }
            }
            samples
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
    for w in workers {
        if let Ok(s) = w.await {
            samples.extend(s);
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
    }
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
