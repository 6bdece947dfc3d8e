//! The llm-quota admin API (docs/api.md, "Admin API"): keys, quotas, runtime settings, usage series,
//! upstream status and connection help, as an axum [`Router`] for the loopback admin listener.
//!
//! It talks to the database only through `quota-engine` and knows nothing of Pingora: what it
//! needs from the running gateway (dropping a cached key, applying new settings, upstream
//! health, the upstreams' model lists) it asks through [`GatewayHooks`], which the binary
//! implements. [`router`] builds everything (so tests drive it with `oneshot`, without ports);
//! [`serve`] runs it on a listener until the shutdown future completes.
//!
//! Every `/api/*` route needs `Authorization: Bearer <ADMIN_PASSWORD>` except
//! `GET /api/health` and `GET /api/openapi.json`. Choices the API reference leaves open:
//! `DELETE /api/api-keys/{id}` answers 204 without a body; `GET /api/api-keys/{id}` returns
//! one key object; `GET /api/api-keys/{id}/usage` and `GET /api/upstreams` answer a JSON array;
//! request bodies with unknown fields are refused (422 naming the field) so a typo never
//! passes silently; unknown `/api/*` routes answer 404 and wrong methods 405, both as JSON
//! (other unknown paths belong to the web UI).
//!
//! # Layout
//! - [`views`]: the key object and the other response shapes, shared with the CLI's `--json`.
//! - `error`: [`ApiError`], the one error type, and how each variant looks on the wire.
//! - `input`: the JSON body extractor (400 for syntax, 422 naming the field for shape), the
//!   key id path segment and the field types of partial updates.
//! - `auth`: the bearer check (constant time) and the failed-login throttle.
//! - `routes`: one module per topic (`keys`, `reports`, `settings`, `upstreams`, `info`), each with its
//!   own `router()`; handlers are thin.
//! - [`openapi`]: the OpenAPI document, generated from the handlers' annotations.
//! - [`ui`]: the web UI (`ui/dist`, embedded at compile time) at `/`, with the single-page
//!   app's fallback: unknown non-API paths get `index.html`, unknown `/api/*` paths stay JSON.

pub mod openapi;
pub mod ui;
pub mod views;

mod auth;
mod error;
mod input;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, Method};
use axum::response::Response;
use axum::routing::get;
use axum::{middleware, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use error::{ApiError, ErrorBody};
pub use ui::UiAssets;

/// What the admin API needs from the process it runs in. Built once by the binary and moved
/// into [`router`], which shares it (behind an `Arc`) with every request.
pub struct AdminState {
    /// The database pool (shared with the proxy; cloning it is cheap).
    pub db: quota_engine::DatabaseConnection,
    /// The operator's zone: days and months of usage and of the usage series.
    pub periods: quota_engine::Periods,
    /// `ADMIN_PASSWORD`. Only its digest is kept by the router; it never reaches a log line.
    pub password: String,
    /// Values from the configuration (what an override falls back to).
    pub configured_ollama_urls: Vec<String>,
    pub configured_default_model: String,
    /// Proxy listener port and optional public URL, for proxy-info.
    pub proxy_port: u16,
    pub public_url: Option<String>,
    /// The running gateway. Called after every change made here, so it bites on this instance
    /// at once (other instances notice within 5 s by themselves).
    pub hooks: Arc<dyn GatewayHooks>,
}

/// The admin API's window onto the gateway it manages. Implemented by the binary; tests use a
/// recording implementation.
#[async_trait::async_trait]
pub trait GatewayHooks: Send + Sync + 'static {
    /// A key was created, changed or deleted through the admin API.
    fn key_changed(&self, key_id: i64);
    /// Settings overrides changed; apply them now.
    fn settings_changed(&self, overrides: quota_engine::settings::Overrides);
    /// Current state of each upstream.
    fn upstreams(&self) -> Vec<UpstreamStatus>;
    /// `/api/tags` of every healthy upstream: (upstream url, parsed JSON body) or an error text.
    async fn upstream_tags(&self) -> Vec<(String, Result<serde_json::Value, String>)>;
    /// Requests of the key in flight on this instance, and the tokens they hold reserved.
    fn in_flight(&self, _key_id: i64) -> views::InFlightView {
        views::InFlightView::default()
    }
    /// Requests of the team's keys in flight on this instance, and the tokens they hold.
    fn team_in_flight(&self, _team_id: i64) -> views::InFlightView {
        views::InFlightView::default()
    }
    /// A team was changed or deleted: its keys' cached copies are stale.
    fn team_changed(&self, _team_id: i64) {}
    /// Counted requests per model on this instance: running on a host, and waiting.
    fn model_load(&self) -> Vec<views::ModelLoadView> {
        Vec::new()
    }
}

