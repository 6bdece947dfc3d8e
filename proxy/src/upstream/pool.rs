//! The hosts of one pool, the state each host keeps across pool rebuilds, and the merged model
//! list the gateway answers `/api/tags` and `/v1/models` from.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use pingora::prelude::HttpPeer;
use tokio::sync::Notify;

use super::health::{Health, Probe};
use super::same_model;
use crate::config::{HealthConfig, UpstreamConfig};

/// One model of a host's `/api/tags`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelEntry {
    /// `name` of the entry (`llama3:latest`).
    pub name: String,
    /// The whole entry as the host sent it (size, digest, details…), for the merged listing.
    pub entry: serde_json::Value,
}

/// What the health checks learned about a host.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// When the last check ended, successful or not.
    pub last_check: Option<DateTime<Utc>>,
    /// The host's models from its last successful `/api/tags`; `None` until one succeeded.
    pub models: Option<Vec<ModelEntry>>,
    /// The models in memory from its last `/api/ps`; `None` while `/api/ps` never answered.
    pub loaded: Option<Vec<String>>,
    /// Why the last check failed; `None` after a success.
    pub last_error: Option<String>,
}

/// The mutable state of one host. Shared (through an `Arc`) by every pool that contains the
/// host's URL, so that a pool rebuild keeps it; in-flight guards hold it too, so requests that
/// started before a rebuild still give their slot back to the right counter.
#[derive(Debug)]
struct HostState {
    /// Requests in flight; incremented by selection, decremented by [`InflightGuard`].
    inflight: AtomicU64,
    /// Times this host was chosen (the `selections_total` metric).
    selections: AtomicU64,
    /// Request-path failures: connections refused, lost before Ollama answered.
    failures: AtomicU64,
    /// Mirror of `health.available()`, read by every selection without taking the lock.
    available: AtomicBool,
    /// Written by the health checker and by request-path failures, rarely; a lock keeps the
    /// counters and the flags consistent with each other.
    health: Mutex<Health>,
    /// Replaced whole by each check; readers clone the `Arc`.
    catalog: RwLock<Arc<Catalog>>,
}

impl HostState {
    fn new() -> HostState {
        let health = Health::new();
        HostState {
            inflight: AtomicU64::new(0),
            selections: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            available: AtomicBool::new(health.available()),
            health: Mutex::new(health),
            catalog: RwLock::new(Arc::new(Catalog::default())),
        }
    }
}

/// One Ollama host.
#[derive(Debug)]
pub struct Upstream {
    /// `http://host:port`.
    pub url: String,
    /// `host:port`: the `Host` header Ollama expects.
    pub authority: String,
    /// Resolved when the pool is built (Pingora's peers need a socket address, and DNS on the
    /// request path would block). A host whose name does not resolve is never selected.
    pub addr: Option<SocketAddr>,
    pub weight: u32,
    /// `None` = no cap on requests in flight.
    pub max_concurrency: Option<u32>,
    /// What a second of this host's time counts as GPU time.
    pub gpu_weight: f64,
    state: Arc<HostState>,
}

impl Upstream {
    /// A host with fresh state (healthy until a check says otherwise).
    pub fn new(config: &UpstreamConfig, addr: Option<SocketAddr>) -> Upstream {
        Upstream::with_state(config, addr, Arc::new(HostState::new()))
    }

    fn with_state(
        config: &UpstreamConfig,
        addr: Option<SocketAddr>,
        state: Arc<HostState>,
    ) -> Upstream {
        Upstream {
            url: config.url.clone(),
            authority: config.authority.clone(),
            addr,
            weight: config.weight.max(1),
            max_concurrency: config.max_concurrency,
            gpu_weight: config.gpu_weight.get(),
            state,
        }
    }

    pub fn inflight(&self) -> u64 {
        self.state.inflight.load(Ordering::Relaxed)
    }

    pub fn selections(&self) -> u64 {
        self.state.selections.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.state.failures.load(Ordering::Relaxed)
    }

    /// Whether requests may go here: resolved, not ejected by the checks, not suspect after a
    /// failed connection.
    pub fn is_available(&self) -> bool {
        self.addr.is_some() && self.state.available.load(Ordering::Relaxed)
    }

    pub fn health(&self) -> Health {
        *self.state.health.lock()
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        Arc::clone(&self.state.catalog.read())
    }

    /// `Some(true)` when the host's last model list names `model`, `None` while no list is
    /// known.
    pub fn has_model(&self, model: &str) -> Option<bool> {
        let catalog = self.catalog();
        let models = catalog.models.as_ref()?;
        Some(models.iter().any(|m| same_model(&m.name, model)))
    }

    /// Whether the host's last `/api/ps` shows `model` in memory.
    pub fn is_loaded(&self, model: &str) -> bool {
        let catalog = self.catalog();
        catalog
            .loaded
            .as_ref()
            .is_some_and(|loaded| loaded.iter().any(|m| same_model(m, model)))
    }

    /// Whether another request fits under `max_concurrency`.
    pub fn has_room(&self) -> bool {
        self.max_concurrency
            .is_none_or(|cap| self.inflight() < u64::from(cap))
    }

