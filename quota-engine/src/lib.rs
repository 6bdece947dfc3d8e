//! The quota engine of llm-quota: everything that touches the database.
//!
//! It owns the schema (SeaORM entities and migrations), API keys (generation, hashing, the
//! cached lookup), calendar periods in the operator's time zone, **the gate** (one atomic
//! statement that admits a request only when every limit of its key still has room, and counts
//! it), **the commit** (adds a finished request's tokens), runtime settings overrides and the
//! per-request usage log that the admin charts read.
//!
//! It knows nothing of HTTP, Pingora or axum, and never reads environment variables or files:
//! callers hand it a [`DatabaseUrl`], a [`Periods`] (time zone) and the current time, so every
//! rule here is testable with an injected clock against a real SQLite file or PostgreSQL.
//!
//! # Layout
//! - [`db`]: parsing `DATABASE_URL` (SQLite forms, PostgreSQL), connecting, migrating.
//! - [`entity`]: the SeaORM entities (`api_keys`, `usage_counters`, `settings`, `usage_log`).
//! - [`migration`]: one file per schema change, never edited after it lands.
//! - [`keys`]: key material (`sk-…`, SHA-256, display prefix) and key CRUD.
//! - [`key_cache`]: the in-memory key lookup with bounded staleness.
//! - [`periods`]: calendar day and month in a time zone, and their reset instants.
//! - [`gate`]: admission (atomic check-and-count), commit, refund.
//! - [`gate_service`]: the same, with group commit on SQLite (what the proxy calls).
//! - [`settings`]: runtime overrides of `ollama_urls` and `default_model`.
//! - [`usage_log`]: the per-request log, written in batches off the request path, and its
//!   per-day read model.

pub mod db;
pub mod entity;
mod error;
pub mod gate;
pub mod gate_service;
pub mod key_cache;
pub mod keys;
pub mod migration;
pub mod periods;
pub mod settings;
pub mod usage_log;

pub use db::{connect, DatabaseUrl};
pub use error::EngineError;
pub use gate::{Admission, GateDecision, Limits, QuotaExceeded};
pub use gate_service::GateService;
pub use key_cache::KeyCache;
pub use keys::{ApiKey, KeyPatch, NewKey};
pub use periods::{PeriodKeys, Periods};
pub use sea_orm::DatabaseConnection;

/// Result type of this crate.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
