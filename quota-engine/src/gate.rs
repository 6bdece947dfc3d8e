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

/// Whose counters: a key's (`usage_counters`) or a team's (`team_counters`). The ledger keeps
/// both alike; a request of a key in a team is admitted against both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountId {
    Key(i64),
    Team(i64),
}

impl AccountId {
    /// The table of its counters row.
    pub(crate) fn table(self) -> &'static str {
        match self {
            AccountId::Key(_) => "usage_counters",
            AccountId::Team(_) => "team_counters",
        }
    }

    /// The column that names the row.
    pub(crate) fn id_column(self) -> &'static str {
        match self {
            AccountId::Key(_) => "key_id",
            AccountId::Team(_) => "team_id",
        }
    }

    pub fn id(self) -> i64 {
        match self {
            AccountId::Key(id) | AccountId::Team(id) => id,
        }
    }
}

impl From<i64> for AccountId {
    /// A bare id is a key's.
    fn from(key_id: i64) -> AccountId {
        AccountId::Key(key_id)
    }
}

/// The six per-key (and per-team) limits; `None` = unlimited. GPU time is counted in milliseconds (the
/// admin API shows seconds with three decimals).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub daily_tokens: Option<i64>,
    pub monthly_tokens: Option<i64>,
    pub daily_requests: Option<i64>,
    pub monthly_requests: Option<i64>,
    pub daily_gpu_ms: Option<i64>,
    pub monthly_gpu_ms: Option<i64>,
}

impl Limits {
    /// Limits are non-negative integers or null.
    pub fn validate(&self) -> Result<()> {
        for (kind, value) in self.each() {
            if value.is_some_and(|v| v < 0) {
                return Err(EngineError::Invalid(format!(
                    "{}: must be a non-negative {} or null",
                    kind.field_name(),
                    if kind.is_gpu() {
                        "number of seconds"
                    } else {
                        "integer"
                    }
                )));
            }
        }
        Ok(())
    }

    /// Each limit with its kind.
    pub fn each(&self) -> [(LimitKind, Option<i64>); 6] {
        [
            (LimitKind::DailyRequests, self.daily_requests),
            (LimitKind::MonthlyRequests, self.monthly_requests),
            (LimitKind::DailyTokens, self.daily_tokens),
            (LimitKind::MonthlyTokens, self.monthly_tokens),
            (LimitKind::DailyGpu, self.daily_gpu_ms),
            (LimitKind::MonthlyGpu, self.monthly_gpu_ms),
        ]
    }

    /// The limit of `kind`.
    pub fn of(&self, kind: LimitKind) -> Option<i64> {
        match kind {
            LimitKind::DailyRequests => self.daily_requests,
            LimitKind::MonthlyRequests => self.monthly_requests,
            LimitKind::DailyTokens => self.daily_tokens,
            LimitKind::MonthlyTokens => self.monthly_tokens,
            LimitKind::DailyGpu => self.daily_gpu_ms,
            LimitKind::MonthlyGpu => self.monthly_gpu_ms,
        }
    }
}

/// Which limit a refusal is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitKind {
    DailyRequests,
    MonthlyRequests,
    DailyTokens,
    MonthlyTokens,
    /// GPU time, in milliseconds.
    DailyGpu,
    MonthlyGpu,
}

impl LimitKind {
    pub const ALL: [LimitKind; 6] = [
        LimitKind::DailyRequests,
        LimitKind::MonthlyRequests,
        LimitKind::DailyTokens,
        LimitKind::MonthlyTokens,
        LimitKind::DailyGpu,
        LimitKind::MonthlyGpu,
    ];

