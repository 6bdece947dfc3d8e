//! Everything a request takes and must give back, in one value: the parallel slots of its
//! key and team, what their per-minute windows counted, the quota admission (tokens reserved in the ledger),
//! the host slot (reserved from the fair queue, then the current attempt's), and the count of
//! requests running on its model. Slots are RAII guards and go back when dropped; the
//! admission and the per-minute ticket go back through [`Holds::settle`], the one settlement,
//! which `logging` runs and which `Drop for RequestCtx` runs when `logging` never does
//! (shutdown).
//!
//! Its fields are private: the phases take and release through its methods, so what a
//! request holds is written here only.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use quota_engine::gate::Headroom;
use quota_engine::ledger::{Amount, Metered};
use quota_engine::pacing::ParallelPermit;
use quota_engine::usage_log::{GpuTime, UsageRecord, UsageSink};
use quota_engine::{Admission, Extension, Ledger, PaceTicket, Pacer, Payer, PeriodKeys};

use super::context::Outcome;
use crate::dialect::TokenCounting;
use crate::upstream::load::Counted;
use crate::upstream::{InflightGuard, Selected, Upstream};

/// Where a request's holds go back to: set when the request first takes something that must
/// be given back by hand (its per-minute ticket or its admission).
#[derive(Clone)]
pub struct Books {
    pub ledger: Ledger,
    pub pacer: Pacer,
    pub usage: UsageSink,
    pub counting: TokenCounting,
}

/// The quota admission and what it was checked against.
struct Admitted {
    admission: Admission,
    payer: Payer,
    periods: PeriodKeys,
    headroom: Headroom,
}

/// What a request holds.
#[derive(Default)]
pub struct Holds {
    books: Option<Books>,
    /// The parallel slots of the key and its team (their `max_parallel_requests`).
    parallel: Vec<ParallelPermit>,
    /// What the per-minute windows of the key and its team counted for the request.
    pace: Vec<PaceTicket>,
    admitted: Option<Admitted>,
    /// A host slot taken before the first attempt (at once, or from the fair queue).
    reserved_host: Option<Selected>,
    /// The current attempt's host slot.
    host: Option<InflightGuard>,
    /// The request counted as running on its model.
    model_running: Option<Counted>,
}

/// How [`Holds::settle`] commits what the request used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    /// From `logging`: with several instances sharing the database, usage beyond the
    /// reservation is taken from the shared row (a round trip), as far as it has room.
    Await,
    /// From `Drop` at shutdown: in memory only, within what the instance holds; the ledger's
    /// last flush writes it. Never waits.
    InMemory,
}

/// What a settled request was charged (the prompt first; a capped charge shortens the
/// completion), and its GPU time as charged (never past a GPU-time limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    pub key_id: i64,
    pub consumed: bool,
    pub prompt: u64,
    pub completion: u64,
    pub gpu_ms: i64,
}

impl Holds {
    /// Where the request's holds go back to (before it takes the first of them).
    pub fn open(&mut self, books: Books) {
        self.books = Some(books);
    }

    pub fn keep_parallel(&mut self, permits: Vec<ParallelPermit>) {
        self.parallel = permits;
    }

    pub fn keep_pace(&mut self, tickets: Vec<PaceTicket>) {
        self.pace = tickets;
    }

    /// The quota gate admitted the request.
    pub fn keep_admission(&mut self, admission: Admission, payer: Payer, periods: PeriodKeys) {
        let headroom = admission.headroom(&payer.limits, payer.team_limits(), &periods);
        self.admitted = Some(Admitted {
            admission,
            payer,
            periods,
            headroom,
        });
    }

    /// The host slot taken for the first attempt, and the request counted on its model.
    pub fn keep_host(&mut self, host: Selected, model_running: Counted) {
        self.reserved_host = Some(host);
        self.model_running = Some(model_running);
    }

    /// The slot reserved for the first attempt, if it is still unused.
    pub fn take_reserved_host(&mut self) -> Option<Selected> {
        self.reserved_host.take()
    }

    /// The current attempt runs on this host slot.
    pub fn occupy(&mut self, guard: InflightGuard) {
        self.host = Some(guard);
    }

    /// The current attempt ended: its host slot is free (another host may be tried).
    pub fn leave_host(&mut self) {
        self.host = None;
    }

    /// The current attempt's host authority (for the upstream `Host` header).
    pub fn host_authority(&self) -> Option<&str> {
        self.host.as_ref().map(|g| g.upstream.authority.as_str())
    }

    /// The current attempt's host (until the settlement gives its slot back).
    pub fn host(&self) -> Option<&Arc<Upstream>> {
        self.host.as_ref().map(|g| &g.upstream)
    }

    pub fn admission(&self) -> Option<&Admission> {
        self.admitted.as_ref().map(|a| &a.admission)
    }

    /// Remaining quota after admission, for the `x-ratelimit-*` headers.
    pub fn headroom(&self) -> Headroom {
        self.admitted
            .as_ref()
            .map(|a| a.headroom)
            .unwrap_or_default()
    }

    /// Under a token limit: the output cap of an answer (see [`Admission::output_cap`]).
    pub fn output_cap(&self) -> Option<i64> {
        self.admitted.as_ref().and_then(|a| a.admission.output_cap)
    }

    /// Under a GPU-time limit: the most GPU time (ms) the request may take (see
    /// [`Admission::gpu_cap_ms`]).
    pub fn gpu_cap_ms(&self) -> Option<i64> {
        self.admitted.as_ref().and_then(|a| a.admission.gpu_cap_ms)
    }

