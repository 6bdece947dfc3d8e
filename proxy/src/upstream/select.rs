//! Which host serves a request.
//!
//! 1. Only available hosts (resolved, not ejected by the health checks, not suspect after a
//!    failed connection) that this request has not tried yet.
//! 2. With a model: the hosts whose last `/api/tags` lists it (`llama3` matches
//!    `llama3:latest`). When none of those is available but some host lists the model, there
//!    is no host for the request ([`NoHost::ModelUnavailable`]): the hosts that serve it are
//!    down. When no host lists it at all (no list is known yet, or the model is new or
//!    misspelled), any available host may take it, those whose list is still unknown first;
//!    Ollama then answers for itself, e.g. its own 404 for an unknown model.
//! 3. Hosts at their `max_concurrency` are skipped ([`NoHost::AtCapacity`] when that leaves
//!    none).
//! 4. Among the rest: a host that has the model in memory (its last `/api/ps`) first, then the
//!    fewest requests in flight per unit of weight; ties go round-robin.

use std::cmp::Ordering as CmpOrdering;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::pool::{InflightGuard, Upstream, UpstreamPool};

/// The chosen host: its index in the pool (for the request's tried list) and the guard that
/// counts the request in flight there.
#[derive(Debug)]
pub struct Selected {
    pub index: usize,
    pub guard: InflightGuard,
}

/// Why no host can take a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoHost {
    /// Every host is down, unresolved, or was already tried for this request.
    Unavailable,
    /// Hosts list the model, but none of them is available.
    ModelUnavailable(String),
    /// The hosts that could take the request are all at their `max_concurrency`.
    AtCapacity,
}

impl UpstreamPool {
    /// Chooses a host for a request for `model` (`None`: any host will do), skipping the
    /// hosts in `tried`, and counts the request in flight there.
    pub fn select(&self, model: Option<&str>, tried: &[usize]) -> Result<Selected, NoHost> {
        let mut excluded = tried.to_vec();
        // A capped host may fill up between ranking and acquiring: rank again without it.
        for _ in 0..=self.hosts.len() {
            let index = self.rank(model, &excluded)?;
            let Some(host) = self.hosts.get(index) else {
                break;
            };
            if host.try_acquire() {
                return Ok(Selected {
                    index,
                    guard: InflightGuard {
                        upstream: Arc::clone(host),
                        queue: None,
                    },
                });
            }
            excluded.push(index);
        }
        Err(NoHost::AtCapacity)
    }

    /// Whether [`UpstreamPool::select`] would find a host now, and why not (for retry
    /// decisions).
    pub fn has_candidate(&self, model: Option<&str>, tried: &[usize]) -> Result<(), NoHost> {
        self.rank(model, tried).map(|_| ())
    }

    /// The index of the best host for `model` outside `excluded`, without counting anything.
    fn rank(&self, model: Option<&str>, excluded: &[usize]) -> Result<usize, NoHost> {
        let available: Vec<(usize, &Arc<Upstream>)> = self
            .hosts
            .iter()
            .enumerate()
            .filter(|(i, h)| h.is_available() && !excluded.contains(i))
            .collect();
        let candidates: Vec<(usize, &Arc<Upstream>)> = match model {
            None => available,
            Some(m) => {
                let serving: Vec<_> = available
                    .iter()
                    .copied()
                    .filter(|(_, h)| h.has_model(m) == Some(true))
                    .collect();
                if !serving.is_empty() {
                    serving
                } else if self.lists_model(m) {
                    return Err(NoHost::ModelUnavailable(m.to_owned()));
                } else {
                    let unknown: Vec<_> = available
                        .iter()
                        .copied()
                        .filter(|(_, h)| h.has_model(m).is_none())
                        .collect();
                    if unknown.is_empty() {
                        available
                    } else {
                        unknown
                    }
                }
            }
        };
        if candidates.is_empty() {
            return Err(NoHost::Unavailable);
        }
        let open: Vec<_> = candidates
            .into_iter()
            .filter(|(_, h)| h.has_room())
            .map(|(i, h)| {
                let score = Score {
                    loaded: model.is_some_and(|m| h.is_loaded(m)),
                    inflight: h.inflight(),
                    weight: u64::from(h.weight),
                };
                (i, score)
            })
            .collect();
        if open.is_empty() {
            return Err(NoHost::AtCapacity);
        }
        // Start the scan at a rotating position: the first of equally good hosts wins, and
        // which one is first changes with every request.
        let n = self.hosts.len().max(1);
        let start = self.cursor.fetch_add(1, Ordering::Relaxed) % n;
        let distance = |i: usize| (i + n - start) % n;
        let best = open.iter().min_by(|(ia, a), (ib, b)| {
            a.compare(b).then_with(|| distance(*ia).cmp(&distance(*ib)))
        });
        match best {
            Some((index, _)) => Ok(*index),
            None => Err(NoHost::Unavailable),
        }
    }
}

