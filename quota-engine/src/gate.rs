//! What a quota is made of: the limits of a key, its counters in the current day and month,
//! an admission and a refusal (with what a person needs to know), and the counters as the
//! admin views read them. The decisions themselves are the ledger's ([`crate::ledger`]).
//!
//! The counters row of a key holds its **usage** (what finished and admitted requests used)
//! and the room **leased** to instances' ledgers; [`current_counters`] and [`all_counters`]
//! report usage. Prompt tokens are counted at admission, so concurrent requests cannot
//! together overrun a token quota by their prompts; the commit adds the rest of a request's
//! tokens to the period it was admitted in (a request that straddles midnight is charged to
//! the day it started).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, QueryResult, Statement, Value};

use crate::periods::PeriodKeys;
use crate::{EngineError, Result};

/// The four per-key limits; `None` = unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub daily_tokens: Option<i64>,
    pub monthly_tokens: Option<i64>,
    pub daily_requests: Option<i64>,
    pub monthly_requests: Option<i64>,
}

impl Limits {
    /// Limits are non-negative integers or null.
    pub fn validate(&self) -> Result<()> {
        for (kind, value) in self.each() {
            if value.is_some_and(|v| v < 0) {
                return Err(EngineError::Invalid(format!(
                    "{}: must be a non-negative integer or null",
                    kind.field_name()
                )));
            }
        }
        Ok(())
    }

    /// Each limit with its kind.
    pub fn each(&self) -> [(LimitKind, Option<i64>); 4] {
        [
            (LimitKind::DailyRequests, self.daily_requests),
            (LimitKind::MonthlyRequests, self.monthly_requests),
            (LimitKind::DailyTokens, self.daily_tokens),
            (LimitKind::MonthlyTokens, self.monthly_tokens),
        ]
    }
}

/// Which limit a refusal is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitKind {
    DailyRequests,
    MonthlyRequests,
    DailyTokens,
    MonthlyTokens,
}

impl LimitKind {
    pub const ALL: [LimitKind; 4] = [
        LimitKind::DailyRequests,
        LimitKind::MonthlyRequests,
        LimitKind::DailyTokens,
        LimitKind::MonthlyTokens,
    ];

    /// The key object's field name (`daily_token_limit`…).
    pub fn field_name(self) -> &'static str {
        match self {
            LimitKind::DailyRequests => "daily_request_limit",
            LimitKind::MonthlyRequests => "monthly_request_limit",
            LimitKind::DailyTokens => "daily_token_limit",
            LimitKind::MonthlyTokens => "monthly_token_limit",
        }
    }

    /// A short label for metrics (`daily_tokens`…).
    pub fn label(self) -> &'static str {
        match self {
            LimitKind::DailyRequests => "daily_requests",
            LimitKind::MonthlyRequests => "monthly_requests",
            LimitKind::DailyTokens => "daily_tokens",
            LimitKind::MonthlyTokens => "monthly_tokens",
        }
    }

    /// `daily token quota`…, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            LimitKind::DailyRequests => "daily request quota",
            LimitKind::MonthlyRequests => "monthly request quota",
            LimitKind::DailyTokens => "daily token quota",
            LimitKind::MonthlyTokens => "monthly token quota",
        }
    }

    /// A request limit (else a token limit).
    pub fn is_requests(self) -> bool {
        matches!(self, LimitKind::DailyRequests | LimitKind::MonthlyRequests)
    }

    /// A daily limit (else a monthly one).
    pub fn is_daily(self) -> bool {
        matches!(self, LimitKind::DailyRequests | LimitKind::DailyTokens)
    }
}

/// A key's usage in the current day and month (zero for a period that has not started yet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub day_requests: i64,
    pub day_tokens: i64,
    pub month_requests: i64,
    pub month_tokens: i64,
}

impl Counters {
    /// What the limit of `kind` is measured against.
    pub fn used(&self, kind: LimitKind) -> i64 {
        match kind {
            LimitKind::DailyRequests => self.day_requests,
            LimitKind::MonthlyRequests => self.month_requests,
            LimitKind::DailyTokens => self.day_tokens,
            LimitKind::MonthlyTokens => self.month_tokens,
        }
    }
}