/// One Ollama upstream as `GET /api/upstreams` shows it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct UpstreamStatus {
    #[schema(example = "http://localhost:11434")]
    pub url: String,
    pub healthy: bool,
    /// RFC 3339; `null` before the first health check.
    pub last_check: Option<String>,
    /// Models the upstream listed in its last `/api/tags`.
    pub models: Vec<String>,
    /// Requests in flight to this upstream right now.
    pub inflight: u64,
}

/// The admin router: every endpoint of docs/api.md, the password check with its throttle,
/// CORS for `allowed_origins`, and the web UI embedded in the binary at `/`. Serve it with
/// [`serve`] (the throttle needs client addresses); in `oneshot` tests insert
/// `axum::extract::ConnectInfo<SocketAddr>` as a request extension.
pub fn router(state: AdminState, allowed_origins: &[String]) -> Router {
    router_with_ui(state, allowed_origins, UiAssets::embedded())
}

/// [`router`] with the UI's files taken from `assets` (tests use their own files, or none).
pub fn router_with_ui(state: AdminState, allowed_origins: &[String], assets: UiAssets) -> Router {
    let guard = Arc::new(auth::Guard::new(&state.password));
    let protected = Router::new()
        .merge(routes::keys::router())
        .merge(routes::teams::router())
        .merge(routes::settings::router())
        .merge(routes::upstreams::router())
        .merge(routes::info::router())
        .merge(routes::reports::router())
        .route_layer(middleware::from_fn_with_state(guard, auth::require));
    Router::new()
        .route("/api/health", get(routes::info::health))
        .route("/api/openapi.json", get(openapi::document_handler))
        .merge(protected)
        .fallback(move |method, uri, headers| ui::fallback(assets, method, uri, headers))
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(Arc::new(state))
        .layer(cors_layer(allowed_origins))
        .layer(middleware::map_response(only_allowed_origins))
}

/// Serves `router` on `listener` until `shutdown` completes, then lets running requests
/// finish. Each request carries its client's address (`ConnectInfo<SocketAddr>`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// tower-http answers a preflight from any origin with the allowed methods and headers and
/// withholds only `Access-Control-Allow-Origin`. An unlisted origin gets no CORS
/// headers at all, so the others go too.
async fn only_allowed_origins(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        for name in [
            header::ACCESS_CONTROL_ALLOW_METHODS,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            header::ACCESS_CONTROL_MAX_AGE,
        ] {
            headers.remove(name);
        }
    }
    response
}

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// Whether `origin` (a request's `Origin`) is one of `allowed` (`ALLOWED_ORIGINS`): the one
/// rule of both listeners. Origins are compared as browsers send them, scheme, host and port,
/// without regard to ASCII case; a trailing `/` in the list is ignored, and `*` allows every
/// origin.
pub fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|a| {
        let a = a.trim().trim_end_matches('/');
        a == "*" || (!a.is_empty() && a.eq_ignore_ascii_case(origin))
    })
}

/// CORS for `origins` (`ALLOWED_ORIGINS`, see [`origin_allowed`]): only a listed origin gets
/// CORS headers; preflights are answered for the methods the admin API uses and the
/// `Authorization` and `Content-Type` headers; `Retry-After` is readable by scripts.
pub fn cors_layer(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o.trim() == "*") {
        AllowOrigin::any()
    } else {
        let origins = origins.to_vec();
        AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin
                .to_str()
                .is_ok_and(|origin| origin_allowed(origin, &origins))
        })
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::RETRY_AFTER])
        .max_age(PREFLIGHT_MAX_AGE)
}
