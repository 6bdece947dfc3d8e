//! Soak mode (`--soak SECONDS`): mixed traffic at `--rate` requests per second for a long
//! time through the gateway (SQLite, quotas on), to show that memory and open descriptors
//! stay flat and that every served request is in the usage at the end.
//!
//! Each 20 requests scheduled: 7 streamed chats, 7 non-streamed, 2 streamed chats the client
//! drops after the first chunk (disconnects), 3 requests of a key with `--rpm 60` (mostly
//! 429s) and 1 non-streamed chat with a 100 KB image (the large-body path). Every 10 s the
//! gateway's RSS and open descriptors are sampled. At the end the gateway is stopped with
//! SIGTERM (it writes all usage) and `llm-quota keys list --json` must show, per key, exactly
//! the requests that got an answer's headers with 200 (disconnected streams included: they
//! are charged for what they streamed).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use http_body_util::BodyExt;

use crate::client::{connect, send, Conn, Target};
use crate::procs;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Streamed,
    Whole,
    Disconnect,
    Limited,
    Large,
}

/// The mix of every 20 requests.
const MIX: [Kind; 20] = {
    use Kind::*;
    [
        Streamed, Whole, Streamed, Whole, Limited, Streamed, Whole, Disconnect, Streamed, Whole,
        Large, Streamed, Whole, Limited, Streamed, Whole, Disconnect, Streamed, Whole, Limited,
    ]
};

const STREAMED: &str =
    r#"{"model":"llama3","messages":[{"role":"user","content":"Why is the sky blue?"}]}"#;
const WHOLE: &str = r#"{"model":"llama3","stream":false,"messages":[{"role":"user","content":"Why is the sky blue?"}]}"#;

#[derive(Default)]
struct Tally {
    /// Answers with 200 per key: (main key, paced key).
    ok_main: AtomicU64,
    ok_paced: AtomicU64,
    limited: AtomicU64,
    disconnected: AtomicU64,
    errors: AtomicU64,
}

