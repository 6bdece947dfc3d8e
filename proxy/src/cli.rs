//! The command line (README.md, docs/deployment.md): parsing with clap and the commands that are not `serve`.
//!
//! Exit codes: 0 success, 2 usage or configuration error (one line on stderr), 1 runtime
//! failure.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};
use quota_engine::audit::{Action, Audited, Change, CLIENT_CLI};
use quota_engine::{gate, keys, DatabaseConnection, Limits, NewKey, Pacing};

use crate::config::{self, Config, Sources};

/// `println!` that ends the program quietly when stdout is a closed pipe (`keys list | head`),
/// as Unix tools do, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

mod teams;
pub use teams::TeamsCommand;

#[derive(Debug, Parser)]
#[command(
    name = "llm-quota",
    version,
    about = "API-key and quota gateway for self-hosted Ollama"
)]
pub struct Cli {
    /// YAML config file (else $LLM_QUOTA_CONFIG, else conf/llm-quota.yaml when it exists).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database if needed, then run the proxy, admin API and metrics.
    Serve,
    /// Create or upgrade the database schema (idempotent).
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage teams: one budget shared by several keys.
    #[command(subcommand)]
    Teams(TeamsCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (alone on the last line). It is never shown again.
    Create(Box<CreateArgs>),
    /// List keys with their limits and current usage.
    List {
        /// Print JSON (the admin API's key objects) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Refuse every request made with this key until it is activated again.
    Deactivate { id: i64 },
    /// Accept requests with this key again.
    Activate { id: i64 },
    /// Give the key a new secret and print it (alone on the last line); it keeps its id,
    /// name, limits and usage. The old secret stops at once, or after --grace.
    Rotate {
        id: i64,
        /// How long the old secret keeps working: 90s, 30m, 1h, 7d (at most 30d; default 0).
        #[arg(long, value_name = "DURATION", value_parser = parse_grace)]
        grace: Option<u64>,
    },
}

/// `90`, `90s`, `30m`, `1h`, `7d` → seconds, at most 30 days.
/// `1.5`, `3600`: GPU seconds with up to three decimals, as milliseconds.
fn parse_gpu_seconds(raw: &str) -> Result<i64, String> {
    let seconds: f64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not a number of seconds (e.g. 3600 or 1.5)"))?;
    gate::gpu_ms_from_seconds("GPU seconds", seconds).map_err(|e| e.to_string())
}

fn parse_grace(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let unit_seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{raw:?}: use a number with s, m, h or d, e.g. 1h")),
    };
    let seconds = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_seconds))
        .ok_or_else(|| format!("{raw:?}: use a number with s, m, h or d, e.g. 1h"))?;
    if seconds > keys::MAX_ROTATION_GRACE_SECONDS {
        return Err(format!("{raw:?}: at most 30d"));
    }
    Ok(seconds)
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A name that says who or what uses the key.
    #[arg(long)]
    pub name: String,
    /// Expiry: a date (valid through that day in APP_TZ) or an RFC 3339 instant.
    #[arg(long, value_name = "2027-01-31|RFC3339")]
    pub expires: Option<String>,
    #[arg(long, value_name = "N")]
    pub daily_tokens: Option<u64>,
    #[arg(long, value_name = "N")]
    pub monthly_tokens: Option<u64>,
    #[arg(long, value_name = "N")]
    pub daily_requests: Option<u64>,
    #[arg(long, value_name = "N")]
    pub monthly_requests: Option<u64>,
    /// GPU seconds a day (host time × its gpu_weight), up to three decimals.
    #[arg(long, value_name = "SECONDS", value_parser = parse_gpu_seconds)]
    pub daily_gpu_seconds: Option<i64>,
    /// GPU seconds a month, up to three decimals.
    #[arg(long, value_name = "SECONDS", value_parser = parse_gpu_seconds)]
    pub monthly_gpu_seconds: Option<i64>,
    /// Requests in any sliding 60 seconds.
    #[arg(long, value_name = "N")]
    pub rpm: Option<u64>,
    /// Tokens in any sliding 60 seconds.
    #[arg(long, value_name = "N")]
    pub tpm: Option<u64>,
    /// Requests in flight at once; more wait in the key's queue.
    #[arg(long, value_name = "N")]
    pub max_parallel: Option<u64>,
    /// Weight in the fair queue for busy hosts, 1–10 (default 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=10))]
    pub priority: Option<u8>,
    /// Models this key may use, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_name = "a,b")]
    pub models: Option<Vec<String>>,
    /// Let the key use the web search tools that Ollama runs on the host's ollama.com
    /// account (`/v1/responses`, `/v1/messages`); refused without it.
    #[arg(long)]
    pub allow_web_search: bool,
    /// Put the key in this team (its id or name): the key's requests also count against the
    /// team's limits.
    #[arg(long, value_name = "NAME")]
    pub team: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective values, secrets redacted.
    Check,
}

