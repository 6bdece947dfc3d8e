//! Pacing: what a key may do per minute and at once, beside its daily and monthly quotas.
//!
//! - **Per-minute limits** (`requests_per_minute`, `tokens_per_minute`) over a sliding
//!   60-second [`window`]: a request is admitted when one more request, and its prompt
//!   tokens, fit in what the key used in the last 60 seconds; the rest of its tokens are
//!   added when it finishes ([`Pacer::finish`]). Time is counted in 100 ms ticks, and a use
//!   counts until the end of its tick plus 60 s: never less than a minute, so there is no
//!   double burst at a minute boundary.
//! - With **several instances** on one database ([`shared`]), each instance admits only out
//!   of per-minute grants it took from the key's `pacing_grants` with one locked statement:
//!   the grants of the last minute (plus a grant's short lifetime) never add up to more than
//!   the limit, so the instances together stay within it over any window.
//! - **Parallel requests** ([`parallel`]): over `max_parallel_requests`, a request waits in
//!   its key's queue (first come, first served) until one of the key's requests finishes.
//!
//! Keys without pacing take none of these paths: no lock, no allocation.

mod parallel;
mod shared;
mod window;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use sea_orm::DatabaseConnection;

pub use parallel::ParallelPermit;
use window::{Tick, Window};

use crate::{EngineError, Result};

/// The most requests one grant takes.
const GRANT_BLOCK_MAX: i64 = 64;
/// How often grants older than any window are deleted.
const CLEANUP_EVERY: Duration = Duration::from_secs(10);

/// The id a key's or a team's pacing is kept under (its window, parallel slots and
/// `pacing_grants` rows): a key's id, a team's id negated. Ids are positive, so they never meet.
pub fn pace_id(account: crate::gate::AccountId) -> i64 {
    match account {
        crate::gate::AccountId::Key(id) => id,
        crate::gate::AccountId::Team(id) => -id,
    }
}

/// The highest fair-queue priority.
pub const MAX_PRIORITY: i64 = 10;

/// A key's pacing: `None` = unlimited; `priority` 1–10 (its weight in the fair queue).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacing {
    pub requests_per_minute: Option<i64>,
    pub tokens_per_minute: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub priority: i64,
}

impl Default for Pacing {
    fn default() -> Pacing {
        Pacing {
            requests_per_minute: None,
            tokens_per_minute: None,
            max_parallel_requests: None,
            priority: 1,
        }
    }
}

impl Pacing {
    /// Limits are non-negative integers or null; the priority an integer from 1 to 10.
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("requests_per_minute", self.requests_per_minute),
            ("tokens_per_minute", self.tokens_per_minute),
            ("max_parallel_requests", self.max_parallel_requests),
        ] {
            if value.is_some_and(|v| v < 0) {
                return Err(EngineError::Invalid(format!(
                    "{field}: must be a non-negative integer or null"
                )));
            }
        }
        if !(1..=MAX_PRIORITY).contains(&self.priority) {
            return Err(EngineError::Invalid(format!(
                "priority: must be an integer from 1 to {MAX_PRIORITY} (got {})",
                self.priority
            )));
        }
        Ok(())
    }

    /// Whether a per-minute limit is set (the window is kept only then).
    pub fn per_minute(&self) -> bool {
        self.requests_per_minute.is_some() || self.tokens_per_minute.is_some()
    }

    /// The priority as stored (validated to 1–10 before it is written).
    pub fn priority_column(&self) -> i32 {
        i32::try_from(self.priority.clamp(1, MAX_PRIORITY)).unwrap_or(1)
    }
}

/// An edit of the pacing fields: `None` leaves a field, `Some(None)` makes a limit unlimited
/// (and the priority the default, 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacingPatch {
    pub requests_per_minute: Option<Option<i64>>,
    pub tokens_per_minute: Option<Option<i64>>,
    pub max_parallel_requests: Option<Option<i64>>,
    pub priority: Option<Option<i64>>,
}

impl PacingPatch {
    pub fn apply(&self, mut pacing: Pacing) -> Pacing {
        if let Some(v) = self.requests_per_minute {
            pacing.requests_per_minute = v;
        }
        if let Some(v) = self.tokens_per_minute {
            pacing.tokens_per_minute = v;
        }
        if let Some(v) = self.max_parallel_requests {
            pacing.max_parallel_requests = v;
        }
        if let Some(v) = self.priority {
            pacing.priority = v.unwrap_or(1);
        }
        pacing
    }
}

