//! The gate and the commit: the one promise of this crate is that a quota holds exactly.
//!
//! **Admission** is a single conditional `UPDATE … RETURNING` on the key's counters row. It
//! rolls the day and month over when their label changed, checks every limit that applies
//! (requests, and tokens given the prompt's tokens) and counts the request, all in one
//! statement. PostgreSQL serializes concurrent statements on the row lock and re-checks the
//! `WHERE` against the latest row version; SQLite runs one writer at a time. So with a request
//! limit R, exactly R of any number of concurrent requests pass, across processes too. (SeaORM
//! drops `FOR UPDATE` on SQLite without a word, which is why there is no read-then-write here.)
//!
//! The prompt's tokens are reserved at admission, so concurrent requests cannot together
//! overrun a token quota by their prompts. **The commit** adds the difference between the
//! finished request's tokens and that reservation; a **refund** takes back the request and the
//! reservation when the upstream never answered. Both only touch the period they were admitted
//! in: a request that straddles midnight is charged to the day it started.

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

    fn each(&self) -> [(LimitKind, Option<i64>); 4] {
        [
            (LimitKind::DailyRequests, self.daily_requests),
            (LimitKind::MonthlyRequests, self.monthly_requests),
            (LimitKind::DailyTokens, self.daily_tokens),
            (LimitKind::MonthlyTokens, self.monthly_tokens),
        ]
    }
}

/// Which limit a refusal is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    DailyRequests,
    MonthlyRequests,
    DailyTokens,
    MonthlyTokens,
}

impl LimitKind {
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

    fn noun(self) -> &'static str {
        match self {
            LimitKind::DailyRequests => "daily request quota",
            LimitKind::MonthlyRequests => "monthly request quota",
            LimitKind::DailyTokens => "daily token quota",
            LimitKind::MonthlyTokens => "monthly token quota",
        }
    }

    fn is_daily(self) -> bool {
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
    fn used(&self, kind: LimitKind) -> i64 {
        match kind {
            LimitKind::DailyRequests => self.day_requests,
            LimitKind::MonthlyRequests => self.month_requests,
            LimitKind::DailyTokens => self.day_tokens,
            LimitKind::MonthlyTokens => self.month_tokens,
        }
    }
}

/// A request that passed the gate. Hand it back to [`commit`] or [`refund`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    pub key_id: i64,
    pub day: String,
    pub month: String,
    /// Prompt tokens counted at admission.
    pub reserved_tokens: i64,
    /// The counters right after this request was counted.
    pub counters: Counters,
}

/// Remaining room under the tightest request limit and the tightest token limit, for the
/// `x-ratelimit-*` headers. `None` where no such limit is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Headroom {
    /// (limit, remaining)
    pub requests: Option<(i64, i64)>,
    pub tokens: Option<(i64, i64)>,
}

impl Admission {
    pub fn headroom(&self, limits: &Limits) -> Headroom {
        let tightest = |kinds: [(LimitKind, Option<i64>); 2]| {
            kinds
                .into_iter()
                .filter_map(|(kind, limit)| {
                    limit.map(|l| (l, (l - self.counters.used(kind)).max(0)))
                })
                .min_by_key(|&(_, remaining)| remaining)
        };
        Headroom {
            requests: tightest([
                (LimitKind::DailyRequests, limits.daily_requests),
                (LimitKind::MonthlyRequests, limits.monthly_requests),
            ]),
            tokens: tightest([
                (LimitKind::DailyTokens, limits.daily_tokens),
                (LimitKind::MonthlyTokens, limits.monthly_tokens),
            ]),
        }
    }
}

/// Why a request was refused, with what a person needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub kind: LimitKind,
    pub limit: i64,
    pub used: i64,
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
            "{} exceeded (limit {}, used {}), resets {}",
            self.kind.noun(),
            self.limit,
            self.used,
            self.resets_at.to_rfc3339()
        )
    }
}

/// The gate's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateDecision {
    Admitted(Admission),
    Refused(QuotaExceeded),
}

/// `CASE WHEN day_period = $2 THEN col ELSE 0 END`: the column's value in the current period.
fn current(period_col: &str, period_param: &str, col: &str) -> String {
    format!("(CASE WHEN {period_col} = {period_param} THEN {col} ELSE 0 END)")
}

fn gate_sql(limits: &Limits, first_limit_param: usize) -> String {
    let day_req = current("day_period", "$2", "day_requests");
    let day_tok = current("day_period", "$2", "day_tokens");
    let mon_req = current("month_period", "$3", "month_requests");
    let mon_tok = current("month_period", "$3", "month_tokens");
    let mut sql = format!(
        "UPDATE usage_counters SET \
         day_requests = {day_req} + 1, day_tokens = {day_tok} + $4, \
         month_requests = {mon_req} + 1, month_tokens = {mon_tok} + $4, \
         day_period = $2, month_period = $3 \
         WHERE key_id = $1"
    );
    let mut param = first_limit_param;
    for (kind, limit) in limits.each() {
        if limit.is_none() {
            continue;
        }
        let p = format!("${param}");
        param += 1;
        let condition = match kind {
            LimitKind::DailyRequests => format!(" AND {day_req} + 1 <= {p}"),
            LimitKind::MonthlyRequests => format!(" AND {mon_req} + 1 <= {p}"),
            LimitKind::DailyTokens => format!(" AND {day_tok} < {p} AND {day_tok} + $4 <= {p}"),
            LimitKind::MonthlyTokens => format!(" AND {mon_tok} < {p} AND {mon_tok} + $4 <= {p}"),
        };
        sql.push_str(&condition);
    }
    sql.push_str(" RETURNING day_requests, day_tokens, month_requests, month_tokens");
    sql
}

