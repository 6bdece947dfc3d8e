//! Health checks: the per-host state machine, the probe (`GET /api/tags`, then `GET /api/ps`)
//! and the checker loop that runs as a Pingora background service.
//!
//! - A check succeeds when `/api/tags` answers 200 with a `models` array within
//!   `ollama.health.timeout_ms`; the list becomes the host's model list. `/api/ps` is asked
//!   next for the models in memory; its failure does not fail the check (older Ollama, or a
//!   proxy in front of it, may not have it).
//! - `unhealthy_after` consecutive failures eject a host, `healthy_after` consecutive
//!   successes restore it.
//! - A connection failure on the request path counts as a failure and makes the host suspect:
//!   it is skipped at once (so a pool whose hosts all died answers 502 without waiting for the
//!   next round) and checked at once; the first successful check clears it.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use chrono::Utc;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use super::pool::{ModelEntry, Upstream, UpstreamPool};
use crate::config::HealthConfig;

/// Largest `/api/tags` or `/api/ps` answer read from a host.
const LISTING_LIMIT: usize = 8 * 1024 * 1024;

/// A host's health, as the checks and the request path have seen it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    /// False once `unhealthy_after` consecutive failures ejected the host, until
    /// `healthy_after` consecutive successful checks restore it.
    pub healthy: bool,
    /// A request could not reach the host since its last successful check.
    pub suspect: bool,
    /// Consecutive failures (checks and request-path connection failures).
    pub failures: u32,
    /// Consecutive successful checks.
    pub successes: u32,
}

impl Health {
    /// A host nobody has checked yet is given the benefit of the doubt: requests may go there
    /// before the first round ends, and a failed connection marks it suspect at once anyway.
    pub const fn new() -> Health {
        Health {
            healthy: true,
            suspect: false,
            failures: 0,
            successes: 0,
        }
    }

    /// Whether requests may go to the host.
    pub fn available(&self) -> bool {
        self.healthy && !self.suspect
    }

    pub fn on_check(&mut self, ok: bool, thresholds: &HealthConfig) {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            self.suspect = false;
            if !self.healthy && self.successes >= thresholds.healthy_after {
                self.healthy = true;
            }
        } else {
            self.fail(thresholds);
        }
    }

    pub fn on_request_failure(&mut self, thresholds: &HealthConfig) {
        self.suspect = true;
        self.fail(thresholds);
    }

    fn fail(&mut self, thresholds: &HealthConfig) {
        self.successes = 0;
        self.failures = self.failures.saturating_add(1);
        if self.failures >= thresholds.unhealthy_after {
            self.healthy = false;
        }
    }
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

/// What one successful check learned.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// `/api/tags`.
    pub models: Vec<ModelEntry>,
    /// `/api/ps`, when it answered.
    pub loaded: Option<Vec<String>>,
}

