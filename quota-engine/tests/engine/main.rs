//! The quota engine against real databases: a SQLite file always, PostgreSQL when
//! `TEST_DATABASE_URL` is set (each test in a schema of its own).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod keys;
mod ledger;
mod support;
mod team;
mod teams;
mod usage;
