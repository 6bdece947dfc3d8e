//! The quota ledger: admission decided in memory, the database as its durable, shared log.
//!
//! Each key, and each team, has an [`Account`] in the instance's ledger ([`AccountId`]); a
//! request of a key in a team is admitted, extended and settled in both at once, under both
//! accounts' locks (key first, then team), so neither can pass a limit and a refusal by one
//! leaves the other untouched.
//!
//! Each account Admission takes room out of the
//! account's **lease**, room that this instance moved out of the key's shared row beforehand
//! with one conditional statement ([`store::grant`]: used + leased + grant must stay within
//! every limit). While the lease lasts, a request is admitted with no database work at all.
//! Usage and what was taken out of leases reach the row in **group commits**: one transaction
//! every flush interval (default 10 ms) for every key that changed ([`Ledger::flush`]).
//!
//! Why this is exact: the row's `used + leased` never passes a limit (the grant's condition),
//! and each instance admits only out of its own lease. Blocks are sized from the room left
//! (1/16 of it, at most `max_lease`), so they shrink to one request per statement near the
//! limit. A request that finds no room while other instances hold leases asks them back
//! ([`store::ask_for_leases`]); they give their lease back with their next flush and take only
//! exact amounts for a while, so the last units are shared exactly. An instance that stops
//! gives its lease back ([`Ledger::shutdown`]).
//!
//! **Hard token quotas.** Under a token limit an answer is admitted with its prompt and an
//! output block reserved out of the lease ([`OutputPolicy`]), and its output limit is the room
//! left. A stream that reaches its reservation asks [`Ledger::extend`] (in memory, from the
//! proxy's synchronous body filter) for another block: out of the lease, or on a row this
//! instance has alone (SQLite) out of the row's unleased room, which it then knows exactly;
//! with several instances an empty lease starts a grant and the stream asks again with its
//! next chunk. [`Ledger::commit`] takes what an answer used beyond its reservation the same
//! way (with several instances by one conditional statement) and never charges more: the row's
//! used never passes a limit.
//!
//! After `kill -9` or a lost connection: a granted lease is already in the row, so nothing
//! that was admitted can be admitted again (no over-admission); the usage of the last flush
//! interval is lost, and the unused part of the dead instance's leases stays held until its
//! period ends: under-admission of at most one block per key.

mod account;
mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use sea_orm::{DatabaseConnection, TransactionTrait};

use account::{counters_plus as plus, Account, Offer, Pending, Stake, Terms};
pub use account::{Amount, Extension, Metered, OutputPolicy};

pub use crate::gate::AccountId;
use crate::gate::{self, Admission, Ask, Counters, GateDecision, Limits, Payer, TeamShare};
use crate::periods::PeriodKeys;
use crate::{EngineError, Result};

/// How the ledger sizes leases and flushes usage.
#[derive(Clone, Debug)]
pub struct LedgerConfig {
    /// Usage reaches the database within this time (and `kill -9` loses at most this window).
    pub flush_interval: Duration,
    /// The largest block a grant asks for.
    pub max_lease: Amount,
    /// Other instances may hold leases of the same keys (PostgreSQL): watch for their requests
    /// to give leases back, and wait for theirs. Off on SQLite, where one process owns the file.
    pub shared: bool,
    /// How long a request with no room waits for other instances to give leases back.
    pub lease_wait: Duration,
    /// How answers are bounded and reserved under a token limit.
    pub output: OutputPolicy,
}

impl Default for LedgerConfig {
    fn default() -> LedgerConfig {
        LedgerConfig {
            flush_interval: Duration::from_millis(10),
            max_lease: Amount {
                requests: 64,
                tokens: 65_536,
                gpu_ms: 600_000,
            },
            shared: false,
            lease_wait: Duration::from_millis(500),
            output: OutputPolicy::default(),
        }
    }
}

/// A grant is 1/`BLOCK_DIVISOR` of the room left (bounded by `max_lease`).
const BLOCK_DIVISOR: i64 = 16;
/// After another instance asked for leases back, grants are exact for this long.
const EXACT_AFTER_DEMAND: Duration = Duration::from_secs(10);
/// Attempts at the last flush before the process exits.
const SHUTDOWN_FLUSH_ATTEMPTS: usize = 20;
/// Flushes failing for this long make admission fail closed: usage that cannot be written is
/// kept, but no more is taken on until it lands.
const FAIL_CLOSED_AFTER: Duration = Duration::from_secs(1);
/// Attempts at a grant that keeps racing other instances before giving up with an error.
const GRANT_ATTEMPTS: usize = 8;

struct Entry {
    /// Locked for in-memory bookkeeping only, never across an `.await`.
    account: Mutex<Account>,
    /// One grant in flight per key: other requests of the key wait for it instead of
    /// sending their own statement.
    granting: Arc<tokio::sync::Mutex<()>>,
}

