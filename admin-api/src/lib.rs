//! The llm-quota admin API: the JSON shapes operators, scripts and the web UI see (contract
//! §5), and (in later steps) the axum router on the loopback admin listener.
//!
//! It talks to the database only through `quota-engine` and knows nothing of Pingora.
//!
//! # Layout
//! - [`views`]: the key object and other response shapes, shared with the CLI's `--json`.

pub mod views;

use axum::{routing::get, Json, Router};

/// The admin router. For now only `GET /api/health`; the key, settings and usage endpoints
/// arrive with the admin API (see the issue tracker).
pub fn router() -> Router {
    Router::new().route(
        "/api/health",
        get(|| async { Json(serde_json::json!({"status": "ok"})) }),
    )
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
