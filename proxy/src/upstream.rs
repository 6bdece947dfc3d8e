//! The Ollama hosts behind the gateway, and the choice of one for a request.
//!
//! This is the seam for several hosts: the gateway asks [`UpstreamPool::select`] for a host
//! and holds an [`InflightGuard`] while the request runs. Health checks and model-aware
//! selection plug in here without touching the gateway.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::UpstreamConfig;

/// One Ollama host.
#[derive(Debug)]
pub struct Upstream {
    /// `http://host:port`.
    pub url: String,
    /// `host:port`: the `Host` header Ollama expects.
    pub authority: String,
    /// Resolved once when the pool is built (Pingora's peers need a socket address, and DNS
    /// on the request path would block).
    pub addr: Option<SocketAddr>,
    pub weight: u32,
    pub max_concurrency: Option<u32>,
    /// Requests in flight on this host; incremented by `select`, decremented by the guard.
    inflight: AtomicU64,
    healthy: AtomicBool,
}

impl Upstream {
    pub fn inflight(&self) -> u64 {
        self.inflight.load(Ordering::Relaxed)
    }
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed) && self.addr.is_some()
    }
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }
}

/// Decrements the host's in-flight count when the request ends, however it ends.
#[derive(Debug)]
pub struct InflightGuard {
    pub upstream: Arc<Upstream>,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.upstream.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The configured hosts, in order.
#[derive(Debug, Default)]
pub struct UpstreamPool {
    hosts: Vec<Arc<Upstream>>,
}

impl UpstreamPool {
    /// Resolves each host's name (blocking: call at startup or from a blocking task). A host
    /// whose name does not resolve is kept but never selected.
    pub fn resolve(configs: &[UpstreamConfig]) -> UpstreamPool {
        let hosts = configs
            .iter()
            .map(|c| {
                let addr = c.authority.to_socket_addrs().ok().and_then(|mut a| a.next());
                if addr.is_none() {
                    tracing::warn!(upstream = %c.url, "cannot resolve the Ollama host name; it will not be used");
                }
                Arc::new(Upstream {
                    url: c.url.clone(),
                    authority: c.authority.clone(),
                    addr,
                    weight: c.weight.max(1),
                    max_concurrency: c.max_concurrency,
                    inflight: AtomicU64::new(0),
                    healthy: AtomicBool::new(true),
                })
            })
            .collect();
        UpstreamPool { hosts }
    }

    pub fn hosts(&self) -> &[Arc<Upstream>] {
        &self.hosts
    }

    /// The healthy host with the fewest requests in flight per unit of weight, skipping hosts
    /// already tried for this request and hosts at their concurrency cap. Counts the request
    /// as in flight on the chosen host.
    pub fn select(&self, tried: &[usize]) -> Option<(usize, InflightGuard)> {
        let (index, upstream) = self
            .hosts
            .iter()
            .enumerate()
            .filter(|(i, u)| u.is_healthy() && !tried.contains(i))
            .filter(|(_, u)| {
                u.max_concurrency
                    .is_none_or(|cap| u.inflight() < u64::from(cap))
            })
            .min_by(|(_, a), (_, b)| {
                // a.inflight / a.weight < b.inflight / b.weight, without division
                (a.inflight() * u64::from(b.weight)).cmp(&(b.inflight() * u64::from(a.weight)))
            })?;
        upstream.inflight.fetch_add(1, Ordering::Relaxed);
        Some((
            index,
            InflightGuard {
                upstream: Arc::clone(upstream),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pool(n: usize) -> UpstreamPool {
        let configs: Vec<_> = (0..n)
            .map(|i| {
                crate::config::parse_upstream(&format!("http://127.0.0.1:{}", 20000 + i)).unwrap()
            })
            .collect();
        UpstreamPool::resolve(&configs)
    }

    /// Requests spread to the least busy host; guards give the slot back; tried hosts are skipped.
    #[test]
    fn least_inflight() {
        let p = pool(2);
        let (a, ga) = p.select(&[]).unwrap();
        let (b, _gb) = p.select(&[]).unwrap();
        assert_ne!(a, b);
        drop(ga);
        assert_eq!(p.select(&[]).unwrap().0, a);
        assert_eq!(p.select(&[a]).unwrap().0, b);
        assert!(p.select(&[0, 1]).is_none());
        p.hosts()[0].set_healthy(false);
        p.hosts()[1].set_healthy(false);
        assert!(p.select(&[]).is_none());
    }
}