    /// The key object's field name (`daily_token_limit`…).
    pub fn field_name(self) -> &'static str {
        match self {
            LimitKind::DailyRequests => "daily_request_limit",
            LimitKind::MonthlyRequests => "monthly_request_limit",
            LimitKind::DailyTokens => "daily_token_limit",
            LimitKind::MonthlyTokens => "monthly_token_limit",
            LimitKind::DailyGpu => "daily_gpu_seconds_limit",
            LimitKind::MonthlyGpu => "monthly_gpu_seconds_limit",
        }
    }

    /// A short label for metrics (`daily_tokens`…).
    pub fn label(self) -> &'static str {
        match self {
            LimitKind::DailyRequests => "daily_requests",
            LimitKind::MonthlyRequests => "monthly_requests",
            LimitKind::DailyTokens => "daily_tokens",
            LimitKind::MonthlyTokens => "monthly_tokens",
            LimitKind::DailyGpu => "daily_gpu_seconds",
            LimitKind::MonthlyGpu => "monthly_gpu_seconds",
        }
    }

    /// `daily token quota`…, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            LimitKind::DailyRequests => "daily request quota",
            LimitKind::MonthlyRequests => "monthly request quota",
            LimitKind::DailyTokens => "daily token quota",
            LimitKind::MonthlyTokens => "monthly token quota",
            LimitKind::DailyGpu => "daily GPU-time quota",
            LimitKind::MonthlyGpu => "monthly GPU-time quota",
        }
    }

    /// A request limit.
    pub fn is_requests(self) -> bool {
        matches!(self, LimitKind::DailyRequests | LimitKind::MonthlyRequests)
    }

    /// A token limit.
    pub fn is_tokens(self) -> bool {
        matches!(self, LimitKind::DailyTokens | LimitKind::MonthlyTokens)
    }

    /// A GPU-time limit (counted in milliseconds).
    pub fn is_gpu(self) -> bool {
        matches!(self, LimitKind::DailyGpu | LimitKind::MonthlyGpu)
    }

    /// A daily limit (else a monthly one).
    pub fn is_daily(self) -> bool {
        matches!(
            self,
            LimitKind::DailyRequests | LimitKind::DailyTokens | LimitKind::DailyGpu
        )
    }

    /// A value of this kind as people read it: a count, or GPU seconds (`12.345 s`).
    pub fn amount(self, value: i64) -> String {
        if self.is_gpu() {
            format!("{} s", crate::usage_report::seconds(value))
        } else {
            value.to_string()
        }
    }
}

/// GPU seconds as people write them (a limit: non-negative, at most three decimals) in the
/// milliseconds the ledger counts. `field` names the setting in the error.
pub fn gpu_ms_from_seconds(field: &str, seconds: f64) -> Result<i64> {
    let ms = seconds * 1000.0;
    // 2^53 ms is far beyond any budget and still exact in an f64.
    if !ms.is_finite() || !(0.0..=9_007_199_254_740_992.0).contains(&ms) {
        return Err(EngineError::Invalid(format!(
            "{field}: must be a non-negative number of seconds or null"
        )));
    }
    // Only the error of the decimal-to-binary conversion is forgiven, never half a millisecond.
    if (ms - ms.round()).abs() > 1e-6_f64.max(ms * 8.0 * f64::EPSILON) {
        return Err(EngineError::Invalid(format!(
            "{field}: at most three decimals (milliseconds), got {seconds}"
        )));
    }
    Ok(ms.round() as i64)
}

/// A key's usage in the current day and month (zero for a period that has not started yet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub day_requests: i64,
    pub day_tokens: i64,
    pub month_requests: i64,
    pub month_tokens: i64,
    pub day_gpu_ms: i64,
    pub month_gpu_ms: i64,
}

impl Counters {
    /// What the limit of `kind` is measured against.
    pub fn used(&self, kind: LimitKind) -> i64 {
        match kind {
            LimitKind::DailyRequests => self.day_requests,
            LimitKind::MonthlyRequests => self.month_requests,
            LimitKind::DailyTokens => self.day_tokens,
            LimitKind::MonthlyTokens => self.month_tokens,
            LimitKind::DailyGpu => self.day_gpu_ms,
            LimitKind::MonthlyGpu => self.month_gpu_ms,
        }
    }
}

