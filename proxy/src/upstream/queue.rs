//! The fair queue in front of the hosts: when every available host with a request's model is
//! at its `max_concurrency`, the request waits here instead of getting 503.
//!
//! A freed slot goes to the next key in round-robin order among the keys with waiting
//! requests, first come first served within a key; a key of priority `p` gets `p` turns
//! before the next key's one. The queue takes the slot on the waiter's behalf (a newcomer
//! cannot take it in between) and hands it over. A waiter that leaves (timeout, client gone)
//! is removed; a slot handed to it as it left is given back, which serves the next.
//!
//! Nothing here runs while the queue is empty: a request finds its host directly, and a
//! finishing request checks one atomic counter.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::{NoHost, Selected, UpstreamPool};

/// Why a request left the queue without a host.
#[derive(Debug, PartialEq, Eq)]
pub enum QueueError {
    /// No slot freed up within the queue timeout.
    TimedOut,
    /// No host can take the model at all (down, unknown): waiting would not help.
    NoHost(NoHost),
}

struct Waiting {
    id: u64,
    model: Option<String>,
    pool: Arc<UpstreamPool>,
    tx: oneshot::Sender<Selected>,
}

struct Line {
    priority: usize,
    waiters: VecDeque<Waiting>,
}

#[derive(Default)]
struct State {
    lines: HashMap<i64, Line>,
    /// Keys with waiting requests, in turn order; the front one is served next.
    order: VecDeque<i64>,
    /// Turns the front key has had in this round.
    turns: usize,
    next_id: u64,
}

/// One per process (see `AppState`); hosts' in-flight guards call [`FairQueue::dispatch`]
/// when they free a slot.
#[derive(Default)]
pub struct FairQueue {
    state: Mutex<State>,
    waiting: AtomicUsize,
}

impl std::fmt::Debug for FairQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FairQueue")
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish()
    }
}

