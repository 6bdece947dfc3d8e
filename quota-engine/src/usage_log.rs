//! The per-request usage log: written in batches off the request path, read per day by the
//! admin charts.
//!
//! The proxy hands each finished request to a [`UsageSink`] (a bounded channel, never
//! blocking); a [`UsageQueue`] task writes what arrived every second, or sooner when a batch
//! fills, and once more when it is told to stop. Quota enforcement does not depend on this
//! log: the counters are committed directly (see [`crate::gate`]).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
};
use tokio::sync::mpsc;

use crate::entity::usage_log;
use crate::Result;

/// One finished request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRecord {
    pub key_id: i64,
    pub at: DateTime<Utc>,
    /// Local day label in `APP_TZ` (`2026-11-29`).
    pub day: String,
    pub route: String,
    pub model: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub status: u16,
    pub duration_ms: i64,
}

/// Rows per INSERT: well under SQLite's and PostgreSQL's parameter limits (10 columns each).
const INSERT_CHUNK: usize = 250;

/// Writes records in multi-row INSERTs.
pub async fn insert_batch(db: &impl ConnectionTrait, records: &[UsageRecord]) -> Result<()> {
    for chunk in records.chunks(INSERT_CHUNK) {
        let rows = chunk.iter().map(|r| usage_log::ActiveModel {
            key_id: Set(r.key_id),
            created_at: Set(r.at),
            day: Set(r.day.clone()),
            route: Set(r.route.clone()),
            model: Set(r.model.clone()),
            prompt_tokens: Set(r.prompt_tokens),
            completion_tokens: Set(r.completion_tokens),
            status: Set(i32::from(r.status)),
            duration_ms: Set(r.duration_ms),
            ..Default::default()
        });
        usage_log::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// One day of a key's usage.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DailyUsage {
    pub date: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// The `days` days ending with `last_day` (inclusive), oldest first, zeros where nothing ran.
pub async fn daily_series(
    db: &impl ConnectionTrait,
    key_id: i64,
    last_day: NaiveDate,
    days: u32,
) -> Result<Vec<DailyUsage>> {
    let days = days.max(1);
    let first_day = last_day - chrono::Days::new(u64::from(days - 1));
    let label = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let mut series: BTreeMap<String, DailyUsage> = first_day
        .iter_days()
        .take(days as usize)
        .map(|d| {
            let date = label(d);
            (
                date.clone(),
                DailyUsage {
                    date,
                    requests: 0,
                    prompt_tokens: 0,
                    completion_tokens: 0,
                },
            )
        })
        .collect();
    let rows = usage_log::Entity::find()
        .filter(usage_log::Column::KeyId.eq(key_id))
        .filter(usage_log::Column::Day.gte(label(first_day)))
        .filter(usage_log::Column::Day.lte(label(last_day)))
        .all(db)
        .await?;
    for row in rows {
        if let Some(day) = series.get_mut(&row.day) {
            day.requests += 1;
            day.prompt_tokens += row.prompt_tokens;
            day.completion_tokens += row.completion_tokens;
        }
    }
    Ok(series.into_values().collect())
}

/// The sending half: cheap to clone, never blocks.
#[derive(Clone, Debug)]
pub struct UsageSink {
    tx: mpsc::Sender<UsageRecord>,
}

impl UsageSink {
    /// Queues a record; false when the queue is full (the database is far behind).
    pub fn record(&self, record: UsageRecord) -> bool {
        self.tx.try_send(record).is_ok()
    }
}

/// The receiving half, run by one background task.
pub struct UsageQueue {
    rx: mpsc::Receiver<UsageRecord>,
}

/// A bounded queue of `capacity` records.
pub fn queue(capacity: usize) -> (UsageSink, UsageQueue) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (UsageSink { tx }, UsageQueue { rx })
}

/// How often queued records are written.
/// Small, frequent batches: on SQLite a write holds the one connection the gate also needs,
/// so a large insert would stall admissions (the p99 of the benchmark showed it).
const FLUSH_EVERY: Duration = Duration::from_millis(100);
const BATCH: usize = 250;

impl UsageQueue {
    /// Writes records until every sink is dropped or `stop` completes, then writes what is
    /// left and returns. A write that fails is retried with the next flush (records are
    /// kept, up to 100 batches).
    pub async fn run(
        mut self,
        db: DatabaseConnection,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut pending: Vec<UsageRecord> = Vec::with_capacity(BATCH);
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                received = self.rx.recv() => match received {
                    Some(record) => {
                        pending.push(record);
                        if pending.len() >= BATCH {
                            flush(&db, &mut pending).await;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => flush(&db, &mut pending).await,
                _ = &mut stop => {
                    while let Ok(record) = self.rx.try_recv() {
                        pending.push(record);
                    }
                    break;
                }
            }
        }
        // At shutdown, pooled connections opened on the proxy's runtimes fail once those are
        // gone; the pool replaces them, so the last records get a few tries.
        for _ in 0..20 {
            flush(&db, &mut pending).await;
            if pending.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes whatever is queued right now (used at shutdown and by tests).
    pub async fn drain(&mut self, db: &DatabaseConnection) {
        let mut pending = Vec::new();
        while let Ok(record) = self.rx.try_recv() {
            pending.push(record);
        }
        flush(db, &mut pending).await;
    }
}

async fn flush(db: &DatabaseConnection, pending: &mut Vec<UsageRecord>) {
    if pending.is_empty() {
        return;
    }
    match insert_batch(db, pending).await {
        Ok(()) => pending.clear(),
        Err(e) => {
            tracing::warn!(error = %e, records = pending.len(), "usage log write failed; will retry");
            if pending.len() > BATCH * 100 {
                let dropped = pending.len() - BATCH * 100;
                pending.drain(..dropped);
                tracing::error!(
                    dropped,
                    "usage log backlog too large; oldest records dropped"
                );
            }
        }
    }
}
