//! Per-minute limits across instances that share a database: `pacing_grants`.
//!
//! An instance takes room for a key in a **grant**: one READ COMMITTED transaction that takes
//! the key's advisory lock (PostgreSQL `pg_advisory_xact_lock`: concurrent grants of one key
//! take turns, each reading after the last one committed; SQLite has one writer), sums
//! the key's grants of the last `60 s + GRANT_LIFETIME` and inserts a new one only if the sum
//! stays within the limits. The grant's room may be used for `GRANT_LIFETIME` from when the
//! statement was sent, timed by the database's clock at insertion, so every use falls within
//! `GRANT_LIFETIME` of its grant's timestamp. Any 60-second window of uses therefore only
//! draws on grants whose timestamps lie within `60 s + GRANT_LIFETIME` of each other, and the
//! last of them was checked against all the others: together they never pass the limit. The
//! instances' clocks do not matter, only the database's (`clock_timestamp()`, the wall
//! clock: a step of the database server's clock shifts the window by as much).
//!
//! A grant whose statement took longer than its lifetime is not used. After its lifetime a
//! grant's row is set to what it used (an absolute value: written twice, no harm), so unused
//! room goes back; completion tokens are added as rows of their own when requests finish.
//! Rows older than any window are deleted.

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, IsolationLevel, TransactionTrait, Value,
};

use super::{PaceKind, PaceRefusal, Pacing};
use crate::gate::stmt;
use crate::Result;

/// Mixed into a key's id for its advisory lock, so that it cannot collide with another
/// application's advisory locks on the same database by accident ("llmquota" in ASCII).
const ADVISORY_NAMESPACE: i64 = 0x6c6c_6d71_756f_7461;

/// How long an instance may use a grant's room.
pub(crate) const GRANT_LIFETIME: Duration = Duration::from_secs(2);
/// What the grant check sums: the window plus a grant's lifetime, in ms.
const CHECKED_MS: i64 = 60_000 + GRANT_LIFETIME.as_millis() as i64;
/// Rows older than this are no use to any check.
const KEPT_MS: i64 = 2 * CHECKED_MS;

/// The database's clock in milliseconds since the Unix epoch.
fn now_ms_sql(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        _ => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
    }
}

/// A grant the database gave.
pub(crate) struct Granted {
    pub(crate) id: i64,
    pub(crate) requests: i64,
    pub(crate) tokens: i64,
}

/// Takes up to `want_requests` / `want_tokens` (at least one request and `min_tokens`) of the
/// key's per-minute room, or says which limit has none and when it will.
pub(crate) async fn grant(
    db: &DatabaseConnection,
    key_id: i64,
    pacing: &Pacing,
    want_requests: i64,
    want_tokens: i64,
    min_tokens: i64,
) -> Result<std::result::Result<Granted, PaceRefusal>> {
    let backend = db.get_database_backend();
    let txn = db
        .begin_with_config(Some(IsolationLevel::ReadCommitted), None)
        .await?;
    if backend == DatabaseBackend::Postgres {
        // Held to the end of the transaction; the statements after it see every grant of the
        // key committed before (READ COMMITTED takes a snapshot per statement).
        txn.execute(stmt(
            &txn,
            "SELECT pg_advisory_xact_lock($1)".into(),
            vec![(ADVISORY_NAMESPACE ^ key_id).into()],
        ))
        .await?;
    }
    let now_row = txn
        .query_one(stmt(
            &txn,
            format!("SELECT {} AS now_ms", now_ms_sql(backend)),
            vec![],
        ))
        .await?;
    let now_ms: i64 = match now_row {
        Some(row) => row.try_get("", "now_ms")?,
        None => 0,
    };
    let rows = txn
        .query_all(stmt(
            &txn,
            "SELECT granted_at_ms, requests, tokens FROM pacing_grants \
             WHERE key_id = $1 AND granted_at_ms > $2 ORDER BY granted_at_ms"
                .into(),
            vec![key_id.into(), (now_ms - CHECKED_MS).into()],
        ))
        .await?;
    let mut uses = Vec::with_capacity(rows.len());
    for row in rows {
        uses.push((
            row.try_get::<i64>("", "granted_at_ms")?,
            row.try_get::<i64>("", "requests")?,
            row.try_get::<i64>("", "tokens")?,
        ));
    }
    let used_requests: i64 = uses.iter().map(|u| u.1).sum();
    let used_tokens: i64 = uses.iter().map(|u| u.2).sum();
    // Until uses adding up to `excess` leave the checked span.
    let wait = |excess: i64, amount: fn(&(i64, i64, i64)) -> i64| {
        let mut freed = 0;
        for u in &uses {
            freed += amount(u);
            if freed >= excess {
                let ms = (u.0 + CHECKED_MS - now_ms).max(0);
                return Duration::from_millis(u64::try_from(ms).unwrap_or(0));
            }
        }
        Duration::from_millis(u64::try_from(CHECKED_MS).unwrap_or(0))
    };
    let mut requests = want_requests.max(1);
    if let Some(limit) = pacing.requests_per_minute {
        let room = limit - used_requests;
        if room < 1 {
            return Ok(Err(PaceRefusal {
                kind: PaceKind::RequestsPerMinute,
                limit,
                used: used_requests,
                needed: 1,
                retry_after: Some(wait(1 - room, |u| u.1)),
            }));
        }
        requests = requests.min(room);
    }
    let mut tokens = want_tokens.max(min_tokens);
    if let Some(limit) = pacing.tokens_per_minute {
        let room = limit - used_tokens;
        let excess = (min_tokens - room).max(1 - room);
        if excess > 0 {
            return Ok(Err(PaceRefusal {
                kind: PaceKind::TokensPerMinute,
                limit,
                used: used_tokens,
                needed: min_tokens,
                retry_after: (min_tokens <= limit && limit > 0).then(|| wait(excess, |u| u.2)),
            }));
        }
        tokens = tokens.min(room);
    }
    let inserted = txn
        .query_one(stmt(
            &txn,
            "INSERT INTO pacing_grants (key_id, granted_at_ms, requests, tokens) \
             VALUES ($1, $2, $3, $4) RETURNING id"
                .into(),
            vec![key_id.into(), now_ms.into(), requests.into(), tokens.into()],
        ))
        .await?;
    let id = match inserted {
        Some(row) => row.try_get::<i64>("", "id")?,
        None => {
            return Err(crate::EngineError::Invalid(
                "the per-minute grant was not recorded".into(),
            ))
        }
    };
    txn.commit().await?;
    Ok(Ok(Granted {
        id,
        requests,
        tokens,
    }))
}

