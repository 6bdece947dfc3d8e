//! One account (a key's or a team's) in an instance's ledger: the lease it holds, the usage not yet flushed,
//! and what it last saw of the shared row. Pure bookkeeping, no I/O: [`super::Ledger`] calls it
//! under the key's mutex and does the database work around it.
//!
//! The invariant that makes leases exact: the shared row's `*_leased_*` columns hold, for this
//! instance, `lease + (−pending leased deltas)`: room granted and neither flushed as used nor
//! given back. Every operation below keeps it, so the row's `used + leased` never passes a limit
//! while each instance admits only out of its own lease.

use std::time::Instant;

use crate::gate::{Admission, Ask, Counters, Limits};
use crate::periods::PeriodKeys;

/// Requests, tokens and GPU milliseconds, for leases and grants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amount {
    pub requests: i64,
    pub tokens: i64,
    pub gpu_ms: i64,
}

impl Amount {
    /// Tokens only (what a request used when GPU time is not measured).
    pub fn tokens(tokens: i64) -> Amount {
        Amount {
            tokens,
            ..Amount::default()
        }
    }

    pub fn is_zero(&self) -> bool {
        self.requests == 0 && self.tokens == 0 && self.gpu_ms == 0
    }
}

/// What one flush adds to a key's row for one (day, month): `used_*` to the usage columns,
/// `leased_*` to the lease columns (negative: room used or given back).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub used_requests: i64,
    pub used_tokens: i64,
    pub used_gpu_ms: i64,
    pub leased_requests: i64,
    pub leased_tokens: i64,
    pub leased_gpu_ms: i64,
}

impl Delta {
    pub fn is_zero(&self) -> bool {
        *self == Delta::default()
    }

    pub fn add(&mut self, other: &Delta) {
        self.used_requests += other.used_requests;
        self.used_tokens += other.used_tokens;
        self.used_gpu_ms += other.used_gpu_ms;
        self.leased_requests += other.leased_requests;
        self.leased_tokens += other.leased_tokens;
        self.leased_gpu_ms += other.leased_gpu_ms;
    }
}

/// What a running answer grows, reserved at admission and extended in blocks while it runs:
/// its tokens, and the GPU time of its host. The two follow the same rules; these accessors
/// let one piece of code serve both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metered {
    Tokens,
    GpuMs,
}

impl Metered {
    pub const ALL: [Metered; 2] = [Metered::Tokens, Metered::GpuMs];

    pub fn of(self, amount: &Amount) -> i64 {
        match self {
            Metered::Tokens => amount.tokens,
            Metered::GpuMs => amount.gpu_ms,
        }
    }

    pub fn of_mut(self, amount: &mut Amount) -> &mut i64 {
        match self {
            Metered::Tokens => &mut amount.tokens,
            Metered::GpuMs => &mut amount.gpu_ms,
        }
    }

    /// (daily, monthly) limit of this kind.
    pub fn limits(self, limits: &Limits) -> [Option<i64>; 2] {
        match self {
            Metered::Tokens => [limits.daily_tokens, limits.monthly_tokens],
            Metered::GpuMs => [limits.daily_gpu_ms, limits.monthly_gpu_ms],
        }
    }

    pub fn is_limited(self, limits: &Limits) -> bool {
        self.limits(limits).iter().any(Option::is_some)
    }

    /// (day, month) counters of this kind.
    pub fn totals(self, c: &Counters) -> [i64; 2] {
        match self {
            Metered::Tokens => [c.day_tokens, c.month_tokens],
            Metered::GpuMs => [c.day_gpu_ms, c.month_gpu_ms],
        }
    }

    /// Adds `by` to the day and the month counter of this kind.
    fn add_to(self, c: &mut Counters, by: i64) {
        match self {
            Metered::Tokens => {
                c.day_tokens += by;
                c.month_tokens += by;
            }
            Metered::GpuMs => {
                c.day_gpu_ms += by;
                c.month_gpu_ms += by;
            }
        }
    }

    fn used_mut(self, d: &mut Delta) -> &mut i64 {
        match self {
            Metered::Tokens => &mut d.used_tokens,
            Metered::GpuMs => &mut d.used_gpu_ms,
        }
    }

    fn leased_mut(self, d: &mut Delta) -> &mut i64 {
        match self {
            Metered::Tokens => &mut d.leased_tokens,
            Metered::GpuMs => &mut d.leased_gpu_ms,
        }
    }

    /// What the admission holds of this kind so far.
    pub fn reserved(self, admission: &Admission) -> i64 {
        match self {
            Metered::Tokens => admission.reserved_tokens,
            Metered::GpuMs => admission.reserved_gpu_ms,
        }
    }

    pub fn reserved_mut(self, admission: &mut Admission) -> &mut i64 {
        match self {
            Metered::Tokens => &mut admission.reserved_tokens,
            Metered::GpuMs => &mut admission.reserved_gpu_ms,
        }
    }
}

/// (day label, month label) of the periods a delta belongs to.
pub type PeriodLabels = (String, String);

/// Unflushed deltas, by period (almost always one entry; two around midnight).
pub type Pending = Vec<(PeriodLabels, Delta)>;

/// Where a request's use is booked in one account: the periods it was admitted in and the
/// lease generation it was admitted from (a key's and its team's generations differ).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stake {
    pub day: String,
    pub month: String,
    pub generation: u64,
}

impl Stake {
    /// The key's side of an admission.
    pub fn of_key(admission: &Admission) -> Stake {
        Stake {
            day: admission.day.clone(),
            month: admission.month.clone(),
            generation: admission.lease_generation,
        }
    }

    /// The team's side of an admission (`None` without a team).
    pub fn of_team(admission: &Admission) -> Option<Stake> {
        admission.team.as_ref().map(|team| Stake {
            day: admission.day.clone(),
            month: admission.month.clone(),
            generation: team.lease_generation,
        })
    }

    pub fn labels(&self) -> PeriodLabels {
        (self.day.clone(), self.month.clone())
    }
}

/// What one account's lease can do for a request, read without changing the account
/// ([`Account::quote`]): the accounts of a request (its key's, its team's) are quoted first and
/// booked only if all of them can admit it, so admission is one step over all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    /// What the lease must give: see [`admission_need`].
    need: Amount,
    tokens_limited: bool,
    gpu_limited: bool,
    /// Under a token limit, for an answer: the room left after the prompt.
    token_room: Option<i64>,
    /// Under a GPU-time limit: the room left.
    gpu_room: Option<i64>,
    lease: Amount,
}

/// What a request holds once admitted by all its accounts: the same in each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Terms {
    pub reserved_tokens: i64,
    pub output_cap: Option<i64>,
    pub reserved_gpu_ms: i64,
    pub gpu_cap_ms: Option<i64>,
}