/// Which pacing limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaceKind {
    RequestsPerMinute,
    TokensPerMinute,
    MaxParallelRequests,
}

impl PaceKind {
    /// The metric label of the refusal (`requests_per_minute`…), also the key object's field.
    pub fn label(self) -> &'static str {
        match self {
            PaceKind::RequestsPerMinute => "requests_per_minute",
            PaceKind::TokensPerMinute => "tokens_per_minute",
            PaceKind::MaxParallelRequests => "max_parallel_requests",
        }
    }
}

/// A per-minute refusal, with what a person needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaceRefusal {
    pub kind: PaceKind,
    pub limit: i64,
    /// Used in the last 60 seconds (on this instance; with several, what the grants showed).
    pub used: i64,
    /// Tokens: the request's prompt.
    pub needed: i64,
    /// Until the window has room for the request; `None` when it never will (a prompt larger
    /// than the per-minute token limit).
    pub retry_after: Option<Duration>,
}

impl PaceRefusal {
    /// Whole seconds for `Retry-After`: 1 to 60 (60 when the window can never fit it). The
    /// window keeps a use up to 100 ms past its minute; clients (openai-python among them)
    /// ignore a `Retry-After` above 60, so the wait is said as 60 and a retry that comes those
    /// few milliseconds early is refused with a fresh 1.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.map_or(60, |d| {
            u64::try_from(d.as_millis().div_ceil(1000))
                .unwrap_or(60)
                .clamp(1, 60)
        })
    }

    /// Whether waiting helps (the request fits in an empty window).
    pub fn can_refill(&self) -> bool {
        self.retry_after.is_some()
    }
}

impl std::fmt::Display for PaceRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            PaceKind::RequestsPerMinute | PaceKind::MaxParallelRequests
                if self.retry_after.is_none() =>
            {
                return write!(
                    f,
                    "{} is 0 for this key: it may not send requests; ask the operator",
                    self.kind.label()
                )
            }
            PaceKind::RequestsPerMinute => write!(
                f,
                "requests per minute limit exceeded (limit {}, used {} in the last 60 s)",
                self.limit, self.used
            )?,
            PaceKind::TokensPerMinute if self.retry_after.is_none() => {
                return write!(
                    f,
                    "tokens per minute limit exceeded: this request's prompt needs {} tokens, \
                     more than the limit of {} allows in a minute; send a shorter prompt",
                    self.needed, self.limit
                )
            }
            PaceKind::TokensPerMinute => write!(
                f,
                "tokens per minute limit exceeded (limit {}, used {} in the last 60 s; this \
                 request needs {} tokens)",
                self.limit, self.used, self.needed
            )?,
            PaceKind::MaxParallelRequests => {
                return write!(
                    f,
                    "max parallel requests reached (limit {}): the key's other requests did not \
                     finish in time; retry when one of them is done",
                    self.limit
                )
            }
        }
        write!(f, "; retry in {} s", self.retry_after_secs())
    }
}

/// A request admitted by the per-minute limits: what it took, so that it can be given back
/// (it consumed nothing) or completed with the tokens of its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaceTicket {
    key_id: i64,
    tick: Tick,
    tokens: i64,
    /// With several instances: the grant it was taken from, and the tokens taken from it.
    grant: Option<i64>,
    grant_tokens: i64,
}

/// How much of its per-minute limits a key has left (for the key's own quota endpoint).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MinuteRemaining {
    pub requests: Option<i64>,
    pub tokens: Option<i64>,
}

struct KeyPace {
    window: Mutex<Window>,
    slots: parallel::Slots,
    /// Shared mode: one grant statement at a time per key. Requests that find no room in
    /// the live grants wait for the grant in flight instead of each taking a block (which
    /// would hold most of the limit unused in parallel grants).
    granting: tokio::sync::Mutex<()>,
}

struct Inner {
    db: DatabaseConnection,
    shared: bool,
    epoch: Instant,
    keys: RwLock<HashMap<i64, Arc<KeyPace>>>,
    /// Shared mode: completion tokens and unused grant room on their way to the database.
    outbox: Mutex<shared::Outbox>,
    /// When old grants were last deleted.
    cleaned: Mutex<Instant>,
}

/// Per-key pacing state of one process. Cheap to clone.
#[derive(Clone)]
pub struct Pacer {
    inner: Arc<Inner>,
}

