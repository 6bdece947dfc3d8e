//! Usage per key, day and model for the admin charts and reports: finished requests are
//! summed in memory off the request path and added to `usage_daily` in batches.
//!
//! The proxy hands each finished request to a [`UsageSink`] (a bounded buffer, never
//! blocking, no wake-up per request); a [`UsageQueue`] task sums what arrived by (key, day,
//! model) and adds it to the table every 100 ms (one upsert per group, not one row per request), and once more when it is
//! told to stop. Quota enforcement does not depend on this: the ledger keeps the counters (see
//! [`crate::ledger`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use chrono::NaiveDate;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Statement, Value,
};

use crate::entity::usage_daily;
use crate::Result;

/// One finished request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRecord {
    pub key_id: i64,
    /// The key's team when the request was admitted (`None` = none).
    pub team_id: Option<i64>,
    /// Local day label in `APP_TZ` (`2026-11-29`) of the request's admission.
    pub day: String,
    pub model: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub gpu: GpuTime,
}

/// GPU time in milliseconds: the host time of requests × their host's `gpu_weight`
/// (`gpu_ms`), and what Ollama reported of it where it did (`load_ms`, `prompt_eval_ms`,
/// `eval_ms`; 0 where it did not).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GpuTime {
    pub gpu_ms: i64,
    pub load_ms: i64,
    pub prompt_eval_ms: i64,
    pub eval_ms: i64,
}

impl GpuTime {
    pub fn add(&mut self, other: &GpuTime) {
        self.gpu_ms = self.gpu_ms.saturating_add(other.gpu_ms);
        self.load_ms = self.load_ms.saturating_add(other.load_ms);
        self.prompt_eval_ms = self.prompt_eval_ms.saturating_add(other.prompt_eval_ms);
        self.eval_ms = self.eval_ms.saturating_add(other.eval_ms);
    }
}

/// (key id, day, model)
type Group = (i64, String, String);

/// Summed (requests, prompt tokens, completion tokens) of a group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sums {
    requests: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    gpu: GpuTime,
    /// The team of the group's last record.
    team_id: Option<i64>,
}

/// Columns per upserted row.
const COLUMNS: usize = 11;

/// Rows per upsert: well under SQLite's and PostgreSQL's parameter limits (11 columns each).
const UPSERT_CHUNK: usize = 200;

/// Adds records to `usage_daily`, one row per (key, day, model) they touch.
pub async fn add(db: &impl ConnectionTrait, records: &[UsageRecord]) -> Result<()> {
    let mut groups: HashMap<Group, Sums> = HashMap::new();
    for r in records {
        let sums = groups
            .entry((r.key_id, r.day.clone(), r.model.clone()))
            .or_default();
        sums.requests += 1;
        sums.prompt_tokens += r.prompt_tokens;
        sums.completion_tokens += r.completion_tokens;
        sums.gpu.add(&r.gpu);
        sums.team_id = r.team_id;
    }
    let groups: Vec<(Group, Sums)> = groups.into_iter().collect();
    upsert(db, &groups).await
}

async fn upsert(db: &impl ConnectionTrait, groups: &[(Group, Sums)]) -> Result<()> {
    for chunk in groups.chunks(UPSERT_CHUNK) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * COLUMNS);
        let mut rows = Vec::with_capacity(chunk.len());
        for ((key_id, day, model), sums) in chunk {
            let n = values.len();
            let params: Vec<String> = (n + 1..=n + COLUMNS).map(|i| format!("${i}")).collect();
            rows.push(format!("({})", params.join(", ")));
            values.extend([
                Value::from(*key_id),
                day.as_str().into(),
                model.as_str().into(),
                sums.requests.into(),
                sums.prompt_tokens.into(),
                sums.completion_tokens.into(),
                sums.gpu.gpu_ms.into(),
                sums.gpu.load_ms.into(),
                sums.gpu.prompt_eval_ms.into(),
                sums.gpu.eval_ms.into(),
                sums.team_id.into(),
            ]);
        }
        let summed = [
            "requests",
            "prompt_tokens",
            "completion_tokens",
            "gpu_ms",
            "load_ms",
            "prompt_eval_ms",
            "eval_ms",
        ];
        // A key that moved to another team during the day: the day's row goes with its last
        // team (reports are per day).
        let set: Vec<String> = summed
            .iter()
            .map(|c| format!("{c} = usage_daily.{c} + excluded.{c}"))
            .chain(std::iter::once("team_id = excluded.team_id".to_owned()))
            .collect();
        let sql = format!(
            "INSERT INTO usage_daily (key_id, day, model, {}, team_id) \
             VALUES {} ON CONFLICT (key_id, day, model) DO UPDATE SET {}",
            summed.join(", "),
            rows.join(", "),
            set.join(", ")
        );
        db.execute(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            values,
        ))
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
    pub gpu: GpuTime,
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
                    gpu: GpuTime::default(),
                },
            )
        })
        .collect();
    let rows = usage_daily::Entity::find()
        .filter(usage_daily::Column::KeyId.eq(key_id))
        .filter(usage_daily::Column::Day.gte(label(first_day)))
        .filter(usage_daily::Column::Day.lte(label(last_day)))
        .all(db)
        .await?;
    for row in rows {
        if let Some(day) = series.get_mut(&row.day) {
            day.requests += row.requests;
            day.prompt_tokens += row.prompt_tokens;
            day.completion_tokens += row.completion_tokens;
            day.gpu.add(&GpuTime {
                gpu_ms: row.gpu_ms,
                load_ms: row.load_ms,
                prompt_eval_ms: row.prompt_eval_ms,
                eval_ms: row.eval_ms,
            });
        }
    }
    Ok(series.into_values().collect())
}