impl Terms {
    /// The tightest terms every quote allows: the output bounded by the least token room, a
    /// GPU block bounded by the least GPU room, each reservation within every lease that
    /// covers its kind.
    pub fn of(quotes: &[Quote], ask: &Ask, policy: &OutputPolicy) -> Terms {
        let least = |values: &mut dyn Iterator<Item = i64>| values.min();
        let gpu_cap_ms = least(&mut quotes.iter().filter_map(|q| q.gpu_room));
        let reserved_gpu_ms = match gpu_cap_ms {
            None => 0,
            Some(cap) => {
                let leases = least(
                    &mut quotes
                        .iter()
                        .filter(|q| q.gpu_limited)
                        .map(|q| q.lease.gpu_ms),
                )
                .unwrap_or(i64::MAX);
                policy.gpu_block_ms.max(1).min(cap).min(leases)
            }
        };
        let token_room = least(&mut quotes.iter().filter_map(|q| q.token_room));
        let (reserved_tokens, output_cap) = match token_room {
            Some(room) if ask.generates => {
                let cap = ask.client_output_limit.map_or(room, |c| c.min(room));
                let lease_room = least(
                    &mut quotes
                        .iter()
                        .filter(|q| q.tokens_limited)
                        .map(|q| q.lease.tokens - ask.prompt_tokens),
                )
                .unwrap_or(i64::MAX);
                let reserve = cap.min(policy.reservation).min(lease_room).max(0);
                (ask.prompt_tokens + reserve, Some(cap))
            }
            _ => (ask.prompt_tokens, None),
        };
        Terms {
            reserved_tokens,
            output_cap,
            reserved_gpu_ms,
            gpu_cap_ms,
        }
    }
}

/// What one account can add to a running answer ([`Account::offer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// No limit of that kind: any amount.
    Unlimited,
    /// This much out of the lease, and this much straight from the row's unleased room.
    Room { from_lease: i64, beyond: i64 },
    /// Nothing now; a grant may bring some.
    Pending,
    /// Nothing left.
    Exhausted,
}

impl Offer {
    pub fn total(self, want: i64) -> i64 {
        match self {
            Offer::Unlimited => want,
            Offer::Room { from_lease, beyond } => from_lease + beyond,
            Offer::Pending | Offer::Exhausted => 0,
        }
    }
}

/// What a key needs from the shared row before it can admit a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need {
    /// At least this much must be granted, or the request is refused.
    pub min: Amount,
    /// This much is asked for (a block: fewer statements while the key has room).
    pub want: Amount,
    /// The lease this was computed for (see [`Account::granted`]).
    pub generation: u64,
}

#[derive(Debug, Default)]
pub struct Account {
    /// The periods of `lease` and `base`; `None` before the first request.
    periods: Option<PeriodLabels>,
    /// The limits the lease was taken under: a change gives the lease back.
    limits: Limits,
    /// Room held by this instance and not yet used.
    lease: Amount,
    /// Bumped whenever the lease starts over (new periods or limits): admissions, grants and
    /// settlements of an older lease never touch the current one.
    generation: u64,
    /// The last block granted (sizes the refill-ahead threshold).
    last_grant: Amount,
    /// The shared row's used + leased per limit, as last seen and adjusted locally since: with
    /// `lease`, what this instance reports as remaining (`x-ratelimit-*`).
    base: Counters,
    pending: Pending,
    /// Deltas a flush has taken and not yet committed: still counted as this instance's until
    /// the row has them.
    flushing: Pending,
    /// The last `lease_demand` seen on the row (another instance asking for leases back).
    pub demand_seen: i64,
    /// Until then, grants are exactly what a request needs (another instance is short).
    pub exact_until: Option<Instant>,
    /// Leases held elsewhere that did not come back when asked (a stopped or crashed
    /// instance's): refusals with no more than this held elsewhere do not wait again, until
    /// the period changes or `stuck_since` is [`STUCK_FOR`] old.
    stuck: Amount,
    stuck_since: Option<Instant>,
    /// Requests of this key admitted here and not yet settled, and the tokens they hold
    /// (prompts and output reservations): the admin API's `in_flight`.
    in_flight: Amount,
}

/// How answers are bounded under a token or GPU-time limit (see [`Account::try_admit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputPolicy {
    /// Less room than this after the prompt: the request is refused.
    pub min_output: i64,
    /// Output tokens reserved at admission, and by each extension while a stream grows.
    pub reservation: i64,
    /// GPU milliseconds reserved at admission, and by each extension while an answer runs.
    pub gpu_block_ms: i64,
}

impl Default for OutputPolicy {
    fn default() -> OutputPolicy {
        OutputPolicy {
            min_output: 16,
            reservation: 256,
            gpu_block_ms: 5_000,
        }
    }
}

impl OutputPolicy {
    /// The block one reservation or extension of `kind` takes.
    pub fn block(&self, kind: Metered) -> i64 {
        match kind {
            Metered::Tokens => self.reservation,
            Metered::GpuMs => self.gpu_block_ms,
        }
    }
}

/// The answer to a stream's request for more output room ([`Account::extend`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extension {
    /// This many more tokens are reserved for the request (at most what was asked for).
    Granted(i64),
    /// Nothing is free in this instance's lease, but the shared row had room when last seen:
    /// a grant is on its way; ask again with the next chunk.
    Pending,
    /// The quota has no room left for this request: end the answer.
    Exhausted,
}

/// The most a grant may take per kind; `None` where no limit of that kind is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Room {
    pub requests: Option<i64>,
    pub tokens: Option<i64>,
    pub gpu_ms: Option<i64>,
}

impl Room {
    pub fn of(&self, kind: Metered) -> Option<i64> {
        match kind {
            Metered::Tokens => self.tokens,
            Metered::GpuMs => self.gpu_ms,
        }
    }
}

/// `a + b`, per counter.
pub fn counters_plus(a: &Counters, b: &Counters) -> Counters {
    Counters {
        day_requests: a.day_requests + b.day_requests,
        month_requests: a.month_requests + b.month_requests,
        day_tokens: a.day_tokens + b.day_tokens,
        month_tokens: a.month_tokens + b.month_tokens,
        day_gpu_ms: a.day_gpu_ms + b.day_gpu_ms,
        month_gpu_ms: a.month_gpu_ms + b.month_gpu_ms,
    }
}

