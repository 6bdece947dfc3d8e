//! The one configuration pipeline: built-in defaults < YAML file < `.env` < process
//! environment (docs/configuration.md), validated into a [`Config`] that the rest of the program uses.
//!
//! Every error names the key and where its value came from, e.g.
//! `conf/llm-quota.yaml: quota.timezone: unknown time zone "Europe/Berlinn"` or
//! `environment variable PROXY_PORT: invalid type: found string "80a", expected u16`.
//!
//! # Layout
//! - [`file`]: the serde mirror of the YAML file (unknown keys refused).
//! - [`env`]: the documented environment variables as a figment layer.
//! - this module: loading, validation, the redacted dump of `config check`.

pub mod env;
pub mod file;

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Yaml};
use figment::Figment;
use quota_engine::{DatabaseUrl, Periods};

use crate::dialect::{KeepAlive, TokenCounting};
use env::EnvLayer;
use file::{FileConfig, UpstreamEntry};

/// The shipped reference config, used when present and nothing else is named.
pub const DEFAULT_CONFIG_PATH: &str = "conf/llm-quota.yaml";

/// A configuration problem, worded for the operator.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A host and port to listen on. Port 0 picks a free port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    pub host: String,
    pub port: u16,
}

impl Listen {
    pub fn address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One Ollama host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// `http://host:port`, without a trailing slash.
    pub url: String,
    /// `host:port`, what the upstream's `Host` header must say.
    pub authority: String,
    pub weight: u32,
    /// `None` = no cap on requests in flight.
    pub max_concurrency: Option<u32>,
    /// What a second of this host's time counts as GPU time.
    pub gpu_weight: GpuWeight,
}

/// What one second of a host's time counts as GPU time (`gpu_weight` of an upstream, default
/// 1.0; a host whose GPU time is worth twice as much gets 2.0, a CPU-only host may get 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GpuWeight(f64);

/// Never NaN: [`GpuWeight::new`] refuses anything but a number from 0 to [`GpuWeight::MAX`].
impl Eq for GpuWeight {}

impl GpuWeight {
    pub const ONE: GpuWeight = GpuWeight(1.0);

    /// The most a host's second may count for: far beyond any real price ratio, and small
    /// enough that a request's GPU time in milliseconds never overflows the counters.
    pub const MAX: f64 = 1000.0;