impl FairQueue {
    /// Requests waiting for a host.
    pub fn len(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A host for a request of `key_id` for `model`: at once when one has room and nobody
    /// waits, else when the queue hands one over, or an error after `timeout`. `key_id` names
    /// the line the request waits in: its key's, or for a key in a team the team's
    /// ([`quota_engine::pacing::pace_id`]), so that a team's keys take turns together.
    pub async fn acquire(
        self: &Arc<Self>,
        key_id: i64,
        priority: i64,
        model: Option<&str>,
        pool: &Arc<UpstreamPool>,
        timeout: Duration,
    ) -> Result<Selected, QueueError> {
        if self.is_empty() {
            match pool.select(model, &[]) {
                Ok(selected) => return Ok(self.attach(selected)),
                Err(NoHost::AtCapacity) => {}
                Err(other) => return Err(QueueError::NoHost(other)),
            }
        } else if let Err(reason) = pool.has_candidate(model, &[]) {
            if reason != NoHost::AtCapacity {
                return Err(QueueError::NoHost(reason));
            }
        }
        let (tx, mut rx) = oneshot::channel();
        let id = {
            let mut state = self.state.lock();
            let id = state.next_id;
            state.next_id += 1;
            let line = state.lines.entry(key_id).or_insert_with(|| Line {
                priority: usize::try_from(priority.clamp(1, 10)).unwrap_or(1),
                waiters: VecDeque::new(),
            });
            line.waiters.push_back(Waiting {
                id,
                model: model.map(str::to_owned),
                pool: Arc::clone(pool),
                tx,
            });
            if line.waiters.len() == 1 {
                state.order.push_back(key_id);
            }
            self.waiting.fetch_add(1, Ordering::SeqCst);
            id
        };
        let mut leaving = Leaving {
            queue: Arc::clone(self),
            key_id,
            id,
            served: false,
        };
        // A slot may have freed between the failed selection and joining the queue (the
        // fence in `dispatch` orders this against a finishing request's).
        self.dispatch();
        match tokio::time::timeout(timeout, &mut rx).await {
            Ok(Ok(selected)) => {
                leaving.served = true;
                Ok(selected)
            }
            _ => Err(QueueError::TimedOut),
        }
    }

    fn attach(self: &Arc<Self>, mut selected: Selected) -> Selected {
        selected.guard.queue = Some(Arc::clone(self));
        selected
    }

    /// Hands free slots to waiters in turn order (see the module docs). Within a key, the
    /// first waiter whose model has a free host is served: a busy model does not hold up the
    /// key's requests for another.
    pub fn dispatch(self: &Arc<Self>) {
        // Pairs with the fence in `acquire`: a waiter that joined is seen here, or it sees
        // the slot this dispatch was called for (no lost wake-up).
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.is_empty() {
            return;
        }
        // Slots whose waiter left just now: dropped after the lock is released (dropping one
        // dispatches again).
        let mut undelivered = Vec::new();
        {
            let mut state = self.state.lock();
            // (pool, model) pairs found without a free host in this call: handing out slots
            // only fills hosts, so they stay full until it returns.
            let mut full: Vec<(*const UpstreamPool, Option<String>)> = Vec::new();
            let mut i = 0;
            while i < state.order.len() {
                let key_id = state.order[i];
                let Some(line) = state.lines.get_mut(&key_id) else {
                    state.order.remove(i);
                    continue;
                };
                if line.waiters.is_empty() {
                    state.lines.remove(&key_id);
                    state.order.remove(i);
                    continue;
                }
                let mut found = None;
                for (j, w) in line.waiters.iter().enumerate() {
                    let pool = Arc::as_ptr(&w.pool);
                    let model = w.model.as_deref();
                    if full
                        .iter()
                        .any(|(p, m)| *p == pool && m.as_deref() == model)
                    {
                        continue;
                    }
                    match w.pool.select(model, &[]) {
                        Ok(selected) => {
                            found = Some((j, selected));
                            break;
                        }
                        Err(_) => full.push((pool, w.model.clone())),
                    }
                }
                let Some((j, selected)) = found else {
                    // Every model this key waits for is busy; the keys behind may want others.
                    i += 1;
                    continue;
                };
                let Some(waiting) = line.waiters.remove(j) else {
                    undelivered.push(selected);
                    i += 1;
                    continue;
                };
                let priority = line.priority;
                let emptied = line.waiters.is_empty();
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                if let Err(selected) = waiting.tx.send(self.attach(selected)) {
                    undelivered.push(selected);
                }
                if emptied {
                    state.lines.remove(&key_id);
                    state.order.remove(i);
                    if i == 0 {
                        state.turns = 0;
                    }
                } else if i == 0 {
                    state.turns += 1;
                    if state.turns >= priority {
                        state.turns = 0;
                        state.order.rotate_left(1);
                    }
                } else {
                    // Served out of turn (the keys ahead wait for busier models): to the back.
                    if let Some(k) = state.order.remove(i) {
                        state.order.push_back(k);
                    }
                }
                i = 0;
            }
        }
        drop(undelivered);
    }

    /// Requests waiting per model (for the depth metric and the admin API).
    pub fn depth_by_model(&self) -> HashMap<String, usize> {
        let state = self.state.lock();
        let mut depth = HashMap::new();
        for line in state.lines.values() {
            for w in &line.waiters {
                *depth
                    .entry(w.model.clone().unwrap_or_default())
                    .or_insert(0) += 1;
            }
        }
        depth
    }
}

/// Removes a waiter that leaves without a host.
struct Leaving {
    queue: Arc<FairQueue>,
    key_id: i64,
    id: u64,
    served: bool,
}

impl Drop for Leaving {
    fn drop(&mut self) {
        if self.served {
            return;
        }
        let mut state = self.queue.state.lock();
        let Some(line) = state.lines.get_mut(&self.key_id) else {
            return; // served as it left: the slot in its channel is freed with it
        };
        let before = line.waiters.len();
        line.waiters.retain(|w| w.id != self.id);
        if line.waiters.len() < before {
            self.queue.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        if line.waiters.is_empty() {
            state.lines.remove(&self.key_id);
            if let Some(pos) = state.order.iter().position(|k| *k == self.key_id) {
                state.order.remove(pos);
                if pos == 0 {
                    state.turns = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::upstream::pool::tests::{configs, thresholds};

    fn one_slot_pool() -> Arc<UpstreamPool> {
        let mut c = configs(1);
        c[0].max_concurrency = Some(1);
        Arc::new(UpstreamPool::resolve(&c, &thresholds(), None))
    }

    async fn queued(queue: &Arc<FairQueue>, n: usize) {
        while queue.len() < n {
            tokio::task::yield_now().await;
        }
    }

    /// Key 1 queues three, key 2 one after them: key 2 is served second, not fourth; with
    /// priority 2 key 3 gets two turns per round.
    #[tokio::test]
    async fn round_robin_and_priority() {
        let pool = one_slot_pool();
        let queue = Arc::new(FairQueue::default());
        let running = queue
            .acquire(0, 1, None, &pool, Duration::from_secs(5))
            .await
            .unwrap();
        let served = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (n, (key, priority)) in [(1, 1), (1, 1), (1, 1), (2, 1), (3, 2), (3, 2), (3, 2)]
            .into_iter()
            .enumerate()
        {
            let (q, p, s) = (Arc::clone(&queue), Arc::clone(&pool), Arc::clone(&served));
            tasks.push(tokio::spawn(async move {
                let slot = q
                    .acquire(key, priority, None, &p, Duration::from_secs(5))
                    .await
                    .unwrap();
                s.lock().push(key);
                tokio::task::yield_now().await;
                drop(slot);
            }));
            queued(&queue, n + 1).await;
        }
        drop(running);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*served.lock(), vec![1, 2, 3, 3, 1, 3, 1]);
        assert!(queue.is_empty());
    }

    /// A key waiting for a busy host is still served at once on another host: its line is
    /// searched for a waiter whose host has room.
    #[tokio::test]
    async fn a_busy_host_does_not_hold_up_the_keys_other_requests() {
        let busy = one_slot_pool();
        let idle = one_slot_pool();
        let queue = Arc::new(FairQueue::default());
        let running = queue
            .acquire(1, 1, None, &busy, Duration::from_secs(5))
            .await
            .unwrap();
        let (q, b) = (Arc::clone(&queue), Arc::clone(&busy));
        let waiting =
            tokio::spawn(async move { q.acquire(1, 1, None, &b, Duration::from_secs(5)).await });
        queued(&queue, 1).await;
        let other = queue
            .acquire(1, 1, None, &idle, Duration::from_millis(500))
            .await;
        assert!(other.is_ok(), "the idle host's slot was not handed over");
        assert_eq!(queue.len(), 1);
        drop(running);
        assert!(waiting.await.unwrap().is_ok());
        assert!(queue.is_empty());
    }

    /// A waiter that times out or is dropped leaves no trace; the slot goes to the next.
    #[tokio::test]
    async fn leaving() {
        let pool = one_slot_pool();
        let queue = Arc::new(FairQueue::default());
        let running = queue
            .acquire(0, 1, None, &pool, Duration::from_secs(5))
            .await
            .unwrap();
        let timed_out = queue
            .acquire(1, 1, None, &pool, Duration::from_millis(10))
            .await;
        assert_eq!(timed_out.unwrap_err(), QueueError::TimedOut);
        assert!(queue.is_empty());
        let (q, p) = (Arc::clone(&queue), Arc::clone(&pool));
        let dropped =
            tokio::spawn(async move { q.acquire(2, 1, None, &p, Duration::from_secs(5)).await });
        queued(&queue, 1).await;
        dropped.abort();
        let _ = dropped.await;
        assert!(queue.is_empty());
        assert!(queue.depth_by_model().is_empty());
        drop(running);
        let next = queue
            .acquire(3, 1, None, &pool, Duration::from_millis(100))
            .await;
        assert!(next.is_ok(), "the freed slot is available");
    }
}
