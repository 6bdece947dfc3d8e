//! `llm-quota-bench`: measures what the gateway adds, in one run, against the same fake Ollama
//! (`fake-ollama`, one thread) reached through each of these targets:
//! - **direct**: the fake Ollama itself (the ceiling of the setup);
//! - **nginx**: a plain nginx reverse proxy (when `nginx` is installed; `--no-nginx` skips it);
//! - **plain-pingora**: a bare Pingora proxy (`plain-pingora`, a binary of this crate: one fixed
//!   upstream, `Host` rewritten, nothing else), same Pingora version and thread count as the
//!   gateway: the baseline that isolates what llm-quota's own logic costs;
//! - **llm-quota**: the gateway on SQLite;
//! - with `--postgres URL`: **llm-quota (PostgreSQL)**, one gateway on a fresh schema of the
//!   database at URL (`bench_…`, as the tests make theirs), and
//!   **llm-quota (PostgreSQL, 2 instances)**, two gateways sharing that database and one key,
//!   the client's connections split between them.
//!
//! For each scenario (a streamed native chat of 10 chunks, and the same with `stream:false`) it
//! measures, for each target:
//! - **throughput**: closed loop, `--connections` keep-alive connections sending back to back
//!   for `--seconds`;
//! - **latency at a fixed rate**: open loop, `--rate` requests per second scheduled whatever the
//!   previous ones do (latency counted from the scheduled instant, so queueing is not hidden):
//!   p50, p99, p99.9, and for the gateways the p99 of each 1-second bucket (periodic spikes).
//!
//! The gateway runs with quotas on (a key with large daily request, token and GPU-time limits:
//! the gate, the reservations and the commit run on every request; `--no-gpu-limit` leaves the
//! GPU-time limit out; `--team` puts the key in a team with limits of its own, so that every
//! request counts against both) and tiktoken counting. Results are printed as a Markdown report with ratios
//! (llm-quota against direct, plain-pingora and nginx; PostgreSQL against SQLite; two instances
//! against one).
//!
//! A keep-alive connection the server closes between two requests (nginx does after
//! `keepalive_requests`, raised here to 1,000,000) is reopened and the request retried on the
//! fresh connection; only a failure on a fresh connection counts as an error.
//!
//! **Memory mode** (`--streams N`, instead of the runs above): the fake Ollama sleeps
//! `--chunk-delay-ms` (default 200) before each of its 10 streamed chunks, so that N streamed
//! chats (`/api/chat`, the streamed scenario's body, one fresh connection each, all connected
//! before the first request is sent) are all open at once in the proxy under test. The same
//! load goes through **plain-pingora** (no key), then through **llm-quota** (SQLite, the same
//! key as above), each started alone in front of the same fake Ollama, on the same thread
//! count. For each it reports the RSS idle (after one warm-up stream), the peak while the
//! streams run (VmRSS sampled every 50 ms, and VmHWM), the RSS when the last stream ended and
//! 1 s later, the streams completed (success status and the `"done":true` line) and failed,
//! and the most that were open at once: one table row per target, then llm-quota's peak over
//! plain-pingora's and the KiB per stream above idle of both. The open-file limit is raised
//! first (the proxies and the fake inherit it): about 2N + 512 descriptors are needed.
//!
//! **Soak mode** (`--soak SECONDS`, instead of the runs above): mixed traffic at `--rate`
//! through the gateway for a long time; memory and open descriptors sampled every 10 s, and
//! the usage at the end compared with what was served (see `soak.rs`).
//!
//! **Report mode** (`--usage-report`): the time of `GET /api/usage` over a month of ten
//! million requests, on SQLite and with `--postgres` on PostgreSQL (see `report.rs`).
//!
//! Build and run (never in CI):
//!
//! ```text
//! cargo build --release -p llm-quota -p fake-ollama -p llm-quota-bench
//! target/release/llm-quota-bench [--seconds 10] [--connections 64] [--rate 1000] [--no-nginx]
//!     [--postgres postgres://postgres@127.0.0.1:5432/postgres]
//!     [--gateway-bin PATH] [--fake-bin PATH] [--plain-pingora-bin PATH]
//! target/release/llm-quota-bench --streams 1000 [--chunk-delay-ms 200]
//!     [--gateway-bin PATH] [--fake-bin PATH] [--plain-pingora-bin PATH]
//! target/release/llm-quota-bench --soak 1800 --rate 500
//! target/release/llm-quota-bench --usage-report [--postgres postgres://postgres@127.0.0.1:5432/postgres]
//! ```
//!
//! Binaries default to `target/release/…` under the current directory, else next to this
//! executable (`plain-pingora`: next to this executable first).