fn counters_from(row: &QueryResult) -> Result<Counters> {
    Ok(Counters {
        day_requests: row.try_get("", "day_requests")?,
        day_tokens: row.try_get("", "day_tokens")?,
        month_requests: row.try_get("", "month_requests")?,
        month_tokens: row.try_get("", "month_tokens")?,
    })
}

fn stmt(db: &impl ConnectionTrait, sql: String, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), sql, values)
}

/// A few rounds cover the rare race where a refusal is read back after another request was
/// refunded, and a counters row that had to be created first.
const GATE_ATTEMPTS: usize = 4;

/// Admits the request and counts it if every limit has room for one more request and for
/// `prompt_tokens`, atomically (see the module doc). Otherwise says which limit is exceeded.
pub async fn admit(
    db: &impl ConnectionTrait,
    key_id: i64,
    limits: &Limits,
    prompt_tokens: i64,
    periods: &PeriodKeys,
) -> Result<GateDecision> {
    let prompt_tokens = prompt_tokens.max(0);
    let sql = gate_sql(limits, 5);
    for _ in 0..GATE_ATTEMPTS {
        let mut values: Vec<Value> = vec![
            key_id.into(),
            periods.day.as_str().into(),
            periods.month.as_str().into(),
            prompt_tokens.into(),
        ];
        values.extend(
            limits
                .each()
                .into_iter()
                .filter_map(|(_, l)| l.map(Value::from)),
        );
        if let Some(row) = db.query_one(stmt(db, sql.clone(), values)).await? {
            return Ok(GateDecision::Admitted(Admission {
                key_id,
                day: periods.day.clone(),
                month: periods.month.clone(),
                reserved_tokens: prompt_tokens,
                counters: counters_from(&row)?,
            }));
        }
        match current_counters(db, key_id, periods).await? {
            None => ensure_counters_row(db, key_id).await?,
            Some(counters) => {
                if let Some(refusal) = explain(limits, &counters, prompt_tokens, periods) {
                    return Ok(GateDecision::Refused(refusal));
                }
            }
        }
    }
    Err(EngineError::Invalid(format!(
        "the gate for key {key_id} did not settle after {GATE_ATTEMPTS} attempts"
    )))
}

/// The first limit (daily before monthly, requests before tokens) that has no room.
fn explain(
    limits: &Limits,
    counters: &Counters,
    prompt_tokens: i64,
    periods: &PeriodKeys,
) -> Option<QuotaExceeded> {
    limits.each().into_iter().find_map(|(kind, limit)| {
        let limit = limit?;
        let used = counters.used(kind);
        let full = match kind {
            LimitKind::DailyRequests | LimitKind::MonthlyRequests => used + 1 > limit,
            LimitKind::DailyTokens | LimitKind::MonthlyTokens => {
                used >= limit || used + prompt_tokens > limit
            }
        };
        full.then(|| QuotaExceeded {
            kind,
            limit,
            used,
            resets_at: if kind.is_daily() {
                periods.day_resets_at
            } else {
                periods.month_resets_at
            },
        })
    })
}

async fn ensure_counters_row(db: &impl ConnectionTrait, key_id: i64) -> Result<()> {
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
    let values = vec![
        key_id.into(),
        periods.day.as_str().into(),
        periods.month.as_str().into(),
    ];
    db.query_one(stmt(db, sql, values))
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

/// Adds a finished request's tokens: `total_tokens` minus what admission reserved. One
/// statement, safe under any concurrency (it adds, never overwrites).
pub async fn commit(
    db: &impl ConnectionTrait,
    admission: &Admission,
    total_tokens: i64,
) -> Result<()> {
    let delta = total_tokens.max(0) - admission.reserved_tokens;
    if delta == 0 {
        return Ok(());
    }
    adjust(
        db,
        admission.key_id,
        &admission.day,
        &admission.month,
        0,
        delta,
    )
    .await
}

/// Takes back an admitted request that consumed nothing (the upstream was unreachable).
pub async fn refund(db: &impl ConnectionTrait, admission: &Admission) -> Result<()> {
    adjust(
        db,
        admission.key_id,
        &admission.day,
        &admission.month,
        -1,
        -admission.reserved_tokens,
    )
    .await
}

/// Adds `requests` and `tokens` (either may be negative) to a key's counters of the day and
/// month labelled `day` and `month`; a counter already in a later period is left alone.
pub async fn adjust(
    db: &impl ConnectionTrait,
    key_id: i64,
    day: &str,
    month: &str,
    requests: i64,
    tokens: i64,
) -> Result<()> {
    if requests == 0 && tokens == 0 {
        return Ok(());
    }
    let sql = "UPDATE usage_counters SET \
               day_requests = day_requests + (CASE WHEN day_period = $2 THEN $4 ELSE 0 END), \
               day_tokens = day_tokens + (CASE WHEN day_period = $2 THEN $5 ELSE 0 END), \
               month_requests = month_requests + (CASE WHEN month_period = $3 THEN $4 ELSE 0 END), \
               month_tokens = month_tokens + (CASE WHEN month_period = $3 THEN $5 ELSE 0 END) \
               WHERE key_id = $1";
    let values = vec![
        key_id.into(),
        day.into(),
        month.into(),
        requests.into(),
        tokens.into(),
    ];
    db.execute(stmt(db, sql.into(), values)).await?;
    Ok(())
}
