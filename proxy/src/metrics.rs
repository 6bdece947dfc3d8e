//! Prometheus metrics (docs/operations.md), registered in the default registry that
//! pingora-prometheus serves. Labels are bounded: route templates, model names, the key's
//! display prefix, status codes, the configured upstream URLs.
//!
//! Request metrics are updated by the gateway as requests end ([`Metrics`]). The per-upstream
//! metrics are read from the upstream pool at scrape time ([`UpstreamCollector`]): the pool is
//! the one source of truth, the hot path pays nothing beyond the pool's own atomics, and a
//! host removed from `ollama_urls` disappears from the exposition instead of lingering.
//!
//! docs/operations.md lists every metric with its labels and meaning.

use std::sync::Arc;

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    register_histogram_vec_with_registry, register_int_counter_vec_with_registry,
    register_int_gauge_with_registry, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::upstream::UpstreamPool;

/// Latency buckets from 10 ms to 10 minutes.
const LATENCY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Queue waits from 1 ms to 2 minutes (the default timeouts are 30 s and 60 s).
const QUEUE_BUCKETS: &[f64] = &[
    0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Every metric the gateway updates. Built once at startup.
pub struct Metrics {
    pub requests: IntCounterVec,
    pub tokens: IntCounterVec,
    pub quota_rejections: IntCounterVec,
    pub request_duration: HistogramVec,
    pub time_to_first_token: HistogramVec,
    pub inflight: IntGauge,
    pub queue_wait: prometheus::Histogram,
    /// Usage over limit per key and limit, set by the alerts scan (`crate::alerts`).
    pub key_usage_ratio: prometheus::GaugeVec,
    /// GPU time of counted requests (docs/api.md, "GPU time").
    pub gpu_seconds: prometheus::CounterVec,
    /// Ollama's own `load_duration`, summed.
    pub model_load_seconds: prometheus::CounterVec,
}

impl Metrics {
    /// Registers the metrics in the default registry; fails only when called twice in one
    /// process.
    pub fn register() -> prometheus::Result<Metrics> {
        Metrics::register_in(prometheus::default_registry())
    }

    pub fn register_in(registry: &Registry) -> prometheus::Result<Metrics> {
        Ok(Metrics {
            requests: register_int_counter_vec_with_registry!(
                "llm_quota_requests_total",
                "Requests answered, by route template, model, status and API key (display prefix)",
                &["route", "model", "status", "api_key"],
                registry
            )?,
            tokens: register_int_counter_vec_with_registry!(
                "llm_quota_tokens_total",
                "Tokens charged, by model, API key and kind (prompt or completion)",
                &["model", "api_key", "kind"],
                registry
            )?,
            quota_rejections: register_int_counter_vec_with_registry!(
                "llm_quota_quota_rejections_total",
                "Requests refused with 429, by API key and exceeded limit",
                &["api_key", "limit"],
                registry
            )?,
            request_duration: register_histogram_vec_with_registry!(
                "llm_quota_request_duration_seconds",
                "Time from request to the end of the response, by route template",
                &["route"],
                LATENCY_BUCKETS.to_vec(),
                registry
            )?,
            time_to_first_token: register_histogram_vec_with_registry!(
                "llm_quota_time_to_first_token_seconds",
                "Time from request to the first response byte of a counted route, by model",
                &["model"],
                LATENCY_BUCKETS.to_vec(),
                registry
            )?,
            inflight: register_int_gauge_with_registry!(
                "llm_quota_inflight_requests",
                "Requests in flight",
                registry
            )?,
            queue_wait: prometheus::register_histogram_with_registry!(
                "llm_quota_queue_wait_seconds",
                "Time a counted request waited for a parallel slot of its key and for a host (0 when it did not wait)",
                QUEUE_BUCKETS.to_vec(),
                registry
            )?,
            key_usage_ratio: prometheus::register_gauge_vec_with_registry!(
                "llm_quota_key_usage_ratio",
                "Usage in the current period over the limit, by API key (display prefix) and limit; 1 = used up (updated every alerts.scan_interval_seconds)",
                &["api_key", "limit"],
                registry
            )?,
            gpu_seconds: prometheus::register_counter_vec_with_registry!(
                "llm_quota_gpu_seconds_total",
                "GPU time of counted requests: seconds from sending a request to its host until its answer ended, times the host's gpu_weight; by model, API key (display prefix) and upstream",
                &["model", "api_key", "upstream"],
                registry
            )?,
            model_load_seconds: prometheus::register_counter_vec_with_registry!(
                "llm_quota_model_load_seconds_total",
                "Seconds Ollama reported loading models for counted requests (load_duration of the native routes), by model and upstream",
                &["model", "upstream"],
                registry
            )?,
        })
    }

    /// The name of every metric this struct owns.
    #[cfg(test)]
    fn names(&self) -> Vec<String> {
        let collectors: [&dyn Collector; 10] = [
            &self.requests,
            &self.tokens,
            &self.quota_rejections,
            &self.request_duration,
            &self.time_to_first_token,
            &self.inflight,
            &self.queue_wait,
            &self.key_usage_ratio,
            &self.gpu_seconds,
            &self.model_load_seconds,
        ];
        collectors
            .iter()
            .flat_map(|c| c.desc())
            .map(|d| d.fq_name.clone())
            .collect()
    }
}

/// The upstream pool in force, or `None` once the process is shutting down.
type PoolSource = Box<dyn Fn() -> Option<Arc<UpstreamPool>> + Send + Sync>;

/// The per-upstream metrics, read from the pool in force at each scrape:
/// `llm_quota_upstream_healthy`, `llm_quota_upstream_inflight`,
/// `llm_quota_upstream_selections_total`, `llm_quota_upstream_failures_total`.
pub struct UpstreamCollector {
    source: PoolSource,
    healthy: IntGaugeVec,
    inflight: IntGaugeVec,
    selections: IntCounterVec,
    failures: IntCounterVec,
    /// Concurrent scrapes take turns: each one resets the vectors and fills them anew.
    scrape: Mutex<()>,
}

impl UpstreamCollector {
    pub fn new(source: PoolSource) -> prometheus::Result<UpstreamCollector> {
        let label = &["upstream"];
        Ok(UpstreamCollector {
            source,
            healthy: IntGaugeVec::new(
                Opts::new(
                    "llm_quota_upstream_healthy",
                    "1 when the Ollama host may receive requests (passes its health checks, not suspect after a failed connection)",
                ),
                label,
            )?,
            inflight: IntGaugeVec::new(
                Opts::new(
                    "llm_quota_upstream_inflight",
                    "Requests in flight to the Ollama host",
                ),
                label,
            )?,
            selections: IntCounterVec::new(
                Opts::new(
                    "llm_quota_upstream_selections_total",
                    "Times the Ollama host was chosen for a request (retries included)",
                ),
                label,
            )?,
            failures: IntCounterVec::new(
                Opts::new(
                    "llm_quota_upstream_failures_total",
                    "Requests that could not reach the Ollama host (connection refused or lost before it answered) and failed over",
                ),
                label,
            )?,
            scrape: Mutex::new(()),
        })
    }

    /// Registers a collector over `source` in the default registry (once per process).
    pub fn register(source: PoolSource) -> prometheus::Result<()> {
        prometheus::register(Box::new(UpstreamCollector::new(source)?))
    }
}

impl Collector for UpstreamCollector {
    fn desc(&self) -> Vec<&Desc> {
        [
            self.healthy.desc(),
            self.inflight.desc(),
            self.selections.desc(),
            self.failures.desc(),
        ]
        .concat()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _turn = self.scrape.lock();
        self.healthy.reset();
        self.inflight.reset();
        self.selections.reset();
        self.failures.reset();
        if let Some(pool) = (self.source)() {
            for host in pool.hosts() {
                let label = [host.url.as_str()];
                self.healthy
                    .with_label_values(&label)
                    .set(i64::from(host.is_available()));
                self.inflight
                    .with_label_values(&label)
                    .set(i64::try_from(host.inflight()).unwrap_or(i64::MAX));
                self.selections
                    .with_label_values(&label)
                    .inc_by(host.selections());
                self.failures
                    .with_label_values(&label)
                    .inc_by(host.failures());
            }
        }
        [
            self.healthy.collect(),
            self.inflight.collect(),
            self.selections.collect(),
            self.failures.collect(),
        ]
        .concat()
    }
}

/// `llm_quota_queue_depth{model}`: counted requests waiting, for a parallel slot of their
/// key or for a host, read from the gateway's per-model load at each scrape.
pub struct QueueCollector {
    load: Arc<crate::upstream::ModelLoad>,
    depth: IntGaugeVec,
    scrape: Mutex<()>,
}

impl QueueCollector {
    pub fn new(load: Arc<crate::upstream::ModelLoad>) -> prometheus::Result<QueueCollector> {
        Ok(QueueCollector {
            load,
            depth: IntGaugeVec::new(
                Opts::new(
                    "llm_quota_queue_depth",
                    "Counted requests waiting for a parallel slot of their key or for an Ollama host, by model",
                ),
                &["model"],
            )?,
            scrape: Mutex::new(()),
        })
    }

    /// Registers a collector over `load` in the default registry (once per process).
    pub fn register(load: Arc<crate::upstream::ModelLoad>) -> prometheus::Result<()> {
        prometheus::register(Box::new(QueueCollector::new(load)?))
    }
}

impl Collector for QueueCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.depth.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _turn = self.scrape.lock();
        self.depth.reset();
        for load in self.load.snapshot() {
            self.depth
                .with_label_values(&[load.model.as_str()])
                .set(load.waiting);
        }
        self.depth.collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::upstream::pool::tests::{configs, thresholds};

    /// The collector reports each host of the pool in force with its current values.
    #[test]
    fn upstream_values() {
        let pool = Arc::new(UpstreamPool::resolve(&configs(2), &thresholds(), None));
        let source = Arc::clone(&pool);
        let collector =
            UpstreamCollector::new(Box::new(move || Some(Arc::clone(&source)))).unwrap();
        let guard = pool.select(None, &[1]).unwrap();
        pool.request_failed(1);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&collector.collect())
            .unwrap();
        let value = |name: &str, host: usize| -> String {
            let prefix = format!("{name}{{upstream=\"{}\"}} ", pool.hosts()[host].url);
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .unwrap_or_else(|| panic!("no {prefix} in {text}"))
                .to_owned()
        };
        assert_eq!(value("llm_quota_upstream_healthy", 0), "1");
        assert_eq!(value("llm_quota_upstream_healthy", 1), "0");
        assert_eq!(value("llm_quota_upstream_inflight", 0), "1");
        assert_eq!(value("llm_quota_upstream_selections_total", 0), "1");
        assert_eq!(value("llm_quota_upstream_failures_total", 1), "1");
        drop(guard);
        assert_eq!(collector.collect().len(), 4);
    }

    /// docs/operations.md documents every metric the process exports, and the Grafana
    /// dashboard queries only metrics that exist.
    #[test]
    fn docs_cover_every_metric() {
        let mut names = Metrics::register_in(&Registry::new()).unwrap().names();
        let upstream = UpstreamCollector::new(Box::new(|| None)).unwrap();
        names.extend(upstream.desc().iter().map(|d| d.fq_name.clone()));
        let queue = QueueCollector::new(Arc::default()).unwrap();
        names.extend(queue.desc().iter().map(|d| d.fq_name.clone()));
        assert_eq!(names.len(), 15);
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/");
        let operations = std::fs::read_to_string(format!("{root}operations.md")).unwrap();
        for name in &names {
            assert!(
                operations.contains(&format!("`{name}`")),
                "docs/operations.md does not document {name}"
            );
        }
        let dashboard = std::fs::read_to_string(format!("{root}grafana-dashboard.json")).unwrap();
        let _: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
        for (at, _) in dashboard.match_indices("llm_quota_") {
            let used: String = dashboard[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| used.strip_suffix(s))
                .unwrap_or(&used);
            assert!(
                names.iter().any(|n| n == base || *n == used),
                "the dashboard queries {used}, which does not exist"
            );
        }
    }
}
