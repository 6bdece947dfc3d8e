//! The endpoints, one module per topic. Each module has its own `router()` over the shared
//! [`AdminState`](crate::AdminState); [`crate::router`] merges them behind the password check.

pub mod info;
pub mod keys;
pub mod reports;
pub mod settings;
pub mod teams;
pub mod upstreams;

use crate::error::ApiError;

/// Any path no route matches.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

/// A known path with a method it does not take.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