struct Inner {
    db: DatabaseConnection,
    config: LedgerConfig,
    /// Written when a key is first seen; read (shared) by every request.
    entries: RwLock<HashMap<AccountId, Arc<Entry>>>,
    /// Grants hold it shared from the moment they read the instance's unflushed usage until
    /// the grant is booked; a flush holds it exclusively from taking the deltas until they are
    /// committed (or put back). So a grant never counts a delta both in memory and in the row,
    /// nor misses one in flight. One flush at a time, too.
    settling: tokio::sync::RwLock<()>,
    /// Since when flushes fail, and the last failure (`None` while they land).
    failing: Mutex<Option<(Instant, String)>>,
    /// Whether `failing` is set: read by every admission without taking the lock.
    failing_flag: std::sync::atomic::AtomicBool,
    /// This process's ledger in `ledger_instances`, and its flushes' sequence numbers.
    instance: i64,
    seq: std::sync::atomic::AtomicI64,
    /// A flush whose commit may or may not have landed (its connection broke): its deltas
    /// stay in the accounts' `flushing` until `ledger_instances` says which. Grants wait for
    /// that: the row may or may not hold those deltas.
    in_doubt: Mutex<Option<i64>>,
    in_doubt_flag: std::sync::atomic::AtomicBool,
}

/// Cheap to clone; one per process.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

/// The accounts a request is booked in: its key's, and its team's.
struct Books {
    key: Arc<Entry>,
    team: Option<(i64, Arc<Entry>)>,
}

/// Which of a request's accounts lacks room in its lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Key,
    Team,
}

impl Books {
    fn entry(&self, side: Side) -> Option<&Arc<Entry>> {
        match side {
            Side::Key => Some(&self.key),
            Side::Team => self.team.as_ref().map(|(_, e)| e),
        }
    }

    fn account(&self, side: Side, payer: &Payer) -> Option<(AccountId, Limits)> {
        match side {
            Side::Key => Some((AccountId::Key(payer.key_id), payer.limits)),
            Side::Team => payer
                .team
                .as_ref()
                .map(|t| (AccountId::Team(t.id), t.limits)),
        }
    }

    fn stake(side: Side, admission: &Admission) -> Option<Stake> {
        match side {
            Side::Key => Some(Stake::of_key(admission)),
            Side::Team => Stake::of_team(admission),
        }
    }
}

enum Grant {
    Granted,
    Refused {
        refusal: gate::QuotaExceeded,
        /// Other instances hold leases that may come back.
        held_elsewhere: bool,
    },
}

