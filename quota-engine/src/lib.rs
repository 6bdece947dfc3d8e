//! The quota engine of llm-quota: everything that touches the database.
//!
//! It owns the schema (SeaORM entities and migrations), API keys (generation, hashing, the
//! cached lookup), calendar periods in the operator's time zone, **the ledger** (admission
//! decided in memory out of leases of quota taken from the database with one conditional
//! statement each, usage written back in group commits), runtime settings overrides and the
//! per-request usage log that the admin charts read.
//!
//! It knows nothing of HTTP, Pingora or axum, and never reads environment variables or files:
//! callers hand it a [`DatabaseUrl`], a [`Periods`] (time zone) and the current time, so every
//! rule here is testable with an injected clock against a real SQLite file or PostgreSQL.
//!
//! # Layout
//! - [`audit`]: the audit trail of admin changes and alerts sent.
//! - [`db`]: parsing `DATABASE_URL` (SQLite forms, PostgreSQL), connecting, migrating.
//! - [`entity`]: the SeaORM entities (`api_keys`, `audit_log`, `usage_counters`, `settings`, `usage_daily`,
//!   and `usage_log`, no longer written).
//! - [`migration`]: one file per schema change, never edited after it lands.
//! - [`keys`]: key material (`sk-…`, SHA-256, display prefix) and key CRUD.
//! - [`key_cache`]: the in-memory key lookup with bounded staleness.
//! - [`key_view`]: the key object with its usage, as the admin API, the CLI and `/v1/quota`
//!   show it.
//! - [`periods`]: calendar day and month in a time zone, and their reset instants.
//! - [`gate`]: limits, counters, admissions and refusals; the counters' read model.
//! - [`ledger`]: admission, commit and refund against per-key leases; the group commit.
//! - [`pacing`]: per-minute limits (sliding window; grants across instances), the parallel
//!   cap per key and its queue, the fair-queue priority.
//! - [`settings`]: runtime overrides of `ollama_urls` and `default_model`.
//! - [`teams`]: teams, one budget shared by several keys.
//! - [`usage_log`]: usage per key, day and model, summed off the request path, and its
//!   per-day read model.
//! - [`usage_report`]: usage over a date range grouped by any of key, model and day.

pub mod audit;
pub mod db;
pub mod entity;
mod error;
pub mod gate;
pub mod key_cache;
pub mod key_view;
pub mod keys;
pub mod ledger;
mod log_throttle;
pub mod migration;
pub mod pacing;
pub mod periods;
pub mod settings;
pub mod teams;
pub mod usage_log;
pub mod usage_report;

pub use db::{connect, DatabaseUrl};
pub use error::EngineError;
pub use gate::{Admission, Ask, GateDecision, Limits, Payer, QuotaExceeded};
pub use key_cache::KeyCache;
pub use keys::{ApiKey, KeyPatch, NewKey};
pub use ledger::{Extension, Ledger, LedgerConfig};
pub use pacing::{PaceRefusal, PaceTicket, Pacer, Pacing};
pub use periods::{PeriodKeys, Periods};
pub use sea_orm::{DatabaseConnection, DatabaseTransaction};
pub use teams::Team;

/// Result type of this crate.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