/// What waits to be written: completion tokens per key, and what expired grants used.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    used: HashMap<i64, i64>,
    /// grant id → (requests, tokens) it used.
    grants: HashMap<i64, (i64, i64)>,
    cleanup: bool,
}

impl Outbox {
    pub(crate) fn used(&mut self, key_id: i64, tokens: i64) {
        *self.used.entry(key_id).or_default() += tokens;
    }

    pub(crate) fn used_of_grant(&mut self, grant: i64, requests: i64, tokens: i64) {
        self.grants.insert(grant, (requests, tokens));
    }

    pub(crate) fn want_cleanup(&mut self) {
        self.cleanup = true;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.used.is_empty() && self.grants.is_empty() && !self.cleanup
    }

    /// Puts back a batch that could not be written.
    pub(crate) fn merge(&mut self, batch: Outbox) {
        for (key_id, tokens) in batch.used {
            self.used(key_id, tokens);
        }
        for (grant, used) in batch.grants {
            self.grants.entry(grant).or_insert(used);
        }
        self.cleanup |= batch.cleanup;
    }
}

/// Writes a batch in one transaction.
pub(crate) async fn write(db: &DatabaseConnection, batch: &Outbox) -> Result<()> {
    let backend = db.get_database_backend();
    let txn = db.begin().await?;
    let mut used: Vec<(&i64, &i64)> = batch.used.iter().collect();
    used.sort();
    for (key_id, tokens) in used {
        txn.execute(stmt(
            &txn,
            format!(
                "INSERT INTO pacing_grants (key_id, granted_at_ms, requests, tokens) \
                 VALUES ($1, {}, 0, $2)",
                now_ms_sql(backend)
            ),
            vec![Value::from(*key_id), Value::from(*tokens)],
        ))
        .await?;
    }
    let mut grants: Vec<(&i64, &(i64, i64))> = batch.grants.iter().collect();
    grants.sort();
    for (grant, (requests, tokens)) in grants {
        // Only ever lowers a grant (to what it used).
        let least = match backend {
            DatabaseBackend::Postgres => "LEAST",
            _ => "MIN",
        };
        txn.execute(stmt(
            &txn,
            format!(
                "UPDATE pacing_grants SET requests = {least}(requests, $2), \
                 tokens = {least}(tokens, $3) WHERE id = $1"
            ),
            vec![(*grant).into(), (*requests).into(), (*tokens).into()],
        ))
        .await?;
    }
    if batch.cleanup {
        txn.execute(stmt(
            &txn,
            format!(
                "DELETE FROM pacing_grants WHERE granted_at_ms < {} - $1",
                now_ms_sql(backend)
            ),
            vec![KEPT_MS.into()],
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(())
}
