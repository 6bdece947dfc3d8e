//! The key object (and the team object) as the admin API, the CLI (`keys list --json`) and a key's own
//! `GET /v1/quota` show it (docs/api.md, "The key object"): the key's settings and its usage
//! in the current periods. Every timestamp is RFC 3339 with the offset of the operator's zone
//! ([`timestamp`]). Never the plaintext, never the digest.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use crate::gate::Counters;
use crate::{ApiKey, PeriodKeys};

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
    /// GPU seconds a day (up to three decimals); `null` = unlimited.
    #[serde(rename = "daily_gpu_seconds_limit", serialize_with = "seconds::option")]
    #[schema(value_type = Option<f64>, example = 3600.0)]
    pub daily_gpu_ms_limit: Option<i64>,
    /// GPU seconds a month (up to three decimals); `null` = unlimited.
    #[serde(
        rename = "monthly_gpu_seconds_limit",
        serialize_with = "seconds::option"
    )]
    #[schema(value_type = Option<f64>)]
    pub monthly_gpu_ms_limit: Option<i64>,
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
    /// The team the key belongs to (its budget is shared with the team's other keys); `null`
    /// = none.
    pub team: Option<TeamRef>,
    /// Usage so far; tokens and GPU time include what requests in flight hold reserved.
    pub usage: UsageView,
    /// Requests of the key in flight on this instance and the tokens they hold reserved
    /// (prompts plus output reservations, settled when each answer ends).
    pub in_flight: InFlightView,
}

/// A team as a key object names it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct TeamRef {
    pub id: i64,
    #[schema(example = "data")]
    pub name: String,
}

/// The team object (docs/api.md, "Teams"): its settings, how many keys belong to it, and its
/// usage in the current periods (all its keys together).
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct TeamView {
    pub id: i64,
    #[schema(example = "data")]
    pub name: String,
    pub description: Option<String>,
    #[schema(example = "2026-12-08T10:00:00+01:00")]
    pub created_at: String,
    pub daily_token_limit: Option<i64>,
    pub monthly_token_limit: Option<i64>,
    pub daily_request_limit: Option<i64>,
    pub monthly_request_limit: Option<i64>,
    /// GPU seconds a day (up to three decimals); `null` = unlimited.
    #[serde(rename = "daily_gpu_seconds_limit", serialize_with = "seconds::option")]
    #[schema(value_type = Option<f64>, example = 36000.0)]
    pub daily_gpu_ms_limit: Option<i64>,
    /// GPU seconds a month (up to three decimals); `null` = unlimited.
    #[serde(
        rename = "monthly_gpu_seconds_limit",
        serialize_with = "seconds::option"
    )]
    #[schema(value_type = Option<f64>)]
    pub monthly_gpu_ms_limit: Option<i64>,
    /// Requests in any sliding 60 seconds, all the team's keys together; `null` = unlimited.
    pub requests_per_minute: Option<i64>,
    /// Tokens in any sliding 60 seconds, all the team's keys together; `null` = unlimited.
    pub tokens_per_minute: Option<i64>,
    /// Counted requests of the team's keys in flight at once on an instance; `null` =
    /// unlimited.
    pub max_parallel_requests: Option<i64>,
    /// The team's weight in the fair queue, 1–10, shared by its keys (default 1).
    #[schema(minimum = 1, maximum = 10, example = 1)]
    pub priority: i64,
    /// `null` = every local model; a key of the team may use a model only if both allow it.
    pub allowed_models: Option<Vec<String>>,
    /// Keys that belong to the team.
    pub key_count: u64,
    /// Usage of all the team's keys so far; tokens and GPU time include reservations.
    pub usage: UsageView,
    /// The team's requests in flight on this instance and the tokens they hold reserved.
    pub in_flight: InFlightView,
}