/// Whose quotas a request is admitted against: its key's, and its team's when the key belongs
/// to one. Both are checked in one step; the tighter room bounds the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payer {
    pub key_id: i64,
    pub limits: Limits,
    /// The key's team as the key was read (shared with the key, not copied per request);
    /// named in refusals (`team "data" daily token quota exceeded …`).
    pub team: Option<std::sync::Arc<crate::Team>>,
}

impl Payer {
    /// A key on its own.
    pub fn key(key_id: i64, limits: Limits) -> Payer {
        Payer {
            key_id,
            limits,
            team: None,
        }
    }

    /// A key with its team, as it was read.
    pub fn of(key: &crate::ApiKey) -> Payer {
        Payer {
            key_id: key.id,
            limits: key.limits,
            team: key.team.clone(),
        }
    }

    /// The team's limits, when the key has a team.
    pub fn team_limits(&self) -> Option<&Limits> {
        self.team.as_ref().map(|t| &t.limits)
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
    /// GPU milliseconds counted for the request so far: under a GPU-time limit, the block
    /// reserved at admission and the blocks added while the answer runs.
    pub reserved_gpu_ms: i64,
    /// Under a GPU-time limit: the most GPU time the request may take, the room left at
    /// admission. The proxy ends an answer that reaches it. `None` without such a limit.
    pub gpu_cap_ms: Option<i64>,
    /// The counters right after this request was counted.
    pub counters: Counters,
    /// The ledger's lease generation at admission: room goes back to the lease only while it
    /// is the same lease (same periods and limits).
    pub lease_generation: u64,
    /// The key's team's part, when the key belongs to one: the request counts against both,
    /// with the same reservations.
    pub team: Option<TeamShare>,
}

/// A team's side of an admission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamShare {
    pub team_id: i64,
    /// The team's counters right after this request was counted.
    pub counters: Counters,
    /// The team account's lease generation at admission.
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
    /// GPU milliseconds (limit, remaining).
    pub gpu_ms: Option<(i64, i64)>,
    pub requests_reset_at: Option<DateTime<Utc>>,
    pub tokens_reset_at: Option<DateTime<Utc>>,
}

