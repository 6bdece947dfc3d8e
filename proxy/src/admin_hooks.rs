//! The proxy's side of the admin API's seam: what the admin API may ask of the running
//! gateway (drop a cached key, apply settings now, report and query the upstreams).

use std::sync::Arc;
use std::time::Duration;

use admin_api::{GatewayHooks, UpstreamStatus};
use async_trait::async_trait;
use bytes::BytesMut;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use quota_engine::settings::Overrides;

use crate::gateway::peer::make_peer;
use crate::state::AppState;
use crate::upstream::Upstream;

/// Largest `/api/tags` answer read from an upstream.
const TAGS_LIMIT: usize = 8 * 1024 * 1024;
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

    async fn fetch_tags(&self, upstream: &Upstream) -> Result<serde_json::Value, String> {
        let peer = make_peer(upstream, &self.state.config).ok_or("host name does not resolve")?;
        let (mut session, _) = self
            .connector
            .get_http_session(&peer)
            .await
            .map_err(|e| e.to_string())?;
        let mut req = RequestHeader::build("GET", b"/api/tags", None).map_err(|e| e.to_string())?;
        req.insert_header("host", upstream.authority.as_str())
            .map_err(|e| e.to_string())?;
        session
            .write_request_header(Box::new(req))
            .await
            .map_err(|e| e.to_string())?;
        session
            .finish_request_body()
            .await
            .map_err(|e| e.to_string())?;
        session
            .read_response_header()
            .await
            .map_err(|e| e.to_string())?;
        let status = session.response_header().map_or(0, |h| h.status.as_u16());
        let mut body = BytesMut::new();
        while let Some(chunk) = session
            .read_response_body()
            .await
            .map_err(|e| e.to_string())?
        {
            if body.len() + chunk.len() > TAGS_LIMIT {
                return Err("the model list is too large".into());
            }
            body.extend_from_slice(&chunk);
        }
        if status != 200 {
            return Err(format!("answered {status}"));
        }
        self.connector
            .release_http_session(session, &peer, peer.options.idle_timeout)
            .await;
        serde_json::from_slice(&body).map_err(|e| format!("invalid JSON: {e}"))
    }
}

#[async_trait]
impl GatewayHooks for Hooks {
    fn key_changed(&self, key_id: i64) {
        self.state.keys.invalidate(key_id);
    }

    fn settings_changed(&self, overrides: Overrides) {
        // Resolving new upstream names may block: off the admin's async threads.
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || state.apply_overrides(overrides));
    }

    fn upstreams(&self) -> Vec<UpstreamStatus> {
        self.state
            .runtime()
            .pool
            .hosts()
            .iter()
            .map(|u| UpstreamStatus {
                url: u.url.clone(),
                healthy: u.is_healthy(),
                last_check: None,
                models: Vec::new(),
                inflight: u.inflight(),
            })
            .collect()
    }

    async fn upstream_tags(&self) -> Vec<(String, Result<serde_json::Value, String>)> {
        let runtime = self.state.runtime();
        let mut out = Vec::new();
        for upstream in runtime.pool.hosts().iter().filter(|u| u.is_healthy()) {
            let result = match tokio::time::timeout(TAGS_TIMEOUT, self.fetch_tags(upstream)).await {
                Ok(r) => r,
                Err(_) => Err("timed out".into()),
            };
            out.push((upstream.url.clone(), result));
        }
        out
    }
}
