//! llm-quota: an API-key and quota gateway for self-hosted Ollama, built on Pingora.
//!
//! This crate is the glue and the hot path: the configuration pipeline, the command line, the
//! Pingora `ProxyHttp` that authenticates, gates, forwards, meters and commits every request,
//! and the assembly of one process out of the proxy, the admin API and the metrics listener.
//! The database and the quota rules live in `quota-engine`; the admin API in `admin-api`.
//!
//! # Layout
//! - [`config`]: defaults < YAML < `.env` < environment, validated.
//! - [`cli`]: `serve`, `migrate`, `keys …`, `config check`.
//! - [`gateway`]: the `ProxyHttp` implementation, one module per concern.
//! - [`dialect`]: Ollama and OpenAI wire formats, prompt inspection, the token meter (pure).
//! - [`upstream`]: the Ollama hosts: health checks, model lists, the choice of one.
//! - [`state`]: what requests share; runtime settings overrides.
//! - [`metrics`]: Prometheus metrics.
//! - [`alerts`]: usage alerts to a webhook, and the usage-ratio gauge.
//! - [`admin_hooks`]: what the admin API may ask of the running gateway.
//! - [`server`]: `serve`, the process assembly.

pub mod admin_hooks;
pub mod alerts;
pub mod cli;
pub mod config;
pub mod dialect;
pub mod gateway;
pub mod metrics;
pub mod server;
pub mod state;
pub mod upstream;