mod client;
mod procs;
mod report;
mod soak;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;

use client::{closed_loop, concurrent_streams, open_loop, Latency, Streams, Target, Throughput};
use procs::Db;

#[derive(Debug, Parser)]
#[command(name = "llm-quota-bench")]
struct Args {
    /// The gateway binary [default: target/release/llm-quota, else next to this executable].
    #[arg(long)]
    gateway_bin: Option<PathBuf>,
    /// The fake Ollama binary [default: target/release/fake-ollama, else next to this
    /// executable].
    #[arg(long)]
    fake_bin: Option<PathBuf>,
    /// The plain Pingora baseline [default: plain-pingora next to this executable, else
    /// target/release/plain-pingora].
    #[arg(long)]
    plain_pingora_bin: Option<PathBuf>,
    /// Seconds per throughput measurement (and per latency measurement).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Keep-alive connections for the throughput measurement.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Requests per second for the latency measurement.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Skip nginx even when it is installed.
    #[arg(long)]
    no_nginx: bool,
    /// Create the gateway's key without a GPU-time limit (for a gateway binary from before
    /// GPU-time quotas, or to measure what the limit costs).
    #[arg(long)]
    no_gpu_limit: bool,
    /// Put the gateway's key in a team with limits of its own (every request then counts
    /// against both).
    #[arg(long)]
    team: bool,
    /// Also run the gateway on PostgreSQL (one instance, then two sharing the database), e.g.
    /// postgres://postgres@127.0.0.1:5432/postgres. The run gets a fresh schema of that
    /// database (`bench_…`).
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Memory mode: N concurrent streamed chats through plain-pingora, then through the
    /// gateway, the RSS of each sampled; skips the throughput and latency runs.
    #[arg(long, value_name = "N")]
    streams: Option<usize>,
    /// Memory mode: milliseconds the fake Ollama sleeps before each of its 10 streamed chunks
    /// (long enough for all the streams to be open at once).
    #[arg(long, default_value_t = 200)]
    chunk_delay_ms: u64,
    /// Soak mode: mixed traffic (streamed, non-streamed, disconnects, 429s, large bodies) at
    /// --rate for this many seconds; RSS and open descriptors sampled, usage checked at the end.
    #[arg(long, value_name = "SECONDS")]
    soak: Option<u64>,
    /// Report mode: times `GET /api/usage` over a month of ten million requests on SQLite
    /// (and on PostgreSQL with --postgres).
    #[arg(long)]
    usage_report: bool,
}

const DIRECT: &str = "direct";
const NGINX: &str = "nginx";
const PLAIN: &str = "plain-pingora";
const GATEWAY: &str = "llm-quota";
const GATEWAY_PG: &str = "llm-quota (PostgreSQL)";
const GATEWAY_PG2: &str = "llm-quota (PostgreSQL, 2 instances)";