impl TeamView {
    pub fn new(
        team: &crate::Team,
        key_count: u64,
        counters: Counters,
        in_flight: InFlightView,
        periods: &PeriodKeys,
    ) -> TeamView {
        let tz = periods.day_start.timezone();
        TeamView {
            id: team.id,
            name: team.name.clone(),
            description: team.description.clone(),
            created_at: timestamp(team.created_at, tz),
            daily_token_limit: team.limits.daily_tokens,
            monthly_token_limit: team.limits.monthly_tokens,
            daily_request_limit: team.limits.daily_requests,
            monthly_request_limit: team.limits.monthly_requests,
            daily_gpu_ms_limit: team.limits.daily_gpu_ms,
            monthly_gpu_ms_limit: team.limits.monthly_gpu_ms,
            requests_per_minute: team.pacing.requests_per_minute,
            tokens_per_minute: team.pacing.tokens_per_minute,
            max_parallel_requests: team.pacing.max_parallel_requests,
            priority: team.pacing.priority,
            allowed_models: team.allowed_models.clone(),
            key_count,
            usage: UsageView::new(counters, periods),
            in_flight,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq, ToSchema)]
pub struct InFlightView {
    pub requests: i64,
    pub reserved_tokens: i64,
}

impl From<crate::ledger::Amount> for InFlightView {
    /// What the ledger says the key's requests in flight hold.
    fn from(held: crate::ledger::Amount) -> InFlightView {
        InFlightView {
            requests: held.requests,
            reserved_tokens: held.tokens,
        }
    }
}

/// A key's usage in the current day and month of the operator's zone.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct UsageView {
    pub day: PeriodUsage,
    pub month: PeriodUsage,
}

impl UsageView {
    /// `counters` in the current periods.
    pub fn new(counters: Counters, periods: &PeriodKeys) -> UsageView {
        UsageView {
            day: PeriodUsage {
                period: periods.day.clone(),
                requests: counters.day_requests,
                tokens: counters.day_tokens,
                gpu_ms: counters.day_gpu_ms,
                resets_at: periods.day_resets_at.to_rfc3339(),
            },
            month: PeriodUsage {
                period: periods.month.clone(),
                requests: counters.month_requests,
                tokens: counters.month_tokens,
                gpu_ms: counters.month_gpu_ms,
                resets_at: periods.month_resets_at.to_rfc3339(),
            },
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct PeriodUsage {
    /// `2026-11-29` or `2026-11`.
    #[schema(example = "2026-11-29")]
    pub period: String,
    pub requests: i64,
    pub tokens: i64,
    /// GPU time: seconds on a host × its `gpu_weight`, three decimals.
    #[serde(rename = "gpu_seconds", serialize_with = "seconds::plain")]
    #[schema(value_type = f64)]
    pub gpu_ms: i64,
    /// When this period's counters start again from zero.
    pub resets_at: String,
}

/// Milliseconds written as seconds: a JSON number with up to three decimals.
pub mod seconds {
    use serde::Serializer;

    /// Milliseconds are exact in an f64 far beyond any usage; /1000 gives the 3 decimals.
    pub fn of(ms: i64) -> f64 {
        ms as f64 / 1000.0
    }

    pub fn plain<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(of(*ms))
    }

    pub fn option<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => s.serialize_f64(of(*ms)),
            None => s.serialize_none(),
        }
    }
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
            daily_gpu_ms_limit: key.limits.daily_gpu_ms,
            monthly_gpu_ms_limit: key.limits.monthly_gpu_ms,
            requests_per_minute: key.pacing.requests_per_minute,
            tokens_per_minute: key.pacing.tokens_per_minute,
            max_parallel_requests: key.pacing.max_parallel_requests,
            priority: key.pacing.priority,
            allowed_models: key.allowed_models.clone(),
            allow_web_search: key.allow_web_search,
            team: key.team.as_ref().map(|t| TeamRef {
                id: t.id,
                name: t.name.clone(),
            }),
            usage: UsageView::new(counters, periods),
            in_flight,
        }
    }
}
