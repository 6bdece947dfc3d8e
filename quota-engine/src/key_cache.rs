//! The key lookup the proxy does on every request, without a database round trip on its path.
//!
//! Entries are **served stale while they revalidate**: an entry older than its time-to-live
//! (default 1 s) is still answered from memory while one background task re-reads the key, so
//! a refresh never blocks a request, and a change made by another instance sharing PostgreSQL
//! bites within the time-to-live plus one read. Only an entry older than `max_stale` (a key
//! idle for a while) or a key never seen is read inline. The instance that makes a change (its
//! admin API) calls [`KeyCache::invalidate`] and it bites at once. Unknown digests are
//! remembered too, for a shorter time, so a client hammering with a wrong key does not hammer
//! the database. Expiry is checked by the caller against the current time on every request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use sea_orm::DatabaseConnection;
use sha2::{Digest, Sha256};

use crate::keys::{self, ApiKey};
use crate::Result;

/// Above this many entries the cache starts over (bounds memory under a key-guessing attack).
const MAX_ENTRIES: usize = 100_000;

type KeyDigest = [u8; 32];

enum Entry {
    Found {
        key: Arc<ApiKey>,
        at: Instant,
        /// Set while a background refresh of this entry runs (one at a time).
        refreshing: Arc<AtomicBool>,
    },
    Missing(Instant),
}

struct Inner {
    /// Read on every request, written on a miss or a refresh; never held across an `.await`.
    entries: RwLock<HashMap<KeyDigest, Entry>>,
    /// Bumped by every invalidation: a read that started before one does not store its
    /// (possibly older) answer, so an invalidation is never undone by a read in flight.
    invalidations: AtomicU64,
    ttl: Duration,
    max_stale: Duration,
    negative_ttl: Duration,
}

/// Digest → key, shared by every request of one process. Cheap to clone.
#[derive(Clone)]
pub struct KeyCache {
    inner: Arc<Inner>,
}

enum Cached {
    Fresh(Option<Arc<ApiKey>>),
    Stale(Arc<ApiKey>, Arc<AtomicBool>),
    Unknown,
}

impl KeyCache {
    /// Entries are refreshed after `ttl` and read inline when older than `ttl + 3 s`.
    pub fn new(ttl: Duration) -> KeyCache {
        KeyCache {
            inner: Arc::new(Inner {
                entries: RwLock::new(HashMap::new()),
                invalidations: AtomicU64::new(0),
                ttl,
                max_stale: ttl + Duration::from_secs(3),
                negative_ttl: ttl.min(Duration::from_secs(1)),
            }),
        }
    }

    fn cached(&self, digest: &KeyDigest, now: Instant) -> Cached {
        let entries = self.inner.entries.read();
        match entries.get(digest) {
            Some(Entry::Found {
                key,
                at,
                refreshing,
            }) => {
                let age = now.duration_since(*at);
                if age < self.inner.ttl {
                    Cached::Fresh(Some(Arc::clone(key)))
                } else if age < self.inner.max_stale {
                    Cached::Stale(Arc::clone(key), Arc::clone(refreshing))
                } else {
                    Cached::Unknown
                }
            }
            Some(Entry::Missing(at)) if now.duration_since(*at) < self.inner.negative_ttl => {
                Cached::Fresh(None)
            }
            _ => Cached::Unknown,
        }
    }

    /// The key with this plaintext: from memory when cached (a stale entry is refreshed in
    /// the background), else from the database.
    pub async fn lookup(
        &self,
        db: &DatabaseConnection,
        plaintext: &str,
    ) -> Result<Option<Arc<ApiKey>>> {
        let digest: KeyDigest = Sha256::digest(plaintext.as_bytes()).into();
        match self.cached(&digest, Instant::now()) {
            Cached::Fresh(found) => Ok(found),
            Cached::Stale(key, refreshing) => {
                if !refreshing.swap(true, Ordering::AcqRel) {
                    let cache = self.clone();
                    let db = db.clone();
                    tokio::spawn(async move {
                        if let Err(e) = cache.load(&db, digest).await {
                            tracing::warn!(error = %e, "key refresh failed; serving the cached key");
                        }
                        refreshing.store(false, Ordering::Release);
                    });
                }
                Ok(Some(key))
            }
            Cached::Unknown => self.load(db, digest).await,
        }
    }

    async fn load(
        &self,
        db: &DatabaseConnection,
        digest: KeyDigest,
    ) -> Result<Option<Arc<ApiKey>>> {
        let read_at = Instant::now();
        let generation = self.inner.invalidations.load(Ordering::Acquire);
        let found = keys::find_by_hash(db, &hex::encode(digest), chrono::Utc::now())
            .await?
            .map(Arc::new);
        let entry = match &found {
            Some(key) => Entry::Found {
                key: Arc::clone(key),
                at: read_at,
                refreshing: Arc::new(AtomicBool::new(false)),
            },
            None => Entry::Missing(read_at),
        };
        let mut entries = self.inner.entries.write();
        if self.inner.invalidations.load(Ordering::Acquire) != generation {
            return Ok(found); // changed meanwhile: the next request reads it again
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(digest, entry);
        Ok(found)
    }

    /// Forgets one key (after this instance changed it).
    pub fn invalidate(&self, key_id: i64) {
        let mut entries = self.inner.entries.write();
        self.inner.invalidations.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, e| !matches!(e, Entry::Found { key, .. } if key.id == key_id));
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut entries = self.inner.entries.write();
        self.inner.invalidations.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }
}
