//! Response shapes of the admin API (docs/api.md). The CLI's `keys list --json` prints the
//! same key objects. Every timestamp is RFC 3339 with the offset of the operator's zone
//! ([`timestamp`]).

use chrono_tz::Tz;
use quota_engine::settings::Overrides;
use quota_engine::usage_log::{DailyUsage, GpuTime};
use serde::Serialize;
use utoipa::ToSchema;

pub use quota_engine::key_view::{
    timestamp, InFlightView, KeyView, PeriodUsage, TeamRef, TeamView, UsageView,
};

/// One model of `GET /api/queue`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct ModelLoadView {
    #[schema(example = "llama3")]
    pub model: String,
    /// Counted requests on an Ollama host now.
    pub running: i64,
    /// Counted requests waiting: for a parallel slot of their key, or for a host at its
    /// `max_concurrency` (the fair queue).
    pub waiting: i64,
}

/// `GET /api/queue`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct QueueView {
    /// Every model that has had counted requests since the start, by name.
    pub models: Vec<ModelLoadView>,
}

/// The answer of `POST /api/api-keys`: the key object plus the plaintext, shown this once.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct CreatedKeyView {
    #[serde(flatten)]
    pub view: KeyView,
    /// The API key itself. Store it now: no other answer contains it.
    #[schema(example = "sk-AbCd1234efGH5678ijKL9012mnOP3456qrST7890uvW")]
    pub key: String,
}

/// The answer of `POST /api/api-keys/{id}/rotate`: the key object, its new secret (shown this
/// once), and until when the old one still works. Kept out of the key object, whose fields
/// docs/api.md fixes; the audit trail keeps it too (`key.rotated`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct RotatedKeyView {
    #[serde(flatten)]
    pub created: CreatedKeyView,
    /// RFC 3339 in the operator's zone; `null` when the old secret stopped at once.
    pub old_secret_valid_until: Option<String>,
}

/// One day of `GET /api/api-keys/{id}/usage` (a day of the operator's zone).
#[derive(Clone, Debug, Serialize, PartialEq, ToSchema)]
pub struct DailyUsageView {
    #[schema(example = "2026-11-29")]
    pub date: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    #[serde(flatten)]
    pub gpu: GpuTimeView,
}

/// GPU time in seconds (3 decimals): host time × `gpu_weight`, and what Ollama reported of it
/// (0 where it reported nothing: the `/v1` routes).
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, ToSchema)]
pub struct GpuTimeView {
    #[schema(example = 12.345)]
    pub gpu_seconds: f64,
    pub load_seconds: f64,
    pub prompt_eval_seconds: f64,
    pub eval_seconds: f64,
}

impl From<GpuTime> for GpuTimeView {
    fn from(g: GpuTime) -> GpuTimeView {
        let s = quota_engine::key_view::seconds::of;
        GpuTimeView {
            gpu_seconds: s(g.gpu_ms),
            load_seconds: s(g.load_ms),
            prompt_eval_seconds: s(g.prompt_eval_ms),
            eval_seconds: s(g.eval_ms),
        }
    }
}

impl From<DailyUsage> for DailyUsageView {
    fn from(d: DailyUsage) -> DailyUsageView {
        DailyUsageView {
            date: d.date,
            requests: d.requests,
            prompt_tokens: d.prompt_tokens,
            completion_tokens: d.completion_tokens,
            gpu: d.gpu.into(),
        }
    }
}

/// `GET /api/settings`: the values in force, which of them are overrides, and what an
/// override falls back to when it is cleared.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct SettingsView {
    /// The first of `ollama_urls`.
    #[schema(example = "http://localhost:11434")]
    pub ollama_url: String,
    pub ollama_urls: Vec<String>,
    pub default_model: String,
    pub overrides: OverrideFlags,
    pub configured: ConfiguredSettings,
    /// When the newest override was written; `null` when there is none.
    pub updated_at: Option<String>,
}

/// Which values come from an override stored in the database.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct OverrideFlags {
    pub ollama_urls: bool,
    pub default_model: bool,
}

/// The values of the configuration (environment, `.env`, YAML, defaults).
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct ConfiguredSettings {
    pub ollama_urls: Vec<String>,
    pub default_model: String,
}