impl Pacer {
    /// `shared`: other instances use the same database (PostgreSQL), so per-minute room is
    /// taken from the database in grants.
    pub fn new(db: DatabaseConnection, shared: bool) -> Pacer {
        Pacer {
            inner: Arc::new(Inner {
                db,
                shared,
                epoch: Instant::now(),
                keys: RwLock::new(HashMap::new()),
                outbox: Mutex::new(shared::Outbox::default()),
                cleaned: Mutex::new(Instant::now()),
            }),
        }
    }

    fn key(&self, key_id: i64) -> Arc<KeyPace> {
        if let Some(k) = self.inner.keys.read().get(&key_id) {
            return Arc::clone(k);
        }
        let mut keys = self.inner.keys.write();
        Arc::clone(keys.entry(key_id).or_insert_with(|| {
            Arc::new(KeyPace {
                window: Mutex::new(Window::default()),
                slots: parallel::Slots::default(),
                granting: tokio::sync::Mutex::new(()),
            })
        }))
    }

    fn now(&self) -> Tick {
        window::tick_of(self.inner.epoch.elapsed())
    }

    /// Admits a request under the key's per-minute limits, counting it and its prompt in the
    /// window; `Ok(None)` when the key has none.
    pub async fn admit(
        &self,
        key_id: i64,
        pacing: &Pacing,
        prompt_tokens: i64,
    ) -> Result<std::result::Result<Option<PaceTicket>, PaceRefusal>> {
        if !pacing.per_minute() {
            return Ok(Ok(None));
        }
        let prompt = prompt_tokens.max(0);
        let key = self.key(key_id);
        let now = self.now();
        if let Err(refusal) = key.window.lock().check(now, pacing, prompt) {
            return Ok(Err(refusal));
        }
        let grant = if self.inner.shared {
            match self.take_grant(&key, key_id, pacing, prompt).await? {
                Ok(grant) => Some(grant),
                Err(refusal) => return Ok(Err(refusal)),
            }
        } else {
            None
        };
        let now = self.now();
        let mut window = key.window.lock();
        // Checked again: concurrent requests of the key may have filled the window meanwhile
        // (in shared mode the grant already holds the room: record it either way).
        if grant.is_none() {
            if let Err(refusal) = window.check(now, pacing, prompt) {
                return Ok(Err(refusal));
            }
        }
        window.add(now, 1, prompt);
        Ok(Ok(Some(PaceTicket {
            key_id,
            tick: now,
            tokens: prompt,
            grant,
            grant_tokens: if pacing.tokens_per_minute.is_some() {
                prompt
            } else {
                0
            },
        })))
    }