impl Admission {
    /// The tightest limit of each kind, of the key's and (with `team`) its team's.
    pub fn headroom(
        &self,
        limits: &Limits,
        team: Option<&Limits>,
        periods: &PeriodKeys,
    ) -> Headroom {
        let sides: Vec<(&Limits, &Counters)> = std::iter::once((limits, &self.counters))
            .chain(team.zip(self.team.as_ref().map(|t| &t.counters)))
            .collect();
        let tightest = |kinds: [(LimitKind, Option<i64>); 2]| {
            sides
                .iter()
                .flat_map(|(limits, counters)| {
                    kinds.into_iter().filter_map(move |(kind, _)| {
                        limits
                            .of(kind)
                            .map(|l| (kind, l, (l - counters.used(kind)).max(0)))
                    })
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
        let gpu = tightest([
            (LimitKind::DailyGpu, limits.daily_gpu_ms),
            (LimitKind::MonthlyGpu, limits.monthly_gpu_ms),
        ]);
        Headroom {
            requests: requests.map(|(_, l, r)| (l, r)),
            tokens: tokens.map(|(_, l, r)| (l, r)),
            gpu_ms: gpu.map(|(_, l, r)| (l, r)),
            requests_reset_at: requests.map(|(kind, _, _)| reset(kind)),
            tokens_reset_at: tokens.map(|(kind, _, _)| reset(kind)),
        }
    }
}

impl Admission {
    /// The GPU-time limit that an answer of this admission ran into when its GPU time ran out:
    /// of the limits set (the key's and its team's), the one with the least room at admission
    /// (its room was the answer's cap), now used up. `None` without a GPU-time limit.
    pub fn gpu_limit_reached(&self, payer: &Payer, periods: &PeriodKeys) -> Option<QuotaExceeded> {
        let key_side = (None, &payer.limits, &self.counters);
        let team_side = payer
            .team
            .as_ref()
            .zip(self.team.as_ref())
            .map(|(team, share)| (Some(team.name.clone()), &team.limits, &share.counters));
        std::iter::once(key_side)
            .chain(team_side)
            .flat_map(|(team, limits, counters)| {
                [LimitKind::DailyGpu, LimitKind::MonthlyGpu]
                    .into_iter()
                    .filter_map(move |kind| {
                        limits
                            .of(kind)
                            .map(|l| (team.clone(), kind, l, l - counters.used(kind)))
                    })
            })
            .min_by_key(|(_, _, _, room)| *room)
            .map(|(team, kind, limit, _)| QuotaExceeded {
                team,
                kind,
                limit,
                used: limit,
                needed: 1,
                resets_at: if kind.is_daily() {
                    periods.day_resets_at
                } else {
                    periods.month_resets_at
                },
            })
    }
}

/// Why a request was refused, with what a person needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    /// The team whose limit it is (its name); `None` for the key's own.
    pub team: Option<String>,
    pub kind: LimitKind,
    pub limit: i64,
    pub used: i64,
    /// Token limits: what the request needed (its prompt, and for an answer the least output
    /// worth generating). Said in the message when the limit is not used up yet.
    pub needed: i64,
    pub resets_at: DateTime<Tz>,
}

impl QuotaExceeded {
    /// The metrics label: the kind's (`daily_tokens`…), `team_`-prefixed for a team's limit.
    pub fn label(&self) -> String {
        match self.team {
            Some(_) => format!("team_{}", self.kind.label()),
            None => self.kind.label().to_owned(),
        }
    }

    /// Whole seconds until the exceeded period resets (at least 1), for `Retry-After`.
    pub fn retry_after_secs(&self, now: DateTime<Utc>) -> u64 {
        let secs = (self.resets_at.with_timezone(&Utc) - now).num_seconds();
        secs.max(1) as u64
    }
}

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(team) = &self.team {
            write!(f, "team {team:?} ")?;
        }
        write!(
            f,
            "{} exceeded (limit {}, used {}",
            self.kind.noun(),
            self.kind.amount(self.limit),
            self.kind.amount(self.used)
        )?;
        if self.kind.is_tokens() && self.used < self.limit {
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
        day_gpu_ms: row.try_get("", "day_gpu_ms")?,
        month_gpu_ms: row.try_get("", "month_gpu_ms")?,
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
            // A request needs some GPU time: none left refuses.
            LimitKind::DailyGpu | LimitKind::MonthlyGpu => used >= limit,
        };
        full.then(|| QuotaExceeded {
            team: None,
            kind,
            limit,
            used,
            needed: if kind.is_tokens() { tokens } else { 1 },
            resets_at: if kind.is_daily() {
                periods.day_resets_at
            } else {
                periods.month_resets_at
            },
        })
    })
}

/// Creates the account's counters row when it has none; [`EngineError::KeyNotFound`] (or
/// [`EngineError::TeamNotFound`]) when the key or team itself is gone.
pub(crate) async fn ensure_counters_row(
    db: &impl ConnectionTrait,
    account: impl Into<AccountId>,
) -> Result<()> {
    let account = account.into();
    let owner = match account {
        AccountId::Key(_) => "api_keys",
        AccountId::Team(_) => "teams",
    };
    let exists = db
        .query_one(stmt(
            db,
            format!("SELECT id FROM {owner} WHERE id = $1"),
            vec![account.id().into()],
        ))
        .await?
        .is_some();
    if !exists {
        return Err(match account {
            AccountId::Key(id) => EngineError::KeyNotFound(id),
            AccountId::Team(id) => EngineError::TeamNotFound(id),
        });
    }
    let sql = format!(
        "INSERT INTO {table} ({id}, day_period, day_requests, day_tokens, month_period, \
         month_requests, month_tokens) VALUES ($1, '', 0, 0, '', 0, 0) \
         ON CONFLICT ({id}) DO NOTHING",
        table = account.table(),
        id = account.id_column()
    );
    db.execute(stmt(db, sql, vec![account.id().into()])).await?;
    Ok(())
}