pub async fn run(
    fake_bin: &Path,
    gateway_bin: &Path,
    seconds: u64,
    rate: u64,
) -> anyhow::Result<()> {
    procs::raise_nofile(8_192)?;
    let fake = procs::start_fake(fake_bin, Duration::from_millis(5))
        .context("starting the fake Ollama")?;
    let mut gateway = procs::start_gateway(gateway_bin, &fake.url, procs::Db::Sqlite, None)
        .context("starting llm-quota")?;
    let paced_key = procs::gateway_cli(
        gateway_bin,
        &gateway,
        &["keys", "create", "--name", "paced", "--rpm", "60"],
    )?
    .lines()
    .last()
    .unwrap_or_default()
    .to_owned();
    let main = Target {
        name: "llm-quota".into(),
        addrs: vec![gateway.addr.clone()],
        key: Some(gateway.key.clone()),
    };
    let paced = Target {
        key: Some(paced_key),
        ..main.clone()
    };
    let large: &'static str = Box::leak(
        format!(
            r#"{{"model":"llama3","stream":false,"messages":[{{"role":"user","content":"describe","images":["{}"]}}]}}"#,
            "A".repeat(100_000)
        )
        .into_boxed_str(),
    );

    let tally = Arc::new(Tally::default());
    let (tx, rx) = tokio::sync::mpsc::channel::<Kind>(4_096);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut workers = Vec::new();
    for _ in 0..256 {
        let (rx, tally, main, paced) = (
            Arc::clone(&rx),
            Arc::clone(&tally),
            main.clone(),
            paced.clone(),
        );
        workers.push(tokio::spawn(async move {
            let addr = main.addr(0).to_owned();
            let (mut conn, mut paced_conn) = (Conn::new(&addr), Conn::new(&addr));
            loop {
                let Some(kind) = rx.lock().await.recv().await else {
                    break;
                };
                let outcome = match kind {
                    Kind::Streamed => conn.request(&main, STREAMED).await.map(|()| 200),
                    Kind::Whole => conn.request(&main, WHOLE).await.map(|()| 200),
                    Kind::Large => conn.request(&main, large).await.map(|()| 200),
                    Kind::Limited => limited(&mut paced_conn, &paced).await,
                    Kind::Disconnect => disconnect(&main, &addr).await,
                };
                let counter = match (kind, outcome) {
                    (Kind::Limited, Ok(200)) => &tally.ok_paced,
                    (Kind::Limited, Ok(429)) => &tally.limited,
                    (Kind::Disconnect, Ok(200)) => &tally.disconnected,
                    (_, Ok(200)) => &tally.ok_main,
                    _ => &tally.errors,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    println!("# Soak: {seconds} s of mixed traffic at {rate} req/s through llm-quota (SQLite)\n");
    println!("| elapsed (s) | sent | RSS (MiB) | open fds | 200s | 429s | disconnects | errors |");
    println!("|---|---|---|---|---|---|---|---|");
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let start = Instant::now();
    let total = rate * seconds;
    let mut samples = Vec::new();
    let mut next_sample = Duration::ZERO;
    for i in 0..total {
        let at = start + interval * u32::try_from(i).unwrap_or(u32::MAX);
        if at.duration_since(start) >= next_sample {
            let row = (
                next_sample.as_secs(),
                i,
                procs::rss_mib(gateway.pid),
                procs::open_fds(gateway.pid),
            );
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                row.0,
                row.1,
                row.2.map_or("?".into(), |v| v.to_string()),
                row.3.map_or("?".into(), |v| v.to_string()),
                tally.ok_main.load(Ordering::Relaxed) + tally.ok_paced.load(Ordering::Relaxed),
                tally.limited.load(Ordering::Relaxed),
                tally.disconnected.load(Ordering::Relaxed),
                tally.errors.load(Ordering::Relaxed),
            );
            samples.push(row);
            next_sample += Duration::from_secs(10);
        }
        tokio::time::sleep_until(at.into()).await;
        let kind = MIX[usize::try_from(i % 20).unwrap_or(0)];
        if tx.send(kind).await.is_err() {
            break;
        }
    }
    drop(tx);
    for w in workers {
        let _ = w.await;
    }
    let elapsed = start.elapsed();
    let rss_end = procs::rss_mib(gateway.pid);
    let fds_end = procs::open_fds(gateway.pid);
    // SIGTERM: the gateway writes every usage it holds before it exits.
    anyhow::ensure!(
        gateway.stop_gracefully(),
        "the gateway did not stop on SIGTERM"
    );
    let listed: serde_json::Value = serde_json::from_str(&procs::gateway_cli(
        gateway_bin,
        &gateway,
        &["keys", "list", "--json"],
    )?)?;
    let usage_of = |name: &str| {
        listed
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["name"] == name))
            .and_then(|k| k["usage"]["day"]["requests"].as_i64())
            .unwrap_or(-1)
    };
    let (ok_main, ok_paced, disconnected) = (
        tally.ok_main.load(Ordering::Relaxed),
        tally.ok_paced.load(Ordering::Relaxed),
        tally.disconnected.load(Ordering::Relaxed),
    );
    let served_main = i64::try_from(ok_main + disconnected).unwrap_or(i64::MAX);
    let served_paced = i64::try_from(ok_paced).unwrap_or(i64::MAX);
    println!(
        "| end ({:.0} s) | {total} | {} | {} | {} | {} | {disconnected} | {} |\n",
        elapsed.as_secs_f64(),
        rss_end.map_or("?".into(), |v| v.to_string()),
        fds_end.map_or("?".into(), |v| v.to_string()),
        ok_main + ok_paced,
        tally.limited.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed),
    );
    let after_warmup: Vec<u64> = samples
        .iter()
        .filter(|s| s.0 >= 60)
        .filter_map(|s| s.2)
        .collect();
    if let (Some(min), Some(max)) = (after_warmup.iter().min(), after_warmup.iter().max()) {
        println!("- RSS after the first minute: {min}–{max} MiB");
    }
    let fds: Vec<usize> = samples.iter().filter_map(|s| s.3).collect();
    if let (Some(min), Some(max)) = (fds.iter().min(), fds.iter().max()) {
        println!("- open descriptors: {min}–{max}");
    }
    println!(
        "- usage at the end: main key {} requests recorded for {served_main} served ({} \
         answered, {disconnected} disconnected after the first chunk): {}; paced key ({} \
         answered, the rest 429) {} recorded: {}",
        usage_of("bench"),
        ok_main,
        if usage_of("bench") == served_main {
            "exact"
        } else {
            "MISMATCH"
        },
        ok_paced,
        usage_of("paced"),
        if usage_of("paced") == served_paced {
            "exact"
        } else {
            "MISMATCH"
        },
    );
    drop(fake);
    Ok(())
}

/// A request of the paced key: its status (200 read to the end, or 429).
async fn limited(conn: &mut Conn, target: &Target) -> anyhow::Result<u16> {
    let resp = conn.send(target, WHOLE).await?;
    let status = resp.status().as_u16();
    resp.into_body().collect().await?;
    Ok(status)
}

/// A streamed chat dropped after its headers and first chunk; its status.
async fn disconnect(target: &Target, addr: &str) -> anyhow::Result<u16> {
    let mut sender = connect(addr).await?;
    let resp = send(&mut sender, target, addr, STREAMED).await?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let _ = body.frame().await;
    drop(body);
    drop(sender);
    Ok(status)
}
