//! A key's sliding 60-second window, in 100 ms ticks, and (with several instances) the
//! per-minute grants this instance holds for the key.
//!
//! A use in tick `t` counts while the current tick is below `t + SPAN`: until the end of its
//! tick plus 60 s. Never less than a minute, at most 100 ms more: the limit holds over any
//! 60-second window, and `Retry-After` errs on the late side.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{PaceKind, PaceRefusal, Pacing};

pub(crate) type Tick = u64;

const TICK_MS: u64 = 100;
/// 60 s and one tick.
const SPAN: Tick = 60_000 / TICK_MS + 1;

pub(crate) fn tick_of(elapsed: Duration) -> Tick {
    u64::try_from(elapsed.as_millis() / u128::from(TICK_MS)).unwrap_or(Tick::MAX)
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tick: Tick,
    requests: i64,
    tokens: i64,
}

/// Room taken from the database's window for this instance (see `shared`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LocalGrant {
    pub(crate) id: i64,
    /// After this the grant's room may no longer be used (its lifetime, counted from when
    /// the statement was sent).
    pub(crate) expires: Instant,
    /// Room left in it.
    pub(crate) requests: i64,
    pub(crate) tokens: i64,
    /// What the database granted (what it holds until told what was used).
    pub(crate) granted_requests: i64,
    pub(crate) granted_tokens: i64,
}

#[derive(Debug, Default)]
pub(crate) struct Window {
    buckets: VecDeque<Bucket>,
    requests: i64,
    tokens: i64,
    grants: Vec<LocalGrant>,
}

impl Window {
    fn expire(&mut self, now: Tick) {
        while let Some(front) = self.buckets.front() {
            if front.tick + SPAN > now {
                break;
            }
            self.requests -= front.requests;
            self.tokens -= front.tokens;
            self.buckets.pop_front();
        }
    }

    /// Whether one more request with `prompt` tokens fits (a token window must also have
    /// room left at all: the answer's tokens come on top).
    pub(crate) fn check(
        &mut self,
        now: Tick,
        pacing: &Pacing,
        prompt: i64,
    ) -> Result<(), PaceRefusal> {
        self.expire(now);
        if let Some(limit) = pacing.requests_per_minute {
            let excess = self.requests + 1 - limit;
            if excess > 0 {
                return Err(PaceRefusal {
                    kind: PaceKind::RequestsPerMinute,
                    limit,
                    used: self.requests,
                    needed: 1,
                    retry_after: (limit > 0).then(|| self.wait(now, excess, |b| b.requests)),
                });
            }
        }
        if let Some(limit) = pacing.tokens_per_minute {
            let excess = (self.tokens + prompt - limit).max(self.tokens + 1 - limit);
            if excess > 0 {
                let fits_ever = prompt <= limit && limit > 0;
                return Err(PaceRefusal {
                    kind: PaceKind::TokensPerMinute,
                    limit,
                    used: self.tokens,
                    needed: prompt,
                    retry_after: fits_ever.then(|| self.wait(now, excess, |b| b.tokens)),
                });
            }
        }
        Ok(())
    }

    /// Time until uses adding up to `excess` have left the window.
    fn wait(&self, now: Tick, excess: i64, amount: fn(&Bucket) -> i64) -> Duration {
        let mut freed = 0;
        for bucket in &self.buckets {
            freed += amount(bucket);
            if freed >= excess {
                let ticks = (bucket.tick + SPAN).saturating_sub(now);
                return Duration::from_millis(ticks * TICK_MS);
            }
        }
        Duration::from_millis(SPAN * TICK_MS)
    }

    pub(crate) fn add(&mut self, now: Tick, requests: i64, tokens: i64) {
        self.expire(now);
        match self.buckets.back_mut() {
            Some(last) if last.tick == now => {
                last.requests += requests;
                last.tokens += tokens;
            }
            _ => self.buckets.push_back(Bucket {
                tick: now,
                requests,
                tokens,
            }),
        }
        self.requests += requests;
        self.tokens += tokens;
    }

    /// Takes back a use recorded in `tick` (no-op once it has left the window).
    pub(crate) fn remove(&mut self, tick: Tick, requests: i64, tokens: i64) {
        if let Some(bucket) = self.buckets.iter_mut().rev().find(|b| b.tick == tick) {
            let requests = requests.min(bucket.requests);
            let tokens = tokens.min(bucket.tokens);
            bucket.requests -= requests;
            bucket.tokens -= tokens;
            self.requests -= requests;
            self.tokens -= tokens;
        }
    }

    /// Requests and tokens in the window now.
    pub(crate) fn used(&mut self, now: Tick) -> (i64, i64) {
        self.expire(now);
        (self.requests, self.tokens)
    }

    /// Takes one request and `tokens` out of a live grant that has room for them (`tokens`
    /// is 0 when the key has no per-minute token limit: grants then hold no tokens).
    pub(crate) fn take_from_grants(&mut self, tokens: i64, now: Instant) -> Option<i64> {
        let grant = self
            .grants
            .iter_mut()
            .find(|g| now < g.expires && g.requests >= 1 && g.tokens >= tokens)?;
        grant.requests -= 1;
        grant.tokens -= tokens;
        Some(grant.id)
    }