    /// Counts one more request in flight, unless that would pass `max_concurrency` (checked
    /// and counted in one step, so concurrent selections cannot overshoot the cap).
    pub(super) fn try_acquire(&self) -> bool {
        let inflight = &self.state.inflight;
        let acquired = match self.max_concurrency {
            None => {
                inflight.fetch_add(1, Ordering::Relaxed);
                true
            }
            Some(cap) => inflight
                .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                    (n < u64::from(cap)).then_some(n + 1)
                })
                .is_ok(),
        };
        if acquired {
            self.state.selections.fetch_add(1, Ordering::Relaxed);
        }
        acquired
    }

    /// Records the outcome of a health check. Returns the availability before and after.
    pub fn record_check(
        &self,
        result: Result<Probe, String>,
        thresholds: &HealthConfig,
        now: DateTime<Utc>,
    ) -> (bool, bool) {
        let ok = result.is_ok();
        {
            let previous = self.catalog();
            let mut next = Catalog {
                last_check: Some(now),
                ..(*previous).clone()
            };
            match result {
                Ok(probe) => {
                    next.models = Some(probe.models);
                    // A host whose /api/ps failed this time keeps no stale "loaded" list.
                    next.loaded = probe.loaded;
                    next.last_error = None;
                }
                Err(e) => next.last_error = Some(e),
            }
            *self.state.catalog.write() = Arc::new(next);
        }
        self.update_health(|h| h.on_check(ok, thresholds))
    }

    /// A connection to the host failed on the request path: skip it until a check succeeds.
    /// Returns the availability before and after.
    pub fn record_request_failure(&self, thresholds: &HealthConfig) -> (bool, bool) {
        self.state.failures.fetch_add(1, Ordering::Relaxed);
        self.update_health(|h| h.on_request_failure(thresholds))
    }

    fn update_health(&self, change: impl FnOnce(&mut Health)) -> (bool, bool) {
        let mut health = self.state.health.lock();
        let before = health.available();
        change(&mut health);
        let after = health.available();
        self.state.available.store(after, Ordering::Relaxed);
        (before && self.addr.is_some(), after && self.addr.is_some())
    }

    /// A plain-HTTP Pingora peer for this host, or `None` when its name never resolved.
    pub fn http_peer(&self, connect_timeout: Duration) -> Option<HttpPeer> {
        let mut peer = HttpPeer::new(self.addr?, false, String::new());
        peer.options.connection_timeout = Some(connect_timeout);
        peer.options.total_connection_timeout = Some(connect_timeout);
        Some(peer)
    }
}

/// Gives a request's slot back to its host when the request ends, however it ends.
#[derive(Debug)]
pub struct InflightGuard {
    pub upstream: Arc<Upstream>,
    /// The fair queue that the freed slot goes to (when requests wait in it).
    pub queue: Option<Arc<super::queue::FairQueue>>,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.upstream.state.inflight.fetch_sub(1, Ordering::SeqCst);
        if let Some(queue) = &self.queue {
            // Fenced inside: a request that joined the queue meanwhile is served.
            queue.dispatch();
        }
    }
}

/// The configured hosts, in order. Immutable: a change of `ollama_urls` builds a new pool
/// (see [`UpstreamPool::resolve`]).
#[derive(Debug)]
pub struct UpstreamPool {
    pub(super) hosts: Vec<Arc<Upstream>>,
    pub(super) thresholds: HealthConfig,
    /// Where selection starts looking among equally good hosts, so sequential requests
    /// spread instead of always landing on the first host.
    pub(super) cursor: AtomicUsize,
    /// Wakes the health checker early: a host turned suspect, or new hosts await their first
    /// check. The same `Notify` is passed from pool to pool, so the checker, which waits on
    /// it, hears a pool built after it started waiting.
    wake: Arc<Notify>,
}

impl UpstreamPool {
    /// Resolves each host's name (blocking: call at startup or from a blocking task). A host
    /// whose URL was in `previous` keeps its state; a host whose name does not resolve is kept
    /// but never selected.
    pub fn resolve(
        configs: &[UpstreamConfig],
        thresholds: &HealthConfig,
        previous: Option<&UpstreamPool>,
    ) -> UpstreamPool {
        let hosts = configs
            .iter()
            .map(|c| {
                let old = previous.and_then(|p| p.hosts.iter().find(|h| h.url == c.url));
                let addr = match c.authority.to_socket_addrs().ok().and_then(|mut a| a.next()) {
                    Some(addr) => Some(addr),
                    // A name that stopped resolving keeps the address it had.
                    None => old.and_then(|h| h.addr),
                };
                if addr.is_none() {
                    tracing::warn!(upstream = %c.url, "cannot resolve the Ollama host name; it will not be used");
                }
                let state = old.map_or_else(|| Arc::new(HostState::new()), |h| Arc::clone(&h.state));
                Arc::new(Upstream::with_state(c, addr, state))
            })
            .collect();
        UpstreamPool {
            hosts,
            thresholds: thresholds.clone(),
            cursor: AtomicUsize::new(0),
            wake: previous.map_or_else(|| Arc::new(Notify::new()), |p| Arc::clone(&p.wake)),
        }
    }