/// Checks the hosts of the current pool every `interval` until `shutdown` fires; between
/// rounds, a wake-up from the pool (a suspect host, a rebuilt pool) checks the suspect and
/// never-checked hosts at once. `current` returns the pool in force (it changes when
/// `ollama_urls` is overridden).
pub async fn run(current: impl Fn() -> Arc<UpstreamPool>, mut shutdown: watch::Receiver<bool>) {
    let connector = Arc::new(Connector::new(None));
    let first = current();
    let wake = first.wake();
    let mut tick = tokio::time::interval(first.thresholds().interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    drop(first);
    loop {
        let everyone = tokio::select! {
            _ = tick.tick() => true,
            _ = wake.notified() => false,
            _ = shutdown.changed() => return,
        };
        let pool = current();
        let due: Vec<Arc<Upstream>> = pool
            .hosts()
            .iter()
            .filter(|h| everyone || h.health().suspect || h.catalog().last_check.is_none())
            .cloned()
            .collect();
        tokio::select! {
            _ = check_all(&connector, &pool, due) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Checks `hosts` concurrently and records each outcome.
async fn check_all(connector: &Arc<Connector>, pool: &UpstreamPool, hosts: Vec<Arc<Upstream>>) {
    let thresholds = pool.thresholds().clone();
    let mut checks = JoinSet::new();
    for host in hosts {
        let connector = Arc::clone(connector);
        let timeout = thresholds.timeout;
        checks.spawn(async move {
            let result = probe(&connector, &host, timeout).await;
            (host, result)
        });
    }
    while let Some(done) = checks.join_next().await {
        let Ok((host, result)) = done else { continue };
        let error = result.as_ref().err().cloned();
        match host.record_check(result, &thresholds, Utc::now()) {
            (true, false) => {
                tracing::warn!(upstream = %host.url, error = error.as_deref().unwrap_or(""), "Ollama host ejected after failed health checks")
            }
            (false, true) => tracing::info!(upstream = %host.url, "Ollama host healthy again"),
            _ => {
                if let Some(e) = error {
                    tracing::debug!(upstream = %host.url, error = %e, "health check failed");
                }
            }
        }
    }
}

/// One check of `host`: its model list, then the models in memory.
pub async fn probe(
    connector: &Connector,
    host: &Upstream,
    timeout: Duration,
) -> Result<Probe, String> {
    let tags = fetch_json(connector, host, "/api/tags", timeout).await?;
    let models = parse_models(&tags)?;
    let loaded = match fetch_json(connector, host, "/api/ps", timeout).await {
        Ok(ps) => parse_models(&ps)
            .ok()
            .map(|m| m.into_iter().map(|e| e.name).collect()),
        Err(_) => None,
    };
    Ok(Probe { models, loaded })
}

/// The entries of an `/api/tags` or `/api/ps` answer, each named by `name` (or `model`).
pub fn parse_models(body: &Value) -> Result<Vec<ModelEntry>, String> {
    let list = body
        .get("models")
        .and_then(Value::as_array)
        .ok_or("the answer has no \"models\" array")?;
    Ok(list
        .iter()
        .filter_map(|entry| {
            let name = entry
                .get("name")
                .or_else(|| entry.get("model"))
                .and_then(Value::as_str)?;
            Some(ModelEntry {
                name: name.to_owned(),
                entry: entry.clone(),
            })
        })
        .collect())
}

/// `GET path` on `host` over a fresh connection (a check must prove that connecting works),
/// within `timeout`; the parsed JSON of a 200 answer.
pub async fn fetch_json(
    connector: &Connector,
    host: &Upstream,
    path: &str,
    timeout: Duration,
) -> Result<Value, String> {
    match tokio::time::timeout(timeout, fetch_json_inner(connector, host, path, timeout)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "GET {path} timed out after {} ms",
            timeout.as_millis()
        )),
    }
}

async fn fetch_json_inner(
    connector: &Connector,
    host: &Upstream,
    path: &str,
    timeout: Duration,
) -> Result<Value, String> {
    let mut peer = host
        .http_peer(timeout)
        .ok_or("the host name does not resolve")?;
    peer.options.read_timeout = Some(timeout);
    peer.options.write_timeout = Some(timeout);
    let (mut session, _) = connector
        .get_http_session(&peer)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut req = RequestHeader::build("GET", path.as_bytes(), None).map_err(|e| e.to_string())?;
    req.insert_header("host", host.authority.as_str())
        .map_err(|e| e.to_string())?;
    req.insert_header("accept", "application/json")
        .map_err(|e| e.to_string())?;
    session
        .write_request_header(Box::new(req))
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    session
        .finish_request_body()
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    session
        .read_response_header()
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    let status = session.response_header().map_or(0, |h| h.status.as_u16());
    if status != 200 {
        return Err(format!("GET {path} answered {status}"));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = session
        .read_response_body()
        .await
        .map_err(|e| format!("GET {path}: {e}"))?
    {
        if body.len() + chunk.len() > LISTING_LIMIT {
            return Err(format!("GET {path}: the answer is larger than 8 MiB"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {path}: invalid JSON: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::upstream::pool::tests::thresholds;

    /// Ejected after `unhealthy_after` failures, restored after `healthy_after` successes; a
    /// failure in between resets the count.
    #[test]
    fn thresholds_apply() {
        let t = HealthConfig {
            unhealthy_after: 2,
            healthy_after: 2,
            ..thresholds()
        };
        let mut h = Health::new();
        h.on_check(false, &t);
        assert!(h.available(), "one failure is tolerated");
        h.on_check(true, &t);
        h.on_check(false, &t);
        assert!(h.available(), "a success reset the count");
        h.on_check(false, &t);
        assert!(!h.available());
        h.on_check(true, &t);
        assert!(!h.available(), "one success is not enough");
        h.on_check(false, &t);
        h.on_check(true, &t);
        assert!(!h.available(), "the failure reset the successes");
        h.on_check(true, &t);
        assert!(h.available());
    }

    /// A request-path failure takes the host out at once and counts toward ejection; the next
    /// successful check brings a host that was not ejected back.
    #[test]
    fn suspect() {
        let t = thresholds(); // unhealthy_after 2, healthy_after 1
        let mut h = Health::new();
        h.on_request_failure(&t);
        assert!(!h.available() && h.healthy && h.suspect);
        h.on_check(true, &t);
        assert!(h.available());
        h.on_request_failure(&t);
        h.on_check(false, &t);
        assert!(!h.healthy, "request failure + failed check = two failures");
        h.on_check(true, &t);
        assert!(h.available());
    }

    /// Model entries are named by `name`, else `model`; an answer without `models` fails.
    #[test]
    fn models_of_an_answer() {
        let body = serde_json::json!({"models": [
            {"name": "llama3:latest", "size": 1}, {"model": "qwen3:0.6b"}, {"size": 2}
        ]});
        let models = parse_models(&body).unwrap();
        let names: Vec<_> = models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["llama3:latest", "qwen3:0.6b"]);
        assert_eq!(models[0].entry["size"], 1);
        assert!(parse_models(&serde_json::json!({"error": "x"})).is_err());
    }
}