/// Removes the account's counters row (its key or team is being deleted).
pub(crate) async fn delete_counters_row(
    db: &impl ConnectionTrait,
    account: AccountId,
) -> Result<()> {
    let sql = format!(
        "DELETE FROM {} WHERE {} = $1",
        account.table(),
        account.id_column()
    );
    db.execute(stmt(db, sql, vec![account.id().into()])).await?;
    Ok(())
}

/// The usage columns of a counters row in the periods of `day` / `month` (parameters), named
/// as [`Counters`]' fields.
fn usage_columns(day: &str, month: &str) -> String {
    format!(
        "{} AS day_requests, {} AS day_tokens, {} AS day_gpu_ms, \
         {} AS month_requests, {} AS month_tokens, {} AS month_gpu_ms",
        current("day_period", day, "day_requests"),
        current("day_period", day, "day_tokens"),
        current("day_period", day, "day_gpu_ms"),
        current("month_period", month, "month_requests"),
        current("month_period", month, "month_tokens"),
        current("month_period", month, "month_gpu_ms"),
    )
}

/// A key's (or team's) counters in the periods of `periods` (`None` when it has no counters
/// row).
pub async fn current_counters(
    db: &impl ConnectionTrait,
    account: impl Into<AccountId>,
    periods: &PeriodKeys,
) -> Result<Option<Counters>> {
    let account = account.into();
    let sql = format!(
        "SELECT {} FROM {} WHERE {} = $1",
        usage_columns("$2", "$3"),
        account.table(),
        account.id_column()
    );
    db.query_one(stmt(db, sql, key_period_values(account.id(), periods)))
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
    every_counters(db, AccountId::Key(0), periods).await
}

/// Every team's counters in the periods of `periods`, by team id.
pub async fn all_team_counters(
    db: &impl ConnectionTrait,
    periods: &PeriodKeys,
) -> Result<std::collections::HashMap<i64, Counters>> {
    every_counters(db, AccountId::Team(0), periods).await
}

/// The counters of every account of `like`'s kind (keys or teams).
async fn every_counters(
    db: &impl ConnectionTrait,
    like: AccountId,
    periods: &PeriodKeys,
) -> Result<std::collections::HashMap<i64, Counters>> {
    let id = like.id_column();
    let sql = format!(
        "SELECT {id}, {} FROM {}",
        usage_columns("$1", "$2"),
        like.table()
    );
    let values = vec![periods.day.as_str().into(), periods.month.as_str().into()];
    let rows = db.query_all(stmt(db, sql, values)).await?;
    rows.iter()
        .map(|row| Ok((row.try_get::<i64>("", id)?, counters_from(row)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::gpu_ms_from_seconds;

    /// Seconds with up to three decimals become exact milliseconds; a fraction of a
    /// millisecond, a negative or a non-finite number is refused, at any size.
    #[test]
    fn gpu_seconds_to_milliseconds() {
        for (seconds, ms) in [
            (0.0, 0),
            (0.001, 1),
            (1.234, 1_234),
            (3600.125, 3_600_125),
            (86_400.999, 86_400_999),
            (1e9, 1_000_000_000_000),
        ] {
            assert_eq!(
                gpu_ms_from_seconds("x", seconds).ok(),
                Some(ms),
                "{seconds}"
            );
        }
        for seconds in [
            -1.0,
            0.0001,
            1.2345,
            3600.0005,
            86_400.999_5,
            f64::NAN,
            f64::INFINITY,
        ] {
            assert!(gpu_ms_from_seconds("x", seconds).is_err(), "{seconds}");
        }
    }
}