    /// Shared mode: one request and its prompt's tokens (when the key has a per-minute token
    /// limit) out of a live grant, or out of a new one.
    async fn take_grant(
        &self,
        key: &KeyPace,
        key_id: i64,
        pacing: &Pacing,
        prompt: i64,
    ) -> Result<std::result::Result<i64, PaceRefusal>> {
        let tokens = if pacing.tokens_per_minute.is_some() {
            prompt
        } else {
            0
        };
        if let Some(id) = key.window.lock().take_from_grants(tokens, Instant::now()) {
            return Ok(Ok(id));
        }
        let _turn = key.granting.lock().await;
        // The grant that this request waited for may cover it.
        if let Some(id) = key.window.lock().take_from_grants(tokens, Instant::now()) {
            return Ok(Ok(id));
        }
        let sent = Instant::now();
        // A sixteenth of the limit per grant (the last units one by one).
        let want_requests = pacing
            .requests_per_minute
            .map_or(GRANT_BLOCK_MAX, |l| (l / 16).clamp(1, GRANT_BLOCK_MAX));
        let want_tokens = pacing.tokens_per_minute.map_or(0, |l| (l / 16).max(tokens));
        let granted = match shared::grant(
            &self.inner.db,
            key_id,
            pacing,
            want_requests,
            want_tokens,
            tokens,
        )
        .await?
        {
            Ok(granted) => granted,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let expires = sent + shared::GRANT_LIFETIME;
        if Instant::now() >= expires {
            // The statement took longer than a grant may be used: its room is outside what
            // the check covered. Nothing of it is used.
            self.inner.outbox.lock().used_of_grant(granted.id, 0, 0);
            return Err(EngineError::Invalid(
                "the per-minute grant took too long to arrive; try again".into(),
            ));
        }
        key.window.lock().add_grant(window::LocalGrant {
            id: granted.id,
            expires,
            requests: granted.requests - 1,
            tokens: granted.tokens - tokens,
            granted_requests: granted.requests,
            granted_tokens: granted.tokens,
        });
        Ok(Ok(granted.id))
    }

    /// Room of a live grant that a request did not use after all. Once the grant has
    /// expired, the room stays counted until it leaves the window (the strict side).
    fn give_back(&self, key: &KeyPace, grant: i64, tokens: i64) {
        key.window
            .lock()
            .give_back(grant, 1, tokens, Instant::now());
    }

    /// Gives back what an admitted request took (it was refused later, or failed before
    /// reaching Ollama: it consumed nothing).
    pub fn refund(&self, ticket: &PaceTicket) {
        let key = self.key(ticket.key_id);
        key.window.lock().remove(ticket.tick, 1, ticket.tokens);
        if let Some(grant) = ticket.grant {
            self.give_back(&key, grant, ticket.grant_tokens);
        }
    }

    /// Adds the tokens a finished request used beyond its prompt to the window.
    pub fn finish(&self, ticket: &PaceTicket, total_tokens: i64) {
        let extra = total_tokens - ticket.tokens;
        if extra <= 0 {
            return;
        }
        let key = self.key(ticket.key_id);
        key.window.lock().add(self.now(), 0, extra);
        if self.inner.shared {
            self.inner.outbox.lock().used(ticket.key_id, extra);
        }
    }

    /// Waits for a parallel slot of the key (FIFO within the key) for at most `timeout`;
    /// `Ok(None)` when the key has no cap.
    pub async fn enter(
        &self,
        key_id: i64,
        pacing: &Pacing,
        timeout: Duration,
    ) -> std::result::Result<Option<ParallelPermit>, PaceRefusal> {
        let Some(cap) = pacing.max_parallel_requests else {
            return Ok(None);
        };
        let key = self.key(key_id);
        parallel::enter(key, cap, timeout).await.map(Some)
    }

    /// Requests of the key waiting for a parallel slot on this instance.
    pub fn waiting(&self, key_id: i64) -> usize {
        self.inner
            .keys
            .read()
            .get(&key_id)
            .map_or(0, |k| k.slots.waiting())
    }

    /// What the key has left of its per-minute limits on this instance's view.
    pub fn remaining(&self, key_id: i64, pacing: &Pacing) -> MinuteRemaining {
        let (requests, tokens) = match self.inner.keys.read().get(&key_id) {
            Some(k) => k.window.lock().used(self.now()),
            None => (0, 0),
        };
        MinuteRemaining {
            requests: pacing.requests_per_minute.map(|l| (l - requests).max(0)),
            tokens: pacing.tokens_per_minute.map(|l| (l - tokens).max(0)),
        }
    }

    /// Shared mode: writes completion tokens and what expired grants used (their unused room
    /// goes back); drops grants older than any window. Called by [`Pacer::run_flusher`].
    pub async fn flush(&self) -> Result<()> {
        if !self.inner.shared {
            return Ok(());
        }
        let keys: Vec<Arc<KeyPace>> = self.inner.keys.read().values().cloned().collect();
        {
            let mut outbox = self.inner.outbox.lock();
            for key in &keys {
                for (grant, requests, tokens) in key.window.lock().expire_grants(Instant::now()) {
                    outbox.used_of_grant(grant, requests, tokens);
                }
            }
        }
        let batch = {
            let mut outbox = self.inner.outbox.lock();
            let mut last = self.inner.cleaned.lock();
            if last.elapsed() >= CLEANUP_EVERY {
                *last = Instant::now();
                outbox.want_cleanup();
            }
            std::mem::take(&mut *outbox)
        };
        if batch.is_empty() {
            return Ok(());
        }
        if let Err(e) = shared::write(&self.inner.db, &batch).await {
            // Kept for the next flush: completion tokens are never dropped, and a grant's use
            // is an absolute value (writing it twice does no harm).
            self.inner.outbox.lock().merge(batch);
            return Err(e);
        }
        Ok(())
    }

    /// Flushes every 100 ms until `stop` resolves, then once more.
    pub async fn run_flusher(self, stop: impl std::future::Future<Output = ()>) {
        if !self.inner.shared {
            stop.await;
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = self.flush().await {
                        tracing::debug!(error = %e, "per-minute usage flush failed; retried");
                    }
                }
                _ = &mut stop => break,
            }
        }
        for key in self.inner.keys.read().values() {
            key.window.lock().end_grants();
        }
        if let Err(e) = self.flush().await {
            tracing::warn!(error = %e, "the last per-minute usage flush failed");
        }
    }
}
