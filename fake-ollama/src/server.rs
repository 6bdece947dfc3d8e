//! The server: shared state, the background-thread runtime behind [`FakeOllama`], request
//! recording, the host check and the route table.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{ALLOW, HOST};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::serve::ListenerExt;
use axum::Router;
use bytes::Bytes;
use serde_json::json;

use crate::body::{empty, full, json_bytes, Timing, JSON_UTF8, TEXT};
use crate::concurrency::{hold_until_sent, Concurrency};
use crate::host::host_allowed;
use crate::models::ModelInfo;
use crate::record::{RecordedRequest, Recorder};
use crate::text::Answer;
use crate::{anthropic, native, openai, FakeConfig};

/// Largest request body the fake reads (bigger ones get 413).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// State shared by all requests of one server.
pub(crate) struct Shared {
    pub(crate) config: FakeConfig,
    pub(crate) models: Vec<ModelInfo>,
    pub(crate) answer: Answer,
    pub(crate) timing: Timing,
    pub(crate) recorder: Recorder,
    pub(crate) concurrency: Arc<Concurrency>,
    ids: AtomicU64,
    version_json: Bytes,
    tags_json: Bytes,
    v1_models_json: Bytes,
}

impl Shared {
    pub(crate) fn new(config: FakeConfig, record: bool) -> Shared {
        let models: Vec<ModelInfo> = config.models.iter().map(|m| ModelInfo::new(m)).collect();
        let tags: Vec<_> = models.iter().map(ModelInfo::tag_entry).collect();
        let v1: Vec<_> = models.iter().map(ModelInfo::openai_object).collect();
        Shared {
            answer: Answer::new(config.chunks),
            timing: Timing {
                chunk_delay: config.chunk_delay,
                drop_after_chunks: config.drop_after_chunks,
                abandoned: Arc::default(),
            },
            recorder: Recorder::new(record, config.record_body_limit),
            concurrency: Arc::default(),
            ids: AtomicU64::new(0),
            version_json: json_bytes(&json!({ "version": config.version }), false)
                .unwrap_or_default(),
            tags_json: json_bytes(&json!({ "models": tags }), false).unwrap_or_default(),
            v1_models_json: json_bytes(&json!({ "object": "list", "data": v1 }), true)
                .unwrap_or_default(),
            models,
            config,
        }
    }

    /// The configured model a request names, if any.
    pub(crate) fn find_model(&self, name: &str) -> Option<&ModelInfo> {
        self.models.iter().find(|m| m.matches(name))
    }

    /// A small per-server sequence number for response ids.
    pub(crate) fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }
}