struct Scenario {
    name: &'static str,
    body: &'static str,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "streamed chat (NDJSON, 10 chunks)",
        body: r#"{"model":"llama3","messages":[{"role":"user","content":"Why is the sky blue?"}]}"#,
    },
    Scenario {
        name: "non-streamed chat",
        body: r#"{"model":"llama3","stream":false,"messages":[{"role":"user","content":"Why is the sky blue?"}]}"#,
    },
];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    procs::GPU_LIMIT.store(!args.no_gpu_limit, std::sync::atomic::Ordering::Relaxed);
    procs::TEAM.store(args.team, std::sync::atomic::Ordering::Relaxed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let release = |name: &str| Path::new("target/release").join(name);
    let beside = |name: &str| procs::next_to_exe(name).into_iter();
    let fake_bin = procs::resolve_bin(
        args.fake_bin.as_deref(),
        &[release("fake-ollama")]
            .into_iter()
            .chain(beside("fake-ollama"))
            .collect::<Vec<_>>(),
        "--fake-bin",
    )?;
    let gateway_bin = procs::resolve_bin(
        args.gateway_bin.as_deref(),
        &[release("llm-quota")]
            .into_iter()
            .chain(beside("llm-quota"))
            .collect::<Vec<_>>(),
        "--gateway-bin",
    )?;
    let plain_bin = procs::resolve_bin(
        args.plain_pingora_bin.as_deref(),
        &beside("plain-pingora")
            .chain([release("plain-pingora")])
            .collect::<Vec<_>>(),
        "--plain-pingora-bin",
    )?;
    // llm-quota's default `proxy.threads`; the baselines get the same.
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2);
    if args.usage_report {
        return report::run(&gateway_bin, args.postgres.as_deref()).await;
    }
    if let Some(seconds) = args.soak {
        return soak::run(&fake_bin, &gateway_bin, seconds, args.rate).await;
    }
    if let Some(n) = args.streams {
        return memory_run(
            &fake_bin,
            &plain_bin,
            &gateway_bin,
            threads,
            n,
            args.chunk_delay_ms,
        )
        .await;
    }

    let fake = procs::start_fake(&fake_bin, Duration::ZERO).context("starting the fake Ollama")?;
    let gateway = procs::start_gateway(&gateway_bin, &fake.url, Db::Sqlite, None)
        .context("starting llm-quota")?;
    let plain = procs::start_plain_pingora(&plain_bin, &fake.addr, threads)
        .context("starting plain-pingora")?;
    let nginx = if args.no_nginx {
        None
    } else {
        procs::start_nginx(&fake.addr, threads).context("starting nginx")?
    };
    let mut pg_gateways = Vec::new();
    if let Some(url) = &args.postgres {
        let db = test_kit::postgres::fresh_schema_url(url, "bench")
            .await
            .with_context(|| format!("--postgres {url}: cannot create a schema there"))?;
        let first = procs::start_gateway(&gateway_bin, &fake.url, Db::Url(&db), None)
            .context("starting llm-quota on PostgreSQL")?;
        // The same database, so the same key.
        let second = procs::start_gateway(&gateway_bin, &fake.url, Db::Url(&db), Some(&first.key))
            .context("starting a second llm-quota on PostgreSQL")?;
        pg_gateways.push(first);
        pg_gateways.push(second);
    }

    let target = |name: &str, procs: &[&procs::Proc], key: Option<&str>| Target {
        name: name.to_owned(),
        addrs: procs.iter().map(|p| p.addr.clone()).collect(),
        key: key.map(str::to_owned),
    };
    let mut targets = vec![target(DIRECT, &[&fake], None)];
    if let Some(n) = &nginx {
        targets.push(target(NGINX, &[n], None));
    }
    targets.push(target(PLAIN, &[&plain], None));
    targets.push(target(GATEWAY, &[&gateway], Some(&gateway.key)));
    if let [first, second] = pg_gateways.as_slice() {
        targets.push(target(GATEWAY_PG, &[first], Some(&first.key)));
        targets.push(target(GATEWAY_PG2, &[first, second], Some(&first.key)));
    }

    let duration = Duration::from_secs(args.seconds);
    println!("# llm-quota benchmark\n");
    println!(
        "{} s per throughput run, {} connections; latency at {} req/s for {} s. \
         plain-pingora and llm-quota on {threads} threads, nginx on {threads} workers, \
         the fake Ollama on 1 thread.\n",
        args.seconds, args.connections, args.rate, args.seconds
    );
    if args.postgres.is_some() {
        println!(
            "PostgreSQL: a fresh schema; the 2-instance target splits the connections \
             between two gateways sharing it (and one key).\n"
        );
    }
    for scenario in SCENARIOS {
        println!("## {}\n", scenario.name);
        println!(
            "| target | throughput (req/s) | p50 at {} req/s (ms) | p99 (ms) | p99.9 (ms) | errors |",
            args.rate
        );
        println!("|---|---|---|---|---|---|");
        let mut results: Vec<(String, Throughput, Latency)> = Vec::new();
        for target in &targets {
            // warm up connections and caches
            closed_loop(
                target,
                scenario.body,
                args.connections,
                Duration::from_secs(1),
            )
            .await;
            let tp = closed_loop(target, scenario.body, args.connections, duration).await;
            let lat = open_loop(target, scenario.body, args.rate, duration).await;
            println!(
                "| {} | {:.0} | {:.3} | {:.3} | {:.3} | {} |",
                target.name,
                tp.rate,
                lat.p50_ms,
                lat.p99_ms,
                lat.p999_ms,
                tp.errors + lat.errors
            );
            results.push((target.name.clone(), tp, lat));
        }
        println!();
        let reopened: Vec<String> = results
            .iter()
            .filter(|(_, tp, lat)| tp.reopened + lat.reopened > 0)
            .map(|(name, tp, lat)| format!("{name} {}", tp.reopened + lat.reopened))
            .collect();
        if !reopened.is_empty() {
            println!(
                "- keep-alive connections closed by the server between requests and reopened \
                 (not counted as errors): {}",
                reopened.join(", ")
            );
        }
        report_ratios(&results, args.rate);
        println!();
    }
    println!(
        "gateway RSS after the run: {} MiB (SQLite){}",
        procs::rss_mib(gateway.pid).unwrap_or(0),
        pg_gateways
            .iter()
            .map(|g| format!(", {} MiB (PostgreSQL)", procs::rss_mib(g.pid).unwrap_or(0)))
            .collect::<String>()
    );
    drop(pg_gateways);
    drop(nginx);
    drop(plain);
    drop(gateway);
    drop(fake);
    Ok(())
}

