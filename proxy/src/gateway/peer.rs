//! Building Pingora peers for an Ollama host, with the configured timeouts.

use std::time::Duration;

use pingora::prelude::HttpPeer;

use crate::config::Config;
use crate::upstream::Upstream;

/// Pooled upstream connections are dropped after this idle time (below Ollama's own).
const UPSTREAM_IDLE: Duration = Duration::from_secs(30);

/// A plain-HTTP peer for `upstream`, or `None` when its name never resolved.
pub fn make_peer(upstream: &Upstream, config: &Config) -> Option<HttpPeer> {
    let mut peer = upstream.http_peer(config.connect_timeout)?;
    // Per read: covers a model load and prompt evaluation before the first byte.
    peer.options.read_timeout = Some(config.read_timeout);
    peer.options.write_timeout = Some(Duration::from_secs(60));
    peer.options.idle_timeout = Some(UPSTREAM_IDLE);
    Some(peer)
}
