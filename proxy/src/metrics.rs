//! Prometheus metrics (contract §6), registered in the default registry that
//! pingora-prometheus serves. Labels are bounded: route templates, model names, the key's
//! display prefix, status codes.

use prometheus::{
    register_histogram_vec, register_int_counter_vec, register_int_gauge, register_int_gauge_vec,
    HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
};

/// Latency buckets from 10 ms to 10 minutes.
const LATENCY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Every metric the gateway updates. Built once at startup.
pub struct Metrics {
    pub requests: IntCounterVec,
    pub tokens: IntCounterVec,
    pub quota_rejections: IntCounterVec,
    pub request_duration: HistogramVec,
    pub time_to_first_token: HistogramVec,
    pub inflight: IntGauge,
    pub upstream_healthy: IntGaugeVec,
}

impl Metrics {
    /// Registers the metrics; fails only when called twice in one process.
    pub fn register() -> prometheus::Result<Metrics> {
        Ok(Metrics {
            requests: register_int_counter_vec!(
                "llm_quota_requests_total",
                "Requests answered, by route template, model, status and API key (display prefix)",
                &["route", "model", "status", "api_key"]
            )?,
            tokens: register_int_counter_vec!(
                "llm_quota_tokens_total",
                "Tokens charged, by model, API key and kind (prompt or completion)",
                &["model", "api_key", "kind"]
            )?,
            quota_rejections: register_int_counter_vec!(
                "llm_quota_quota_rejections_total",
                "Requests refused with 429, by API key and exceeded limit",
                &["api_key", "limit"]
            )?,
            request_duration: register_histogram_vec!(
                "llm_quota_request_duration_seconds",
                "Time from request to the end of the response, by route template",
                &["route"],
                LATENCY_BUCKETS.to_vec()
            )?,
            time_to_first_token: register_histogram_vec!(
                "llm_quota_time_to_first_token_seconds",
                "Time from request to the first response byte of a counted route, by model",
                &["model"],
                LATENCY_BUCKETS.to_vec()
            )?,
            inflight: register_int_gauge!("llm_quota_inflight_requests", "Requests in flight")?,
            upstream_healthy: register_int_gauge_vec!(
                "llm_quota_upstream_healthy",
                "1 when the Ollama host passes its health checks",
                &["upstream"]
            )?,
        })
    }
}