    pub fn new(weight: f64) -> Option<GpuWeight> {
        // `+ 0.0` turns -0.0 into 0.0.
        (weight.is_finite() && (0.0..=Self::MAX).contains(&weight))
            .then_some(GpuWeight(weight + 0.0))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for GpuWeight {
    fn default() -> GpuWeight {
        GpuWeight::ONE
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthConfig {
    pub interval: Duration,
    pub timeout: Duration,
    pub unhealthy_after: u32,
    pub healthy_after: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Required by `serve`; other commands run without it.
    pub admin_password: Option<String>,
    pub proxy: Listen,
    /// The URL clients use to reach the proxy, for the admin's connection help.
    pub public_url: Option<String>,
    pub max_request_body_bytes: u64,
    /// Worker threads of the proxy service.
    pub proxy_threads: usize,
    /// Seconds a graceful shutdown (SIGTERM) lets running requests finish.
    pub grace_period_seconds: u64,
    pub admin: Listen,
    pub metrics: Listen,
    pub database_url: DatabaseUrl,
    pub upstreams: Vec<UpstreamConfig>,
    pub default_model: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// How long a counted request waits in the fair queue for a host at its
    /// `max_concurrency` before a 503.
    pub host_queue_timeout: Duration,
    /// How long a request over its key's `max_parallel_requests` waits before a 429.
    pub parallel_queue_timeout: Duration,
    pub health: HealthConfig,
    pub timezone: String,
    pub periods: Periods,
    pub token_counting: TokenCounting,
    /// How often the ledger writes usage to the database (`kill -9` loses at most this).
    pub flush_interval: Duration,
    /// Under a token limit, less room than this for an answer after its prompt is a 429.
    pub min_output_tokens: i64,
    /// Output tokens reserved at admission and by each extension of a growing stream.
    pub output_reservation_tokens: i64,
    /// Under a GPU-time limit: the GPU milliseconds reserved at admission and by each
    /// extension while an answer runs (`quota.gpu_block_seconds`).
    pub gpu_block_ms: i64,
    /// Prompt tokens counted per image or audio part in `tiktoken` mode (`quota.image_tokens`).
    pub image_tokens: u64,
    /// Bounds on the native routes' `keep_alive` (`ollama.max_keep_alive`,
    /// `ollama.allow_unload`).
    pub keep_alive: KeepAlive,
    pub allowed_origins: Vec<String>,
    /// Usage alerts (docs/configuration.md, "alerts").
    pub alerts: AlertsConfig,
    pub log_format: LogFormat,
    pub log_level: String,
    /// The layers that were read, lowest first, for `config check`.
    pub sources: Vec<String>,
}

/// Where the layers come from. [`Sources::from_process`] reads the real ones; tests build
/// their own so that they never touch the process environment.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// `--config PATH`.
    pub cli_config: Option<PathBuf>,
    /// The contents of `./.env`, if any.
    pub dotenv: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    /// Folder in which `conf/llm-quota.yaml` is looked for.
    pub workdir: PathBuf,
}

impl Sources {
    /// The process environment and `./.env` (which never overrides a variable already set:
    /// it is a lower layer).
    pub fn from_process(cli_config: Option<PathBuf>) -> Result<Sources, ConfigError> {
        let dotenv = match dotenvy::from_path_iter(".env") {
            Ok(iter) => iter
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ConfigError(format!(".env: {e}")))?,
            Err(e) if e.not_found() => Vec::new(),
            Err(e) => return Err(ConfigError(format!(".env: {e}"))),
        };
        Ok(Sources {
            cli_config,
            dotenv,
            env: std::env::vars().collect(),
            workdir: PathBuf::from("."),
        })
    }

    fn lookup(&self, name: &str) -> Option<&str> {
        fn find<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
            vars.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
        find(&self.env, name)
            .or_else(|| find(&self.dotenv, name))
            .filter(|v| !v.is_empty())
    }

    /// `--config`, else `LLM_QUOTA_CONFIG`, else `conf/llm-quota.yaml` when it exists.
    fn yaml_path(&self) -> Result<Option<PathBuf>, ConfigError> {
        let named = self
            .cli_config
            .clone()
            .map(|p| (p, "--config"))
            .or_else(|| {
                self.lookup(env::CONFIG_PATH_VAR)
                    .map(|p| (PathBuf::from(p), env::CONFIG_PATH_VAR))
            });
        if let Some((path, by)) = named {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "{by}: config file {} does not exist",
                    path.display()
                )));
            }
            return Ok(Some(path));
        }
        let default = self.workdir.join(DEFAULT_CONFIG_PATH);
        Ok(default.is_file().then_some(default))
    }
}

const DEFAULT_OLLAMA_URL: &str = "http://localhost:11434";

/// Loads and validates the configuration from `sources`.
pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
    let yaml = sources.yaml_path()?;
    let mut figment = Figment::from(Serialized::defaults(FileConfig::default()));
    let mut layers = vec!["defaults".to_owned()];
    if let Some(path) = &yaml {
        figment = figment.merge(Yaml::file_exact(path));
        layers.push(path.display().to_string());
    }
    if !sources.dotenv.is_empty() {
        figment = figment.merge(EnvLayer::new(".env file", sources.dotenv.clone()));
        layers.push(".env".to_owned());
    }
    figment = figment.merge(EnvLayer::new("environment variable", sources.env.clone()));
    layers.push("environment".to_owned());

    let raw: FileConfig = figment.extract().map_err(|e| describe_figment_error(&e))?;
    let mut config = validate(raw, &figment)?;
    config.sources = layers;
    Ok(config)
}

fn source_name(metadata: &figment::Metadata) -> String {
    match &metadata.source {
        Some(figment::Source::File(path)) => display_path(path),
        _ => metadata.name.to_string(),
    }
}

fn display_path(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let shown = cwd
        .and_then(|c| path.strip_prefix(c).ok().map(|p| p.display().to_string()))
        .unwrap_or_else(|| path.display().to_string());
    shown.strip_prefix("./").map(str::to_owned).unwrap_or(shown)
}

