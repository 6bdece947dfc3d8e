//! The key lookup the proxy does on every request, without a database round trip each time.
//!
//! Entries live for a short time-to-live (default 2 s), so a change made by another instance
//! sharing PostgreSQL bites within that time; the instance that makes a change (its admin API)
//! calls [`KeyCache::invalidate`] and it bites at once. Unknown digests are remembered too, for
//! a shorter time, so a client hammering with a wrong key does not hammer the database. Expiry
//! is checked by the caller against the current time on every request, so it bites exactly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use sea_orm::ConnectionTrait;

use crate::keys::{self, ApiKey};
use crate::Result;

/// Above this many entries the cache starts over (bounds memory under a key-guessing attack).
const MAX_ENTRIES: usize = 100_000;

#[derive(Clone)]
enum Entry {
    Found(Arc<ApiKey>, Instant),
    Missing(Instant),
}

/// Digest → key, shared by every request of one process.
pub struct KeyCache {
    /// Read on every request, written on a miss; never held across an `.await`.
    entries: RwLock<HashMap<String, Entry>>,
    ttl: Duration,
    negative_ttl: Duration,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> KeyCache {
        KeyCache {
            entries: RwLock::new(HashMap::new()),
            ttl,
            negative_ttl: ttl.min(Duration::from_secs(1)),
        }
    }

    /// The key with this plaintext, from memory when fresh, else from the database.
    pub async fn lookup(
        &self,
        db: &impl ConnectionTrait,
        plaintext: &str,
    ) -> Result<Option<Arc<ApiKey>>> {
        let hash = keys::hash_key(plaintext);
        let now = Instant::now();
        if let Some(entry) = self.entries.read().get(&hash) {
            match entry {
                Entry::Found(key, at) if now.duration_since(*at) < self.ttl => {
                    return Ok(Some(Arc::clone(key)))
                }
                Entry::Missing(at) if now.duration_since(*at) < self.negative_ttl => {
                    return Ok(None)
                }
                _ => {}
            }
        }
        let found = keys::find_by_hash(db, &hash).await?.map(Arc::new);
        let entry = match &found {
            Some(key) => Entry::Found(Arc::clone(key), now),
            None => Entry::Missing(now),
        };
        let mut entries = self.entries.write();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, entry);
        Ok(found)
    }

    /// Forgets one key (after this instance changed it).
    pub fn invalidate(&self, key_id: i64) {
        self.entries
            .write()
            .retain(|_, e| !matches!(e, Entry::Found(k, _) if k.id == key_id));
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.entries.write().clear();
    }
}
