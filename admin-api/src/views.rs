//! Response shapes of the admin API. The CLI's `keys list --json` prints the same objects.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use quota_engine::gate::Counters;
use quota_engine::{ApiKey, PeriodKeys};
use serde::Serialize;

/// The key object of contract §5. Never the plaintext, never the digest.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct KeyView {
    pub id: i64,
    pub name: String,
    pub key_prefix: String,
    pub is_active: bool,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub daily_token_limit: Option<i64>,
    pub monthly_token_limit: Option<i64>,
    pub daily_request_limit: Option<i64>,
    pub monthly_request_limit: Option<i64>,
    pub allowed_models: Option<Vec<String>>,
    pub usage: UsageView,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct UsageView {
    pub day: PeriodUsage,
    pub month: PeriodUsage,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PeriodUsage {
    /// `2026-11-29` or `2026-11`.
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
    pub fn new(key: &ApiKey, counters: Counters, periods: &PeriodKeys) -> KeyView {
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
            allowed_models: key.allowed_models.clone(),
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
        }
    }
}