/// What a request asks of its key's quotas at admission.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ask {
    /// Prompt tokens, counted before the request is forwarded.
    pub prompt_tokens: i64,
    /// The answer generates tokens (chat, completions, responses, messages; not embeddings):
    /// under a token limit its output is bounded by the room left and reserved in blocks.
    pub generates: bool,
    /// The client's own output limit (`max_tokens`, `options.num_predict`…), when it set one.
    pub client_output_limit: Option<i64>,
}

/// A request that passed the gate. Hand it back to the ledger's `commit` or `refund`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    pub key_id: i64,
    pub day: String,
    pub month: String,
    /// Tokens counted for the request so far: its prompt, plus (under a token limit) the
    /// output reserved at admission and by extensions while it streams.
    pub reserved_tokens: i64,
    /// Under a token limit, for an answer: the most it may generate, min(the client's own
    /// limit, the room left after the prompt). The forwarded body carries it when the client's
    /// own limit is absent or larger. `None` when no token limit applies.
    pub output_cap: Option<i64>,
    /// The counters right after this request was counted.
    pub counters: Counters,
    /// The ledger's lease generation at admission: room goes back to the lease only while it
    /// is the same lease (same periods and limits).
    pub lease_generation: u64,
}

/// Remaining room under the tightest request limit and the tightest token limit, for the
/// `x-ratelimit-*` headers, with when that limit's period resets. `None` where no such limit
/// is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Headroom {
    /// (limit, remaining)
    pub requests: Option<(i64, i64)>,
    pub tokens: Option<(i64, i64)>,
    pub requests_reset_at: Option<DateTime<Utc>>,
    pub tokens_reset_at: Option<DateTime<Utc>>,
}

impl Admission {
    pub fn headroom(&self, limits: &Limits, periods: &PeriodKeys) -> Headroom {
        let tightest = |kinds: [(LimitKind, Option<i64>); 2]| {
            kinds
                .into_iter()
                .filter_map(|(kind, limit)| {
                    limit.map(|l| (kind, l, (l - self.counters.used(kind)).max(0)))
                })
                .min_by_key(|&(_, _, remaining)| remaining)
        };
        let reset = |kind: LimitKind| {
            if kind.is_daily() {
                periods.day_resets_at.with_timezone(&Utc)
            } else {
                periods.month_resets_at.with_timezone(&Utc)
            }
        };
        let requests = tightest([
            (LimitKind::DailyRequests, limits.daily_requests),
            (LimitKind::MonthlyRequests, limits.monthly_requests),
        ]);
        let tokens = tightest([
            (LimitKind::DailyTokens, limits.daily_tokens),
            (LimitKind::MonthlyTokens, limits.monthly_tokens),
        ]);
        Headroom {
            requests: requests.map(|(_, l, r)| (l, r)),
            tokens: tokens.map(|(_, l, r)| (l, r)),
            requests_reset_at: requests.map(|(kind, _, _)| reset(kind)),
            tokens_reset_at: tokens.map(|(kind, _, _)| reset(kind)),
        }
    }
}

/// Why a request was refused, with what a person needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub kind: LimitKind,
    pub limit: i64,
    pub used: i64,
    /// Token limits: what the request needed (its prompt, and for an answer the least output
    /// worth generating). Said in the message when the limit is not used up yet.
    pub needed: i64,
    pub resets_at: DateTime<Tz>,
}

impl QuotaExceeded {
    /// Whole seconds until the exceeded period resets (at least 1), for `Retry-After`.
    pub fn retry_after_secs(&self, now: DateTime<Utc>) -> u64 {
        let secs = (self.resets_at.with_timezone(&Utc) - now).num_seconds();
        secs.max(1) as u64
    }
}

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} exceeded (limit {}, used {}",
            self.kind.noun(),
            self.limit,
            self.used
        )?;
        if !self.kind.is_requests() && self.used < self.limit {
            write!(f, "; this request needs {} tokens", self.needed)?;
        }
        write!(f, "), resets {}", self.resets_at.to_rfc3339())
    }
}

/// The gate's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateDecision {
    Admitted(Admission),
    Refused(QuotaExceeded),
}

/// `CASE WHEN day_period = $2 THEN col ELSE 0 END`: the column's value in the current period.
pub(crate) fn current(period_col: &str, period_param: &str, col: &str) -> String {
    format!("(CASE WHEN {period_col} = {period_param} THEN {col} ELSE 0 END)")
}