fn describe_figment_error(error: &figment::Error) -> ConfigError {
    let lines: Vec<String> = error
        .clone()
        .into_iter()
        .map(|e| {
            let source = e
                .metadata
                .as_ref()
                .map(source_name)
                .unwrap_or_else(|| "configuration".into());
            let kind = e.kind.to_string().replace("``", "`");
            let dotted = e.path.join(".");
            // Environment layers name the variable (`environment variable PROXY_PORT`); files
            // name the YAML path.
            let is_env = source.starts_with("environment variable") || source.starts_with(".env");
            match env::variable_for(&dotted) {
                Some(var) if is_env => format!("{source} {var}: {kind}"),
                _ if dotted.is_empty() => format!("{source}: {kind}"),
                _ => format!("{source}: {dotted}: {kind}"),
            }
        })
        .collect();
    ConfigError(lines.join("; "))
}

/// `source: key` for a value, for validation messages.
fn origin(figment: &Figment, path: &str) -> String {
    match figment.find_metadata(path) {
        Some(m) if m.name != "Serialized" && !m.name.contains("Serialized") => {
            let keys: Vec<&str> = path.split('.').collect();
            let key = m.interpolate(&figment::Profile::Default, &keys);
            let source = source_name(m);
            if source.starts_with("environment variable") || source.starts_with(".env") {
                format!("{source} {key}")
            } else {
                format!("{source}: {key}")
            }
        }
        _ => format!("default {path}"),
    }
}

