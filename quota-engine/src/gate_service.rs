//! The gate and commit as the proxy calls them, with **group commit** on SQLite.
//!
//! On SQLite every statement in autocommit mode is a transaction of its own, and the
//! transaction (the WAL append and its locks) costs several times the statement: measured
//! here, ~7,800 autocommitted gate statements/s against ~29,000/s when 100 share one
//! transaction. So on SQLite one task owns the writes: it takes whatever gate, commit and
//! refund jobs are queued (up to [`MAX_BATCH`]), runs them one after the other inside one
//! transaction, commits, and only then answers each job. The statements are exactly those of
//! [`crate::gate`], executed in order, so each admission still sees every earlier one:
//! exactness is unchanged. A batch of one (an idle gateway) costs what a single statement cost.
//!
//! Within a batch, commits and refunds are summed per key and period and applied first (one
//! statement per key instead of one per request), then the admissions run in arrival order.
//! Applying the commits first means an admission sees at least the usage it would have seen
//! in arrival order: token quotas are never looser for it.
//!
//! On PostgreSQL the statements run directly (row locks serialize a key's requests; unrelated
//! keys must not wait on each other's batch).

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use crate::gate::{self, Admission, GateDecision, Limits};
use crate::periods::PeriodKeys;
use crate::{EngineError, Result};

/// Jobs one transaction takes at most (bounds the time a job waits for the batch before it).
pub const MAX_BATCH: usize = 256;
/// Queued jobs before callers wait for room.
const QUEUE: usize = 16_384;

enum Job {
    Admit {
        key_id: i64,
        limits: Limits,
        prompt_tokens: i64,
        periods: Box<PeriodKeys>,
        reply: oneshot::Sender<Result<GateDecision>>,
    },
    Commit {
        admission: Box<Admission>,
        total_tokens: i64,
        reply: oneshot::Sender<Result<()>>,
    },
    Refund {
        admission: Box<Admission>,
        reply: oneshot::Sender<Result<()>>,
    },
}

/// Cheap to clone; every request of the process uses one.
#[derive(Clone)]
pub struct GateService {
    db: DatabaseConnection,
    /// `Some` on SQLite: the queue of the writer task. Dropping every clone stops the task.
    batch: Option<mpsc::Sender<Job>>,
}

fn closed() -> EngineError {
    EngineError::Invalid("the quota writer has stopped".into())
}

