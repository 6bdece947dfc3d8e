//! Response shapes of the admin API (docs/api.md). The CLI's `keys list --json` prints the
//! same key objects. Every timestamp is RFC 3339 with the offset of the operator's zone
//! ([`timestamp`]).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use quota_engine::gate::Counters;
use quota_engine::settings::Overrides;
use quota_engine::usage_log::DailyUsage;
use quota_engine::{ApiKey, PeriodKeys};
use serde::Serialize;
use utoipa::ToSchema;

/// The key object (docs/api.md, "The key object"). Never the plaintext, never the digest.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct KeyView {
    pub id: i64,
    pub name: String,
    /// `sk-` and the first 8 characters, for recognising a key.
    #[schema(example = "sk-AbCd1234")]
    pub key_prefix: String,
    pub is_active: bool,
    #[schema(example = "2026-11-29T10:00:00+01:00")]
    pub created_at: String,
    /// `null` = never expires.
    pub expires_at: Option<String>,
    pub daily_token_limit: Option<i64>,
    pub monthly_token_limit: Option<i64>,
    pub daily_request_limit: Option<i64>,
    pub monthly_request_limit: Option<i64>,
    /// Requests in any sliding 60 seconds; `null` = unlimited.
    pub requests_per_minute: Option<i64>,
    /// Tokens in any sliding 60 seconds (prompts at admission, answers when they end);
    /// `null` = unlimited.
    pub tokens_per_minute: Option<i64>,
    /// Counted requests in flight at once on an instance; more wait in the key's queue.
    /// `null` = unlimited.
    pub max_parallel_requests: Option<i64>,
    /// Weight in the fair queue for busy hosts, 1–10 (default 1).
    #[schema(minimum = 1, maximum = 10, example = 1)]
    pub priority: i64,
    /// `null` = every local model (cloud models must be named).
    pub allowed_models: Option<Vec<String>>,
    /// Whether the key may use the web search tools Ollama runs on the host's ollama.com
    /// account (`/v1/responses`, `/v1/messages`).
    pub allow_web_search: bool,
    /// Usage so far; tokens include what requests in flight hold reserved.
    pub usage: UsageView,
    /// Requests of the key in flight on this instance and the tokens they hold reserved
    /// (prompts plus output reservations, settled when each answer ends).
    pub in_flight: InFlightView,
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq, ToSchema)]
pub struct InFlightView {
    pub requests: i64,
    pub reserved_tokens: i64,
}

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

/// A key's usage in the current day and month of the operator's zone.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct UsageView {
    pub day: PeriodUsage,
    pub month: PeriodUsage,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct PeriodUsage {
    /// `2026-11-29` or `2026-11`.
    #[schema(example = "2026-11-29")]
    pub period: String,
    pub requests: i64,
    pub tokens: i64,
    /// When this period's counters start again from zero.
    pub resets_at: String,
}

/// RFC 3339 with the offset of the operator's zone.
pub fn timestamp(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).to_rfc3339()
}

impl KeyView {
    pub fn new(
        key: &ApiKey,
        counters: Counters,
        in_flight: InFlightView,
        periods: &PeriodKeys,
    ) -> KeyView {
        let tz = periods.day_start.timezone();
        KeyView {
            id: key.id,
            name: key.name.clone(),
            key_prefix: key.key_prefix.clone(),
            is_active: key.is_active,
            created_at: timestamp(key.created_at, tz),
            expires_at: key.expires_at.map(|t| timestamp(t, tz)),
            daily_token_limit: key.limits.daily_tokens,
            monthly_token_limit: key.limits.monthly_tokens,
            daily_request_limit: key.limits.daily_requests,
            monthly_request_limit: key.limits.monthly_requests,
            requests_per_minute: key.pacing.requests_per_minute,
            tokens_per_minute: key.pacing.tokens_per_minute,
            max_parallel_requests: key.pacing.max_parallel_requests,
            priority: key.pacing.priority,
            allowed_models: key.allowed_models.clone(),
            allow_web_search: key.allow_web_search,
            usage: UsageView {
                day: PeriodUsage {
                    period: periods.day.clone(),
                    requests: counters.day_requests,
                    tokens: counters.day_tokens,
                    resets_at: periods.day_resets_at.to_rfc3339(),
                },
                month: PeriodUsage {
                    period: periods.month.clone(),
                    requests: counters.month_requests,
                    tokens: counters.month_tokens,
                    resets_at: periods.month_resets_at.to_rfc3339(),
                },
            },
            in_flight,
        }
    }
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
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct DailyUsageView {
    #[schema(example = "2026-11-29")]
    pub date: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

impl From<DailyUsage> for DailyUsageView {
    fn from(d: DailyUsage) -> DailyUsageView {
        DailyUsageView {
            date: d.date,
            requests: d.requests,
            prompt_tokens: d.prompt_tokens,
            completion_tokens: d.completion_tokens,
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
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct UsageRowView {
    pub key_id: Option<i64>,
    pub key_name: Option<String>,
    #[schema(example = "llama3")]
    pub model: Option<String>,
    /// A day of the operator's zone.
    #[schema(example = "2026-11-29")]
    pub date: Option<String>,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

impl From<quota_engine::usage_report::ReportRow> for UsageRowView {
    fn from(r: quota_engine::usage_report::ReportRow) -> UsageRowView {
        UsageRowView {
            key_id: r.key_id,
            key_name: r.key_name,
            model: r.model,
            date: r.date,
            requests: r.requests,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
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
    /// `key.rotated`, `key.deleted`, `settings.changed` or `alert.sent`.
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
