//! The `llm-quota` binary: parse the command line, load the configuration, start logging, call
//! the library. Exit 0 on success, 2 on a usage or configuration error, 1 on a runtime failure.

use std::process::ExitCode;

use clap::Parser as _;
use llm_quota::cli::{self, Cli, Command, Failure};
use llm_quota::config::{Config, LogFormat};

/// jemalloc instead of glibc's allocator: a proxy allocates and frees small buffers on every
/// request from several threads, where glibc's arenas spent ~10 % of the gateway's CPU
/// (`_int_malloc`, `malloc_consolidate`). mimalloc was as fast but more than doubled the RSS
/// with 1,000 open streams; see docs/performance.md.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are successes; everything else is a usage error (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = cli::load_config(&cli).and_then(|config| {
        init_logging(&config);
        run(&cli, config)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("llm-quota: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli, config: Config) -> Result<(), Failure> {
    match &cli.command {
        Command::Serve => {
            if config.admin_password.is_none() {
                return Err(Failure::Usage("ADMIN_PASSWORD is required".into()));
            }
            llm_quota::server::serve(config).map_err(Failure::Runtime)
        }
        other => cli::run_offline(other, &config),
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
