//! The admin router driven with `oneshot` (no ports) over a real SQLite file in a tempdir,
//! with a recording implementation of the gateway hooks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod info;
mod keys;
mod settings;
mod support;
mod team;
mod ui;
mod upstreams;
