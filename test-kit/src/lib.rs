//! Dev-only helpers shared by the gateway's integration tests, the quota engine's tests and
//! the benchmark; never linked into the `llm-quota` binary.
//!
//! - [`postgres`]: a fresh, empty PostgreSQL schema per test or benchmark run on one server.
//! - [`serve`]: starting `llm-quota serve` on port 0 and reading the addresses it prints.

pub mod postgres;
pub mod serve;