    pub(crate) fn add_grant(&mut self, grant: LocalGrant) {
        self.grants.push(grant);
    }

    /// Puts room back into a grant that is still live; false when it is gone (the room then
    /// goes back to the database).
    pub(crate) fn give_back(&mut self, id: i64, requests: i64, tokens: i64, now: Instant) -> bool {
        match self
            .grants
            .iter_mut()
            .find(|g| g.id == id && now < g.expires)
        {
            Some(grant) => {
                grant.requests += requests;
                grant.tokens += tokens;
                true
            }
            None => false,
        }
    }

    /// Removes the grants past their lifetime; returns, for those that did not use all their
    /// room, what they used (the grant's row is set to it: an absolute value, so writing it
    /// twice does no harm).
    pub(crate) fn expire_grants(&mut self, now: Instant) -> Vec<(i64, i64, i64)> {
        let mut used = Vec::new();
        self.grants.retain(|g| {
            if now < g.expires {
                return true;
            }
            if g.requests > 0 || g.tokens > 0 {
                used.push((
                    g.id,
                    g.granted_requests - g.requests,
                    g.granted_tokens - g.tokens,
                ));
            }
            false
        });
        used
    }

    /// Ends every grant now (the instance stops).
    pub(crate) fn end_grants(&mut self) {
        let past = Instant::now();
        for grant in &mut self.grants {
            grant.expires = past;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rpm(limit: i64) -> Pacing {
        Pacing {
            requests_per_minute: Some(limit),
            ..Pacing::default()
        }
    }

    /// Five pass, the sixth waits until the first has been in the window for a full minute
    /// (and its tick is over), whatever tick the uses fell in: no double burst.
    #[test]
    fn sliding_requests() {
        let mut w = Window::default();
        for t in 0..5 {
            w.check(t * 10, &rpm(5), 0).unwrap();
            w.add(t * 10, 1, 0);
        }
        let refusal = w.check(45, &rpm(5), 0).unwrap_err();
        assert_eq!(refusal.kind, PaceKind::RequestsPerMinute);
        assert_eq!(refusal.used, 5);
        // The first use (tick 0) leaves at tick 601: 55.6 s after tick 45.
        assert_eq!(refusal.retry_after, Some(Duration::from_millis(556 * 100)));
        assert_eq!(refusal.retry_after_secs(), 56);
        assert!(w.check(600, &rpm(5), 0).is_err());
        w.check(601, &rpm(5), 0).unwrap();
        w.add(601, 1, 0);
        assert!(
            w.check(601, &rpm(5), 0).is_err(),
            "the second use is still in"
        );
        w.check(611, &rpm(5), 0).unwrap();
    }

    /// Tokens: the prompt must fit, and some room must be left for the answer; a prompt larger
    /// than the limit can never fit.
    #[test]
    fn tokens() {
        let tpm = Pacing {
            tokens_per_minute: Some(100),
            ..Pacing::default()
        };
        let mut w = Window::default();
        w.check(0, &tpm, 60).unwrap();
        w.add(0, 1, 60);
        let refusal = w.check(1, &tpm, 50).unwrap_err();
        assert_eq!(refusal.kind, PaceKind::TokensPerMinute);
        assert!(refusal.can_refill());
        w.check(1, &tpm, 40).unwrap();
        w.add(1, 1, 40);
        assert!(w.check(2, &tpm, 0).is_err(), "a full window admits nothing");
        let never = Window::default().check(0, &tpm, 101).unwrap_err();
        assert!(!never.can_refill());
        assert!(never.to_string().contains("shorter prompt"));
    }

    /// A per-minute limit of 0 never fits: no retry.
    #[test]
    fn zero_limit() {
        let refusal = Window::default().check(0, &rpm(0), 0).unwrap_err();
        assert!(!refusal.can_refill());
        assert!(refusal.to_string().contains("requests_per_minute is 0"));
    }

    /// A refund takes the use back out; the count never goes negative.
    #[test]
    fn remove() {
        let mut w = Window::default();
        w.add(3, 1, 10);
        w.remove(3, 1, 10);
        w.remove(3, 1, 10);
        assert_eq!(w.used(3), (0, 0));
    }

    /// Grants hand out their room until it or their lifetime runs out.
    #[test]
    fn grants() {
        let mut w = Window::default();
        let now = Instant::now();
        w.add_grant(LocalGrant {
            id: 7,
            expires: now + Duration::from_secs(2),
            requests: 2,
            tokens: 30,
            granted_requests: 3,
            granted_tokens: 40,
        });
        assert_eq!(w.take_from_grants(10, now), Some(7));
        assert_eq!(w.take_from_grants(25, now), None, "too few tokens left");
        assert!(w.give_back(7, 1, 10, now));
        // Used: 3 − 2 requests and 40 − 30 tokens.
        assert_eq!(
            w.expire_grants(now + Duration::from_secs(3)),
            vec![(7, 1, 10)]
        );
        assert!(!w.give_back(7, 1, 10, now));
    }
}