/// A failure with the exit code it deserves.
#[derive(Debug)]
pub enum Failure {
    /// Exit 2: the operator must change an argument or the configuration.
    Usage(String),
    /// Exit 1: something failed at run time.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Runtime(e)
    }
}

impl From<config::ConfigError> for Failure {
    fn from(e: config::ConfigError) -> Failure {
        Failure::Usage(e.0)
    }
}

/// Loads the configuration from the real environment and `--config`.
pub fn load_config(cli: &Cli) -> Result<Config, Failure> {
    let sources = Sources::from_process(cli.config.clone())?;
    Ok(config::load(&sources)?)
}

/// Runs the commands that only need the database, on a runtime of their own.
pub fn run_offline(command: &Command, config: &Config) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(e.into()))?;
    runtime.block_on(async {
        match command {
            Command::Config(ConfigCommand::Check) => {
                config_check(config);
                Ok(())
            }
            Command::Migrate => {
                let db = open(config).await?;
                out!("database {} is up to date", config.database_url.redacted());
                drop(db);
                Ok(())
            }
            Command::Keys(cmd) => {
                let db = open(config).await?;
                keys_command(cmd, &db, config).await
            }
            Command::Teams(cmd) => {
                let db = open(config).await?;
                teams::run(cmd, &db, config).await
            }
            Command::Serve => Err(Failure::Runtime(anyhow::anyhow!(
                "serve is not an offline command"
            ))),
        }
    })
}

/// Connects and migrates.
async fn open(config: &Config) -> Result<DatabaseConnection, Failure> {
    let db = quota_engine::connect(&config.database_url)
        .await
        .map_err(|e| {
            Failure::Runtime(anyhow::anyhow!(
                "cannot open the database {}: {e}",
                config.database_url.redacted()
            ))
        })?;
    quota_engine::db::migrate(&db)
        .await
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("migrating the database failed: {e}")))?;
    Ok(db)
}

fn config_check(config: &Config) {
    let lines = config.redacted_lines();
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in lines {
        out!("{key:width$}  {value}");
    }
    if config.admin_password.is_none() {
        out!("note: ADMIN_PASSWORD is not set; `llm-quota serve` will refuse to start");
    }
    out!("configuration is valid");
}

fn limit(value: Option<u64>, flag: &str) -> Result<Option<i64>, Failure> {
    value
        .map(|v| i64::try_from(v).map_err(|_| Failure::Usage(format!("{flag}: {v} is too large"))))
        .transpose()
}

/// A date means "valid through that day" in the operator's zone; an instant is taken as is.
pub fn parse_expiry(raw: &str, config: &Config) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        format!("--expires: {raw:?} is neither a date (2027-01-31) nor an RFC 3339 instant (2027-01-31T12:00:00Z)")
    })?;
    let next = date
        .succ_opt()
        .ok_or_else(|| format!("--expires: {raw:?} is out of range"))?;
    Ok(config.periods.midnight(next).with_timezone(&Utc))
}