/// How long leases held elsewhere are taken as stuck before they are asked for again.
pub const STUCK_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether the request's periods are older than the account's (it was timed before a
/// midnight the account has already passed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stale;

fn requests_limited(limits: &Limits) -> bool {
    limits.daily_requests.is_some() || limits.monthly_requests.is_some()
}

fn tokens_limited(limits: &Limits) -> bool {
    Metered::Tokens.is_limited(limits)
}

fn gpu_limited(limits: &Limits) -> bool {
    Metered::GpuMs.is_limited(limits)
}

/// What a lease must hold before a request is admitted from it: one request if requests are
/// limited; if tokens are, the prompt plus (for an answer) the least output worth
/// generating, at least one token so that an exhausted token quota refuses; if GPU time is,
/// one millisecond.
fn admission_need(limits: &Limits, ask: &Ask, policy: &OutputPolicy) -> Amount {
    let output = if ask.generates { policy.min_output } else { 0 };
    Amount {
        requests: i64::from(requests_limited(limits)),
        tokens: if tokens_limited(limits) {
            (ask.prompt_tokens + output).max(1)
        } else {
            0
        },
        gpu_ms: i64::from(gpu_limited(limits)),
    }
}

/// What a request would like to hold once admitted (tokens): its prompt and a full output
/// reservation (or the client's smaller limit).
fn full_reservation(ask: &Ask, policy: &OutputPolicy) -> i64 {
    if !ask.generates {
        return ask.prompt_tokens;
    }
    let output = ask
        .client_output_limit
        .map_or(policy.reservation, |c| c.min(policy.reservation));
    ask.prompt_tokens + output.max(0)
}

/// The tightest room left under the limits of one kind (requests or tokens), given the row's
/// used + leased; `None` when no limit of that kind is set.
fn room(limits: [Option<i64>; 2], totals: [i64; 2]) -> Option<i64> {
    limits
        .iter()
        .zip(totals)
        .filter_map(|(limit, total)| limit.map(|l| l - total))
        .min()
}

impl Account {
    fn labels(periods: &PeriodKeys) -> PeriodLabels {
        (periods.day.clone(), periods.month.clone())
    }

    fn is_current_labels(&self, labels: &PeriodLabels) -> bool {
        self.periods.as_ref() == Some(labels)
    }

    fn is_current(&self, periods: &PeriodKeys) -> bool {
        self.periods
            .as_ref()
            .is_some_and(|(d, m)| *d == periods.day && *m == periods.month)
    }

    fn pending_mut(&mut self, labels: &PeriodLabels) -> &mut Delta {
        let index = match self.pending.iter().position(|(l, _)| l == labels) {
            Some(i) => i,
            None => {
                self.pending.push((labels.clone(), Delta::default()));
                self.pending.len() - 1
            }
        };
        &mut self.pending[index].1
    }

    /// Gives the whole lease back (it goes to the row with the next flush).
    pub fn release(&mut self) {
        if self.lease.is_zero() {
            return;
        }
        let Some(labels) = self.periods.clone() else {
            return;
        };
        let lease = std::mem::take(&mut self.lease);
        let delta = self.pending_mut(&labels);
        delta.leased_requests -= lease.requests;
        delta.leased_tokens -= lease.tokens;
        delta.leased_gpu_ms -= lease.gpu_ms;
        self.base.day_requests -= lease.requests;
        self.base.month_requests -= lease.requests;
        Metered::Tokens.add_to(&mut self.base, -lease.tokens);
        Metered::GpuMs.add_to(&mut self.base, -lease.gpu_ms);
    }

    pub fn lease(&self) -> Amount {
        self.lease
    }

    /// Moves to the request's periods and limits, giving back a lease taken for others.
    /// Never backwards: a request whose periods are older than the account's is [`Stale`].
    fn align(&mut self, limits: &Limits, periods: &PeriodKeys) -> Result<(), Stale> {
        if self.is_current(periods) && self.limits == *limits {
            return Ok(());
        }
        if let Some((day, month)) = &self.periods {
            if periods.day < *day || periods.month < *month {
                return Err(Stale);
            }
        }
        self.release();
        if !self.is_current(periods) {
            self.base = Counters::default();
            self.stuck = Amount::default();
            self.stuck_since = None;
        }
        self.periods = Some(Self::labels(periods));
        self.limits = *limits;
        self.generation += 1;
        Ok(())
    }

    /// Whether the lease is the one for these periods and limits.
    pub fn is_aligned(&self, limits: &Limits, periods: &PeriodKeys) -> bool {
        self.is_current(periods) && self.limits == *limits
    }

    /// Leases held elsewhere that count as stuck now.
    pub fn stuck(&self) -> Amount {
        match self.stuck_since {
            Some(at) if at.elapsed() < STUCK_FOR => self.stuck,
            _ => Amount::default(),
        }
    }

    pub fn set_stuck(&mut self, held_elsewhere: Amount) {
        self.stuck = held_elsewhere;
        self.stuck_since = Some(Instant::now());
    }

    /// (The single-account form, for tests; the ledger books a request's accounts together.)
    #[cfg(test)]
    /// Admits from the lease when it holds enough; `None` when the shared row must be asked.
    /// A single account's admission: a key without a team (see [`Account::quote`]).
    pub fn try_admit(
        &mut self,
        key_id: i64,
        limits: &Limits,
        ask: &Ask,
        policy: &OutputPolicy,
        periods: &PeriodKeys,
    ) -> Result<Option<Admission>, Stale> {
        let Some(quote) = self.quote(limits, ask, policy, periods)? else {
            return Ok(None);
        };
        let terms = Terms::of(&[quote], ask, policy);
        let (counters, generation) = self.book_admission(&quote, &terms, periods);
        Ok(Some(Admission {
            key_id,
            day: periods.day.clone(),
            month: periods.month.clone(),
            reserved_tokens: terms.reserved_tokens,
            output_cap: terms.output_cap,
            reserved_gpu_ms: terms.reserved_gpu_ms,
            gpu_cap_ms: terms.gpu_cap_ms,
            counters,
            lease_generation: generation,
            team: None,
        }))
    }

    /// Whether the lease can admit the request, and on what terms (nothing changes but the
    /// alignment to the request's periods and limits); `None` when the shared row must be
    /// asked.
    ///
    /// Under a token limit, an answer's room is what remains of the tightest token quota (as
    /// this instance sees it: reservations in flight count as used) less the prompt; less than
    /// `policy.min_output` is not enough. [`Terms::of`] then reserves the prompt plus
    /// min(room, its own limit, `policy.reservation`) out of the lease. Under a GPU-time
    /// limit, a block of the room left, and the room as the request's cap.
    pub fn quote(
        &mut self,
        limits: &Limits,
        ask: &Ask,
        policy: &OutputPolicy,
        periods: &PeriodKeys,
    ) -> Result<Option<Quote>, Stale> {
        self.align(limits, periods)?;
        let need = admission_need(limits, ask, policy);
        if self.lease.requests < need.requests
            || self.lease.tokens < need.tokens
            || self.lease.gpu_ms < need.gpu_ms
            || self.exhausted(limits)
        {
            return Ok(None);
        }
        let gpu_room = if gpu_limited(limits) {
            let room = self.remaining(Metered::GpuMs, limits).unwrap_or(0);
            if room < 1 {
                return Ok(None);
            }
            Some(room)
        } else {
            None
        };
        let token_room = if tokens_limited(limits) && ask.generates {
            let room = self.remaining_tokens(limits).unwrap_or(i64::MAX) - ask.prompt_tokens;
            if room < policy.min_output {
                return Ok(None);
            }
            Some(room)
        } else {
            None
        };
        Ok(Some(Quote {
            need,
            tokens_limited: tokens_limited(limits),
            gpu_limited: gpu_limited(limits),
            token_room,
            gpu_room,
            lease: self.lease,
        }))
    }

    /// Counts an admitted request on `terms` (quoted by [`Account::quote`] under the lock
    /// still held): out of the lease for each kind this account limits, straight onto its
    /// total for the others. Returns the counters after it and the lease generation.
    pub fn book_admission(
        &mut self,
        quote: &Quote,
        terms: &Terms,
        periods: &PeriodKeys,
    ) -> (Counters, u64) {
        let reserved = Amount {
            requests: 1,
            tokens: terms.reserved_tokens,
            gpu_ms: terms.reserved_gpu_ms,
        };
        let from_lease = Amount {
            requests: quote.need.requests,
            tokens: if quote.tokens_limited {
                reserved.tokens
            } else {
                0
            },
            gpu_ms: if quote.gpu_limited {
                reserved.gpu_ms
            } else {
                0
            },
        };
        self.lease.requests -= from_lease.requests;
        self.lease.tokens -= from_lease.tokens;
        self.lease.gpu_ms -= from_lease.gpu_ms;
        let labels = Self::labels(periods);
        let delta = self.pending_mut(&labels);
        delta.used_requests += reserved.requests;
        delta.used_tokens += reserved.tokens;
        delta.used_gpu_ms += reserved.gpu_ms;
        delta.leased_requests -= from_lease.requests;
        delta.leased_tokens -= from_lease.tokens;
        delta.leased_gpu_ms -= from_lease.gpu_ms;
        // What did not come out of the lease moves the row's total as this instance sees it.
        self.base.day_requests += reserved.requests - from_lease.requests;
        self.base.month_requests += reserved.requests - from_lease.requests;
        for kind in Metered::ALL {
            kind.add_to(&mut self.base, kind.of(&reserved) - kind.of(&from_lease));
        }
        self.in_flight.requests += 1;
        self.in_flight.tokens += reserved.tokens;
        self.in_flight.gpu_ms += reserved.gpu_ms;
        (self.view(), self.generation)
    }

    /// What remains of the tightest token quota as this instance sees it (its lease
    /// included); `None` without a token limit.
    fn remaining_tokens(&self, limits: &Limits) -> Option<i64> {
        self.remaining(Metered::Tokens, limits)
    }

    /// What remains of the tightest quota of `kind` as this instance sees it (its lease
    /// included); `None` without such a limit.
    fn remaining(&self, kind: Metered, limits: &Limits) -> Option<i64> {
        room(kind.limits(limits), kind.totals(&self.view()))
    }

    /// Room of the tightest quota of `kind` that no instance holds, as last seen in the
    /// shared row (exact when this instance is the only one).
    fn unleased(&self, kind: Metered, limits: &Limits) -> Option<i64> {
        room(kind.limits(limits), kind.totals(&self.base))
    }

    /// (The single-account form, for tests; the ledger books a request's accounts together.)
    #[cfg(test)]
    /// Reserves up to `want` more of `kind` for a request whose answer outgrew its
    /// reservation, in this account alone (a key without a team; see [`Account::offer`]).
    pub fn extend(
        &mut self,
        kind: Metered,
        admission: &mut Admission,
        want: i64,
        direct: bool,
    ) -> Extension {
        let stake = Stake::of_key(admission);
        let offer = self.offer(kind, &stake, want, direct);
        match offer {
            Offer::Pending => Extension::Pending,
            Offer::Exhausted => Extension::Exhausted,
            _ => {
                let n = offer.total(want);
                self.take(kind, &stake, offer, n);
                *kind.reserved_mut(admission) += n;
                Extension::Granted(n)
            }
        }
    }

    /// What this account can add to a request's `kind` (up to `want`): from the lease, then
    /// (when this instance is the only one on the row, `direct`) from the row's unleased
    /// room, which it then knows exactly. Never past a limit. Nothing changes.
    pub fn offer(&self, kind: Metered, stake: &Stake, want: i64, direct: bool) -> Offer {
        if want <= 0 {
            return Offer::Room {
                from_lease: 0,
                beyond: 0,
            };
        }
        if !kind.is_limited(&self.limits) {
            return Offer::Unlimited;
        }
        // A lease taken since for other periods was checked without this request: it cannot
        // grow out of it. (New limits in the same periods are fine: the account's totals
        // still count the request.)
        let same_periods = self
            .periods
            .as_ref()
            .is_some_and(|(d, m)| *d == stake.day && *m == stake.month);
        if stake.generation != self.generation && !same_periods {
            return Offer::Exhausted;
        }
        let from_lease = want.min(kind.of(&self.lease).max(0));
        let unleased = self.unleased(kind, &self.limits).unwrap_or(0).max(0);
        let beyond = if direct {
            (want - from_lease).min(unleased)
        } else {
            0
        };
        if from_lease + beyond > 0 {
            Offer::Room { from_lease, beyond }
        } else if unleased > 0 {
            Offer::Pending
        } else {
            Offer::Exhausted
        }
    }

    /// Counts `n` more of `kind` as used by the request, within `offer` (from this account's
    /// [`Account::offer`], under the lock still held): out of the lease first, the rest
    /// straight onto the row's total.
    pub fn take(&mut self, kind: Metered, stake: &Stake, offer: Offer, n: i64) {
        let from_lease = match offer {
            Offer::Room { from_lease, .. } => n.min(from_lease),
            _ => 0,
        };
        let beyond = n - from_lease;
        *kind.of_mut(&mut self.lease) -= from_lease;
        kind.add_to(&mut self.base, beyond);
        let delta = self.pending_mut(&stake.labels());
        *kind.used_mut(delta) += n;
        *kind.leased_mut(delta) -= from_lease;
        *kind.of_mut(&mut self.in_flight) += n;
    }

    /// A request that held `reserved_tokens` and `reserved_gpu_ms` settled: it is no longer
    /// in flight.
    pub fn settled(&mut self, reserved_tokens: i64, reserved_gpu_ms: i64) {
        self.in_flight.requests -= 1;
        self.in_flight.tokens -= reserved_tokens;
        self.in_flight.gpu_ms -= reserved_gpu_ms;
    }

    pub fn in_flight(&self) -> Amount {
        self.in_flight
    }

    /// The lease's generation (see [`Account::granted`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The shared row showed `row_totals` (used + leased) in the periods of `labels`: with
    /// this instance's unflushed changes (taken now: a grant holds off flushes while it runs),
    /// that is the key's total as far as this instance knows.
    pub fn seen(&mut self, row_totals: Counters, generation: u64, labels: &PeriodKeys) {
        if generation != self.generation {
            return;
        }
        self.base = counters_plus(&row_totals, &self.unflushed(labels));
    }

    /// A token or GPU-time limit is used up as this instance sees it (an answer ran up to
    /// it): no request is admitted, whatever lease of that kind is left.
    pub fn exhausted(&self, limits: &Limits) -> bool {
        let view = self.view();
        Metered::ALL.into_iter().any(|kind| {
            kind.limits(limits)
                .iter()
                .zip(kind.totals(&view))
                .any(|(limit, used)| limit.is_some_and(|l| used >= l))
        })
    }

    /// Usage as this instance sees it: the row's used + leased, less the lease it holds.
    pub fn view(&self) -> Counters {
        Counters {
            day_requests: self.base.day_requests - self.lease.requests,
            month_requests: self.base.month_requests - self.lease.requests,
            day_tokens: self.base.day_tokens - self.lease.tokens,
            month_tokens: self.base.month_tokens - self.lease.tokens,
            day_gpu_ms: self.base.day_gpu_ms - self.lease.gpu_ms,
            month_gpu_ms: self.base.month_gpu_ms - self.lease.gpu_ms,
        }
    }

    /// What to ask the row for so that the request can be admitted: the minimum (see
    /// [`admission_need`]), and a block sized from the room this instance last saw (1/`divisor`
    /// of it, at most `max`, at least the request's full reservation), or exactly the full
    /// reservation when `exact`.
    #[allow(clippy::too_many_arguments)]
    pub fn need(
        &mut self,
        limits: &Limits,
        ask: &Ask,
        policy: &OutputPolicy,
        periods: &PeriodKeys,
        exact: bool,
        divisor: i64,
        max: Amount,
    ) -> Result<Need, Stale> {
        self.align(limits, periods)?;
        let need = admission_need(limits, ask, policy);
        let min = Amount {
            requests: (need.requests - self.lease.requests).max(0),
            tokens: (need.tokens - self.lease.tokens).max(0),
            gpu_ms: (need.gpu_ms - self.lease.gpu_ms).max(0),
        };
        let floor = Amount {
            requests: min.requests,
            tokens: if need.tokens > 0 {
                (full_reservation(ask, policy) - self.lease.tokens).max(min.tokens)
            } else {
                0
            },
            gpu_ms: if need.gpu_ms > 0 {
                (policy.gpu_block_ms - self.lease.gpu_ms).max(min.gpu_ms)
            } else {
                0
            },
        };
        if exact {
            return Ok(Need {
                min,
                want: floor,
                generation: self.generation,
            });
        }
        let view = self.view();
        let block = |floor: i64, room: Option<i64>, max: i64| {
            if floor == 0 && room.is_none() {
                return 0;
            }
            let share = room.unwrap_or(0).max(0) / divisor.max(1);
            share.clamp(floor, max.max(floor))
        };
        let want = Amount {
            requests: block(
                floor.requests,
                room(
                    [limits.daily_requests, limits.monthly_requests],
                    [view.day_requests, view.month_requests],
                ),
                max.requests,
            ),
            tokens: block(
                floor.tokens,
                room(
                    [limits.daily_tokens, limits.monthly_tokens],
                    [view.day_tokens, view.month_tokens],
                ),
                max.tokens,
            ),
            // GPU time mostly comes back (a block is reserved, milliseconds are used): the
            // lease is topped up to a block, not grown by one with every grant.
            gpu_ms: (block(
                floor.gpu_ms,
                room(Metered::GpuMs.limits(limits), Metered::GpuMs.totals(&view)),
                max.gpu_ms,
            ) - self.lease.gpu_ms)
                .max(floor.gpu_ms),
        };
        Ok(Need {
            min,
            want,
            generation: self.generation,
        })
    }

    /// The room under `limits` given the row's used + leased (`totals`), per kind: the most a
    /// grant may take. `None` where no limit of that kind is set.
    pub fn room_in(limits: &Limits, totals: &Counters) -> Room {
        Room {
            requests: room(
                [limits.daily_requests, limits.monthly_requests],
                [totals.day_requests, totals.month_requests],
            ),
            tokens: room(
                Metered::Tokens.limits(limits),
                Metered::Tokens.totals(totals),
            ),
            gpu_ms: room(Metered::GpuMs.limits(limits), Metered::GpuMs.totals(totals)),
        }
    }

    /// A grant for the lease of `generation` and the periods `labels` arrived: the row now
    /// shows `row_totals` (used + leased). If the lease has started over meanwhile (a request
    /// with new limits or periods), the grant was checked against the old ones: it is given
    /// back at once instead of being used.
    ///
    /// Alone on the row, extensions may have taken unleased room while the grant was in
    /// flight (the row did not know them yet): whatever of the grant now lies beyond a token
    /// limit goes straight back, so the row's used + leased stays within it.
    pub fn granted(
        &mut self,
        grant: Amount,
        row_totals: Counters,
        generation: u64,
        labels: &PeriodKeys,
    ) {
        if generation != self.generation {
            let delta = self.pending_mut(&Self::labels(labels));
            delta.leased_requests -= grant.requests;
            delta.leased_tokens -= grant.tokens;
            delta.leased_gpu_ms -= grant.gpu_ms;
            return;
        }
        self.lease.requests += grant.requests;
        self.lease.tokens += grant.tokens;
        self.lease.gpu_ms += grant.gpu_ms;
        self.last_grant = grant;
        self.seen(row_totals, generation, labels);
        for kind in Metered::ALL {
            let excess = kind
                .limits(&self.limits)
                .into_iter()
                .zip(kind.totals(&self.base))
                .filter_map(|(limit, total)| limit.map(|l| total - l))
                .max()
                .unwrap_or(0)
                .min(kind.of(&self.lease));
            if excess > 0 {
                *kind.of_mut(&mut self.lease) -= excess;
                kind.add_to(&mut self.base, -excess);
                *kind.leased_mut(self.pending_mut(&Self::labels(labels))) -= excess;
            }
        }
    }

    /// A quarter or less of the last block is left, and the blocks are large enough that
    /// asking ahead saves statements (exact grants near the limit are never asked ahead).
    pub fn runs_low(&self) -> bool {
        let low = |left: i64, block: i64| block >= 8 && left <= block / 4;
        let exact = self.exact_until.is_some_and(|t| Instant::now() < t);
        !exact
            && (low(self.lease.requests, self.last_grant.requests)
                || low(self.lease.tokens, self.last_grant.tokens)
                || low(self.lease.gpu_ms, self.last_grant.gpu_ms))
    }

    /// What this instance has changed in the row's used + leased (per limit) and not yet
    /// flushed: the row does not show it yet, so a grant must count it.
    pub fn unflushed(&self, periods: &PeriodKeys) -> Counters {
        let mut c = Counters::default();
        for ((day, month), d) in self.pending.iter().chain(self.flushing.iter()) {
            if *day == periods.day {
                c.day_requests += d.used_requests + d.leased_requests;
                c.day_tokens += d.used_tokens + d.leased_tokens;
                c.day_gpu_ms += d.used_gpu_ms + d.leased_gpu_ms;
            }
            if *month == periods.month {
                c.month_requests += d.used_requests + d.leased_requests;
                c.month_tokens += d.used_tokens + d.leased_tokens;
                c.month_gpu_ms += d.used_gpu_ms + d.leased_gpu_ms;
            }
        }
        c
    }

    /// This instance's share of the row's leased columns of the current month: its lease plus
    /// what it used out of leases or gave back and has not flushed yet.
    pub fn held(&self, periods: &PeriodKeys) -> Amount {
        let mut held = self.lease;
        for ((_, month), d) in self.pending.iter().chain(self.flushing.iter()) {
            if *month == periods.month {
                held.requests -= d.leased_requests;
                held.tokens -= d.leased_tokens;
                held.gpu_ms -= d.leased_gpu_ms;
            }
        }
        held
    }

    /// [`Account::charge_stake`] for a key without a team (tests).
    #[cfg(test)]
    pub fn charge(&mut self, admission: &Admission, change: Amount) {
        self.charge_stake(&Stake::of_key(admission), change);
    }

    /// Adds `change` (any part may be negative) to the usage of an admitted request's
    /// periods in this account: an increase is taken from the lease while it lasts, a decrease
    /// goes back to the lease, when the lease is of those periods and covers that kind.
    pub fn charge_stake(&mut self, stake: &Stake, change: Amount) {
        let labels = stake.labels();
        // Only the lease the request was admitted from takes its room back (or gives more):
        // a lease taken since under other limits was checked without it.
        let current = stake.generation == self.generation;
        let limits = self.limits;
        let mut from_lease = Amount::default();
        if current {
            if requests_limited(&limits) {
                from_lease.requests = Self::lease_part(change.requests, self.lease.requests);
            }
            for kind in Metered::ALL {
                if kind.is_limited(&limits) {
                    *kind.of_mut(&mut from_lease) =
                        Self::lease_part(kind.of(&change), kind.of(&self.lease));
                }
            }
            self.lease.requests -= from_lease.requests;
            // What did not come from (or go back to) the lease moves the row's total.
            self.base.day_requests += change.requests - from_lease.requests;
            self.base.month_requests += change.requests - from_lease.requests;
            for kind in Metered::ALL {
                *kind.of_mut(&mut self.lease) -= kind.of(&from_lease);
                kind.add_to(&mut self.base, kind.of(&change) - kind.of(&from_lease));
            }
        } else if self.is_current_labels(&labels) {
            // A lease taken since (new limits, same periods) does not take it, but the row's
            // total does: without this, usage given back would stay counted until the next
            // grant, and a key near its limit could be refused on it.
            self.base.day_requests += change.requests;
            self.base.month_requests += change.requests;
            for kind in Metered::ALL {
                kind.add_to(&mut self.base, kind.of(&change));
            }
        }
        let delta = self.pending_mut(&labels);
        delta.used_requests += change.requests;
        delta.used_tokens += change.tokens;
        delta.used_gpu_ms += change.gpu_ms;
        delta.leased_requests -= from_lease.requests;
        delta.leased_tokens -= from_lease.tokens;
        delta.leased_gpu_ms -= from_lease.gpu_ms;
    }

    /// How much of a change of `amount` the lease takes: all of a decrease (it goes back), an
    /// increase up to what the lease holds.
    fn lease_part(amount: i64, lease: i64) -> i64 {
        if amount <= 0 {
            amount
        } else {
            amount.min(lease.max(0))
        }
    }

    /// Takes the unflushed deltas for a flush; they still count as this instance's until
    /// [`Account::flushed`] or [`Account::flush_failed`].
    pub fn take_pending(&mut self) -> Pending {
        self.pending.retain(|(_, d)| !d.is_zero());
        self.flushing = std::mem::take(&mut self.pending);
        self.flushing.clone()
    }

    /// The flush committed: the row has the deltas now.
    pub fn flushed(&mut self) {
        self.flushing.clear();
    }

    /// The flush failed: its deltas go back to the pending ones, for the next flush.
    pub fn flush_failed(&mut self) {
        for (labels, delta) in std::mem::take(&mut self.flushing) {
            self.pending_mut(&labels).add(&delta);
        }
    }

    pub fn has_pending(&self) -> bool {
        self.pending.iter().any(|(_, d)| !d.is_zero())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::periods::Periods;

    impl Account {
        /// A grant for the current lease, as the ledger books it.
        fn granted_now(&mut self, grant: Amount, totals: Counters) {
            let (day, month) = self.periods.clone().unwrap();
            let mut labels = Periods::from_name("UTC").unwrap().at(chrono::Utc::now());
            labels.day = day;
            labels.month = month;
            self.granted(grant, totals, self.generation, &labels);
        }
    }

    const POLICY: OutputPolicy = OutputPolicy {
        min_output: 16,
        reservation: 256,
        gpu_block_ms: 5_000,
    };

    fn ask(prompt_tokens: i64) -> Ask {
        Ask {
            prompt_tokens,
            ..Ask::default()
        }
    }

    fn periods(at: &str) -> PeriodKeys {
        Periods::from_name("Europe/Berlin")
            .unwrap()
            .at(at.parse().unwrap())
    }

    fn daily(requests: i64) -> Limits {
        Limits {
            daily_requests: Some(requests),
            ..Default::default()
        }
    }

    fn sum(pending: &Pending) -> Delta {
        let mut total = Delta::default();
        for (_, d) in pending {
            total.add(d);
        }
        total
    }

    /// Admission takes one request out of the lease and moves it from leased to used.
    #[test]
    fn admission_moves_room_from_lease_to_usage() {
        let p = periods("2026-11-29T10:00:00Z");
        let mut a = Account::default();
        assert!(a
            .try_admit(1, &daily(10), &ask(0), &POLICY, &p)
            .unwrap()
            .is_none());
        a.granted_now(
            Amount {
                requests: 3,
                tokens: 0,
                gpu_ms: 0,
            },
            Counters {
                day_requests: 3,
                month_requests: 3,
                ..Default::default()
            },
        );
        for _ in 0..3 {
            assert!(a
                .try_admit(1, &daily(10), &ask(5), &POLICY, &p)
                .unwrap()
                .is_some());
        }
        assert!(a
            .try_admit(1, &daily(10), &ask(0), &POLICY, &p)
            .unwrap()
            .is_none());
        let d = sum(&a.take_pending());
        assert_eq!((d.used_requests, d.leased_requests), (3, -3));
        assert_eq!(d.used_tokens, 15);
        assert_eq!(d.leased_tokens, 0, "tokens are unlimited: no token lease");
    }

    /// A request that is refunded gives its request back to the lease, not to the row.
    #[test]
    fn refund_returns_to_the_lease() {
        let p = periods("2026-11-29T10:00:00Z");
        let mut a = Account::default();
        a.try_admit(1, &daily(10), &ask(0), &POLICY, &p).unwrap();
        a.granted_now(
            Amount {
                requests: 1,
                tokens: 0,
                gpu_ms: 0,
            },
            Counters::default(),
        );
        let adm = a
            .try_admit(1, &daily(10), &ask(0), &POLICY, &p)
            .unwrap()
            .unwrap();
        assert_eq!(a.lease().requests, 0);
        a.charge(
            &adm,
            Amount {
                requests: -1,
                tokens: 0,
                gpu_ms: 0,
            },
        );
        assert_eq!(a.lease().requests, 1);
        assert!(sum(&a.take_pending()).is_zero());
    }

    /// A new day gives the old day's lease back, booked to the old periods.
    #[test]
    fn a_new_period_releases_the_old_lease() {
        let day1 = periods("2026-11-29T10:00:00Z");
        let day2 = periods("2026-11-30T10:00:00Z");
        let mut a = Account::default();
        a.try_admit(1, &daily(10), &ask(0), &POLICY, &day1).unwrap();
        a.granted_now(
            Amount {
                requests: 4,
                tokens: 0,
                gpu_ms: 0,
            },
            Counters::default(),
        );
        assert!(a
            .try_admit(1, &daily(10), &ask(0), &POLICY, &day2)
            .unwrap()
            .is_none());
        let pending = a.take_pending();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].0 .0, day1.day);
        assert_eq!(pending[0].1.leased_requests, -4);
    }

    /// Blocks shrink with the room left, down to what one request needs.
    #[test]
    fn blocks_shrink_near_the_limit() {
        let p = periods("2026-11-29T10:00:00Z");
        let max = Amount {
            requests: 64,
            tokens: 1 << 16,
            gpu_ms: 0,
        };
        let mut a = Account::default();
        let far = a
            .need(&daily(10_000), &ask(0), &POLICY, &p, false, 16, max)
            .unwrap();
        assert_eq!(far.want.requests, 64);
        a.granted_now(
            Amount::default(),
            Counters {
                day_requests: 9_990,
                ..Default::default()
            },
        );
        let near = a
            .need(&daily(10_000), &ask(0), &POLICY, &p, false, 16, max)
            .unwrap();
        assert_eq!((near.min.requests, near.want.requests), (1, 1));
        let exact = a
            .need(&daily(10_000), &ask(0), &POLICY, &p, true, 16, max)
            .unwrap();
        assert_eq!(exact.want, exact.min);
    }

    /// A commit above the reservation is taken from the token lease first, the rest charged
    /// directly; a commit below it gives the difference back to the lease.
    #[test]
    fn commits_settle_against_the_token_lease() {
        let p = periods("2026-11-29T10:00:00Z");
        let limits = Limits {
            daily_tokens: Some(1_000),
            ..Default::default()
        };
        let mut a = Account::default();
        a.try_admit(1, &limits, &ask(10), &POLICY, &p).unwrap();
        a.granted_now(
            Amount {
                requests: 0,
                tokens: 50,
                gpu_ms: 0,
            },
            Counters {
                day_tokens: 50,
                month_tokens: 50,
                ..Default::default()
            },
        );
        let adm = a
            .try_admit(1, &limits, &ask(10), &POLICY, &p)
            .unwrap()
            .unwrap();
        assert_eq!(a.lease().tokens, 40);
        a.charge(
            &adm,
            Amount {
                requests: 0,
                tokens: 100,
                gpu_ms: 0,
            },
        );
        assert_eq!(a.lease().tokens, 0);
        assert_eq!(
            a.view().day_tokens,
            110,
            "10 + 40 from the lease + 60 beyond it"
        );
        let d = sum(&a.take_pending());
        assert_eq!((d.used_tokens, d.leased_tokens), (110, -50));
    }

    /// A request timed before a midnight the account has already passed is stale: the lease
    /// never moves back to the old day.
    #[test]
    fn periods_never_move_back() {
        let day1 = periods("2026-11-29T22:59:59Z");
        let day2 = periods("2026-11-29T23:00:00Z");
        let mut a = Account::default();
        a.try_admit(1, &daily(10), &ask(0), &POLICY, &day2).unwrap();
        assert_eq!(
            a.try_admit(1, &daily(10), &ask(0), &POLICY, &day1),
            Err(Stale)
        );
    }

    /// A grant checked against limits that changed before it was booked is given back, not
    /// used; a refund of a request admitted under the old limits does not refill the new lease.
    #[test]
    fn grants_and_refunds_of_an_older_lease_do_not_feed_the_new_one() {
        let p = periods("2026-11-29T10:00:00Z");
        let mut a = Account::default();
        a.try_admit(1, &daily(100), &ask(0), &POLICY, &p).unwrap();
        a.granted_now(
            Amount {
                requests: 2,
                tokens: 0,
                gpu_ms: 0,
            },
            Counters::default(),
        );
        let old = a
            .try_admit(1, &daily(100), &ask(0), &POLICY, &p)
            .unwrap()
            .unwrap();
        let need = a
            .need(
                &daily(100),
                &ask(0),
                &POLICY,
                &p,
                false,
                16,
                Amount {
                    requests: 64,
                    tokens: 0,
                    gpu_ms: 0,
                },
            )
            .unwrap();
        // The admin lowers the limit; a request with the new limits starts a new lease.
        assert!(a
            .try_admit(1, &daily(5), &ask(0), &POLICY, &p)
            .unwrap()
            .is_none());
        a.granted(need.want, Counters::default(), need.generation, &p);
        assert_eq!(a.lease(), Amount::default(), "the stale grant went back");
        a.charge(
            &old,
            Amount {
                requests: -1,
                tokens: 0,
                gpu_ms: 0,
            },
        );
        assert_eq!(
            a.lease(),
            Amount::default(),
            "the old refund went to usage only"
        );
        let d = sum(&a.take_pending());
        assert_eq!(d.used_requests, 0);
        assert_eq!(d.leased_requests, -2 - need.want.requests);
    }

    fn daily_tokens(limit: i64) -> Limits {
        Limits {
            daily_tokens: Some(limit),
            ..Default::default()
        }
    }

    fn answer(prompt_tokens: i64, client: Option<i64>) -> Ask {
        Ask {
            prompt_tokens,
            generates: true,
            client_output_limit: client,
        }
    }

    /// An account that holds the whole of a daily token limit in its lease.
    fn holding(limit: i64, p: &PeriodKeys) -> Account {
        let mut a = Account::default();
        a.try_admit(1, &daily_tokens(limit), &ask(0), &POLICY, p)
            .unwrap();
        a.granted_now(
            Amount {
                requests: 0,
                tokens: limit,
                gpu_ms: 0,
            },
            Counters {
                day_tokens: limit,
                month_tokens: limit,
                ..Default::default()
            },
        );
        a
    }

    /// An answer reserves its prompt and min(room, its own limit, the reservation block);
    /// its output cap is the room after the prompt (or the client's smaller limit).
    #[test]
    fn answers_reserve_a_block_and_are_capped_by_the_room() {
        let p = periods("2026-11-29T10:00:00Z");
        let mut a = holding(1_000, &p);
        let limits = daily_tokens(1_000);
        let adm = a
            .try_admit(1, &limits, &answer(100, None), &POLICY, &p)
            .unwrap()
            .unwrap();
        assert_eq!(adm.reserved_tokens, 100 + 256);
        assert_eq!(adm.output_cap, Some(900));
        let adm = a
            .try_admit(1, &limits, &answer(100, Some(50)), &POLICY, &p)
            .unwrap()
            .unwrap();
        assert_eq!((adm.reserved_tokens, adm.output_cap), (150, Some(50)));
        // 1000 - 356 - 150 = 494 left: the room after a 400-token prompt is 94.
        let adm = a
            .try_admit(1, &limits, &answer(400, None), &POLICY, &p)
            .unwrap()
            .unwrap();
        assert_eq!((adm.reserved_tokens, adm.output_cap), (494, Some(94)));
        assert_eq!(
            a.in_flight(),
            Amount {
                requests: 3,
                tokens: 1_000,
                gpu_ms: 0,
            }
        );
        // Nothing left: not even a prompt-only request of an answer passes.
        assert!(a
            .try_admit(1, &limits, &answer(0, None), &POLICY, &p)
            .unwrap()
            .is_none());
    }

    /// Room after the prompt below the minimum output is not admitted from the lease.
    #[test]
    fn too_little_room_for_an_answer_is_not_admitted() {
        let p = periods("2026-11-29T10:00:00Z");
        let mut a = holding(100, &p);
        let limits = daily_tokens(100);
        assert!(a
            .try_admit(1, &limits, &answer(90, None), &POLICY, &p)
            .unwrap()
            .is_none());
        let adm = a
            .try_admit(1, &limits, &answer(84, None), &POLICY, &p)
            .unwrap()
            .unwrap();
        assert_eq!((adm.reserved_tokens, adm.output_cap), (100, Some(16)));
    }

    /// A growing answer extends its reservation out of the lease, then (alone on the row) out
    /// of the row's unleased room, and is told when nothing is left; a request settled gives
    /// its unused reservation back.
    #[test]
    fn extensions_come_from_the_lease_then_the_row_then_stop() {
        let p = periods("2026-11-29T10:00:00Z");
        let limits = daily_tokens(1_000);
        let mut a = Account::default();
        a.try_admit(1, &limits, &ask(0), &POLICY, &p).unwrap();
        // 600 leased; the row shows 600 used + leased, so 400 are unleased.
        a.granted_now(
            Amount {
                requests: 0,
                tokens: 600,
                gpu_ms: 0,
            },
            Counters {
                day_tokens: 600,
                month_tokens: 600,
                ..Default::default()
            },
        );
        let mut adm = a
            .try_admit(1, &limits, &answer(10, None), &POLICY, &p)
            .unwrap()
            .unwrap();
        assert_eq!(adm.reserved_tokens, 266);
        assert_eq!(
            a.extend(Metered::Tokens, &mut adm, 256, true),
            Extension::Granted(256)
        );
        assert_eq!(a.lease().tokens, 600 - 266 - 256);
        // 78 from the lease, 178 from the unleased room.
        assert_eq!(
            a.extend(Metered::Tokens, &mut adm, 256, true),
            Extension::Granted(256)
        );
        assert_eq!(a.lease().tokens, 0);
        assert_eq!(
            a.extend(Metered::Tokens, &mut adm, 256, true),
            Extension::Granted(222)
        );
        assert_eq!(adm.reserved_tokens, 1_000);
        assert_eq!(
            a.extend(Metered::Tokens, &mut adm, 256, true),
            Extension::Exhausted
        );
        assert_eq!(a.view().day_tokens, 1_000);
        assert_eq!(a.in_flight().tokens, 1_000);
        a.settled(adm.reserved_tokens, 0);
        assert_eq!(a.in_flight(), Amount::default());
        let d = sum(&a.take_pending());
        assert_eq!((d.used_tokens, d.leased_tokens), (1_000, -600));
    }

    /// With other instances on the row, room outside the lease is only promised (a grant
    /// must take it first), and an extension of an older lease is refused.
    #[test]
    fn shared_extensions_wait_for_a_grant() {
        let p = periods("2026-11-29T10:00:00Z");
        let limits = daily_tokens(1_000);
        let mut a = Account::default();
        a.try_admit(1, &limits, &ask(0), &POLICY, &p).unwrap();
        a.granted_now(
            Amount {
                requests: 0,
                tokens: 300,
                gpu_ms: 0,
            },
            Counters {
                day_tokens: 300,
                month_tokens: 300,
                ..Default::default()
            },
        );
        let mut adm = a
            .try_admit(1, &limits, &answer(0, None), &POLICY, &p)
            .unwrap()
            .unwrap();
        assert_eq!(
            a.extend(Metered::Tokens, &mut adm, 256, false),
            Extension::Granted(44)
        );
        assert_eq!(
            a.extend(Metered::Tokens, &mut adm, 256, false),
            Extension::Pending
        );
        // A grant that did not fit showed the row full.
        let unflushed = a.unflushed(&p);
        a.seen(
            Counters {
                day_tokens: 1_000 - unflushed.day_tokens,
                month_tokens: 1_000 - unflushed.month_tokens,
                ..Default::default()
            },
            a.generation,
            &p,
        );
        assert_eq!(
            a.extend(Metered::Tokens, &mut adm, 256, false),
            Extension::Exhausted
        );
        // New limits start a new lease; the admission still grows in the same day (out of the
        // new limits' room), but not into another day's lease.
        a.try_admit(1, &daily_tokens(2_000), &ask(0), &POLICY, &p)
            .unwrap();
        assert_eq!(
            a.extend(Metered::Tokens, &mut adm, 1, true),
            Extension::Granted(1)
        );
        let tomorrow = periods("2026-11-30T10:00:00Z");
        a.try_admit(1, &daily_tokens(2_000), &ask(0), &POLICY, &tomorrow)
            .unwrap();
        assert_eq!(
            a.extend(Metered::Tokens, &mut adm, 1, true),
            Extension::Exhausted
        );
    }

    fn daily_gpu(ms: i64) -> Limits {
        Limits {
            daily_gpu_ms: Some(ms),
            ..Default::default()
        }
    }

    /// Under a GPU-time limit an admission reserves one block (or the room left, if less) and
    /// its cap is the room; a running answer extends by blocks out of the lease, then the
    /// row's unleased room, and is told when none is left; settling gives back what it did
    /// not use.
    #[test]
    fn gpu_time_is_reserved_in_blocks_and_capped_by_the_room() {
        let p = periods("2026-11-29T10:00:00Z");
        let limits = daily_gpu(12_000);
        let mut a = Account::default();
        a.try_admit(1, &limits, &ask(0), &POLICY, &p).unwrap();
        // 8 s leased; the row shows 8 s used + leased, so 4 s are unleased.
        a.granted_now(
            Amount {
                gpu_ms: 8_000,
                ..Amount::default()
            },
            Counters {
                day_gpu_ms: 8_000,
                month_gpu_ms: 8_000,
                ..Default::default()
            },
        );
        let mut adm = a
            .try_admit(1, &limits, &answer(10, None), &POLICY, &p)
            .unwrap()
            .unwrap();
        assert_eq!((adm.reserved_gpu_ms, adm.gpu_cap_ms), (5_000, Some(12_000)));
        assert_eq!(adm.reserved_tokens, 10, "tokens are not limited");
        // 3 s from the lease, 2 s from the unleased room; then 2 s more, then nothing.
        assert_eq!(
            a.extend(Metered::GpuMs, &mut adm, 5_000, true),
            Extension::Granted(5_000)
        );
        assert_eq!(
            a.extend(Metered::GpuMs, &mut adm, 5_000, true),
            Extension::Granted(2_000)
        );
        assert_eq!(
            a.extend(Metered::GpuMs, &mut adm, 5_000, true),
            Extension::Exhausted
        );
        assert_eq!(adm.reserved_gpu_ms, 12_000);
        assert!(a.exhausted(&limits));
        assert!(a
            .try_admit(1, &limits, &answer(0, None), &POLICY, &p)
            .unwrap()
            .is_none());
        // It used 9.5 s: 2.5 s go back to the lease.
        a.settled(adm.reserved_tokens, adm.reserved_gpu_ms);
        a.charge(
            &adm,
            Amount {
                gpu_ms: -2_500,
                ..Amount::default()
            },
        );
        assert_eq!(a.lease().gpu_ms, 2_500);
        assert_eq!(a.view().day_gpu_ms, 9_500);
        let d = sum(&a.take_pending());
        assert_eq!((d.used_gpu_ms, d.leased_gpu_ms), (9_500, -8_000 + 2_500));
    }

    /// Without a GPU-time limit nothing of it is reserved or refused, and an extension books
    /// what was asked (the key's usage still shows its GPU time).
    #[test]
    fn unlimited_gpu_time_is_booked_not_reserved() {
        let p = periods("2026-11-29T10:00:00Z");
        let mut a = Account::default();
        let mut adm = a
            .try_admit(1, &Limits::default(), &answer(5, None), &POLICY, &p)
            .unwrap()
            .unwrap();
        assert_eq!((adm.reserved_gpu_ms, adm.gpu_cap_ms), (0, None));
        assert_eq!(
            a.extend(Metered::GpuMs, &mut adm, 1_234, false),
            Extension::Granted(1_234)
        );
        assert_eq!(a.view().day_gpu_ms, 1_234);
        assert_eq!(sum(&a.take_pending()).used_gpu_ms, 1_234);
    }

    /// GPU time mostly comes back to the lease, so a grant tops the lease up to a block
    /// instead of adding one: a lease that holds a block asks for no more GPU time.
    #[test]
    fn gpu_grants_top_the_lease_up() {
        let p = periods("2026-11-29T10:00:00Z");
        let limits = Limits {
            daily_requests: Some(1_000_000),
            daily_gpu_ms: Some(1_000_000_000),
            ..Default::default()
        };
        let max = Amount {
            requests: 64,
            tokens: 0,
            gpu_ms: 600_000,
        };
        let mut a = Account::default();
        let first = a
            .need(&limits, &ask(0), &POLICY, &p, false, 16, max)
            .unwrap();
        assert_eq!(first.want.gpu_ms, 600_000);
        a.granted(first.want, Counters::default(), first.generation, &p);
        // The next grant (for requests, say) finds the GPU lease full.
        let next = a
            .need(&limits, &ask(0), &POLICY, &p, false, 16, max)
            .unwrap();
        assert_eq!(next.want.gpu_ms, 0);
        assert!(next.want.requests > 0);
    }

    /// GPU time an answer admitted under the old limits gives back after the limits changed
    /// (same day) leaves the key's usage at once: it is not counted until the next grant.
    #[test]
    fn usage_given_back_after_a_limit_change_leaves_the_view() {
        let p = periods("2026-11-29T10:00:00Z");
        let mut a = Account::default();
        let old = daily_gpu(10_000);
        a.try_admit(1, &old, &ask(0), &POLICY, &p).unwrap();
        a.granted_now(
            Amount {
                gpu_ms: 10_000,
                ..Amount::default()
            },
            Counters {
                day_gpu_ms: 10_000,
                month_gpu_ms: 10_000,
                ..Default::default()
            },
        );
        let adm = a
            .try_admit(1, &old, &answer(0, None), &POLICY, &p)
            .unwrap()
            .unwrap();
        assert_eq!(adm.reserved_gpu_ms, 5_000);
        // The admin lowers the limit: the lease goes back, the reservation stays counted.
        let new = daily_gpu(6_000);
        assert!(a
            .try_admit(1, &new, &ask(0), &POLICY, &p)
            .unwrap()
            .is_none());
        assert_eq!(a.view().day_gpu_ms, 5_000);
        // The answer used 1 s: 4 s go back, and the key has 5 s of room under the new limit.
        a.settled(adm.reserved_tokens, adm.reserved_gpu_ms);
        a.charge(
            &adm,
            Amount {
                gpu_ms: -4_000,
                ..Amount::default()
            },
        );
        assert_eq!(a.view().day_gpu_ms, 1_000);
        assert!(!a.exhausted(&new));
    }
}
