//! The ledger's statements on the counters row of an account: a key's in `usage_counters`, a
//! team's in `team_counters` (the same columns). Each is one statement, atomic
//! on SQLite and PostgreSQL alike: a grant is a conditional `UPDATE … RETURNING` (PostgreSQL
//! re-checks its `WHERE` against the latest row version under the row lock; SQLite has one
//! writer), and a flush only adds.

use sea_orm::{ConnectionTrait, QueryResult, Value};

use super::account::{Amount, Delta};
use crate::gate::{current, key_period_values, stmt, AccountId, Counters, Limits};
use crate::periods::PeriodKeys;
use crate::Result;

/// The row's used + leased per limit in the periods of `$2` / `$3`.
fn totals_sql() -> String {
    let mut columns = Vec::new();
    for (period, param) in [("day", "$2"), ("month", "$3")] {
        for kind in KINDS {
            columns.push(format!(
                "{} + {} AS {period}_{kind}",
                current(
                    &format!("{period}_period"),
                    param,
                    &format!("{period}_{kind}")
                ),
                current(
                    &format!("{period}_period"),
                    param,
                    &format!("{period}_leased_{kind}")
                ),
            ));
        }
    }
    columns.join(", ")
}

/// The kinds of counters a row keeps (column suffixes).
const KINDS: [&str; 3] = ["requests", "tokens", "gpu_ms"];

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

/// Moves `grant` from the key's row into this instance's lease if, for every limit that is
/// set (of a kind the grant asks for), used + leased + grant stays within it; rolls the row
/// forward to the current periods (never back: a row already in later periods is left alone).
/// Returns the row's used + leased after the grant, or `None` when it does not fit (or the key
/// has no row, or the row is ahead).
pub async fn grant(
    db: &impl ConnectionTrait,
    account: AccountId,
    limits: &Limits,
    periods: &PeriodKeys,
    grant: Amount,
) -> Result<Option<Counters>> {
    let roll = |col: &str, period_col: &str, param: &str| {
        format!("{col} = {}", current(period_col, param, col))
    };
    let lease = |col: &str, period_col: &str, param: &str, amount: &str| {
        format!("{col} = {} + {amount}", current(period_col, param, col))
    };
    // $4, $5, $6: the grant's requests, tokens, GPU milliseconds.
    let mut sets = Vec::new();
    for (period, param) in [("day", "$2"), ("month", "$3")] {
        let period_col = format!("{period}_period");
        for (kind, amount) in KINDS.iter().zip(["$4", "$5", "$6"]) {
            sets.push(roll(&format!("{period}_{kind}"), &period_col, param));
            sets.push(lease(
                &format!("{period}_leased_{kind}"),
                &period_col,
                param,
                amount,
            ));
        }
    }
    let mut sql = format!(
        "UPDATE {} SET {}, day_period = $2, month_period = $3 \
         WHERE {} = $1 AND day_period <= $2 AND month_period <= $3",
        account.table(),
        sets.join(", "),
        account.id_column()
    );
    let mut values = key_period_values(account.id(), periods);
    values.extend([
        Value::from(grant.requests),
        Value::from(grant.tokens),
        Value::from(grant.gpu_ms),
    ]);
    // A kind of which nothing is asked for is not checked: the request's lease covers it
    // (and a total already over the limit, after an answer overran it, must not block the
    // other kind).
    let checks = [
        (
            limits.daily_requests,
            grant.requests,
            "day",
            "requests",
            "$2",
            "$4",
        ),
        (
            limits.monthly_requests,
            grant.requests,
            "month",
            "requests",
            "$3",
            "$4",
        ),
        (
            limits.daily_tokens,
            grant.tokens,
            "day",
            "tokens",
            "$2",
            "$5",
        ),
        (
            limits.monthly_tokens,
            grant.tokens,
            "month",
            "tokens",
            "$3",
            "$5",
        ),
        (
            limits.daily_gpu_ms,
            grant.gpu_ms,
            "day",
            "gpu_ms",
            "$2",
            "$6",
        ),
        (
            limits.monthly_gpu_ms,
            grant.gpu_ms,
            "month",
            "gpu_ms",
            "$3",
            "$6",
        ),
    ];
    for (limit, asked, period, kind, period_param, amount) in checks {
        let Some(limit) = limit.filter(|_| asked > 0) else {
            continue;
        };
        values.push(limit.into());
        let period_col = format!("{period}_period");
        sql.push_str(&format!(
            " AND {} + {} + {amount} <= ${}",
            current(&period_col, period_param, &format!("{period}_{kind}")),
            current(
                &period_col,
                period_param,
                &format!("{period}_leased_{kind}")
            ),
            values.len()
        ));
    }
    // RETURNING sees the new row, whose periods are now $2 / $3.
    sql.push_str(&format!(" RETURNING {}", totals_sql()));
    let row = db.query_one(stmt(db, sql, values)).await?;
    row.as_ref().map(counters_from).transpose()
}

/// What the ledger reads of a row when a grant did not fit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowState {
    /// used + leased per limit in the current periods.
    pub totals: Counters,
    /// leased (of every instance) in the current month; leases cover day and month alike.
    pub leased: Amount,
    pub demand: i64,
    /// The row is already in a later day or month than the request's periods.
    pub ahead: bool,
}