/// Content chunks of each answer of the fake Ollama (its default `--chunks`).
const FAKE_CHUNKS: u32 = 10;

/// One target's memory under [`memory_run`]'s load (MiB; None when /proc could not be read).
struct Memory {
    name: &'static str,
    streams: Streams,
    elapsed: Duration,
    idle: Option<f64>,
    /// VmHWM before the streams (after the warm-up).
    hwm_before: Option<f64>,
    peak_sampled: Option<f64>,
    hwm: Option<f64>,
    at_end: Option<f64>,
    later: Option<f64>,
}

impl Memory {
    /// The peak of the streams: VmHWM, unless it did not grow during them (it is then the
    /// startup's peak) and the sampled peak stands in.
    fn peak(&self) -> Option<f64> {
        match (self.hwm_before, self.hwm) {
            (Some(before), Some(after)) if after > before => Some(after),
            _ => self.peak_sampled,
        }
    }

    /// KiB per stream above idle at the peak.
    fn per_stream_kib(&self, n: usize) -> Option<f64> {
        Some((self.peak()? - self.idle?) * 1024.0 / n as f64)
    }
}

fn show_mib(v: Option<f64>) -> String {
    v.map_or_else(|| "?".to_owned(), |v| format!("{v:.1}"))
}

/// One warm-up stream, then `n` streams at once through `target` (the process `pid`), its
/// RSS and VmHWM read from /proc around them and VmRSS sampled every 50 ms during them.
async fn measure_streams(
    name: &'static str,
    target: &Target,
    pid: u32,
    body: &'static str,
    n: usize,
    timeout: Duration,
) -> anyhow::Result<Memory> {
    let mib = |field: &str| procs::status_kib(pid, field).map(|kb| kb as f64 / 1024.0);

    // one stream first: key cache, upstream pool, lazy allocations
    let warm = concurrent_streams(target, body, 1, timeout).await;
    if warm.ok != 1 {
        anyhow::bail!(
            "the warm-up stream through {name} failed: {}",
            warm.first_error.unwrap_or_default()
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = mib("VmRSS");
    let hwm_before = mib("VmHWM");

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut peak_kib = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Some(kib) = procs::status_kib(pid, "VmRSS") {
                    peak_kib = peak_kib.max(kib);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            peak_kib
        })
    };
    let started = Instant::now();
    let streams = concurrent_streams(target, body, n, timeout).await;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let peak_sampled = sampler
        .join()
        .ok()
        .filter(|&kib| kib > 0)
        .map(|kib| kib as f64 / 1024.0);
    let hwm = mib("VmHWM");
    let at_end = mib("VmRSS");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = mib("VmRSS");
    Ok(Memory {
        name,
        streams,
        elapsed,
        idle,
        hwm_before,
        peak_sampled,
        hwm,
        at_end,
        later,
    })
}

