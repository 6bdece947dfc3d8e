//! The Ollama hosts behind the gateway: their health, their models, and the choice of one for
//! a request.
//!
//! The gateway asks [`UpstreamPool::select`] for a host that serves the request's model and
//! holds the returned [`InflightGuard`] while the request runs. A background service
//! ([`health::run`]) checks every host on an interval (`GET /api/tags`, then `GET /api/ps`),
//! ejects a host after `unhealthy_after` consecutive failures and restores it after
//! `healthy_after` successes; the model lists it learns drive selection and the merged
//! listings. A connection failure on the request path marks the host suspect at once (it is
//! skipped until a check succeeds) and wakes the checker.
//!
//! A pool is immutable once built; an override of `ollama_urls` builds a new one, and each
//! host whose URL is unchanged carries its state (health, counters, model lists, requests in
//! flight) over, so a rebuild neither forgets what the checker learned nor loses count of the
//! requests still running.
//!
//! # Layout
//! - [`pool`]: [`Upstream`], [`UpstreamPool`] (resolution, carry-over, merged model lists) and
//!   [`InflightGuard`].
//! - [`select`]: the selection rules ([`UpstreamPool::select`], [`NoHost`]).
//! - [`load`]: counted requests per model, running and waiting.
//! - [`queue`]: the fair queue for hosts at their `max_concurrency`.
//! - [`health`]: the health state machine, the probe and the checker loop.

pub mod health;
pub mod load;
pub mod pool;
pub mod queue;
pub mod select;

pub use load::ModelLoad;
pub use pool::{Catalog, InflightGuard, ModelEntry, Upstream, UpstreamPool};
pub use queue::{FairQueue, QueueError};
pub use select::{NoHost, Selected};

/// Whether two model names mean the same model: Ollama treats a name without a tag as
/// `name:latest` (`llama3` is `llama3:latest`).
pub fn same_model(a: &str, b: &str) -> bool {
    fn canonical(m: &str) -> &str {
        m.strip_suffix(":latest").unwrap_or(m)
    }
    canonical(a) == canonical(b)
}

#[cfg(test)]
mod tests {
    use super::same_model;

    /// `llama3` and `llama3:latest` are one model; other tags are not.
    #[test]
    fn model_names() {
        assert!(same_model("llama3", "llama3:latest"));
        assert!(same_model("llama3:latest", "llama3"));
        assert!(same_model("qwen3:0.6b", "qwen3:0.6b"));
        assert!(!same_model("llama3", "llama3:8b"));
        assert!(!same_model("llama3", "llama"));
    }
}