    pub fn hosts(&self) -> &[Arc<Upstream>] {
        &self.hosts
    }

    pub fn thresholds(&self) -> &HealthConfig {
        &self.thresholds
    }

    /// Asks the health checker to run now (for suspect and never-checked hosts).
    pub fn request_check(&self) {
        self.wake.notify_one();
    }

    /// What the health checker waits on between rounds.
    pub fn wake(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// A connection to host `index` failed on the request path: mark it suspect and have it
    /// checked at once, so a dead host stops receiving requests now and a live one comes back
    /// within a check.
    pub fn request_failed(&self, index: usize) {
        let Some(host) = self.hosts.get(index) else {
            return;
        };
        let (before, after) = host.record_request_failure(&self.thresholds);
        if before && !after {
            tracing::warn!(upstream = %host.url, "Ollama host failed on a request; skipping it until a health check passes");
        }
        self.request_check();
    }

    /// Whether any host's last model list names `model` (healthy or not).
    pub fn lists_model(&self, model: &str) -> bool {
        self.hosts.iter().any(|h| h.has_model(model) == Some(true))
    }

    /// The `/api/tags` entries of every available host whose list is known, merged by name
    /// (the first host listing a name wins; hosts in configuration order, entries in the
    /// host's order). `None` when no available host's list is known yet.
    pub fn merged_models(&self) -> Option<Vec<serde_json::Value>> {
        let mut known = false;
        let mut seen = std::collections::HashSet::new();
        let mut merged = Vec::new();
        for host in self.hosts.iter().filter(|h| h.is_available()) {
            let catalog = host.catalog();
            let Some(models) = &catalog.models else {
                continue;
            };
            known = true;
            for model in models {
                if seen.insert(model.name.clone()) {
                    merged.push(model.entry.clone());
                }
            }
        }
        known.then_some(merged)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(crate) fn thresholds() -> HealthConfig {
        HealthConfig {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            unhealthy_after: 2,
            healthy_after: 1,
        }
    }

    pub(crate) fn configs(n: usize) -> Vec<UpstreamConfig> {
        (0..n)
            .map(|i| {
                crate::config::parse_upstream(&format!("http://127.0.0.1:{}", 20000 + i)).unwrap()
            })
            .collect()
    }

    pub(crate) fn probe(models: &[&str], loaded: Option<&[&str]>) -> Probe {
        Probe {
            models: models
                .iter()
                .map(|m| ModelEntry {
                    name: (*m).to_owned(),
                    entry: serde_json::json!({ "name": m }),
                })
                .collect(),
            loaded: loaded.map(|l| l.iter().map(|m| (*m).to_owned()).collect()),
        }
    }

    /// A rebuilt pool keeps the state of hosts whose URL is unchanged, and only theirs.
    #[test]
    fn rebuild_carries_state_over() {
        let t = thresholds();
        let all = configs(3);
        let first = UpstreamPool::resolve(&all[..2], &t, None);
        first.hosts[0].record_check(Ok(probe(&["llama3:latest"], None)), &t, Utc::now());
        first.request_failed(1);
        first.request_failed(1);
        let guard = first.select(None, &[]).unwrap().guard;
        assert_eq!(guard.upstream.url, first.hosts[0].url);

        let second = UpstreamPool::resolve(&[all[0].clone(), all[2].clone()], &t, Some(&first));
        assert_eq!(second.hosts[0].has_model("llama3"), Some(true));
        assert_eq!(
            second.hosts[0].inflight(),
            1,
            "in flight before the rebuild"
        );
        assert_eq!(
            second.hosts[1].has_model("llama3"),
            None,
            "a new host starts unknown"
        );
        assert!(second.hosts[1].is_available());
        drop(guard);
        assert_eq!(
            second.hosts[0].inflight(),
            0,
            "the old guard frees the new pool's slot"
        );

        assert_eq!(first.hosts[1].failures(), 2);
        assert!(!first.hosts[1].is_available());
        // host 1 was left out of the second pool: coming back, it starts afresh
        let third = UpstreamPool::resolve(&all[..2], &t, Some(&second));
        assert!(third.hosts[1].is_available());
        assert_eq!(third.hosts[1].failures(), 0);
    }

    /// The merged list is the union by name over available hosts, first host first; unknown
    /// lists are skipped and `None` means no list is known at all.
    #[test]
    fn merged_models() {
        let t = thresholds();
        let pool = UpstreamPool::resolve(&configs(3), &t, None);
        assert_eq!(pool.merged_models(), None);
        pool.hosts[0].record_check(Ok(probe(&["a:latest", "b:1"], None)), &t, Utc::now());
        pool.hosts[1].record_check(Ok(probe(&["b:1", "c:latest"], None)), &t, Utc::now());
        let names = |v: Vec<serde_json::Value>| -> Vec<String> {
            v.iter()
                .map(|e| e["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            names(pool.merged_models().unwrap()),
            ["a:latest", "b:1", "c:latest"]
        );
        pool.request_failed(0);
        assert_eq!(names(pool.merged_models().unwrap()), ["b:1", "c:latest"]);
    }
}