/// A running fake Ollama server on its own thread and tokio runtime.
///
/// Dropping it (or calling [`FakeOllama::stop`]) stops listening and closes every open
/// connection before returning.
pub struct FakeOllama {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeOllama {
    /// Binds `127.0.0.1:0` and serves on a background thread with its own tokio runtime
    /// (2 worker threads), so it works from sync tests and from inside other runtimes.
    /// Returns once the socket is listening.
    pub fn start(config: FakeConfig) -> io::Result<FakeOllama> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config)
    }

    /// Like [`FakeOllama::start`], on the given address.
    pub fn start_on(addr: SocketAddr, config: FakeConfig) -> io::Result<FakeOllama> {
        Self::start_with_threads(addr, config, 2)
    }

    /// Like [`FakeOllama::start_on`], with `worker_threads` runtime worker threads (at least 1).
    pub fn start_with_threads(
        addr: SocketAddr,
        config: FakeConfig,
        worker_threads: usize,
    ) -> io::Result<FakeOllama> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads.max(1))
            .thread_name("fake-ollama-worker")
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared::new(config, true));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serve_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("fake-ollama".to_string())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(_) => return,
                    };
                    tokio::select! {
                        _ = run(listener, serve_shared) => {}
                        _ = rx => {}
                    }
                });
                // Drops every connection task and waits for the worker threads.
                runtime.shutdown_timeout(Duration::from_secs(5));
            })?;
        Ok(FakeOllama {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT` (IPv6 addresses in brackets).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests received so far, oldest first (the last
    /// [`crate::MAX_RECORDED_REQUESTS`] only).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.requests()
    }

    /// How many requests arrived in total (also counting those no longer in the log).
    pub fn request_count(&self) -> u64 {
        self.shared.recorder.total()
    }

    /// Streamed answers whose connection the client closed before the last frame (e.g. the
    /// gateway ending an answer because its key's token quota ran out).
    pub fn streams_abandoned(&self) -> u64 {
        self.shared
            .timing
            .abandoned
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Generating requests being served right now (a streamed answer counts while it streams).
    pub fn active_requests(&self) -> u64 {
        self.shared.concurrency.active()
    }

    /// The most generating requests served at once since the start (or the last
    /// [`FakeOllama::reset_peak`]).
    pub fn peak_concurrency(&self) -> u64 {
        self.shared.concurrency.peak()
    }

    /// Starts measuring [`FakeOllama::peak_concurrency`] again from now.
    pub fn reset_peak(&self) {
        self.shared.concurrency.reset_peak();
    }

    /// Empties the request log (the total count keeps counting).
    pub fn clear_requests(&self) {
        self.shared.recorder.clear();
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &FakeConfig {
        &self.shared.config
    }

    /// Stops listening and closes all connections (the same as dropping it).
    pub fn stop(self) {
        drop(self);
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FakeOllama {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for FakeOllama {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOllama")
            .field("addr", &self.addr)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Serves the fake on `listener` until the future is dropped, **without** recording requests
/// (the `fake-ollama` binary uses this; tests use [`FakeOllama`]).
pub async fn serve(listener: tokio::net::TcpListener, config: FakeConfig) -> io::Result<()> {
    run(listener, Arc::new(Shared::new(config, false))).await
}

async fn run(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> io::Result<()> {
    let app = Router::new().fallback(handle).with_state(shared);
    let listener = listener.tap_io(|tcp| {
        // Streams are many small writes; do not let Nagle hold them back.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}

/// The one handler: read and record the request, check `Host`, then route.
async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return full(StatusCode::PAYLOAD_TOO_LARGE, TEXT, Bytes::new()),
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    shared
        .recorder
        .record(&parts.method, path_and_query, &parts.headers, &body);

    if shared.config.host_check {
        let host = match parts.headers.get(HOST) {
            Some(v) => v.to_str().ok(),
            None => Some(parts.uri.authority().map(|a| a.as_str()).unwrap_or("")),
        };
        if !host.is_some_and(host_allowed) {
            return empty(StatusCode::FORBIDDEN);
        }
    }

    let path = parts.uri.path();
    let Some((route, methods)) = route_of(path) else {
        return full(
            StatusCode::NOT_FOUND,
            TEXT,
            Bytes::from_static(b"404 page not found"),
        );
    };
    if !methods.contains(&parts.method) {
        let mut r = full(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            Bytes::from_static(b"405 method not allowed"),
        );
        let allow = methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(v) = HeaderValue::from_str(&allow) {
            r.headers_mut().insert(ALLOW, v);
        }
        return r;
    }

    if route.generates() {
        if let Some(status) = shared.config.error_then_stall {
            // A host that fails and then hangs: the status line goes out, the body never ends.
            let never = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
            let mut r = Response::new(Body::from_stream(never));
            *r.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            r.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static(JSON_UTF8),
            );
            return r;
        }
        let active = shared.concurrency.enter();
        let response = generate(&shared, route, &body).await;
        return hold_until_sent(response, active);
    }
    match route {
        Route::Root => {
            let mut r = Response::new(Body::from("Ollama is running"));
            r.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static(TEXT),
            );
            r
        }
        Route::Version => full(StatusCode::OK, JSON_UTF8, shared.version_json.clone()),
        Route::Tags => full(StatusCode::OK, JSON_UTF8, shared.tags_json.clone()),
        Route::Ps => native::ps(&shared),
        Route::Show => native::show(&shared, &body),
        Route::Embed => native::embed(&shared, &body),
        Route::Embeddings => native::embeddings(&shared, &body),
        Route::V1Embeddings => openai::embeddings(&shared, &body),
        // Answered above, counted while they run.
        Route::Generate
        | Route::Chat
        | Route::V1Chat
        | Route::V1Completions
        | Route::V1Responses
        | Route::V1Messages => generate(&shared, route, &body).await,
        Route::V1Models => full(
            StatusCode::OK,
            crate::body::JSON,
            shared.v1_models_json.clone(),
        ),
        Route::V1Model => openai::model(&shared, path.strip_prefix("/v1/models/").unwrap_or("")),
        Route::V1Transcriptions => {
            crate::transcription::transcribe(&shared, &parts.headers, body).await
        }
    }
}

/// The routes that produce an answer (counted by [`Concurrency`]).
async fn generate(shared: &Shared, route: Route, body: &Bytes) -> Response {
    match route {
        Route::Generate => native::generate(shared, body, false).await,
        Route::Chat => native::generate(shared, body, true).await,
        Route::V1Chat => openai::chat_completions(shared, body).await,
        Route::V1Completions => openai::completions(shared, body).await,
        Route::V1Responses => openai::responses(shared, body).await,
        Route::V1Messages => anthropic::messages(shared, body).await,
        _ => empty(StatusCode::NOT_FOUND),
    }
}

#[derive(Clone, Copy, Debug)]
enum Route {
    Root,
    Version,
    Tags,
    Ps,
    Show,
    Generate,
    Chat,
    Embed,
    Embeddings,
    V1Chat,
    V1Completions,
    V1Embeddings,
    V1Models,
    V1Model,
    V1Responses,
    V1Messages,
    V1Transcriptions,
}

impl Route {
    fn generates(self) -> bool {
        matches!(
            self,
            Route::Generate
                | Route::Chat
                | Route::V1Chat
                | Route::V1Completions
                | Route::V1Responses
                | Route::V1Messages
        )
    }
}

const GET_HEAD: &[Method] = &[Method::GET, Method::HEAD];
const GET: &[Method] = &[Method::GET];
const POST: &[Method] = &[Method::POST];

/// The routes the fake serves and their allowed methods (as Ollama's `GenerateRoutes`).
fn route_of(path: &str) -> Option<(Route, &'static [Method])> {
    Some(match path {
        "/" => (Route::Root, GET_HEAD),
        "/api/version" => (Route::Version, GET_HEAD),
        "/api/tags" => (Route::Tags, GET_HEAD),
        "/api/ps" => (Route::Ps, GET),
        "/api/show" => (Route::Show, POST),
        "/api/generate" => (Route::Generate, POST),
        "/api/chat" => (Route::Chat, POST),
        "/api/embed" => (Route::Embed, POST),
        "/api/embeddings" => (Route::Embeddings, POST),
        "/v1/chat/completions" => (Route::V1Chat, POST),
        "/v1/completions" => (Route::V1Completions, POST),
        "/v1/embeddings" => (Route::V1Embeddings, POST),
        "/v1/models" => (Route::V1Models, GET),
        "/v1/responses" => (Route::V1Responses, POST),
        "/v1/messages" => (Route::V1Messages, POST),
        "/v1/audio/transcriptions" => (Route::V1Transcriptions, POST),
        _ => {
            let model = path.strip_prefix("/v1/models/")?;
            if model.is_empty() || model.contains('/') {
                return None;
            }
            (Route::V1Model, GET)
        }
    })
}