async fn keys_command(
    cmd: &KeysCommand,
    db: &DatabaseConnection,
    config: &Config,
) -> Result<(), Failure> {
    let now = Utc::now();
    let runtime = |e: quota_engine::EngineError| match e {
        quota_engine::EngineError::Invalid(m) => Failure::Usage(m),
        quota_engine::EngineError::KeyNotFound(id) => Failure::Runtime(anyhow::anyhow!(
            "no API key with id {id} (see llm-quota keys list)"
        )),
        other => Failure::Runtime(other.into()),
    };
    match cmd {
        KeysCommand::Create(args) => {
            let expires_at = args
                .expires
                .as_deref()
                .map(|e| parse_expiry(e, config))
                .transpose()
                .map_err(Failure::Usage)?;
            if expires_at.is_some_and(|t| t <= now) {
                return Err(Failure::Usage(
                    "--expires: the key would already be expired".into(),
                ));
            }
            let team_id = match &args.team {
                Some(team) => Some(teams::find(db, team).await?.id),
                None => None,
            };
            let new = NewKey {
                team_id,
                name: args.name.clone(),
                expires_at,
                limits: Limits {
                    daily_tokens: limit(args.daily_tokens, "--daily-tokens")?,
                    monthly_tokens: limit(args.monthly_tokens, "--monthly-tokens")?,
                    daily_requests: limit(args.daily_requests, "--daily-requests")?,
                    monthly_requests: limit(args.monthly_requests, "--monthly-requests")?,
                    daily_gpu_ms: args.daily_gpu_seconds,
                    monthly_gpu_ms: args.monthly_gpu_seconds,
                },
                pacing: Pacing {
                    requests_per_minute: limit(args.rpm, "--rpm")?,
                    tokens_per_minute: limit(args.tpm, "--tpm")?,
                    max_parallel_requests: limit(args.max_parallel, "--max-parallel")?,
                    priority: args.priority.map_or(1, i64::from),
                },
                allowed_models: args.models.clone().map(|m| {
                    m.into_iter()
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                }),
                allow_web_search: args.allow_web_search,
            };
            let audited = Audited::begin(db, now).await.map_err(runtime)?;
            let (key, plaintext) = keys::create(audited.txn(), &new, now)
                .await
                .map_err(runtime)?;
            let change = Change::created(CLIENT_CLI, &key, config.periods.tz());
            audited.commit(change).await.map_err(runtime)?;
            eprintln!(
                "created key {} ({}), id {}; store it now, it is not shown again:",
                key.name, key.key_prefix, key.id
            );
            out!("{plaintext}");
            Ok(())
        }
        KeysCommand::List { json } => {
            let periods = config.periods.at(now);
            let all = keys::list(db).await.map_err(runtime)?;
            let counters = gate::all_counters(db, &periods).await.map_err(runtime)?;
            let views: Vec<_> = all
                .iter()
                .map(|k| {
                    quota_engine::key_view::KeyView::new(
                        k,
                        counters.get(&k.id).copied().unwrap_or_default(),
                        Default::default(),
                        &periods,
                    )
                })
                .collect();
            if *json {
                let text =
                    serde_json::to_string_pretty(&views).map_err(|e| Failure::Runtime(e.into()))?;
                out!("{text}");
            } else {
                print_table(&views, &all, now);
            }
            Ok(())
        }
        KeysCommand::Activate { id } | KeysCommand::Deactivate { id } => {
            let active = matches!(cmd, KeysCommand::Activate { .. });
            let action = if active {
                Action::KeyActivated
            } else {
                Action::KeyDeactivated
            };
            let audited = Audited::begin(db, now).await.map_err(runtime)?;
            let before = keys::get_for_update(audited.txn(), *id)
                .await
                .map_err(runtime)?;
            let key = keys::set_active(audited.txn(), *id, active, now)
                .await
                .map_err(runtime)?;
            let change = Change::of_key(CLIENT_CLI, action, &before, &key, config.periods.tz());
            audited.commit(change).await.map_err(runtime)?;
            out!(
                "key {} ({}) is now {}",
                key.id,
                key.name,
                if active { "active" } else { "inactive" }
            );
            Ok(())
        }
        KeysCommand::Rotate { id, grace } => {
            let grace = grace.unwrap_or(0);
            let audited = Audited::begin(db, now).await.map_err(runtime)?;
            let rotated = keys::rotate(audited.txn(), *id, grace, now)
                .await
                .map_err(runtime)?;
            let key = &rotated.key;
            let tz = config.periods.tz();
            let valid_until = key
                .old_secret_valid_until
                .map(|t| t.with_timezone(&tz).to_rfc3339());
            let change = Change::rotated(CLIENT_CLI, &rotated, tz);
            audited.commit(change).await.map_err(runtime)?;
            let old = match &valid_until {
                Some(t) => format!("the old secret ({}) works until {t}", rotated.old_prefix),
                None => format!("the old secret ({}) no longer works", rotated.old_prefix),
            };
            eprintln!(
                "rotated key {} ({}), id {}; {old}; store the new secret now, it is not shown again:",
                key.name, key.key_prefix, key.id
            );
            out!("{}", rotated.plaintext);
            Ok(())
        }
    }
}

