//! `llm-quota serve`: assembles one process out of Pingora services.
//!
//! - the proxy service (the [`Gateway`]) on `proxy.host:proxy.port`;
//! - the admin API (axum) as a background service on the loopback admin listener;
//! - Prometheus metrics (pingora-prometheus) on the metrics listener;
//! - a background service that re-reads settings overrides;
//! - a background service that health-checks the Ollama hosts ([`crate::upstream::health`]);
//! - a background service that compares usage with limits for alerts ([`crate::alerts`]).
//!
//! The database pool, the ledger's flusher and the usage-log writer live on a small runtime of
//! their own that outlives Pingora's services, so that the last usage (and the unused leases)
//! are written after the proxy stops. On SQLite the process holds a lock on `<file>.lock`
//! while it serves: one process owns the file. Pingora owns the signals: SIGTERM drains running requests for
//! `proxy.grace_period_seconds`, then the process exits.

use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use quota_engine::ledger::OutputPolicy;
use quota_engine::usage_log;
use quota_engine::{DatabaseUrl, Ledger, LedgerConfig, Pacer};

use crate::admin_hooks::Hooks;
use crate::config::{Config, Listen};
use crate::gateway::Gateway;
use crate::metrics::{Metrics, QueueCollector, UpstreamCollector};
use crate::state::{refresh_settings, AppState};

/// Queued usage records before new ones are dropped (the counters stay exact regardless).
const USAGE_QUEUE: usize = 100_000;