    /// Whose limits the request was admitted under (key and team), with the periods (for the
    /// answer that says an answer was ended by one of them).
    pub fn payer(&self) -> Option<(&Payer, &PeriodKeys)> {
        self.admitted.as_ref().map(|a| (&a.payer, &a.periods))
    }

    /// What the request holds of `kind` in the ledger so far.
    pub fn reserved(&self, kind: Metered) -> i64 {
        self.admitted
            .as_ref()
            .map_or(0, |a| kind.reserved(&a.admission))
    }

    /// Tokens the request holds in the ledger so far.
    pub fn reserved_tokens(&self) -> i64 {
        self.reserved(Metered::Tokens)
    }

    /// Asks the ledger for `want` more of `kind` for a growing answer (in memory; a grant
    /// from the database, when needed, runs in the background).
    pub fn extend(&mut self, kind: Metered, want: i64) -> Extension {
        match (&self.books, &mut self.admitted) {
            (Some(books), Some(a)) => {
                books
                    .ledger
                    .extend(kind, &mut a.admission, &a.payer, &a.periods, want)
            }
            _ => Extension::Exhausted,
        }
    }

    /// The token counting mode of the books, once the request is counted.
    pub fn counting(&self) -> Option<TokenCounting> {
        self.books.as_ref().map(|b| b.counting)
    }

    /// Whether the admission is still to be settled.
    pub fn is_admitted(&self) -> bool {
        self.admitted.is_some()
    }

    /// Gives back the slots at once: the host, the model count and the parallel slots of the
    /// key and its team (before the commit's round trip).
    fn release_slots(&mut self) {
        self.host = None;
        self.reserved_host = None;
        self.model_running = None;
        self.parallel.clear();
    }

    /// The one settlement: releases the slots, then refunds or commits the admission as
    /// `outcome` says, finishes or refunds the per-minute ticket with what was charged, and
    /// records the usage. `None` when the request was never admitted (a refusal of the gate
    /// gives the per-minute ticket back). Runs once: a second call finds nothing to settle.
    pub async fn settle(
        &mut self,
        outcome: Outcome,
        model: &str,
        gpu: GpuTime,
        how: Commit,
    ) -> Option<Settled> {
        self.release_slots();
        let pace = std::mem::take(&mut self.pace);
        let books = self.books.take()?;
        let Some(admitted) = self.admitted.take() else {
            for ticket in &pace {
                books.pacer.refund(ticket);
            }
            return None;
        };
        let Admitted {
            admission,
            payer,
            periods,
            ..
        } = admitted;
        let settled = match outcome {
            Outcome::Refund => {
                books.ledger.refund(&admission);
                for ticket in &pace {
                    books.pacer.refund(ticket);
                }
                return Some(Settled {
                    key_id: admission.key_id,
                    ..Settled::default()
                });
            }
            Outcome::Commit { prompt, .. } => {
                // The charge never passes a limit: an answer that outran its reservation is
                // charged only as far as the quota has room.
                let used = Amount {
                    tokens: outcome.total(),
                    gpu_ms: gpu.gpu_ms,
                    ..Amount::default()
                };
                let charged = match how {
                    Commit::Await => {
                        books
                            .ledger
                            .commit(&admission, &payer, &periods, used)
                            .await
                    }
                    Commit::InMemory => books.ledger.commit_now(&admission, used),
                };
                for ticket in &pace {
                    books.pacer.finish(ticket, charged.tokens);
                }
                let (prompt, completion) = split_charge(prompt, charged.tokens);
                Settled {
                    key_id: admission.key_id,
                    consumed: true,
                    prompt,
                    completion,
                    gpu_ms: charged.gpu_ms,
                }
            }
        };
        let record = UsageRecord {
            key_id: admission.key_id,
            team_id: admission.team.as_ref().map(|t| t.team_id),
            day: admission.day,
            model: model.to_owned(),
            prompt_tokens: i64::try_from(settled.prompt).unwrap_or(i64::MAX),
            completion_tokens: i64::try_from(settled.completion).unwrap_or(i64::MAX),
            // The report shows what the key was charged, as its counters do.
            gpu: GpuTime {
                gpu_ms: settled.gpu_ms,
                ..gpu
            },
        };
        if !books.usage.record(record) {
            tracing::warn!(
                key_id = admission.key_id,
                "usage log queue is full; record dropped (counters are exact)"
            );
        }
        Some(settled)
    }

    /// [`Holds::settle`] where nothing can be awaited (`Drop`): with [`Commit::InMemory`] the
    /// settlement never waits, so it completes in one poll.
    pub fn settle_now(&mut self, outcome: Outcome, model: &str, gpu: GpuTime) -> Option<Settled> {
        let settle = pin!(self.settle(outcome, model, gpu, Commit::InMemory));
        match settle.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(settled) => settled,
            // Unreachable by construction (nothing in the in-memory path awaits).
            Poll::Pending => None,
        }
    }
}

/// (prompt, completion) of a request charged `charged` tokens in all: the prompt first, the
/// rest for the completion (a capped charge shortens the completion).
pub fn split_charge(prompt: u64, charged: i64) -> (u64, u64) {
    let charged = u64::try_from(charged).unwrap_or(0);
    let prompt = prompt.min(charged);
    (prompt, charged - prompt)
}
