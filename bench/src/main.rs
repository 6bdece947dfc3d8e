//! `llm-quota-bench`: measures what the gateway adds, against the same fake Ollama reached
//! directly and through a plain nginx reverse proxy (when `nginx` is installed), in one run.
//!
//! For each scenario (a streamed native chat of 10 chunks, and the same with `stream:false`) it
//! measures, for each target:
//! - **throughput**: closed loop, N keep-alive connections sending back to back for D seconds;
//! - **latency at a fixed rate**: open loop, requests scheduled every 1/R s whatever the
//!   previous ones do (latency counted from the scheduled instant, so queueing is not hidden).
//!
//! The gateway runs with quotas on (a key with large daily limits: the gate and the commit run
//! on every request) and tiktoken counting. Results are printed as a Markdown table with ratios.
//! Benchmarks are run on demand (`cargo run --release -p llm-quota-bench`), never in CI.

mod client;
mod procs;

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

use client::{closed_loop, open_loop, Target};

#[derive(Debug, Parser)]
#[command(name = "llm-quota-bench")]
struct Args {
    /// The gateway binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/llm-quota")]
    gateway_bin: String,
    /// The fake Ollama binary.
    #[arg(long, default_value = "target/release/fake-ollama")]
    fake_bin: String,
    /// Seconds per throughput measurement.
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
}

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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let fake = procs::start_fake(&args.fake_bin).context("starting the fake Ollama")?;
    let gateway =
        procs::start_gateway(&args.gateway_bin, &fake.url).context("starting llm-quota")?;
    let nginx = if args.no_nginx {
        None
    } else {
        procs::start_nginx(&fake.addr)?
    };

    let mut targets = vec![Target {
        name: "direct".into(),
        addr: fake.addr.clone(),
        key: None,
    }];
    if let Some(n) = &nginx {
        targets.push(Target {
            name: "nginx".into(),
            addr: n.addr.clone(),
            key: None,
        });
    }
    targets.push(Target {
        name: "llm-quota".into(),
        addr: gateway.addr.clone(),
        key: Some(gateway.key.clone()),
    });

    let duration = Duration::from_secs(args.seconds);
    println!("# llm-quota benchmark\n");
    println!(
        "{} s per throughput run, {} connections; latency at {} req/s for {} s.\n",
        args.seconds, args.connections, args.rate, args.seconds
    );
    for scenario in SCENARIOS {
        println!("## {}\n", scenario.name);
        println!("| target | throughput (req/s) | p50 at {} req/s (ms) | p99 (ms) | p99.9 (ms) | errors |", args.rate);
        println!("|---|---|---|---|---|---|");
        let mut results = Vec::new();
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
        let find = |name: &str| results.iter().find(|(n, _, _)| n == name);
        if let (Some(direct), Some(gw)) = (find("direct"), find("llm-quota")) {
            println!();
            println!(
                "- llm-quota / direct throughput: {:.2}×",
                gw.1.rate / direct.1.rate
            );
            println!(
                "- added latency at {} req/s: p50 {:+.3} ms, p99 {:+.3} ms",
                args.rate,
                gw.2.p50_ms - direct.2.p50_ms,
                gw.2.p99_ms - direct.2.p99_ms
            );
            if let Some(nginx) = find("nginx") {
                println!(
                    "- llm-quota / nginx throughput: {:.2}×",
                    gw.1.rate / nginx.1.rate
                );
                println!(
                    "- nginx added latency: p50 {:+.3} ms, p99 {:+.3} ms",
                    nginx.2.p50_ms - direct.2.p50_ms,
                    nginx.2.p99_ms - direct.2.p99_ms
                );
            }
        }
        println!();
    }
    println!(
        "gateway RSS after the run: {} MiB",
        procs::rss_mib(gateway.pid).unwrap_or(0)
    );
    drop(nginx);
    drop(gateway);
    drop(fake);
    Ok(())
}
