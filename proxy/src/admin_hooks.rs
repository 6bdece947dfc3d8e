//! The proxy's side of the admin API's seam: what the admin API may ask of the running
//! gateway (drop a cached key, apply settings now, report and query the upstreams).

use std::sync::Arc;
use std::time::Duration;

use admin_api::{GatewayHooks, UpstreamStatus};
use async_trait::async_trait;
use pingora::connectors::http::Connector;
use quota_engine::settings::Overrides;
use serde_json::json;

use crate::state::AppState;
use crate::upstream::health::fetch_json;

/// How long the admin waits for a host whose model list the checks have not learned yet.
const TAGS_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Hooks {
    pub state: Arc<AppState>,
    /// Connections for the admin's own upstream queries.
    connector: Connector,
}

impl Hooks {
    pub fn new(state: Arc<AppState>) -> Hooks {
        Hooks {
            state,
            connector: Connector::new(None),
        }
    }
}

#[async_trait]
impl GatewayHooks for Hooks {
    fn key_changed(&self, key_id: i64) {
        self.state.keys.invalidate(key_id);
    }

    fn in_flight(&self, key_id: i64) -> admin_api::views::InFlightView {
        self.state.ledger.in_flight(key_id).into()
    }

    fn team_in_flight(&self, team_id: i64) -> admin_api::views::InFlightView {
        self.state
            .ledger
            .in_flight(quota_engine::gate::AccountId::Team(team_id))
            .into()
    }

    /// Every cached key is read again: the cache holds each key with its team.
    fn team_changed(&self, _team_id: i64) {
        self.state.keys.clear();
    }

    fn model_load(&self) -> Vec<admin_api::views::ModelLoadView> {
        self.state
            .load
            .snapshot()
            .into_iter()
            .map(|l| admin_api::views::ModelLoadView {
                model: l.model,
                running: l.running,
                waiting: l.waiting,
            })
            .collect()
    }

    fn settings_changed(&self, overrides: Overrides) {
        // Resolving new upstream names may block: off the admin's async threads.
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || state.apply_overrides(overrides));
    }

    fn upstreams(&self) -> Vec<UpstreamStatus> {
        let tz = self.state.config.periods.tz();
        self.state
            .runtime()
            .pool
            .hosts()
            .iter()
            .map(|u| {
                let catalog = u.catalog();
                UpstreamStatus {
                    url: u.url.clone(),
                    healthy: u.is_available(),
                    last_check: catalog
                        .last_check
                        .map(|t| t.with_timezone(&tz).to_rfc3339()),
                    models: catalog
                        .models
                        .iter()
                        .flatten()
                        .map(|m| m.name.clone())
                        .collect(),
                    inflight: u.inflight(),
                }
            })
            .collect()
    }

    /// The healthy hosts' model lists: what the last check learned, or a live `/api/tags` for
    /// a host not checked successfully yet.
    async fn upstream_tags(&self) -> Vec<(String, Result<serde_json::Value, String>)> {
        let runtime = self.state.runtime();
        let mut out = Vec::new();
        for upstream in runtime.pool.hosts().iter().filter(|u| u.is_available()) {
            let result = match &upstream.catalog().models {
                Some(models) => Ok(json!({
                    "models": models.iter().map(|m| m.entry.clone()).collect::<Vec<_>>()
                })),
                None => fetch_json(&self.connector, upstream, "/api/tags", TAGS_TIMEOUT).await,
            };
            out.push((upstream.url.clone(), result));
        }
        out
    }
}