/// What the sinks fill and the queue empties. A mutex-guarded buffer rather than a channel:
/// a channel wakes the writer task (a cross-thread wake-up, an `eventfd` write) on every
/// request, and the writer only needs the records every [`FLUSH_EVERY`].
#[derive(Debug)]
struct Shared {
    pending: Mutex<Vec<UsageRecord>>,
    capacity: usize,
}

/// The sending half: cheap to clone, never blocks (the lock is held for one push). Dropping
/// every clone lets [`UsageQueue::run`] finish after its last write.
#[derive(Clone, Debug)]
pub struct UsageSink {
    shared: Arc<Shared>,
}

impl UsageSink {
    /// Queues a record; false when the queue is full (the database is far behind).
    pub fn record(&self, record: UsageRecord) -> bool {
        let mut pending = self.shared.pending.lock();
        if pending.len() >= self.shared.capacity {
            return false;
        }
        pending.push(record);
        true
    }
}

/// The receiving half, run by one background task.
pub struct UsageQueue {
    shared: Arc<Shared>,
}

/// A bounded queue of `capacity` records.
pub fn queue(capacity: usize) -> (UsageSink, UsageQueue) {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Vec::new()),
        capacity: capacity.max(1),
    });
    (
        UsageSink {
            shared: Arc::clone(&shared),
        },
        UsageQueue { shared },
    )
}

/// How often queued records are written.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Records kept for a retry while the database fails, at most.
const BACKLOG: usize = 100_000;

impl UsageQueue {
    fn take(&self, into: &mut Vec<UsageRecord>) {
        into.append(&mut self.shared.pending.lock());
    }

    /// Writes records every [`FLUSH_EVERY`] until every sink is dropped or `stop` completes,
    /// then writes what is left and returns. A write that fails is retried with the next flush
    /// (records are kept, up to [`BACKLOG`]).
    pub async fn run(self, db: DatabaseConnection, stop: impl std::future::Future<Output = ()>) {
        let mut pending: Vec<UsageRecord> = Vec::new();
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.take(&mut pending);
                    flush(&db, &mut pending).await;
                    if Arc::strong_count(&self.shared) == 1 {
                        break; // every sink is gone
                    }
                }
                _ = &mut stop => break,
            }
        }
        self.take(&mut pending);
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
        self.take(&mut pending);
        flush(db, &mut pending).await;
    }
}

async fn flush(db: &DatabaseConnection, pending: &mut Vec<UsageRecord>) {
    if pending.is_empty() {
        return;
    }
    let mut outcome = add(db, pending).await;
    // A key deleted while its last records waited here fails the whole batch on the foreign
    // key, every time: its records go (its usage is deleted with it), the rest is written.
    if outcome.is_err() && drop_deleted_keys(db, pending).await {
        outcome = add(db, pending).await;
    }
    match outcome {
        Ok(()) => pending.clear(),
        Err(e) => {
            static THROTTLE: crate::log_throttle::Throttle = crate::log_throttle::Throttle::new();
            if THROTTLE.ready() {
                tracing::warn!(error = %e, records = pending.len(), "usage log write failed; kept and retried every 100 ms (logged at most once a minute)");
            } else {
                tracing::debug!(error = %e, records = pending.len(), "usage log write failed; will retry");
            }
            if pending.len() > BACKLOG {
                let dropped = pending.len() - BACKLOG;
                pending.drain(..dropped);
                tracing::error!(
                    dropped,
                    "usage log backlog too large; oldest records dropped"
                );
            }
        }
    }
}

/// Removes the records of keys that no longer exist; true when it removed any.
async fn drop_deleted_keys(db: &DatabaseConnection, pending: &mut Vec<UsageRecord>) -> bool {
    let ids: std::collections::BTreeSet<i64> = pending.iter().map(|r| r.key_id).collect();
    let existing = match crate::entity::api_key::Entity::find()
        .filter(crate::entity::api_key::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await
    {
        Ok(rows) => rows
            .into_iter()
            .map(|k| k.id)
            .collect::<std::collections::HashSet<i64>>(),
        Err(_) => return false, // the database itself fails: keep everything for the retry
    };
    let before = pending.len();
    pending.retain(|r| existing.contains(&r.key_id));
    let dropped = before - pending.len();
    if dropped > 0 {
        tracing::info!(
            dropped,
            "usage log: records of deleted keys dropped (their usage went with them)"
        );
    }
    dropped > 0
}
