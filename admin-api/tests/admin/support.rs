//! The harness: a migrated SQLite file, the router built over it, a recording [`GatewayHooks`]
//! and request helpers that attach a client address as `serve` would.

use std::net::SocketAddr;
use std::sync::Arc;

use admin_api::{AdminState, GatewayHooks, UiAssets, UpstreamStatus};
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use parking_lot::Mutex;
use quota_engine::settings::Overrides;
use quota_engine::{DatabaseConnection, DatabaseUrl, Periods};
use serde_json::Value;
use tower::ServiceExt as _;

pub const PASSWORD: &str = "correct horse battery staple";
pub const ORIGIN: &str = "http://localhost:5173";
pub const CONFIGURED_URL: &str = "http://localhost:11434";
pub const CONFIGURED_MODEL: &str = "llama3";
pub const PROXY_PORT: u16 = 8000;

/// What the hooks were told, and what they answer.
#[derive(Default)]
pub struct Recorder {
    pub key_changes: Mutex<Vec<i64>>,
    pub settings_changes: Mutex<Vec<Overrides>>,
    pub upstreams: Vec<UpstreamStatus>,
    pub tags: Vec<(String, Result<Value, String>)>,
}

#[async_trait::async_trait]
impl GatewayHooks for Recorder {
    fn key_changed(&self, key_id: i64) {
        self.key_changes.lock().push(key_id);
    }
    fn settings_changed(&self, overrides: Overrides) {
        self.settings_changes.lock().push(overrides);
    }
    fn upstreams(&self) -> Vec<UpstreamStatus> {
        self.upstreams.clone()
    }
    async fn upstream_tags(&self) -> Vec<(String, Result<Value, String>)> {
        self.tags.clone()
    }
}

pub struct Harness {
    pub router: Router,
    pub db: DatabaseConnection,
    pub hooks: Arc<Recorder>,
    pub periods: Periods,
    _dir: tempfile::TempDir,
}

/// Options of a harness beyond the defaults.
#[derive(Default)]
pub struct Options {
    pub hooks: Recorder,
    pub public_url: Option<String>,
    /// The UI's files; `None` = the embedded `ui/dist` (whatever this build has).
    pub ui: Option<UiAssets>,
}

pub async fn harness() -> Harness {
    harness_with(Options::default()).await
}

pub async fn harness_with(options: Options) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let db = quota_engine::connect(&DatabaseUrl::Sqlite(dir.path().join("admin.db")))
        .await
        .unwrap();
    quota_engine::db::migrate(&db).await.unwrap();
    let periods = Periods::from_name("Europe/Berlin").unwrap();
    let hooks = Arc::new(options.hooks);
    let state = AdminState {
        db: db.clone(),
        periods,
        password: PASSWORD.into(),
        configured_ollama_urls: vec![CONFIGURED_URL.into()],
        configured_default_model: CONFIGURED_MODEL.into(),
        proxy_port: PROXY_PORT,
        public_url: options.public_url,
        hooks: hooks.clone(),
    };
    let origins = [ORIGIN.to_string()];
    let router = match options.ui {
        Some(ui) => admin_api::router_with_ui(state, &origins, ui),
        None => admin_api::router(state, &origins),
    };
    Harness {
        router,
        db,
        hooks,
        periods,
        _dir: dir,
    }
}

/// An answer, fully read.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The `error` of an error body (and proof that the body has that shape).
    pub fn error(&self) -> String {
        let body = self.json();
        let object = body.as_object().expect("an error body is an object");
        assert_eq!(object.len(), 1, "error bodies hold only `error`: {body}");
        object["error"]
            .as_str()
            .expect("error is a string")
            .to_owned()
    }

    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// A request from `client`, without credentials.
pub fn request(method: Method, path: &str, client: &str) -> axum::http::request::Builder {
    let addr: SocketAddr = client.parse().unwrap();
    Request::builder()
        .method(method)
        .uri(path)
        .extension(ConnectInfo(addr))
}

impl Harness {
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// An authorized request with an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let builder = request(method, path, "127.0.0.1:50000")
            .header(header::AUTHORIZATION, format!("Bearer {PASSWORD}"));
        let request = match body {
            Some(json) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json.to_string())),
            None => builder.body(Body::empty()),
        };
        self.send(request.unwrap()).await
    }

    /// An authorized request with a raw body.
    pub async fn call_raw(&self, method: Method, path: &str, body: &str) -> Answer {
        let request = request(method, path, "127.0.0.1:50000")
            .header(header::AUTHORIZATION, format!("Bearer {PASSWORD}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        self.send(request).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    /// Creates a key named `name` and returns the 201 answer's body.
    pub async fn create_key(&self, body: Value) -> Value {
        let answer = self.call(Method::POST, "/api/api-keys", Some(body)).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        answer.json()
    }
}

/// A named upstream status for the hooks.
pub fn upstream(url: &str, healthy: bool) -> UpstreamStatus {
    UpstreamStatus {
        url: url.into(),
        healthy,
        last_check: Some("2026-11-29T10:00:00+01:00".into()),
        models: vec!["llama3:latest".into()],
        inflight: 2,
    }
}