fn validate(raw: FileConfig, figment: &Figment) -> Result<Config, ConfigError> {
    let err = |path: &str, msg: String| ConfigError(format!("{}: {msg}", origin(figment, path)));

    let host = |value: Option<String>, default: &str, path: &str| -> Result<String, ConfigError> {
        let host = value.unwrap_or_else(|| default.to_owned());
        let trimmed = host
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if trimmed.is_empty() || trimmed.contains(char::is_whitespace) || trimmed.contains('/') {
            return Err(err(
                path,
                format!(
                    "invalid host {host:?}: use an IP address such as 127.0.0.1 or a host name"
                ),
            ));
        }
        Ok(trimmed)
    };
    let proxy = Listen {
        host: host(raw.proxy.host, "0.0.0.0", "proxy.host")?,
        port: raw.proxy.port.unwrap_or(8000),
    };
    let admin = Listen {
        host: host(raw.admin.host, "127.0.0.1", "admin.host")?,
        port: raw.admin.port.unwrap_or(8001),
    };
    let metrics = Listen {
        host: host(raw.metrics.host, "127.0.0.1", "metrics.host")?,
        port: raw.metrics.port.unwrap_or(9464),
    };

    let database_raw = raw
        .database
        .url
        .unwrap_or_else(|| "sqlite://data/llm-quota.db".into());
    let database_url =
        DatabaseUrl::parse(&database_raw).map_err(|e| err("database.url", e.to_string()))?;

    let entries = raw
        .ollama
        .urls
        .unwrap_or_else(|| vec![UpstreamEntry::Url(DEFAULT_OLLAMA_URL.into())]);
    if entries.is_empty() {
        return Err(err(
            "ollama.urls",
            "at least one Ollama URL is needed, e.g. http://localhost:11434".into(),
        ));
    }
    let mut upstreams = Vec::with_capacity(entries.len());
    for entry in entries {
        let (url, weight, max_concurrency, gpu_weight) = match entry {
            UpstreamEntry::Url(url) => (url, None, None, None),
            UpstreamEntry::Detailed(d) => (d.url, d.weight, d.max_concurrency, d.gpu_weight),
        };
        let upstream = parse_upstream(&url).map_err(|m| err("ollama.urls", m))?;
        if weight == Some(0) {
            return Err(err(
                "ollama.urls",
                format!("{url}: weight must be at least 1"),
            ));
        }
        if max_concurrency == Some(0) {
            return Err(err(
                "ollama.urls",
                format!("{url}: max_concurrency must be at least 1 (leave it out for no cap)"),
            ));
        }
        let gpu_weight = match gpu_weight {
            None => GpuWeight::ONE,
            Some(w) => GpuWeight::new(w).ok_or_else(|| {
                err(
                    "ollama.urls",
                    format!(
                        "{url}: gpu_weight must be a number from 0 to {}, e.g. 2.0 (got {w})",
                        GpuWeight::MAX
                    ),
                )
            })?,
        };
        upstreams.push(UpstreamConfig {
            weight: weight.unwrap_or(1),
            max_concurrency,
            gpu_weight,
            ..upstream
        });
    }

    let default_model = raw.ollama.default_model.unwrap_or_else(|| "llama3".into());
    if default_model.trim().is_empty() {
        return Err(err("ollama.default_model", "must not be empty".into()));
    }

    let timezone = raw.quota.timezone.unwrap_or_else(|| "Europe/Berlin".into());
    let periods = Periods::from_name(timezone.trim()).ok_or_else(|| {
        err(
            "quota.timezone",
            format!(
                "unknown time zone {timezone:?}: use an IANA name such as Europe/Berlin or UTC"
            ),
        )
    })?;
    let token_counting = match raw.quota.token_counting.as_deref().map(str::trim) {
        None | Some("tiktoken") => TokenCounting::Tiktoken,
        Some("upstream") => TokenCounting::Upstream,
        Some(other) => {
            return Err(err(
                "quota.token_counting",
                format!("unknown mode {other:?}: use tiktoken or upstream"),
            ))
        }
    };

    let flush_interval = match raw.quota.flush_interval_ms {
        None => Duration::from_millis(10),
        Some(ms) if (1..=1_000).contains(&ms) => Duration::from_millis(ms),
        Some(ms) => {
            return Err(err(
                "quota.flush_interval_ms",
                format!("{ms} is out of range: use 1 to 1000 milliseconds (default 10)"),
            ))
        }
    };

    let output_reservation_tokens = match raw.quota.output_reservation_tokens {
        None => 256,
        Some(n) if (1..=1_000_000).contains(&n) => n as i64,
        Some(n) => {
            return Err(err(
                "quota.output_reservation_tokens",
                format!("{n} is out of range: use 1 to 1000000 tokens (default 256)"),
            ))
        }
    };
    let min_output_tokens = match raw.quota.min_output_tokens {
        None => 16.min(output_reservation_tokens),
        Some(n) if n >= 1 && n as i64 <= output_reservation_tokens => n as i64,
        Some(n) => {
            return Err(err(
                "quota.min_output_tokens",
                format!(
                    "{n} is out of range: use 1 to quota.output_reservation_tokens \
                     ({output_reservation_tokens}); default 16"
                ),
            ))
        }
    };

    let gpu_block_ms = match raw.quota.gpu_block_seconds {
        None => 5_000,
        Some(s) if (0.001..=3_600.0).contains(&s) => (s * 1000.0).round() as i64,
        Some(s) => {
            return Err(err(
                "quota.gpu_block_seconds",
                format!("{s} is out of range: use 0.001 to 3600 seconds (default 5)"),
            ))
        }
    };

    let queue_timeout = |value: Option<u64>, key: &str, default: u64| match value {
        None => Ok(Duration::from_secs(default)),
        Some(n) if (1..=3_600).contains(&n) => Ok(Duration::from_secs(n)),
        Some(n) => Err(err(
            key,
            format!("{n} is out of range: use 1 to 3600 seconds (default {default})"),
        )),
    };
    let host_queue_timeout = queue_timeout(
        raw.ollama.queue_timeout_seconds,
        "ollama.queue_timeout_seconds",
        60,
    )?;
    let parallel_queue_timeout = queue_timeout(
        raw.quota.queue_timeout_seconds,
        "quota.queue_timeout_seconds",
        30,
    )?;

    let alerts = alerts_config(raw.alerts, &err)?;

    let log_format = match raw.log.format.as_deref().map(str::trim) {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            return Err(err(
                "log.format",
                format!("unknown format {other:?}: use text or json"),
            ))
        }
    };

    let allowed_origins = raw
        .cors
        .allowed_origins
        .unwrap_or_else(|| vec!["http://localhost:5173".into()]);
    for origin_value in &allowed_origins {
        let valid = url::Url::parse(origin_value)
            .map(|u| {
                matches!(u.scheme(), "http" | "https") && u.host_str().is_some() && u.path() == "/"
            })
            .unwrap_or(false);
        if !valid && origin_value != "*" {
            return Err(err("cors.allowed_origins", format!("invalid origin {origin_value:?}: use scheme://host[:port], e.g. http://localhost:5173")));
        }
    }

    let public_url = match raw.proxy.public_url.filter(|u| !u.trim().is_empty()) {
        None => None,
        Some(u) => {
            let parsed = url::Url::parse(u.trim())
                .map_err(|e| err("proxy.public_url", format!("malformed URL {u:?}: {e}")))?;
            Some(parsed.as_str().trim_end_matches('/').to_owned())
        }
    };

    let max_request_body_bytes = raw.proxy.max_request_body_bytes.unwrap_or(32 * 1024 * 1024);
    if max_request_body_bytes == 0 {
        return Err(err(
            "proxy.max_request_body_bytes",
            "must be at least 1".into(),
        ));
    }
    let proxy_threads = raw.proxy.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2)
    });
    if proxy_threads == 0 {
        return Err(err("proxy.threads", "must be at least 1".into()));
    }

    let admin_password = raw
        .admin
        .password
        .map(file::Scalar::into_text)
        .filter(|p| !p.is_empty());

    let max_keep_alive = keep_alive_setting(raw.ollama.max_keep_alive, 3600)
        .map_err(|m| err("ollama.max_keep_alive", m))?;
    let min_keep_alive = keep_alive_setting(raw.ollama.min_keep_alive, 300)
        .map_err(|m| err("ollama.min_keep_alive", m))?;
    if min_keep_alive > max_keep_alive {
        return Err(err(
            "ollama.min_keep_alive",
            format!("{min_keep_alive}s is longer than ollama.max_keep_alive ({max_keep_alive}s)"),
        ));
    }
    let keep_alive = KeepAlive {
        max_seconds: max_keep_alive,
        min_seconds: min_keep_alive,
        allow_unload: raw.ollama.allow_unload.unwrap_or(false),
    };

    Ok(Config {
        admin_password,
        proxy,
        public_url,
        max_request_body_bytes,
        proxy_threads,
        grace_period_seconds: raw.proxy.grace_period_seconds.unwrap_or(5),
        admin,
        metrics,
        database_url,
        upstreams,
        default_model: default_model.trim().to_owned(),
        connect_timeout: Duration::from_millis(
            raw.ollama.connect_timeout_ms.unwrap_or(3_000).max(1),
        ),
        read_timeout: Duration::from_secs(raw.ollama.read_timeout_seconds.unwrap_or(600).max(1)),
        host_queue_timeout,
        parallel_queue_timeout,
        health: HealthConfig {
            interval: Duration::from_secs(raw.ollama.health.interval_seconds.unwrap_or(5).max(1)),
            timeout: Duration::from_millis(raw.ollama.health.timeout_ms.unwrap_or(2_000).max(1)),
            unhealthy_after: raw.ollama.health.unhealthy_after.unwrap_or(2).max(1),
            healthy_after: raw.ollama.health.healthy_after.unwrap_or(1).max(1),
        },
        timezone: timezone.trim().to_owned(),
        periods,
        token_counting,
        flush_interval,
        min_output_tokens,
        output_reservation_tokens,
        gpu_block_ms,
        image_tokens: raw.quota.image_tokens.unwrap_or(768),
        keep_alive,
        allowed_origins,
        alerts,
        log_format,
        log_level: raw.log.level.unwrap_or_else(|| "info".into()),
        sources: Vec::new(),
    })
}

