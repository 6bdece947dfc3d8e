//! The serde mirror of `conf/llm-quota.yaml`: every field optional, unknown keys refused.
//! Defaults live in [`super::defaults`]; validation in [`super::validate`].

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub proxy: ProxySection,
    #[serde(default)]
    pub admin: AdminSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    #[serde(default)]
    pub database: DatabaseSection,
    #[serde(default)]
    pub ollama: OllamaSection,
    #[serde(default)]
    pub quota: QuotaSection,
    #[serde(default)]
    pub cors: CorsSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub alerts: AlertsSection,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub public_url: Option<String>,
    pub max_request_body_bytes: Option<u64>,
    pub threads: Option<usize>,
    pub grace_period_seconds: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// Kept as a scalar of any type so that `ADMIN_PASSWORD=123456` or a YAML `password: 123456`
    /// stays the string the operator typed.
    pub password: Option<Scalar>,
    pub host: Option<String>,
    pub port: Option<u16>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    pub host: Option<String>,
    pub port: Option<u16>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    pub url: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OllamaSection {
    pub urls: Option<Vec<UpstreamEntry>>,
    pub default_model: Option<String>,
    pub connect_timeout_ms: Option<u64>,
    pub read_timeout_seconds: Option<u64>,
    pub queue_timeout_seconds: Option<u64>,
    /// A Go duration (`1h`, `30m`) or a number of seconds.
    pub max_keep_alive: Option<Scalar>,
    pub min_keep_alive: Option<Scalar>,
    pub allow_unload: Option<bool>,
    #[serde(default)]
    pub health: HealthSection,
}

/// `- http://host:11434` or `- {url: http://host:11434, weight: 2, max_concurrency: 4,
/// gpu_weight: 2.0}`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum UpstreamEntry {
    Url(String),
    Detailed(UpstreamDetail),
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamDetail {
    pub url: String,
    pub weight: Option<u32>,
    pub max_concurrency: Option<u32>,
    pub gpu_weight: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    pub interval_seconds: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub unhealthy_after: Option<u32>,
    pub healthy_after: Option<u32>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuotaSection {
    pub timezone: Option<String>,
    pub token_counting: Option<String>,
    pub flush_interval_ms: Option<u64>,
    pub min_output_tokens: Option<u64>,
    pub output_reservation_tokens: Option<u64>,
    pub gpu_block_seconds: Option<f64>,
    pub queue_timeout_seconds: Option<u64>,
    pub image_tokens: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CorsSection {
    pub allowed_origins: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    pub format: Option<String>,
    pub level: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    pub webhook_url: Option<String>,
    /// Numbers in YAML; text from `ALERT_THRESHOLDS=0.8,1.0`.
    pub thresholds: Option<Vec<Scalar>>,
    pub scan_interval_seconds: Option<u64>,
}

/// Any YAML/env scalar, read back as the text the operator wrote.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    pub fn into_text(self) -> String {
        match self {
            Scalar::Text(s) => s,
            Scalar::Unsigned(n) => n.to_string(),
            Scalar::Signed(n) => n.to_string(),
            Scalar::Float(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}