fn print_table(
    views: &[quota_engine::key_view::KeyView],
    all: &[quota_engine::ApiKey],
    now: DateTime<Utc>,
) {
    if views.is_empty() {
        out!("no keys yet: create one with llm-quota keys create --name NAME");
        return;
    }
    let fmt_limit = |used: i64, limit: Option<i64>| match limit {
        Some(l) => format!("{used}/{l}"),
        None => format!("{used}/-"),
    };
    // GPU time in seconds (three decimals), as the admin API shows it.
    let fmt_gpu = |used_ms: i64, limit_ms: Option<i64>| {
        let s = quota_engine::usage_report::seconds;
        match limit_ms {
            Some(l) => format!("{}/{}", s(used_ms), s(l)),
            None => format!("{}/-", s(used_ms)),
        }
    };
    let mut rows = vec![[
        "ID".to_string(),
        "NAME".into(),
        "PREFIX".into(),
        "STATUS".into(),
        "EXPIRES".into(),
        "REQ DAY".into(),
        "REQ MONTH".into(),
        "TOK DAY".into(),
        "TOK MONTH".into(),
        "GPU S DAY".into(),
        "GPU S MONTH".into(),
        "MODELS".into(),
        "TEAM".into(),
    ]];
    for (v, key) in views.iter().zip(all) {
        let status = if !v.is_active {
            "inactive"
        } else if key.is_expired(now) {
            "expired"
        } else {
            "active"
        };
        rows.push([
            v.id.to_string(),
            v.name.clone(),
            v.key_prefix.clone(),
            status.into(),
            v.expires_at.clone().unwrap_or_else(|| "-".into()),
            fmt_limit(v.usage.day.requests, v.daily_request_limit),
            fmt_limit(v.usage.month.requests, v.monthly_request_limit),
            fmt_limit(v.usage.day.tokens, v.daily_token_limit),
            fmt_limit(v.usage.month.tokens, v.monthly_token_limit),
            fmt_gpu(v.usage.day.gpu_ms, v.daily_gpu_ms_limit),
            fmt_gpu(v.usage.month.gpu_ms, v.monthly_gpu_ms_limit),
            v.allowed_models
                .as_ref()
                .map_or_else(|| "all".into(), |m| m.join(",")),
            v.team
                .as_ref()
                .map_or_else(|| "-".into(), |t| t.name.clone()),
        ]);
    }
    print_rows(&rows);
}

/// A table: columns padded to their widest cell.
fn print_rows<const N: usize>(rows: &[[String; N]]) {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        out!("{}", line.join("  ").trim_end());
    }
}