/// A `keep_alive` bound in whole seconds: a Go duration (`1h`, `30m`) or a number of seconds,
/// at least 1 s and at most ten years (Go's durations end at 292 years).
fn keep_alive_setting(value: Option<file::Scalar>, default: u64) -> Result<u64, String> {
    let Some(value) = value else {
        return Ok(default);
    };
    let text = value.into_text();
    let seconds = text
        .trim()
        .parse::<f64>()
        .ok()
        .or_else(|| crate::dialect::go_duration_seconds(text.trim()))
        .filter(|s| s.is_finite() && (1.0..=315_360_000.0).contains(s))
        .ok_or_else(|| {
            format!(
                "{text:?} is not a duration from 1s to 10 years: use e.g. 1h, 30m or 300 (seconds)"
            )
        })?;
    Ok(seconds.round() as u64)
}

/// Validates one Ollama base URL: `http://host[:port]` with no path.
pub fn parse_upstream(raw: &str) -> Result<UpstreamConfig, String> {
    let raw = raw.trim();
    let url = url::Url::parse(raw).map_err(|e| {
        format!("malformed URL {raw:?}: {e} (expected e.g. http://localhost:11434)")
    })?;
    match url.scheme() {
        "http" => {}
        "https" => return Err(format!("{raw}: https upstreams are not supported by this build; reach Ollama over http on a private network")),
        other => return Err(format!("{raw}: unsupported scheme {other:?}, expected http")),
    }
    let host = url.host_str().ok_or_else(|| format!("{raw}: no host"))?;
    if !(url.path() == "/" || url.path().is_empty()) || url.query().is_some() {
        return Err(format!(
            "{raw}: an Ollama URL has no path, e.g. http://localhost:11434"
        ));
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let authority = format!("{host}:{port}");
    Ok(UpstreamConfig {
        url: format!("http://{authority}"),
        authority,
        weight: 1,
        max_concurrency: None,
        gpu_weight: GpuWeight::ONE,
    })
}

impl Config {
    /// The effective configuration for `config check`, secrets redacted.
    pub fn redacted_lines(&self) -> Vec<(String, String)> {
        let upstreams: Vec<String> = self
            .upstreams
            .iter()
            .map(|u| {
                let mut s = u.url.clone();
                if u.weight != 1 {
                    s.push_str(&format!(" (weight {})", u.weight));
                }
                if let Some(c) = u.max_concurrency {
                    s.push_str(&format!(" (max_concurrency {c})"));
                }
                if u.gpu_weight != GpuWeight::ONE {
                    s.push_str(&format!(" (gpu_weight {})", u.gpu_weight.get()));
                }
                s
            })
            .collect();
        vec![
            ("sources".into(), self.sources.join(" < ")),
            (
                "admin.password".into(),
                if self.admin_password.is_some() {
                    "*** (set)".into()
                } else {
                    "(not set)".into()
                },
            ),
            ("proxy".into(), self.proxy.address()),
            (
                "proxy.public_url".into(),
                self.public_url
                    .clone()
                    .unwrap_or_else(|| "(derived)".into()),
            ),
            (
                "proxy.max_request_body_bytes".into(),
                self.max_request_body_bytes.to_string(),
            ),
            ("proxy.threads".into(), self.proxy_threads.to_string()),
            (
                "proxy.grace_period_seconds".into(),
                self.grace_period_seconds.to_string(),
            ),
            ("admin".into(), self.admin.address()),
            ("metrics".into(), self.metrics.address()),
            ("database.url".into(), self.database_url.redacted()),
            ("ollama.urls".into(), upstreams.join(", ")),
            ("ollama.default_model".into(), self.default_model.clone()),
            (
                "ollama.connect_timeout_ms".into(),
                self.connect_timeout.as_millis().to_string(),
            ),
            (
                "ollama.read_timeout_seconds".into(),
                self.read_timeout.as_secs().to_string(),
            ),
            (
                "ollama.queue_timeout_seconds".into(),
                self.host_queue_timeout.as_secs().to_string(),
            ),
            (
                "ollama.max_keep_alive".into(),
                format!(
                    "{}s (longer or negative keep_alive is replaced by it)",
                    self.keep_alive.max_seconds
                ),
            ),
            (
                "ollama.min_keep_alive".into(),
                format!(
                    "{}s (shorter keep_alive, 0 included, is removed unless ollama.allow_unload)",
                    self.keep_alive.min_seconds
                ),
            ),
            (
                "ollama.allow_unload".into(),
                if self.keep_alive.allow_unload {
                    "true (keep_alive: 0 and short values are passed on)".into()
                } else {
                    "false".into()
                },
            ),
            ("quota.timezone".into(), self.timezone.clone()),
            (
                "quota.token_counting".into(),
                match self.token_counting {
                    TokenCounting::Tiktoken => "tiktoken".into(),
                    TokenCounting::Upstream => "upstream".into(),
                },
            ),
            (
                "quota.flush_interval_ms".into(),
                self.flush_interval.as_millis().to_string(),
            ),
            (
                "quota.min_output_tokens".into(),
                self.min_output_tokens.to_string(),
            ),
            (
                "quota.output_reservation_tokens".into(),
                self.output_reservation_tokens.to_string(),
            ),
            ("quota.image_tokens".into(), self.image_tokens.to_string()),
            (
                "quota.queue_timeout_seconds".into(),
                self.parallel_queue_timeout.as_secs().to_string(),
            ),
            (
                "cors.allowed_origins".into(),
                self.allowed_origins.join(", "),
            ),
            (
                "log.format".into(),
                match self.log_format {
                    LogFormat::Text => "text".into(),
                    LogFormat::Json => "json".into(),
                },
            ),
            ("log.level".into(), self.log_level.clone()),
            (
                "alerts.webhook_url".into(),
                self.alerts
                    .webhook_url
                    .as_ref()
                    .map_or_else(|| "(not set)".into(), redact_webhook),
            ),
            (
                "alerts.thresholds".into(),
                self.alerts
                    .thresholds
                    .iter()
                    .map(f64::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "alerts.scan_interval_seconds".into(),
                self.alerts.scan_interval.as_secs().to_string(),
            ),
        ]
    }
}

/// Where usage alerts go and when they fire.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertsConfig {
    /// `None`: no alerts are sent (the usage-ratio metric is exported either way).
    pub webhook_url: Option<url::Url>,
    /// Fractions of a limit, ascending, each above 0 (default 0.8 and 1.0).
    pub thresholds: Vec<f64>,
    /// How often usage is compared with the limits (default 5 s).
    pub scan_interval: Duration,
}

// Thresholds are finite (validated), so their equality is reflexive.
impl Eq for AlertsConfig {}

impl Default for AlertsConfig {
    fn default() -> AlertsConfig {
        AlertsConfig {
            webhook_url: None,
            thresholds: vec![0.8, 1.0],
            scan_interval: Duration::from_secs(5),
        }
    }
}

fn alerts_config(
    raw: file::AlertsSection,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<AlertsConfig, ConfigError> {
    let webhook_url = match raw.webhook_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            let parsed = url::Url::parse(text)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| {
                    err(
                        "alerts.webhook_url",
                        "not an http(s) URL: use e.g. https://hooks.slack.com/services/…".into(),
                    )
                })?;
            Some(parsed)
        }
    };
    let thresholds = match raw.thresholds {
        None => AlertsConfig::default().thresholds,
        Some(list) => {
            let mut values = Vec::with_capacity(list.len());
            for item in list {
                let text = item.into_text();
                let value = text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v > 0.0 && *v <= 10.0)
                    .ok_or_else(|| {
                        err(
                            "alerts.thresholds",
                            format!("{text:?} is not a fraction of a limit above 0, e.g. 0.8 (at most 10)"),
                        )
                    })?;
                values.push(value);
            }
            values.sort_by(f64::total_cmp);
            values.dedup();
            values
        }
    };
    let scan_interval = match raw.scan_interval_seconds {
        None => AlertsConfig::default().scan_interval,
        Some(n) if (1..=3_600).contains(&n) => Duration::from_secs(n),
        Some(n) => {
            return Err(err(
                "alerts.scan_interval_seconds",
                format!("{n} is out of range: use 1 to 3600 seconds (default 5)"),
            ))
        }
    };
    Ok(AlertsConfig {
        webhook_url,
        thresholds,
        scan_interval,
    })
}

/// A webhook URL for display: its path and query often hold a secret (Slack's do).
fn redact_webhook(url: &url::Url) -> String {
    format!(
        "{}://{}{}/*** (set)",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests;
