//! `fake-ollama`: run the fake Ollama server from the command line (for benchmarks and manual
//! tests). Prints `listening on http://ADDR` as its first stdout line, then serves until
//! Ctrl-C or SIGTERM. Requests are not recorded.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use fake_ollama::FakeConfig;

/// A fake Ollama server speaking Ollama's wire formats with deterministic answers.
#[derive(Parser, Debug)]
#[command(name = "fake-ollama", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Comma-separated model names.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "llama3,qwen3:0.6b,all-minilm"
    )]
    models: Vec<String>,
    /// Content chunks (= output tokens) per answer.
    #[arg(long, default_value_t = 10)]
    chunks: usize,
    /// Delay in milliseconds before each streamed content chunk.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Cut the connection after this many content chunks.
    #[arg(long)]
    drop_after_chunks: Option<usize>,
    /// Refuse (403) Host headers that are not loopback/localhost/private, like Ollama.
    #[arg(long)]
    host_check: bool,
    /// Version reported by /api/version.
    #[arg(long, default_value = "0.13.5")]
    ollama_version: String,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = FakeConfig {
        models: args.models,
        chunks: args.chunks,
        chunk_delay: Duration::from_millis(args.delay_ms),
        drop_after_chunks: args.drop_after_chunks,
        host_check: args.host_check,
        version: args.ollama_version,
        ..FakeConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let addr = listener.local_addr()?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on http://{addr}")?;
            out.flush()?;
        }
        tokio::select! {
            r = fake_ollama::serve(listener, config) => r.context("serving")?,
            _ = shutdown_signal() => {}
        }
        Ok(())
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