/// How good a host is for a request, at the moment of choosing.
#[derive(Clone, Copy, Debug)]
struct Score {
    /// The requested model is in the host's memory.
    loaded: bool,
    inflight: u64,
    weight: u64,
}

impl Score {
    /// `Less` when `self` is the better host: loaded first, then fewer requests in flight per
    /// unit of weight (compared as `a.inflight * b.weight` against `b.inflight * a.weight`, so
    /// no division and no rounding).
    fn compare(&self, other: &Score) -> CmpOrdering {
        other
            .loaded
            .cmp(&self.loaded)
            .then_with(|| (self.inflight * other.weight).cmp(&(other.inflight * self.weight)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::Utc;

    use super::*;
    use crate::config::UpstreamConfig;
    use crate::upstream::pool::tests::{configs, probe, thresholds};

    fn pool(configs: &[UpstreamConfig]) -> UpstreamPool {
        UpstreamPool::resolve(configs, &thresholds(), None)
    }

    fn learn(pool: &UpstreamPool, index: usize, models: &[&str], loaded: Option<&[&str]>) {
        pool.hosts[index].record_check(Ok(probe(models, loaded)), &thresholds(), Utc::now());
    }

    /// Requests go to the least busy host; guards give the slot back; tried hosts are skipped;
    /// with every host down there is no host.
    #[test]
    fn least_inflight() {
        let p = pool(&configs(2));
        let a = p.select(None, &[]).unwrap();
        let b = p.select(None, &[]).unwrap();
        assert_ne!(a.index, b.index);
        let first = a.index;
        drop(a);
        assert_eq!(p.select(None, &[]).unwrap().index, first);
        assert_eq!(p.select(None, &[first]).unwrap().index, b.index);
        assert_eq!(p.select(None, &[0, 1]).unwrap_err(), NoHost::Unavailable);
        p.request_failed(0);
        p.request_failed(1);
        assert_eq!(p.select(None, &[]).unwrap_err(), NoHost::Unavailable);
    }

    /// Sequential requests (nothing in flight) alternate between equal hosts.
    #[test]
    fn ties_rotate() {
        let p = pool(&configs(3));
        let mut seen = [0u32; 3];
        for _ in 0..30 {
            seen[p.select(None, &[]).unwrap().index] += 1;
        }
        assert_eq!(seen, [10, 10, 10]);
    }

    /// A host with weight 3 takes three times the requests in flight of a weight-1 host.
    #[test]
    fn weights() {
        let mut c = configs(2);
        c[0].weight = 3;
        let p = pool(&c);
        let guards: Vec<_> = (0..8).map(|_| p.select(None, &[]).unwrap()).collect();
        assert_eq!(p.hosts[0].inflight(), 6);
        assert_eq!(p.hosts[1].inflight(), 2);
        drop(guards);
    }

    /// A model listed by one host only always goes there; `llama3` matches `llama3:latest`;
    /// when that host is down the request has no host rather than landing on a host without
    /// the model.
    #[test]
    fn model_aware() {
        let p = pool(&configs(3));
        learn(&p, 0, &["llama3:latest"], None);
        learn(&p, 1, &["llama3:latest", "qwen3:0.6b"], None);
        learn(&p, 2, &["all-minilm:latest"], None);
        for _ in 0..10 {
            assert_eq!(p.select(Some("qwen3:0.6b"), &[]).unwrap().index, 1);
            assert_eq!(p.select(Some("all-minilm"), &[]).unwrap().index, 2);
            assert_ne!(p.select(Some("llama3"), &[]).unwrap().index, 2);
        }
        assert_eq!(
            p.select(Some("qwen3:0.6b"), &[1]).unwrap_err(),
            NoHost::ModelUnavailable("qwen3:0.6b".into())
        );
        p.request_failed(1);
        assert_eq!(
            p.select(Some("qwen3:0.6b"), &[]).unwrap_err(),
            NoHost::ModelUnavailable("qwen3:0.6b".into())
        );
        assert_eq!(p.select(Some("llama3:latest"), &[]).unwrap().index, 0);
    }

    /// Before any list is known every host qualifies; a model no host lists goes to hosts
    /// whose list is unknown first, then to any host (Ollama answers for itself).
    #[test]
    fn unknown_lists_fall_back() {
        let p = pool(&configs(2));
        let mut seen = [0u32; 2];
        for _ in 0..4 {
            seen[p.select(Some("llama3"), &[]).unwrap().index] += 1;
        }
        assert_eq!(seen, [2, 2]);
        learn(&p, 0, &["llama3:latest"], None);
        for _ in 0..4 {
            assert_eq!(p.select(Some("mystery"), &[]).unwrap().index, 1);
        }
        learn(&p, 1, &["qwen3:0.6b"], None);
        assert!(p.select(Some("mystery"), &[]).is_ok());
    }

    /// A host with the model in memory wins over a less busy one without it.
    #[test]
    fn loaded_first() {
        let p = pool(&configs(2));
        learn(
            &p,
            0,
            &["llama3:latest", "qwen3:0.6b"],
            Some(&["qwen3:0.6b"]),
        );
        learn(
            &p,
            1,
            &["llama3:latest", "qwen3:0.6b"],
            Some(&["llama3:latest"]),
        );
        let guards: Vec<_> = (0..3)
            .map(|_| p.select(Some("llama3"), &[]).unwrap())
            .collect();
        assert!(guards.iter().all(|g| g.index == 1));
        assert_eq!(p.select(Some("qwen3:0.6b"), &[]).unwrap().index, 0);
    }

    /// `max_concurrency` caps a host; the overflow goes elsewhere, and when every candidate is
    /// full the answer is "at capacity".
    #[test]
    fn concurrency_cap() {
        let mut c = configs(2);
        c[0].max_concurrency = Some(1);
        c[1].max_concurrency = Some(2);
        let p = pool(&c);
        let guards: Vec<_> = (0..3).map(|_| p.select(None, &[]).unwrap()).collect();
        assert_eq!((p.hosts[0].inflight(), p.hosts[1].inflight()), (1, 2));
        assert_eq!(p.select(None, &[]).unwrap_err(), NoHost::AtCapacity);
        assert_eq!(p.has_candidate(None, &[]), Err(NoHost::AtCapacity));
        drop(guards);
        assert_eq!(p.has_candidate(None, &[]), Ok(()));
    }

    /// Loaded beats load; among equals, fewer requests per weight wins.
    #[test]
    fn order() {
        let s = |loaded, inflight, weight| Score {
            loaded,
            inflight,
            weight,
        };
        assert_eq!(s(true, 5, 1).compare(&s(false, 0, 1)), CmpOrdering::Less);
        assert_eq!(s(false, 2, 2).compare(&s(false, 1, 1)), CmpOrdering::Equal);
        assert_eq!(s(false, 1, 2).compare(&s(false, 1, 1)), CmpOrdering::Less);
        assert_eq!(s(false, 0, 1).compare(&s(false, 1, 5)), CmpOrdering::Less);
    }
}
