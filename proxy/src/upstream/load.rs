//! Counted requests per model: running on a host, and waiting (for a parallel slot of their
//! key or in the fair queue). The admin API's queue view and `llm_quota_queue_depth` read it.
//!
//! Keyed by the model's metrics label (a model a host lists, or `other`), so the table stays
//! as small as the catalogue. One uncontended read lock and two atomic operations per
//! request; a model's counters are created once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

#[derive(Debug, Default)]
pub struct ModelCounts {
    running: AtomicI64,
    waiting: AtomicI64,
}

#[derive(Debug, Default)]
pub struct ModelLoad {
    models: RwLock<HashMap<String, Arc<ModelCounts>>>,
}

/// Counts a request as running or waiting until dropped.
#[derive(Debug)]
pub struct Counted {
    counts: Arc<ModelCounts>,
    running: bool,
}

impl Drop for Counted {
    fn drop(&mut self) {
        let counter = if self.running {
            &self.counts.running
        } else {
            &self.counts.waiting
        };
        counter.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A model's load at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Load {
    pub model: String,
    pub running: i64,
    pub waiting: i64,
}

impl ModelLoad {
    fn counts(&self, model: &str) -> Arc<ModelCounts> {
        if let Some(c) = self.models.read().get(model) {
            return Arc::clone(c);
        }
        Arc::clone(self.models.write().entry(model.to_owned()).or_default())
    }

    pub fn running(&self, model: &str) -> Counted {
        self.count(model, true)
    }

    pub fn waiting(&self, model: &str) -> Counted {
        self.count(model, false)
    }

    fn count(&self, model: &str, running: bool) -> Counted {
        let counts = self.counts(model);
        let counter = if running {
            &counts.running
        } else {
            &counts.waiting
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Counted { counts, running }
    }

    /// Every model seen so far, by name.
    pub fn snapshot(&self) -> Vec<Load> {
        let mut loads: Vec<Load> = self
            .models
            .read()
            .iter()
            .map(|(model, c)| Load {
                model: model.clone(),
                running: c.running.load(Ordering::Relaxed).max(0),
                waiting: c.waiting.load(Ordering::Relaxed).max(0),
            })
            .collect();
        loads.sort_by(|a, b| a.model.cmp(&b.model));
        loads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_guards() {
        let load = ModelLoad::default();
        let a = load.running("llama3");
        let b = load.waiting("llama3");
        let _c = load.waiting("qwen");
        assert_eq!(
            load.snapshot(),
            vec![
                Load {
                    model: "llama3".into(),
                    running: 1,
                    waiting: 1
                },
                Load {
                    model: "qwen".into(),
                    running: 0,
                    waiting: 1
                },
            ]
        );
        drop((a, b));
        assert_eq!(load.snapshot()[0].running, 0);
        assert_eq!(load.snapshot()[0].waiting, 0);
    }
}