fn counters_from(row: &QueryResult) -> Result<Counters> {
    Ok(Counters {
        day_requests: row.try_get("", "day_requests")?,
        day_tokens: row.try_get("", "day_tokens")?,
        month_requests: row.try_get("", "month_requests")?,
        month_tokens: row.try_get("", "month_tokens")?,
    })
}

/// `$1` = key id, `$2` = day label, `$3` = month label: the parameters of a one-key query.
pub(crate) fn key_period_values(key_id: i64, periods: &PeriodKeys) -> Vec<Value> {
    vec![
        key_id.into(),
        periods.day.as_str().into(),
        periods.month.as_str().into(),
    ]
}

pub(crate) fn stmt(db: &impl ConnectionTrait, sql: String, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), sql, values)
}

/// The first limit (daily before monthly, requests before tokens) that has no room for one
/// more request needing `tokens` (its prompt, plus the least output worth generating).
pub(crate) fn explain(
    limits: &Limits,
    counters: &Counters,
    tokens: i64,
    periods: &PeriodKeys,
) -> Option<QuotaExceeded> {
    limits.each().into_iter().find_map(|(kind, limit)| {
        let limit = limit?;
        let used = counters.used(kind);
        let full = match kind {
            LimitKind::DailyRequests | LimitKind::MonthlyRequests => used + 1 > limit,
            LimitKind::DailyTokens | LimitKind::MonthlyTokens => {
                used >= limit || used + tokens > limit
            }
        };
        full.then(|| QuotaExceeded {
            kind,
            limit,
            used,
            needed: if kind.is_requests() { 1 } else { tokens },
            resets_at: if kind.is_daily() {
                periods.day_resets_at
            } else {
                periods.month_resets_at
            },
        })
    })
}

/// Creates the key's counters row when it has none; [`EngineError::KeyNotFound`] when the key
/// itself is gone.
pub(crate) async fn ensure_counters_row(db: &impl ConnectionTrait, key_id: i64) -> Result<()> {
    let exists = db
        .query_one(stmt(
            db,
            "SELECT id FROM api_keys WHERE id = $1".into(),
            vec![key_id.into()],
        ))
        .await?
        .is_some();
    if !exists {
        return Err(EngineError::KeyNotFound(key_id));
    }
    let sql = "INSERT INTO usage_counters \
               (key_id, day_period, day_requests, day_tokens, month_period, month_requests, month_tokens) \
               VALUES ($1, '', 0, 0, '', 0, 0) ON CONFLICT (key_id) DO NOTHING";
    db.execute(stmt(db, sql.into(), vec![key_id.into()]))
        .await?;
    Ok(())
}

/// A key's counters in the periods of `periods` (`None` when the key has no counters row).
pub async fn current_counters(
    db: &impl ConnectionTrait,
    key_id: i64,
    periods: &PeriodKeys,
) -> Result<Option<Counters>> {
    let sql = format!(
        "SELECT {} AS day_requests, {} AS day_tokens, {} AS month_requests, {} AS month_tokens \
         FROM usage_counters WHERE key_id = $1",
        current("day_period", "$2", "day_requests"),
        current("day_period", "$2", "day_tokens"),
        current("month_period", "$3", "month_requests"),
        current("month_period", "$3", "month_tokens"),
    );
    db.query_one(stmt(db, sql, key_period_values(key_id, periods)))
        .await?
        .as_ref()
        .map(counters_from)
        .transpose()
}

/// Every key's counters in the periods of `periods`, by key id.
pub async fn all_counters(
    db: &impl ConnectionTrait,
    periods: &PeriodKeys,
) -> Result<std::collections::HashMap<i64, Counters>> {
    let sql = format!(
        "SELECT key_id, {} AS day_requests, {} AS day_tokens, {} AS month_requests, {} AS month_tokens \
         FROM usage_counters",
        current("day_period", "$1", "day_requests"),
        current("day_period", "$1", "day_tokens"),
        current("month_period", "$2", "month_requests"),
        current("month_period", "$2", "month_tokens"),
    );
    let values = vec![periods.day.as_str().into(), periods.month.as_str().into()];
    let rows = db.query_all(stmt(db, sql, values)).await?;
    rows.iter()
        .map(|row| Ok((row.try_get::<i64>("", "key_id")?, counters_from(row)?)))
        .collect()
}