impl GateService {
    /// Direct statements (PostgreSQL), or a writer task spawned on the current Tokio runtime
    /// (SQLite). Call from inside the runtime that should run the writer.
    pub fn start(db: DatabaseConnection) -> GateService {
        let is_sqlite = matches!(db.get_database_backend(), sea_orm::DbBackend::Sqlite);
        if !is_sqlite {
            return GateService { db, batch: None };
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(db.clone(), rx));
        GateService {
            db,
            batch: Some(tx),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// See [`gate::admit`].
    pub async fn admit(
        &self,
        key_id: i64,
        limits: &Limits,
        prompt_tokens: i64,
        periods: &PeriodKeys,
    ) -> Result<GateDecision> {
        let Some(batch) = &self.batch else {
            return gate::admit(&self.db, key_id, limits, prompt_tokens, periods).await;
        };
        let (reply, answer) = oneshot::channel();
        let job = Job::Admit {
            key_id,
            limits: *limits,
            prompt_tokens,
            periods: Box::new(periods.clone()),
            reply,
        };
        batch.send(job).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// See [`gate::commit`].
    pub async fn commit(&self, admission: &Admission, total_tokens: i64) -> Result<()> {
        let Some(batch) = &self.batch else {
            return gate::commit(&self.db, admission, total_tokens).await;
        };
        let (reply, answer) = oneshot::channel();
        let job = Job::Commit {
            admission: Box::new(admission.clone()),
            total_tokens,
            reply,
        };
        batch.send(job).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// See [`gate::refund`].
    pub async fn refund(&self, admission: &Admission) -> Result<()> {
        let Some(batch) = &self.batch else {
            return gate::refund(&self.db, admission).await;
        };
        let (reply, answer) = oneshot::channel();
        batch
            .send(Job::Refund {
                admission: Box::new(admission.clone()),
                reply,
            })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// (key id, day label, month label)
type PeriodOfKey = (i64, String, String);
/// Summed (requests, tokens) of a batch's commits and refunds, and who waits for them.
type Pending = (i64, i64, Vec<oneshot::Sender<Result<()>>>);

/// Answers held until the batch's transaction has committed.
enum Answer {
    Admit(oneshot::Sender<Result<GateDecision>>, Result<GateDecision>),
    Done(oneshot::Sender<Result<()>>, Result<()>),
}

async fn writer(db: DatabaseConnection, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        run_batch(&db, &mut jobs).await;
    }
}

async fn run_batch(db: &DatabaseConnection, jobs: &mut Vec<Job>) {
    let txn = match db.begin().await {
        Ok(txn) => txn,
        Err(e) => {
            let message = e.to_string();
            for job in jobs.drain(..) {
                fail(job, &message);
            }
            return;
        }
    };
    let mut answers = Vec::with_capacity(jobs.len());
    let mut admits = Vec::new();
    // (key, day, month) → (requests, tokens, waiting replies)
    let mut adjustments: HashMap<PeriodOfKey, Pending> = HashMap::new();
    for job in jobs.drain(..) {
        let (admission, requests, tokens, reply) = match job {
            Job::Admit { .. } => {
                admits.push(job);
                continue;
            }
            Job::Commit {
                admission,
                total_tokens,
                reply,
            } => {
                let delta = total_tokens.max(0) - admission.reserved_tokens;
                (admission, 0, delta, reply)
            }
            Job::Refund { admission, reply } => {
                let tokens = -admission.reserved_tokens;
                (admission, -1, tokens, reply)
            }
        };
        let entry = adjustments
            .entry((
                admission.key_id,
                admission.day.clone(),
                admission.month.clone(),
            ))
            .or_insert((0, 0, Vec::new()));
        entry.0 += requests;
        entry.1 += tokens;
        entry.2.push(reply);
    }
    for ((key_id, day, month), (requests, tokens, replies)) in adjustments {
        let result = gate::adjust(&txn, key_id, &day, &month, requests, tokens).await;
        for reply in replies {
            let shared = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(EngineError::Invalid(format!("quota database: {e}"))),
            };
            answers.push(Answer::Done(reply, shared));
        }
    }
    for job in admits {
        if let Job::Admit {
            key_id,
            limits,
            prompt_tokens,
            periods,
            reply,
        } = job
        {
            answers.push(Answer::Admit(
                reply,
                gate::admit(&txn, key_id, &limits, prompt_tokens, &periods).await,
            ));
        }
    }
    match txn.commit().await {
        Ok(()) => {
            for answer in answers {
                match answer {
                    Answer::Admit(reply, result) => {
                        let _ = reply.send(result);
                    }
                    Answer::Done(reply, result) => {
                        let _ = reply.send(result);
                    }
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "quota batch did not commit");
            let message = e.to_string();
            for answer in answers {
                match answer {
                    Answer::Admit(reply, _) => {
                        let _ = reply.send(Err(EngineError::Invalid(format!(
                            "quota database: {message}"
                        ))));
                    }
                    Answer::Done(reply, _) => {
                        let _ = reply.send(Err(EngineError::Invalid(format!(
                            "quota database: {message}"
                        ))));
                    }
                }
            }
        }
    }
}

fn fail(job: Job, message: &str) {
    let error = || EngineError::Invalid(format!("quota database: {message}"));
    match job {
        Job::Admit { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
        Job::Commit { reply, .. } | Job::Refund { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
    }
}