/// Runs the gateway until it is told to stop.
pub fn serve(config: Config) -> anyhow::Result<()> {
    let db_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("llm-quota-db")
        .enable_all()
        .build()
        .context("cannot start the database runtime")?;
    // Held until the process ends: a second `serve` on the same SQLite file is refused.
    let _owner = match &config.database_url {
        DatabaseUrl::Sqlite(path) => Some(quota_engine::db::own_sqlite(path)?),
        DatabaseUrl::Postgres(_) => None,
    };
    let (db, overrides) = db_runtime.block_on(async {
        let db = quota_engine::connect(&config.database_url)
            .await
            .with_context(|| {
                format!(
                    "cannot open the database {}",
                    config.database_url.redacted()
                )
            })?;
        quota_engine::db::migrate(&db)
            .await
            .context("migrating the database failed")?;
        let overrides = quota_engine::settings::load(&db)
            .await
            .context("cannot read settings")?;
        anyhow::Ok((db, overrides))
    })?;
    crate::dialect::warm_tokenizer();

    let metrics = Metrics::register().context("cannot register metrics")?;
    let (sink, queue) = usage_log::queue(USAGE_QUEUE);

    let proxy_addr = concrete(&config.proxy).context("proxy listener")?;
    let metrics_addr = concrete(&config.metrics).context("metrics listener")?;
    let admin_listener = StdListener::bind(config.admin.address()).with_context(|| {
        format!(
            "cannot listen on {} (admin.host/admin.port)",
            config.admin.address()
        )
    })?;
    admin_listener.set_nonblocking(true)?;
    let admin_addr = admin_listener.local_addr()?;

    // SQLite's WAL is checkpointed off the request path (see quota_engine::db).
    let database_url = config.database_url.clone();
    db_runtime.spawn(async move { quota_engine::db::checkpoint_forever(&database_url).await });
    // The ledger's flusher runs on the database runtime; it writes usage every flush interval
    // and, once told to stop, gives every lease back and writes the rest.
    let ledger = Ledger::new(
        db.clone(),
        LedgerConfig {
            flush_interval: config.flush_interval,
            shared: config.database_url.is_postgres(),
            // Long enough for the other instances' next flushes to answer a demand.
            lease_wait: (config.flush_interval * 4).max(LedgerConfig::default().lease_wait),
            output: OutputPolicy {
                min_output: config.min_output_tokens,
                reservation: config.output_reservation_tokens,
                gpu_block_ms: config.gpu_block_ms,
            },
            ..LedgerConfig::default()
        },
    );
    let pacer = Pacer::new(db.clone(), config.database_url.is_postgres());
    // Stopped in this order, each waited for in turn: the usage log's last write may queue
    // behind the ledger's last flush (SQLite has one writer), so it is waited for last.
    let mut writers = Writers::new();
    let flusher = pacer.clone();
    writers.spawn(
        &db_runtime,
        "per-minute windows",
        Duration::from_secs(5),
        |stop| flusher.run_flusher(stop),
    );
    let flusher = ledger.clone();
    writers.spawn(
        &db_runtime,
        "usage flush",
        Duration::from_secs(10),
        |stop| flusher.run_flusher(stop),
    );
    let usage_db = db.clone();
    writers.spawn(&db_runtime, "usage log", Duration::from_secs(5), |stop| {
        queue.run(usage_db, stop)
    });
    let state = Arc::new(AppState::new(
        config, db, ledger, pacer, sink, metrics, overrides,
    ));
    QueueCollector::register(Arc::clone(&state.load))
        .context("cannot register the queue metrics")?;
    // Weak: the registry lives as long as the process and must not keep the state alive.
    let weak = Arc::downgrade(&state);
    UpstreamCollector::register(Box::new(move || {
        weak.upgrade().map(|s| Arc::clone(&s.runtime().pool))
    }))
    .context("cannot register the upstream metrics")?;

    let conf = ServerConf {
        threads: state.config.proxy_threads,
        grace_period_seconds: Some(state.config.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(3),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();

    let mut proxy =
        pingora::proxy::http_proxy_service(&server.configuration, Gateway::new(Arc::clone(&state)));
    proxy.add_tcp(&proxy_addr);
    server.add_service(proxy);

    let mut prometheus = pingora_prometheus::prometheus_http_service();
    prometheus.add_tcp(&metrics_addr);
    prometheus.threads = Some(1);
    server.add_service(prometheus);

    let admin_state = admin_api::AdminState {
        db: state.db.clone(),
        periods: state.config.periods,
        password: state.config.admin_password.clone().unwrap_or_default(),
        configured_ollama_urls: state
            .config
            .upstreams
            .iter()
            .map(|u| u.url.clone())
            .collect(),
        configured_default_model: state.config.default_model.clone(),
        proxy_port: proxy_addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(state.config.proxy.port),
        public_url: state.config.public_url.clone(),
        hooks: Arc::new(Hooks::new(Arc::clone(&state))),
    };
    let admin_router = admin_api::router(admin_state, &state.config.allowed_origins);
    server.add_service(background_service(
        "admin-api",
        AdminService {
            listener: parking_lot::Mutex::new(Some(admin_listener)),
            router: parking_lot::Mutex::new(Some(admin_router)),
        },
    ));
    server.add_service(background_service(
        "settings",
        SettingsService(Arc::clone(&state)),
    ));
    server.add_service(background_service(
        "upstream-health",
        HealthService(Arc::clone(&state)),
    ));
    server.add_service(background_service(
        "usage-alerts",
        AlertsService(Arc::clone(&state)),
    ));

    println!("llm-quota: proxy on http://{proxy_addr}, admin on http://{admin_addr}, metrics on http://{metrics_addr}");
    tracing::info!(proxy = %proxy_addr, admin = %admin_addr, metrics = %metrics_addr, "llm-quota serving");
    drop(state);
    server.run(RunArgs::default());

    // Every request has finished: the ledger's last flush cannot miss one.
    writers.stop(&db_runtime);
    Ok(())
}

/// The database runtime's writers (the ledger's usage flush, the per-minute windows, the usage
/// log): started with one stop signal, and stopped together once the last request has ended,
/// each given its time to write what it holds.
struct Writers {
    stop: tokio::sync::watch::Sender<bool>,
    running: Vec<(&'static str, Duration, tokio::task::JoinHandle<()>)>,
}

impl Writers {
    fn new() -> Writers {
        Writers {
            stop: tokio::sync::watch::channel(false).0,
            running: Vec::new(),
        }
    }

    /// Runs `writer` on `runtime`; the future it is given resolves when the writers are
    /// stopped, and it then has `grace` to finish.
    fn spawn<W, F>(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        name: &'static str,
        grace: Duration,
        writer: W,
    ) where
        W: FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> F,
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut stopped = self.stop.subscribe();
        let stop = Box::pin(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        self.running
            .push((name, grace, runtime.spawn(writer(stop))));
    }

    /// Tells every writer to stop and waits for each in the order they were started, at most
    /// its grace from when its turn comes.
    fn stop(self, runtime: &tokio::runtime::Runtime) {
        let _ = self.stop.send(true);
        runtime.block_on(async {
            for (name, grace, task) in self.running {
                if tokio::time::timeout(grace, task).await.is_err() {
                    tracing::error!(writer = name, "did not finish writing before exit");
                }
            }
        });
    }
}

/// `host:port` with port 0 replaced by a free port (Pingora binds its listeners itself and
/// does not report the port it got).
fn concrete(listen: &Listen) -> anyhow::Result<String> {
    if listen.port != 0 {
        return Ok(listen.address());
    }
    let probe = StdListener::bind(listen.address())
        .with_context(|| format!("cannot listen on {}", listen.address()))?;
    let port = probe.local_addr()?.port();
    Ok(Listen {
        host: listen.host.clone(),
        port,
    }
    .address())
}

struct AdminService {
    /// Bound before Pingora starts (so the port is known and errors are reported at once);
    /// taken by the service when it starts.
    listener: parking_lot::Mutex<Option<StdListener>>,
    router: parking_lot::Mutex<Option<axum::Router>>,
}

#[async_trait]
impl BackgroundService for AdminService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let (Some(listener), Some(router)) =
            (self.listener.lock().take(), self.router.lock().take())
        else {
            return;
        };
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "admin listener failed");
                return;
            }
        };
        let stop = async move {
            let _ = shutdown.changed().await;
        };
        if let Err(e) = admin_api::serve(listener, router, stop).await {
            tracing::error!(error = %e, "admin API stopped");
        }
    }
}

struct SettingsService(Arc<AppState>);

#[async_trait]
impl BackgroundService for SettingsService {
    async fn start(&self, shutdown: ShutdownWatch) {
        refresh_settings(Arc::clone(&self.0), shutdown).await;
    }
}

/// Compares usage with limits: the usage-ratio gauge and the webhook alerts.
struct AlertsService(Arc<AppState>);

#[async_trait]
impl BackgroundService for AlertsService {
    async fn start(&self, shutdown: ShutdownWatch) {
        crate::alerts::run(Arc::clone(&self.0), shutdown).await;
    }
}

/// Checks the Ollama hosts of the pool in force (it changes with `ollama_urls` overrides).
struct HealthService(Arc<AppState>);

#[async_trait]
impl BackgroundService for HealthService {
    async fn start(&self, shutdown: ShutdownWatch) {
        let state = Arc::clone(&self.0);
        crate::upstream::health::run(move || Arc::clone(&state.runtime().pool), shutdown).await;
    }
}