pub async fn read(
    db: &impl ConnectionTrait,
    account: AccountId,
    periods: &PeriodKeys,
) -> Result<Option<RowState>> {
    let sql = format!(
        "SELECT {}, {} AS leased_requests, {} AS leased_tokens, {} AS leased_gpu_ms, lease_demand, \
         (CASE WHEN day_period > $2 OR month_period > $3 THEN 1 ELSE 0 END) AS ahead \
         FROM {} WHERE {} = $1",
        totals_sql(),
        current("month_period", "$3", "month_leased_requests"),
        current("month_period", "$3", "month_leased_tokens"),
        current("month_period", "$3", "month_leased_gpu_ms"),
        account.table(),
        account.id_column(),
    );
    let Some(row) = db
        .query_one(stmt(db, sql, key_period_values(account.id(), periods)))
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(RowState {
        totals: counters_from(&row)?,
        leased: Amount {
            requests: row.try_get("", "leased_requests")?,
            tokens: row.try_get("", "leased_tokens")?,
            gpu_ms: row.try_get("", "leased_gpu_ms")?,
        },
        demand: row.try_get("", "lease_demand")?,
        ahead: row.try_get::<i32>("", "ahead")? != 0,
    }))
}

/// Adds a flushed delta to the row's columns of the periods `day` / `month`: a column still in
/// an earlier period starts the new one from zero; one already in a later period is left alone
/// (a request that straddled midnight is charged to the day it started).
pub async fn apply(
    db: &impl ConnectionTrait,
    account: AccountId,
    day: &str,
    month: &str,
    delta: &Delta,
) -> Result<()> {
    if delta.is_zero() {
        return Ok(());
    }
    let add = |col: &str, period_col: &str, period_param: &str, amount: &str| {
        format!(
            "{col} = (CASE WHEN {period_col} = {period_param} THEN {col} + {amount} \
             WHEN {period_col} < {period_param} THEN {amount} ELSE {col} END)"
        )
    };
    // $4..$6: used requests, tokens, GPU ms; $7..$9: the leased ones.
    let mut sets = Vec::new();
    for (period, param) in [("day", "$2"), ("month", "$3")] {
        let period_col = format!("{period}_period");
        for (i, kind) in KINDS.iter().enumerate() {
            let (used, leased) = (format!("${}", 4 + i), format!("${}", 7 + i));
            sets.push(add(&format!("{period}_{kind}"), &period_col, param, &used));
            sets.push(add(
                &format!("{period}_leased_{kind}"),
                &period_col,
                param,
                &leased,
            ));
        }
    }
    let sql = format!(
        "UPDATE {} SET {}, \
         day_period = (CASE WHEN day_period < $2 THEN $2 ELSE day_period END), \
         month_period = (CASE WHEN month_period < $3 THEN $3 ELSE month_period END) \
         WHERE {} = $1",
        account.table(),
        sets.join(", "),
        account.id_column()
    );
    let values = vec![
        account.id().into(),
        day.into(),
        month.into(),
        delta.used_requests.into(),
        delta.used_tokens.into(),
        delta.used_gpu_ms.into(),
        delta.leased_requests.into(),
        delta.leased_tokens.into(),
        delta.leased_gpu_ms.into(),
    ];
    db.execute(stmt(db, sql, values)).await?;
    Ok(())
}

/// Asks the instances holding leases of this account to give them back.
pub async fn ask_for_leases(db: &impl ConnectionTrait, account: AccountId) -> Result<()> {
    let sql = format!(
        "UPDATE {} SET lease_demand = lease_demand + 1 WHERE {} = $1",
        account.table(),
        account.id_column()
    );
    db.execute(stmt(db, sql, vec![account.id().into()])).await?;
    Ok(())
}

/// `lease_demand` of each of these accounts.
pub async fn demands(
    db: &impl ConnectionTrait,
    accounts: &[AccountId],
) -> Result<Vec<(AccountId, i64)>> {
    let mut all = Vec::with_capacity(accounts.len());
    for (like, make) in [
        (AccountId::Key(0), AccountId::Key as fn(i64) -> AccountId),
        (AccountId::Team(0), AccountId::Team),
    ] {
        let ids: Vec<i64> = accounts
            .iter()
            .filter(|a| std::mem::discriminant(*a) == std::mem::discriminant(&like))
            .map(|a| a.id())
            .collect();
        // Well under the databases' limits on bound parameters.
        for chunk in ids.chunks(1_000) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT {id} AS id, lease_demand FROM {} WHERE {id} IN ({})",
                like.table(),
                placeholders.join(", "),
                id = like.id_column(),
            );
            let values = chunk.iter().map(|&id| Value::from(id)).collect();
            for row in db.query_all(stmt(db, sql, values)).await? {
                all.push((
                    make(row.try_get("", "id")?),
                    row.try_get("", "lease_demand")?,
                ));
            }
        }
    }
    Ok(all)
}

/// Records `seq` as the instance's last committed flush (inside the flush's transaction).
pub async fn record_flush(db: &impl ConnectionTrait, instance: i64, seq: i64) -> Result<()> {
    let sql = "INSERT INTO ledger_instances (instance, seq) VALUES ($1, $2) \
               ON CONFLICT (instance) DO UPDATE SET seq = excluded.seq";
    db.execute(stmt(db, sql.into(), vec![instance.into(), seq.into()]))
        .await?;
    Ok(())
}

/// The instance's last committed flush, if any.
pub async fn last_flush(db: &impl ConnectionTrait, instance: i64) -> Result<Option<i64>> {
    let sql = "SELECT seq FROM ledger_instances WHERE instance = $1";
    let row = db
        .query_one(stmt(db, sql.into(), vec![instance.into()]))
        .await?;
    row.map(|r| r.try_get::<i64>("", "seq"))
        .transpose()
        .map_err(Into::into)
}

/// Forgets the instance (it stopped cleanly).
pub async fn forget_instance(db: &impl ConnectionTrait, instance: i64) -> Result<()> {
    let sql = "DELETE FROM ledger_instances WHERE instance = $1";
    db.execute(stmt(db, sql.into(), vec![instance.into()]))
        .await?;
    Ok(())
}
