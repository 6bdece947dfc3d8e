//! The real `llm-quota` binary in front of the fake Ollama: every route, every error, streaming,
//! accounting, bodies of any size, concurrency, several upstreams. SQLite always; PostgreSQL
//! where `TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounting;
mod admin;
mod bodies;
mod cli;
mod concurrency;
mod faults;
mod gpu_quota;
mod gpu_time;
mod hard_quota;
mod ledger;
mod ollama_rules;
mod pacing;
mod routes;
mod support;
mod team;
mod teams;
mod upstreams;
