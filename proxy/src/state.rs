//! What every request shares: the configuration, the database, the key cache, the runtime
//! settings (default model and upstreams, overridable without restart), the usage-log sink and
//! the metrics. One [`AppState`] per process, behind an `Arc`.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use quota_engine::settings::Overrides;
use quota_engine::usage_log::UsageSink;
use quota_engine::{DatabaseConnection, KeyCache, Ledger, Pacer};

use crate::config::{parse_upstream, Config, UpstreamConfig};
use crate::gateway::overhead::PromptOverhead;
use crate::metrics::Metrics;
use crate::upstream::{FairQueue, ModelLoad, UpstreamPool};

/// After this a cached key is re-read in the background (it is still served meanwhile):
/// changes made through another instance bite within about this time.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);
/// How often settings overrides are re-read from the database.
pub const SETTINGS_REFRESH: Duration = Duration::from_secs(2);

/// The values that settings overrides can change at run time.
#[derive(Debug)]
pub struct RuntimeSettings {
    pub default_model: String,
    pub pool: Arc<UpstreamPool>,
    /// The upstream list in force (configured or overridden), to detect changes.
    pub upstreams: Vec<UpstreamConfig>,
    pub overrides: Overrides,
}

pub struct AppState {
    pub config: Config,
    pub db: DatabaseConnection,
    /// Admission, commit and refund in memory, against leases of quota; its flusher writes
    /// usage to the database (see `quota_engine::ledger`).
    pub ledger: Ledger,
    /// Per-minute limits and parallel caps of keys (see `quota_engine::pacing`).
    pub pacer: Pacer,
    /// Counted requests waiting for a host at its `max_concurrency`.
    pub queue: Arc<FairQueue>,
    /// Counted requests per model, running and waiting.
    pub load: Arc<ModelLoad>,
    /// `upstream` counting: what Ollama's prompt counts add to the gateway's, per model.
    pub prompt_overhead: PromptOverhead,
    pub keys: KeyCache,
    /// Read (an `Arc` clone) by every request; replaced whole when an override changes.
    runtime: RwLock<Arc<RuntimeSettings>>,
    /// Finished requests go here; the usage-log writer drains it. Dropping every clone stops
    /// the writer after its last flush.
    pub usage: UsageSink,
    pub metrics: Metrics,
}

impl AppState {
    pub fn new(
        config: Config,
        db: DatabaseConnection,
        ledger: Ledger,
        pacer: Pacer,
        usage: UsageSink,
        metrics: Metrics,
        overrides: Overrides,
    ) -> AppState {
        let runtime = build_runtime(&config, overrides, None);
        AppState {
            keys: KeyCache::new(KEY_CACHE_TTL),
            runtime: RwLock::new(Arc::new(runtime)),
            ledger,
            pacer,
            queue: Arc::default(),
            load: Arc::default(),
            prompt_overhead: PromptOverhead::default(),
            config,
            db,
            usage,
            metrics,
        }
    }

    pub fn runtime(&self) -> Arc<RuntimeSettings> {
        Arc::clone(&self.runtime.read())
    }

    /// Applies overrides read from the database; rebuilds the upstream pool only when the list
    /// changed (name resolution blocks, so call this from a blocking-friendly context).
    pub fn apply_overrides(&self, overrides: Overrides) {
        let current = self.runtime();
        if current.overrides == overrides {
            return;
        }
        let next = build_runtime(&self.config, overrides, Some(&current));
        let rebuilt = !Arc::ptr_eq(&next.pool, &current.pool);
        let pool = Arc::clone(&next.pool);
        *self.runtime.write() = Arc::new(next);
        if rebuilt {
            // New hosts learn their models before the next round, not up to an interval later.
            pool.request_check();
        }
    }
}

fn build_runtime(
    config: &Config,
    overrides: Overrides,
    previous: Option<&RuntimeSettings>,
) -> RuntimeSettings {
    let upstreams = match &overrides.ollama_urls {
        Some(urls) => {
            // A host the YAML configures keeps its weight, max_concurrency and gpu_weight when
            // the override lists it too; a new one gets the defaults.
            let parsed: Vec<_> = urls
                .iter()
                .filter_map(|u| parse_upstream(u).ok())
                .map(|u| {
                    config
                        .upstreams
                        .iter()
                        .find(|c| c.url == u.url)
                        .cloned()
                        .unwrap_or(u)
                })
                .collect();
            if parsed.is_empty() {
                tracing::warn!(
                    "the ollama_urls override holds no valid URL; using the configured ones"
                );
                config.upstreams.clone()
            } else {
                parsed
            }
        }
        None => config.upstreams.clone(),
    };
    let pool = match previous {
        Some(p) if p.upstreams == upstreams => Arc::clone(&p.pool),
        // Hosts whose URL stays keep their health, model lists and in-flight counts.
        _ => Arc::new(UpstreamPool::resolve(
            &upstreams,
            &config.health,
            previous.map(|p| p.pool.as_ref()),
        )),
    };
    RuntimeSettings {
        default_model: overrides
            .default_model
            .clone()
            .unwrap_or_else(|| config.default_model.clone()),
        pool,
        upstreams,
        overrides,
    }
}

/// Re-reads the overrides every [`SETTINGS_REFRESH`] until `shutdown` fires, so that a change
/// made through another instance's admin API arrives here within seconds.
pub async fn refresh_settings(
    state: Arc<AppState>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(SETTINGS_REFRESH);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        match quota_engine::settings::load(&state.db).await {
            Ok(overrides) => {
                let state = Arc::clone(&state);
                let _ = tokio::task::spawn_blocking(move || state.apply_overrides(overrides)).await;
            }
            Err(e) => tracing::warn!(error = %e, "cannot read settings overrides"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::{load, GpuWeight, Sources};

    /// An override of the host list keeps what the YAML says of a host it still lists
    /// (weight, max_concurrency, gpu_weight); a host only the override names gets the defaults.
    #[test]
    fn overridden_hosts_keep_their_configuration() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("conf")).unwrap();
        std::fs::write(
            dir.path().join("conf/llm-quota.yaml"),
            "ollama:\n  urls:\n    - {url: http://a:11434, weight: 3, max_concurrency: 2, gpu_weight: 2.5}\n",
        )
        .unwrap();
        let sources = Sources {
            workdir: dir.path().to_path_buf(),
            ..Default::default()
        };
        let config = load(&sources).unwrap();
        let overrides = Overrides {
            ollama_urls: Some(vec!["http://a:11434".into(), "http://b:11434".into()]),
            ..Default::default()
        };
        let runtime = build_runtime(&config, overrides, None);
        let a = &runtime.upstreams[0];
        assert_eq!((a.weight, a.max_concurrency), (3, Some(2)));
        assert_eq!(a.gpu_weight.get(), 2.5);
        assert_eq!(runtime.upstreams[1].gpu_weight, GpuWeight::ONE);
    }
}