impl Ledger {
    /// A ledger over `db`. Call [`Ledger::run_flusher`] (or [`Ledger::flush`]) so that usage
    /// reaches the database.
    pub fn new(db: DatabaseConnection, config: LedgerConfig) -> Ledger {
        Ledger {
            inner: Arc::new(Inner {
                db,
                config,
                entries: RwLock::new(HashMap::new()),
                settling: tokio::sync::RwLock::new(()),
                failing: Mutex::new(None),
                failing_flag: std::sync::atomic::AtomicBool::new(false),
                instance: random_instance_id(),
                seq: std::sync::atomic::AtomicI64::new(0),
                in_doubt: Mutex::new(None),
                in_doubt_flag: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    pub fn config(&self) -> &LedgerConfig {
        &self.inner.config
    }

    async fn entry(&self, account: AccountId) -> Result<Arc<Entry>> {
        if let Some(entry) = self.inner.entries.read().get(&account) {
            return Ok(Arc::clone(entry));
        }
        // First sight of the account in this process: its row must exist for flushes to land,
        // and demands made before this instance started are not for it.
        gate::ensure_counters_row(&self.inner.db, account).await?;
        let demand_seen = if self.inner.config.shared {
            store::demands(&self.inner.db, &[account])
                .await?
                .first()
                .map_or(0, |(_, demand)| *demand)
        } else {
            0
        };
        let mut entries = self.inner.entries.write();
        let entry = entries.entry(account).or_insert_with(|| {
            let mut account = Account::default();
            account.demand_seen = demand_seen;
            Arc::new(Entry {
                account: Mutex::new(account),
                granting: Arc::new(tokio::sync::Mutex::new(())),
            })
        });
        Ok(Arc::clone(entry))
    }

    /// The request's accounts, known to this ledger already (after its admission).
    fn books_of(&self, admission: &Admission) -> Option<Books> {
        let entries = self.inner.entries.read();
        let key = entries.get(&AccountId::Key(admission.key_id))?.clone();
        let team = match &admission.team {
            None => None,
            Some(share) => Some((
                share.team_id,
                entries.get(&AccountId::Team(share.team_id))?.clone(),
            )),
        };
        Some(Books { key, team })
    }

    /// Admits the request and counts it if every limit of its key, and of its team, has room
    /// for one more request and for its prompt (plus, for an answer under a token limit,
    /// `output.min_output` tokens; the admission then reserves output room, see
    /// [`Account::quote`]). Otherwise says which limit is exceeded, naming the team when it is
    /// the team's.
    pub async fn admit(
        &self,
        payer: &Payer,
        ask: &Ask,
        periods: &PeriodKeys,
    ) -> Result<GateDecision> {
        let ask = Ask {
            prompt_tokens: ask.prompt_tokens.max(0),
            client_output_limit: ask.client_output_limit.map(|l| l.max(0)),
            ..*ask
        };
        let policy = self.inner.config.output;
        let failing = self
            .inner
            .failing_flag
            .load(std::sync::atomic::Ordering::Relaxed)
            .then(|| self.inner.failing.lock().clone())
            .flatten();
        if let Some((since, why)) = failing {
            if since.elapsed() >= FAIL_CLOSED_AFTER {
                return Err(EngineError::UsageNotLanding(why));
            }
        }
        let books = Books {
            key: self.entry(AccountId::Key(payer.key_id)).await?,
            team: match &payer.team {
                None => None,
                Some(team) => Some((team.id, self.entry(AccountId::Team(team.id)).await?)),
            },
        };
        let from_lease = || -> Result<std::result::Result<GateDecision, Side>> {
            Self::admit_in_memory(&books, payer, &ask, &policy, periods)
                .map(|r| r.map(GateDecision::Admitted))
                .map_err(|_| EngineError::StalePeriods)
        };
        if let Ok(admitted) = from_lease()? {
            for side in [Side::Key, Side::Team] {
                if let (Some(entry), Some((account, limits))) =
                    (books.entry(side), books.account(side, payer))
                {
                    self.refill_ahead(entry, account, &limits, periods);
                }
            }
            return Ok(admitted);
        }
        let started = Instant::now();
        let mut asked = [false, false];
        loop {
            let side = match from_lease()? {
                Ok(admitted) => return Ok(admitted),
                Err(side) => side,
            };
            let (Some(entry), Some((account, limits))) =
                (books.entry(side), books.account(side, payer))
            else {
                return Err(EngineError::Invalid("a request's team vanished".into()));
            };
            let entry = Arc::clone(entry);
            let turn = entry.granting.lock().await;
            // A grant that finished while this request waited may cover it.
            let side = match from_lease()? {
                Ok(admitted) => return Ok(admitted),
                Err(other) if other != side => continue,
                Err(side) => side,
            };
            // On a task of its own: a request dropped while it waits (the client hung up)
            // must not drop a grant that the row has already booked.
            let grant = {
                let (ledger, entry, periods) = (self.clone(), Arc::clone(&entry), periods.clone());
                tokio::spawn(
                    async move { ledger.grant(&entry, account, &limits, &ask, &periods).await },
                )
                .await
                .map_err(|e| EngineError::Invalid(format!("the quota grant task failed: {e}")))??
            };
            let (mut refusal, held_elsewhere) = match grant {
                Grant::Granted => continue, // admitted next time round, or short again
                Grant::Refused {
                    refusal,
                    held_elsewhere,
                } => (refusal, held_elsewhere),
            };
            refusal.team = match side {
                Side::Team => payer.team.as_ref().map(|t| t.name.clone()),
                Side::Key => None,
            };
            if !held_elsewhere || !self.inner.config.shared {
                return Ok(GateDecision::Refused(refusal));
            }
            if started.elapsed() >= self.inner.config.lease_wait {
                // What is still held elsewhere did not come back: do not wait for it again for
                // a while (a stopped instance's lease stays held until the period ends).
                let row = store::read(&self.inner.db, account, periods).await?;
                let mut account = entry.account.lock();
                if let Some(row) = row {
                    let mine = account.held(periods);
                    account.set_stuck(Amount {
                        requests: row.leased.requests - mine.requests,
                        tokens: row.leased.tokens - mine.tokens,
                        gpu_ms: row.leased.gpu_ms - mine.gpu_ms,
                    });
                }
                return Ok(GateDecision::Refused(refusal));
            }
            let asked = &mut asked[side as usize];
            if !*asked {
                store::ask_for_leases(&self.inner.db, account).await?;
                *asked = true;
            }
            entry.account.lock().exact_until = Some(Instant::now() + EXACT_AFTER_DEMAND);
            drop(turn);
            tokio::time::sleep(self.inner.config.flush_interval * 2).await;
        }
    }

    /// Admits out of the leases of all the request's accounts at once, under their locks
    /// (key first, then team): each is quoted, and only if all can admit is any booked, on
    /// the tightest terms. `Err(side)` names the account whose lease is short.
    fn admit_in_memory(
        books: &Books,
        payer: &Payer,
        ask: &Ask,
        policy: &OutputPolicy,
        periods: &PeriodKeys,
    ) -> std::result::Result<std::result::Result<Admission, Side>, account::Stale> {
        let mut key = books.key.account.lock();
        let Some(key_quote) = key.quote(&payer.limits, ask, policy, periods)? else {
            return Ok(Err(Side::Key));
        };
        let team = match (&books.team, payer.team_limits()) {
            (Some((team_id, entry)), Some(limits)) => {
                let mut account = entry.account.lock();
                let Some(quote) = account.quote(limits, ask, policy, periods)? else {
                    return Ok(Err(Side::Team));
                };
                Some((*team_id, account, quote))
            }
            _ => None,
        };
        let mut quotes = vec![key_quote];
        quotes.extend(team.as_ref().map(|(_, _, q)| *q));
        let terms = Terms::of(&quotes, ask, policy);
        let (counters, lease_generation) = key.book_admission(&key_quote, &terms, periods);
        let team = team.map(|(team_id, mut account, quote)| {
            let (counters, lease_generation) = account.book_admission(&quote, &terms, periods);
            TeamShare {
                team_id,
                counters,
                lease_generation,
            }
        });
        Ok(Ok(Admission {
            key_id: payer.key_id,
            day: periods.day.clone(),
            month: periods.month.clone(),
            reserved_tokens: terms.reserved_tokens,
            output_cap: terms.output_cap,
            reserved_gpu_ms: terms.reserved_gpu_ms,
            gpu_cap_ms: terms.gpu_cap_ms,
            counters,
            lease_generation,
            team,
        }))
    }

    /// Starts a grant in the background when an account's lease runs low, so that requests
    /// find room in memory instead of waiting for the statement (no-op while a grant is
    /// running, or when the lease has moved on to other periods or limits).
    fn refill_ahead(
        &self,
        entry: &Arc<Entry>,
        account: AccountId,
        limits: &Limits,
        periods: &PeriodKeys,
    ) {
        if !entry.account.lock().runs_low() {
            return;
        }
        let Ok(turn) = Arc::clone(&entry.granting).try_lock_owned() else {
            return;
        };
        let (ledger, entry, limits, periods) =
            (self.clone(), Arc::clone(entry), *limits, periods.clone());
        tokio::spawn(async move {
            if entry.account.lock().is_aligned(&limits, &periods) {
                if let Err(e) = ledger
                    .grant(&entry, account, &limits, &Ask::default(), &periods)
                    .await
                {
                    tracing::debug!(error = %e, ?account, "lease refill failed; requests will ask themselves");
                }
            }
            drop(turn);
        });
    }

    /// Asks the row for what the request needs (a block when there is room for one).
    async fn grant(
        &self,
        entry: &Entry,
        account_id: AccountId,
        limits: &Limits,
        ask: &Ask,
        periods: &PeriodKeys,
    ) -> Result<Grant> {
        let db = &self.inner.db;
        let policy = self.inner.config.output;
        // What the request needs of a token quota to be admitted (see `admission_need`).
        let needed_tokens = ask.prompt_tokens + if ask.generates { policy.min_output } else { 0 };
        let _settled = self.inner.settling.read().await;
        self.not_in_doubt()?;
        let (need, unflushed) = {
            let mut account = entry.account.lock();
            let exact = account.exact_until.is_some_and(|t| Instant::now() < t);
            let need = account
                .need(
                    limits,
                    ask,
                    &policy,
                    periods,
                    exact,
                    BLOCK_DIVISOR,
                    self.inner.config.max_lease,
                )
                .map_err(|_| EngineError::StalePeriods)?;
            if account.exhausted(limits) {
                if let Some(refusal) =
                    gate::explain(limits, &account.view(), needed_tokens, periods)
                {
                    return Ok(Grant::Refused {
                        refusal,
                        held_elsewhere: false,
                    });
                }
            }
            (need, account.unflushed(periods))
        };
        // The row does not show this instance's unflushed usage yet: the limits it is checked
        // against are lowered by that much.
        let effective = less(limits, &unflushed);
        if let Some(totals) = store::grant(db, account_id, &effective, periods, need.want).await? {
            entry
                .account
                .lock()
                .granted(need.want, totals, need.generation, periods);
            return Ok(Grant::Granted);
        }
        for _ in 0..GRANT_ATTEMPTS {
            let Some(mut row) = store::read(db, account_id, periods).await? else {
                gate::ensure_counters_row(db, account_id).await?;
                continue;
            };
            if row.ahead {
                return Err(EngineError::StalePeriods);
            }
            let row_totals = row.totals;
            row.totals = plus(&row.totals, &unflushed);
            let room = Account::room_in(limits, &row.totals);
            let fits = |min: i64, room: Option<i64>| min == 0 || room.is_none_or(|r| r >= min);
            if fits(need.min.requests, room.requests)
                && fits(need.min.tokens, room.tokens)
                && fits(need.min.gpu_ms, room.gpu_ms)
            {
                let take = |min: i64, want: i64, room: Option<i64>| match room {
                    Some(r) => want.min(r).max(min),
                    None => 0,
                };
                let grant = Amount {
                    requests: take(need.min.requests, need.want.requests, room.requests),
                    tokens: take(need.min.tokens, need.want.tokens, room.tokens),
                    gpu_ms: take(need.min.gpu_ms, need.want.gpu_ms, room.gpu_ms),
                };
                if let Some(totals) =
                    store::grant(db, account_id, &effective, periods, grant).await?
                {
                    entry
                        .account
                        .lock()
                        .granted(grant, totals, need.generation, periods);
                    return Ok(Grant::Granted);
                }
                continue; // another instance took room in between
            }
            let mut account = entry.account.lock();
            account.seen(row_totals, need.generation, periods);
            let mine = account.held(periods);
            let lease = account.lease();
            // Usage as a request sees it: the row's used + leased, less this instance's lease.
            let seen = Counters {
                day_requests: row.totals.day_requests - lease.requests,
                month_requests: row.totals.month_requests - lease.requests,
                day_tokens: row.totals.day_tokens - lease.tokens,
                month_tokens: row.totals.month_tokens - lease.tokens,
                day_gpu_ms: row.totals.day_gpu_ms - lease.gpu_ms,
                month_gpu_ms: row.totals.month_gpu_ms - lease.gpu_ms,
            };
            let Some(refusal) = gate::explain(limits, &seen, needed_tokens, periods) else {
                drop(account);
                continue; // the row changed between the statements
            };
            let elsewhere = Amount {
                requests: row.leased.requests - mine.requests,
                tokens: row.leased.tokens - mine.tokens,
                gpu_ms: row.leased.gpu_ms - mine.gpu_ms,
            };
            let stuck = account.stuck();
            let held_elsewhere = if refusal.kind.is_requests() {
                elsewhere.requests > stuck.requests
            } else if refusal.kind.is_gpu() {
                elsewhere.gpu_ms > stuck.gpu_ms
            } else {
                elsewhere.tokens > stuck.tokens
            };
            return Ok(Grant::Refused {
                refusal,
                held_elsewhere,
            });
        }
        Err(EngineError::Invalid(format!(
            "the quota of {account_id:?} did not settle after {GRANT_ATTEMPTS} attempts"
        )))
    }

    /// Reserves up to `want` more of `kind` (tokens, GPU milliseconds) for a request whose
    /// answer outgrew its reservation, in its key's and its team's accounts alike (in memory;
    /// called from the proxy's synchronous body filter). On [`Extension::Pending`] a grant has
    /// been started for the account that is short: ask again with the next chunk.
    pub fn extend(
        &self,
        kind: Metered,
        admission: &mut Admission,
        payer: &Payer,
        periods: &PeriodKeys,
        want: i64,
    ) -> Extension {
        let Some(books) = self.books_of(admission) else {
            return Extension::Exhausted;
        };
        let (extension, short) =
            Self::extend_in_memory(&books, kind, admission, want, !self.inner.config.shared);
        if extension == Extension::Pending {
            for side in short {
                if let (Some(entry), Some((account, limits))) =
                    (books.entry(side), books.account(side, payer))
                {
                    self.refill_now(kind, entry, account, &limits, periods);
                }
            }
        }
        extension
    }

    /// Extends the request in all its accounts at once, under their locks: each offers what
    /// it can, and the least of the offers is taken in each. Also returns the accounts that
    /// offered less than `want` (those a grant would help).
    fn extend_in_memory(
        books: &Books,
        kind: Metered,
        admission: &mut Admission,
        want: i64,
        direct: bool,
    ) -> (Extension, Vec<Side>) {
        let mut key = books.key.account.lock();
        let mut team = books.team.as_ref().map(|(_, e)| e.account.lock());
        let key_stake = Stake::of_key(admission);
        let team_stake = Stake::of_team(admission);
        let mut offers = vec![(Side::Key, key.offer(kind, &key_stake, want, direct))];
        if let (Some(account), Some(stake)) = (team.as_ref(), team_stake.as_ref()) {
            offers.push((Side::Team, account.offer(kind, stake, want, direct)));
        }
        let short: Vec<Side> = offers
            .iter()
            .filter(|(_, o)| *o != Offer::Unlimited && o.total(want) < want)
            .map(|(side, _)| *side)
            .collect();
        if offers.iter().any(|(_, o)| *o == Offer::Exhausted) {
            return (Extension::Exhausted, short);
        }
        if offers.iter().any(|(_, o)| *o == Offer::Pending) {
            return (Extension::Pending, short);
        }
        let n = offers
            .iter()
            .map(|(_, o)| o.total(want))
            .min()
            .unwrap_or(0)
            .max(0);
        for (side, offer) in offers {
            match side {
                Side::Key => key.take(kind, &key_stake, offer, n),
                Side::Team => {
                    if let (Some(account), Some(stake)) = (team.as_mut(), team_stake.as_ref()) {
                        account.take(kind, stake, offer, n);
                    }
                }
            }
        }
        *kind.reserved_mut(admission) += n;
        (Extension::Granted(n), short)
    }

    /// Starts a grant of `kind` (a block, or what room the row has) for the account in the
    /// background, unless one is running or the lease has moved on to other limits or periods.
    fn refill_now(
        &self,
        kind: Metered,
        entry: &Arc<Entry>,
        account: AccountId,
        limits: &Limits,
        periods: &PeriodKeys,
    ) {
        let Ok(turn) = Arc::clone(&entry.granting).try_lock_owned() else {
            return;
        };
        let (ledger, entry, limits, periods) =
            (self.clone(), Arc::clone(entry), *limits, periods.clone());
        let block = self.inner.config.output.block(kind);
        tokio::spawn(async move {
            if entry.account.lock().is_aligned(&limits, &periods) {
                if let Err(e) = ledger
                    .top_up(kind, &entry, account, &limits, &periods, block)
                    .await
                {
                    tracing::debug!(error = %e, ?account, "lease refill for a growing answer failed");
                }
            }
            drop(turn);
        });
    }

    /// Settles a finished request that used `used` (tokens and GPU milliseconds; its
    /// `requests` are ignored) in its key's and its team's accounts, and returns what it is
    /// charged: all of it while the limits allow, never more than they do. What was reserved
    /// beyond its use goes back to the leases at once; use beyond the reservation is taken
    /// from the leases, then (one instance on the rows) from the rows' unleased room, or
    /// (several) from grants. What none of them covers is not charged: the limits hold.
    pub async fn commit(
        &self,
        admission: &Admission,
        payer: &Payer,
        periods: &PeriodKeys,
        used: Amount,
    ) -> Amount {
        let mut admission = admission.clone();
        let Some(books) = self.books_of(&admission) else {
            tracing::error!(
                key_id = admission.key_id,
                "usage for a key this ledger never admitted; dropped"
            );
            return Amount::default();
        };
        let direct = !self.inner.config.shared;
        for kind in Metered::ALL {
            let total = kind.of(&used).max(0);
            let over = total - kind.reserved(&admission);
            if over <= 0 {
                continue;
            }
            let (first, short_sides) =
                Self::extend_in_memory(&books, kind, &mut admission, over, direct);
            let short = total - kind.reserved(&admission);
            if short > 0 && !direct && first != Extension::Exhausted {
                // Several instances share the rows: take the rest from them, as far as it fits.
                for side in short_sides {
                    let (Some(entry), Some((account, limits))) =
                        (books.entry(side), books.account(side, payer))
                    else {
                        continue;
                    };
                    if let Err(e) = self
                        .top_up(kind, entry, account, &limits, periods, short)
                        .await
                    {
                        tracing::warn!(error = %e, ?account, ?kind, "cannot take room for an answer beyond its reservation; not charged");
                    }
                }
                Self::extend_in_memory(&books, kind, &mut admission, short, direct);
            }
        }
        Self::settle_in_memory(&books, admission, used)
    }

    /// Settles a request in memory only (no grant beyond the leases): for requests whose
    /// answer was cut off by the process stopping, settled from a destructor.
    pub fn commit_now(&self, admission: &Admission, used: Amount) -> Amount {
        let Some(books) = self.books_of(admission) else {
            return Amount::default();
        };
        let mut admission = admission.clone();
        for kind in Metered::ALL {
            let over = kind.of(&used).max(0) - kind.reserved(&admission);
            if over > 0 {
                Self::extend_in_memory(
                    &books,
                    kind,
                    &mut admission,
                    over,
                    !self.inner.config.shared,
                );
            }
        }
        Self::settle_in_memory(&books, admission, used)
    }

    /// The request is no longer in flight; what it reserved beyond its use goes back to the
    /// leases. Returns what it is charged (tokens, GPU milliseconds).
    fn settle_in_memory(books: &Books, admission: Admission, used: Amount) -> Amount {
        let mut charged = Amount::default();
        let mut unused = Amount::default();
        for kind in Metered::ALL {
            let reserved = kind.reserved(&admission);
            let total = kind.of(&used).max(0);
            *kind.of_mut(&mut charged) = reserved.min(total);
            *kind.of_mut(&mut unused) = -(reserved - total).max(0);
        }
        for side in [Side::Key, Side::Team] {
            let (Some(entry), Some(stake)) = (books.entry(side), Books::stake(side, &admission))
            else {
                continue;
            };
            let mut account = entry.account.lock();
            account.settled(admission.reserved_tokens, admission.reserved_gpu_ms);
            if !unused.is_zero() {
                account.charge_stake(&stake, unused);
            }
        }
        charged
    }

    /// Moves up to `amount` of `kind` from the key's row into the lease: all of it if it
    /// fits, else what room the row has left (for a commit that outran its reservation).
    async fn top_up(
        &self,
        kind: Metered,
        entry: &Entry,
        account_id: AccountId,
        limits: &Limits,
        periods: &PeriodKeys,
        mut amount: i64,
    ) -> Result<()> {
        let db = &self.inner.db;
        let _settled = self.inner.settling.read().await;
        self.not_in_doubt()?;
        let (generation, unflushed) = {
            let account = entry.account.lock();
            (account.generation(), account.unflushed(periods))
        };
        let effective = less(limits, &unflushed);
        for _ in 0..GRANT_ATTEMPTS {
            let mut want = Amount::default();
            *kind.of_mut(&mut want) = amount;
            if let Some(totals) = store::grant(db, account_id, &effective, periods, want).await? {
                entry
                    .account
                    .lock()
                    .granted(want, totals, generation, periods);
                return Ok(());
            }
            let Some(row) = store::read(db, account_id, periods).await? else {
                return Ok(());
            };
            if row.ahead {
                return Ok(());
            }
            let room = Account::room_in(limits, &plus(&row.totals, &unflushed))
                .of(kind)
                .unwrap_or(0);
            if room <= 0 {
                entry.account.lock().seen(row.totals, generation, periods);
                return Ok(());
            }
            amount = amount.min(room);
        }
        Ok(())
    }

    /// Takes back an admitted request that consumed nothing (the upstream was unreachable),
    /// in its key's and its team's accounts.
    pub fn refund(&self, admission: &Admission) {
        let Some(books) = self.books_of(admission) else {
            return;
        };
        for side in [Side::Key, Side::Team] {
            let (Some(entry), Some(stake)) = (books.entry(side), Books::stake(side, admission))
            else {
                continue;
            };
            let mut account = entry.account.lock();
            account.charge_stake(
                &stake,
                Amount {
                    requests: -1,
                    tokens: -admission.reserved_tokens,
                    gpu_ms: -admission.reserved_gpu_ms,
                },
            );
            account.settled(admission.reserved_tokens, admission.reserved_gpu_ms);
        }
    }

    /// Requests of the key (or team) in flight on this instance, and the tokens and GPU time
    /// they hold.
    pub fn in_flight(&self, account: impl Into<AccountId>) -> Amount {
        self.inner
            .entries
            .read()
            .get(&account.into())
            .map(|e| e.account.lock().in_flight())
            .unwrap_or_default()
    }

    /// Writes every key's unflushed usage and lease changes in one transaction, which also
    /// records its sequence number in `ledger_instances`. On failure the changes stay in memory
    /// (nothing is lost while the process runs); the next flush first asks `ledger_instances`
    /// whether that commit landed after all, so a retry never writes the same deltas twice.
    pub async fn flush(&self) -> Result<()> {
        let _settling = self.inner.settling.write().await;
        let entries: Vec<(AccountId, Arc<Entry>)> = self
            .inner
            .entries
            .read()
            .iter()
            .map(|(id, e)| (*id, Arc::clone(e)))
            .collect();
        let doubt = *self.inner.in_doubt.lock();
        if let Some(seq) = doubt {
            let landed = match store::last_flush(&self.inner.db, self.inner.instance).await {
                Ok(last) => last == Some(seq),
                Err(e) => {
                    self.record_outcome(&Err(EngineError::Invalid(e.to_string())), 0);
                    return Err(e);
                }
            };
            for (_, entry) in &entries {
                let mut account = entry.account.lock();
                if landed {
                    account.flushed();
                } else {
                    account.flush_failed();
                }
            }
            *self.inner.in_doubt.lock() = None;
            self.inner
                .in_doubt_flag
                .store(false, std::sync::atomic::Ordering::SeqCst);
            tracing::info!(
                landed,
                "an earlier usage flush's outcome is known now; its deltas are counted once"
            );
        }
        if self.inner.config.shared {
            self.answer_demands().await;
        }
        let mut batch: Vec<(AccountId, Pending)> = Vec::new();
        for (account_id, entry) in &entries {
            let mut account = entry.account.lock();
            if account.has_pending() {
                batch.push((*account_id, account.take_pending()));
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        // Rows in one order on every instance (keys by id, then teams by id): two instances'
        // flushes never deadlock.
        batch.sort_by_key(|(account, _)| *account);
        let seq = self
            .inner
            .seq
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let result = self.write(&batch, seq).await;
        self.record_outcome(&result, batch.len());
        if result.is_err() {
            // The commit may have landed: the deltas stay in `flushing` until the next flush
            // asks `ledger_instances`.
            *self.inner.in_doubt.lock() = Some(seq);
            self.inner
                .in_doubt_flag
                .store(true, std::sync::atomic::Ordering::SeqCst);
            return result;
        }
        let by_id: HashMap<AccountId, Arc<Entry>> = entries.into_iter().collect();
        for (account, _) in &batch {
            if let Some(entry) = by_id.get(account) {
                entry.account.lock().flushed();
            }
        }
        result
    }

    /// Grants must not read the row while a flush's outcome is unknown.
    fn not_in_doubt(&self) -> Result<()> {
        if self
            .inner
            .in_doubt_flag
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(EngineError::UsageNotLanding(
                "the last usage write's outcome is being checked".into(),
            ));
        }
        Ok(())
    }

    /// Keeps `failing` up to date with a flush's result.
    fn record_outcome(&self, result: &Result<()>, keys: usize) {
        {
            let mut failing = self.inner.failing.lock();
            match &result {
                Ok(()) => {
                    self.inner
                        .failing_flag
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    if failing.take().is_some() {
                        tracing::info!("usage reaches the database again; admission resumes");
                    }
                }
                Err(e) => {
                    if failing.is_none() {
                        tracing::warn!(error = %e, keys, "usage flush failed; kept in memory and retried with every flush (admission fails closed after 1 s)");
                    }
                    let since = failing.as_ref().map_or_else(Instant::now, |(t, _)| *t);
                    *failing = Some((since, e.to_string()));
                    self.inner
                        .failing_flag
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }

    async fn write(&self, batch: &[(AccountId, Pending)], seq: i64) -> Result<()> {
        let txn = self.inner.db.begin().await?;
        for (account, pending) in batch {
            for ((day, month), delta) in pending {
                store::apply(&txn, *account, day, month, delta).await?;
            }
        }
        store::record_flush(&txn, self.inner.instance, seq).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Gives back the leases of keys that another instance asked for.
    async fn answer_demands(&self) {
        let held: Vec<(AccountId, Arc<Entry>)> = self
            .inner
            .entries
            .read()
            .iter()
            .filter(|(_, e)| !e.account.lock().lease().is_zero())
            .map(|(id, e)| (*id, Arc::clone(e)))
            .collect();
        if held.is_empty() {
            return;
        }
        let ids: Vec<AccountId> = held.iter().map(|(id, _)| *id).collect();
        let demands = match store::demands(&self.inner.db, &ids).await {
            Ok(d) => d,
            Err(e) => {
                // Once per outage: the failing flush says the rest.
                if self.inner.failing.lock().is_none() {
                    tracing::warn!(error = %e, "cannot read lease demands");
                } else {
                    tracing::debug!(error = %e, "cannot read lease demands");
                }
                return;
            }
        };
        let by_id: HashMap<AccountId, i64> = demands.into_iter().collect();
        for (account, entry) in held {
            let Some(&demand) = by_id.get(&account) else {
                continue;
            };
            let mut account = entry.account.lock();
            if demand > account.demand_seen {
                account.demand_seen = demand;
                account.release();
                account.exact_until = Some(Instant::now() + EXACT_AFTER_DEMAND);
            }
        }
    }

    /// Flushes every [`LedgerConfig::flush_interval`] until `stop` resolves, then gives every
    /// lease back and flushes a last time.
    pub async fn run_flusher(self, stop: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(self.inner.config.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let _ = self.flush().await;
                }
                _ = &mut stop => break,
            }
        }
        if let Err(e) = self.shutdown().await {
            tracing::error!(error = %e, "the last usage flush failed");
        }
    }

    /// Gives every lease back and flushes (at SIGTERM, after the last request finished).
    /// Retried a few times: at shutdown, pooled connections opened on the proxy's runtimes
    /// fail once those runtimes are gone, and the pool replaces them.
    pub async fn shutdown(&self) -> Result<()> {
        for entry in self.inner.entries.read().values() {
            entry.account.lock().release();
        }
        let mut attempt = 0;
        loop {
            match self.flush().await {
                Ok(()) => {
                    if let Err(e) =
                        store::forget_instance(&self.inner.db, self.inner.instance).await
                    {
                        tracing::debug!(error = %e, "could not remove this instance's flush record");
                    }
                    return Ok(());
                }
                Err(e) if attempt >= SHUTDOWN_FLUSH_ATTEMPTS => return Err(e),
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// The room this instance holds for a key or team (tests and diagnostics).
    pub fn lease_of(&self, account: impl Into<AccountId>) -> Amount {
        self.inner
            .entries
            .read()
            .get(&account.into())
            .map(|e| e.account.lock().lease())
            .unwrap_or_default()
    }
}

/// A random id for this process's ledger (`ledger_instances`), never 0.
fn random_instance_id() -> i64 {
    use rand::RngCore as _;
    (rand::rngs::OsRng.next_u64() >> 1).max(1) as i64
}

/// `limits` lowered by `by` (per limit): what the row's own totals must fit in.
fn less(limits: &Limits, by: &Counters) -> Limits {
    Limits {
        daily_requests: limits.daily_requests.map(|l| l - by.day_requests),
        monthly_requests: limits.monthly_requests.map(|l| l - by.month_requests),
        daily_tokens: limits.daily_tokens.map(|l| l - by.day_tokens),
        monthly_tokens: limits.monthly_tokens.map(|l| l - by.month_tokens),
        daily_gpu_ms: limits.daily_gpu_ms.map(|l| l - by.day_gpu_ms),
        monthly_gpu_ms: limits.monthly_gpu_ms.map(|l| l - by.month_gpu_ms),
    }
}