impl SettingsView {
    pub fn new(
        overrides: &Overrides,
        configured_urls: &[String],
        configured_model: &str,
        tz: Tz,
    ) -> SettingsView {
        let ollama_urls = overrides
            .ollama_urls
            .clone()
            .unwrap_or_else(|| configured_urls.to_vec());
        SettingsView {
            ollama_url: ollama_urls.first().cloned().unwrap_or_default(),
            ollama_urls,
            default_model: overrides
                .default_model
                .clone()
                .unwrap_or_else(|| configured_model.to_owned()),
            overrides: OverrideFlags {
                ollama_urls: overrides.ollama_urls.is_some(),
                default_model: overrides.default_model.is_some(),
            },
            configured: ConfiguredSettings {
                ollama_urls: configured_urls.to_vec(),
                default_model: configured_model.to_owned(),
            },
            updated_at: overrides.updated_at.map(|t| timestamp(t, tz)),
        }
    }
}

/// `GET /api/ollama-models`: Ollama's `/api/tags` shape, merged over the upstreams.
#[derive(Clone, Debug, Serialize, PartialEq, ToSchema)]
pub struct ModelList {
    /// Ollama's model objects (`name`, `model`, `size`, `details`…), one per name.
    #[schema(value_type = Vec<Object>)]
    pub models: Vec<serde_json::Value>,
}

/// `GET /api/proxy-info`: what the UI's "how to connect" page shows.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct ProxyInfoView {
    /// Base URL of the proxy, for Ollama clients.
    #[schema(example = "http://gpu-box:8000")]
    pub proxy_url: String,
    /// Base URL for OpenAI clients (`proxy_url` + `/v1`).
    #[schema(example = "http://gpu-box:8000/v1")]
    pub openai_base_url: String,
    /// The model used when a request names none (the value in force).
    pub default_model: String,
    pub endpoints: Vec<EndpointView>,
    pub examples: ExamplesView,
}

/// One proxy route a key holder may call.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct EndpointView {
    #[schema(example = "POST")]
    pub method: String,
    #[schema(example = "/api/chat")]
    pub path: String,
    /// The full URL (`proxy_url` + `path`).
    pub url: String,
    /// Whether a call counts toward the key's quotas.
    pub counts_toward_quota: bool,
    pub description: String,
}

/// Copy-paste examples; each reads the key from the `LLM_QUOTA_API_KEY` environment variable.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct ExamplesView {
    /// A shell command.
    pub curl: String,
    /// Python with the `ollama` package.
    pub ollama_python: String,
    /// Python with the `openai` package.
    pub openai_python: String,
}

/// `GET /api/health`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct HealthView {
    #[schema(example = "ok")]
    pub status: String,
}

/// One row of `GET /api/usage`. A dimension not grouped by is `null`.
#[derive(Clone, Debug, Serialize, PartialEq, ToSchema)]
pub struct UsageRowView {
    pub key_id: Option<i64>,
    pub key_name: Option<String>,
    /// Grouped by team: the team the keys belonged to (`null` for keys in no team).
    pub team_id: Option<i64>,
    pub team_name: Option<String>,
    #[schema(example = "llama3")]
    pub model: Option<String>,
    /// A day of the operator's zone.
    #[schema(example = "2026-11-29")]
    pub date: Option<String>,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    #[serde(flatten)]
    pub gpu: GpuTimeView,
}

impl From<quota_engine::usage_report::ReportRow> for UsageRowView {
    fn from(r: quota_engine::usage_report::ReportRow) -> UsageRowView {
        UsageRowView {
            key_id: r.key_id,
            key_name: r.key_name,
            team_id: r.team_id,
            team_name: r.team_name,
            model: r.model,
            date: r.date,
            requests: r.requests,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            gpu: r.gpu.into(),
        }
    }
}

/// One entry of `GET /api/audit`.
#[derive(Clone, Debug, Serialize, PartialEq, ToSchema)]
pub struct AuditEntryView {
    pub id: i64,
    /// RFC 3339 in the operator's zone.
    pub at: String,
    /// The admin client's address; `cli` for the command line; `gateway` for alerts.
    #[schema(example = "127.0.0.1")]
    pub client: String,
    /// `key.created`, `key.edited`, `key.limits_changed`, `key.activated`, `key.deactivated`,
    /// `key.rotated`, `key.deleted`, `team.created`, `team.edited`, `team.deleted`,
    /// `settings.changed` or `alert.sent`.
    #[schema(example = "key.limits_changed")]
    pub action: String,
    pub key_id: Option<i64>,
    /// The key's name when the change was made.
    pub key_name: Option<String>,
    /// The changed fields before the change (`null` for a creation).
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// The changed fields after it (`null` for a deletion).
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

impl AuditEntryView {
    pub fn new(e: quota_engine::audit::AuditEntry, tz: Tz) -> AuditEntryView {
        AuditEntryView {
            id: e.id,
            at: timestamp(e.at, tz),
            client: e.client,
            action: e.action,
            key_id: e.key_id,
            key_name: e.key_name,
            before: e.before,
            after: e.after,
        }
    }
}