/// `--streams N`: the memory of plain-pingora, then of the gateway, with N streamed chats open
/// at once through each.
async fn memory_run(
    fake_bin: &Path,
    plain_bin: &Path,
    gateway_bin: &Path,
    threads: usize,
    n: usize,
    chunk_delay_ms: u64,
) -> anyhow::Result<()> {
    anyhow::ensure!(n > 0, "--streams needs at least 1");
    // a proxy holds a downstream and an upstream connection per stream
    let needed = u64::try_from(n).unwrap_or(u64::MAX).saturating_mul(2) + 512;
    let nofile = procs::raise_nofile(needed)?;
    let chunk_delay = Duration::from_millis(chunk_delay_ms);
    let fake = procs::start_fake(fake_bin, chunk_delay).context("starting the fake Ollama")?;
    let body = SCENARIOS[0].body;
    let stream_time = chunk_delay * FAKE_CHUNKS;
    let timeout = stream_time * 5 + Duration::from_secs(30);
    let target = |name: &str, proc: &procs::Proc, key: Option<&str>| Target {
        name: name.to_owned(),
        addrs: vec![proc.addr.clone()],
        key: key.map(str::to_owned),
    };

    // one target at a time, each alone with the fake Ollama
    let mut results = Vec::new();
    {
        let plain = procs::start_plain_pingora(plain_bin, &fake.addr, threads)
            .context("starting plain-pingora")?;
        let t = target(PLAIN, &plain, None);
        results.push(measure_streams(PLAIN, &t, plain.pid, body, n, timeout).await?);
    }
    {
        let gateway = procs::start_gateway(gateway_bin, &fake.url, Db::Sqlite, None)
            .context("starting llm-quota")?;
        let t = target(GATEWAY, &gateway, Some(&gateway.key));
        results.push(measure_streams(GATEWAY, &t, gateway.pid, body, n, timeout).await?);
    }
    drop(fake);

    println!("# Memory with {n} concurrent streams: llm-quota against plain Pingora\n");
    println!(
        "The fake Ollama sleeps {chunk_delay_ms} ms before each of its {FAKE_CHUNKS} chunks \
         (a stream lasts about {:.1} s); plain-pingora, then llm-quota (SQLite, quotas on), \
         each on {threads} threads and measured alone in front of it; {n} streamed chats \
         (`/api/chat`), one connection each, all connected before the requests are sent \
         together; they took {} in all. Open-file limit {nofile}.\n",
        stream_time.as_secs_f64(),
        results
            .iter()
            .map(|m| format!("{:.2} s ({})", m.elapsed.as_secs_f64(), m.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| target | streams | completed | errors | open at once (max) | RSS idle (MiB) | peak \
         RSS, sampled every 50 ms (MiB) | peak (VmHWM, MiB) | RSS at the end (MiB) | RSS 1 s \
         later (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for m in &results {
        println!(
            "| {} | {n} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.name,
            m.streams.ok,
            m.streams.errors,
            m.streams.max_open,
            show_mib(m.idle),
            show_mib(m.peak_sampled),
            show_mib(m.hwm),
            show_mib(m.at_end),
            show_mib(m.later)
        );
    }
    println!();
    let find = |name: &str| results.iter().find(|m| m.name == name);
    if let (Some(gw), Some(plain)) = (find(GATEWAY), find(PLAIN)) {
        if let (Some(g), Some(p)) = (gw.peak(), plain.peak()) {
            println!(
                "- llm-quota peak / plain-pingora peak: {:.2}× ({} MiB / {} MiB)",
                g / p,
                show_mib(Some(g)),
                show_mib(Some(p))
            );
        }
        let kib = |m: &Memory| {
            m.per_stream_kib(n)
                .map_or_else(|| "?".to_owned(), |k| format!("{k:.1} KiB"))
        };
        let added = match (gw.per_stream_kib(n), plain.per_stream_kib(n)) {
            (Some(g), Some(p)) => format!(" (llm-quota adds {:+.1} KiB)", g - p),
            _ => String::new(),
        };
        println!(
            "- per stream, above idle at the peak: plain-pingora {}, llm-quota {}{added}",
            kib(plain),
            kib(gw)
        );
    }
    for m in &results {
        if let (Some(before), Some(after)) = (m.hwm_before, m.hwm) {
            if after <= before {
                println!(
                    "- {}: VmHWM did not grow during the streams ({} MiB before): it is the \
                     startup's peak; the sampled peak is the one of the streams.",
                    m.name,
                    show_mib(Some(before))
                );
            }
        }
        if let Some(e) = &m.streams.first_error {
            println!("- {}: first error: {e}", m.name);
        }
        if (m.streams.max_open as usize) < n && m.streams.errors == 0 {
            println!(
                "- {}: not all {n} streams were open at once: raise --chunk-delay-ms",
                m.name
            );
        }
    }
    Ok(())
}

/// The ratio and difference lines under a scenario's table.
fn report_ratios(results: &[(String, Throughput, Latency)], rate: u64) {
    let find = |name: &str| {
        results
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, tp, lat)| (tp, lat))
    };
    let added = |what: &str, of: (&Throughput, &Latency), base: (&Throughput, &Latency)| {
        println!(
            "- {what}: throughput {:.2}×; added latency at {rate} req/s: p50 {:+.3} ms, \
             p99 {:+.3} ms, p99.9 {:+.3} ms",
            of.0.rate / base.0.rate,
            of.1.p50_ms - base.1.p50_ms,
            of.1.p99_ms - base.1.p99_ms,
            of.1.p999_ms - base.1.p999_ms,
        );
    };
    let gw = find(GATEWAY);
    let plain = find(PLAIN);
    let direct = find(DIRECT);
    if let (Some(gw), Some(plain)) = (gw, plain) {
        added("llm-quota / plain-pingora", gw, plain);
    }
    if let (Some(gw), Some(direct)) = (gw, direct) {
        added("llm-quota / direct", gw, direct);
    }
    if let (Some(plain), Some(direct)) = (plain, direct) {
        added("plain-pingora / direct", plain, direct);
    }
    if let (Some(nginx), Some(direct)) = (find(NGINX), direct) {
        added("nginx / direct", nginx, direct);
    }
    if let (Some(gw), Some(nginx)) = (gw, find(NGINX)) {
        println!(
            "- llm-quota / nginx throughput: {:.2}×",
            gw.0.rate / nginx.0.rate
        );
    }
    let pg = find(GATEWAY_PG);
    if let (Some(pg), Some(gw)) = (pg, gw) {
        added("PostgreSQL (1 instance) / SQLite", pg, gw);
    }
    if let (Some(pg2), Some(pg)) = (find(GATEWAY_PG2), pg) {
        println!(
            "- PostgreSQL, 2 instances (sum) / 1 instance throughput: {:.2}×",
            pg2.0.rate / pg.0.rate
        );
    }
    for name in [GATEWAY, GATEWAY_PG, GATEWAY_PG2] {
        if let Some((_, lat)) = find(name) {
            let per_second: Vec<String> = lat
                .p99_per_second_ms
                .iter()
                .map(|ms| format!("{ms:.2}"))
                .collect();
            println!(
                "- {name} at {rate} req/s, p99 per second (ms): {}",
                per_second.join(" ")
            );
        }
    }
}
