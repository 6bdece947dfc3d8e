//! The parallel-request cap of a key: at most `max_parallel_requests` of its requests in
//! flight on this instance; the others wait in the key's queue, first come first served, and
//! each finishing request hands its slot straight to the next waiter (no newcomer can take
//! it in between).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::{KeyPace, PaceKind, PaceRefusal};

#[derive(Debug, Default)]
pub(crate) struct Slots {
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    running: i64,
    cap: i64,
    next_id: u64,
    queue: VecDeque<(u64, oneshot::Sender<()>)>,
}

impl SlotState {
    /// Hands free slots to the waiters at the front.
    fn hand_over(&mut self) {
        while self.running < self.cap {
            let Some((_, tx)) = self.queue.pop_front() else {
                break;
            };
            // A waiter leaves the queue before its receiver is dropped (`Waiter` owns it), so
            // this succeeds.
            if tx.send(()).is_ok() {
                self.running += 1;
            }
        }
    }

    fn release(&mut self) {
        self.running = (self.running - 1).max(0);
        self.hand_over();
    }
}

impl Slots {
    pub(crate) fn waiting(&self) -> usize {
        self.state.lock().queue.len()
    }
}

/// A slot of the key's parallel requests, given back when dropped.
pub struct ParallelPermit {
    key: Arc<KeyPace>,
    /// How long the request waited for it.
    pub waited: Duration,
}

impl std::fmt::Debug for ParallelPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelPermit")
            .field("waited", &self.waited)
            .finish()
    }
}

impl Drop for ParallelPermit {
    fn drop(&mut self) {
        self.key.slots.state.lock().release();
    }
}

/// A request in the key's queue; leaving (timeout, client gone) takes it out again. It owns
/// the receiving end, which lives until `drop` has looked at the queue under the lock: so a
/// waiter missing from the queue was handed a slot (the send to a live receiver succeeded and
/// counted it), and only then is that slot released here.
struct Waiter {
    key: Arc<KeyPace>,
    id: u64,
    rx: oneshot::Receiver<()>,
    served: bool,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.served {
            return;
        }
        let mut state = self.key.slots.state.lock();
        let before = state.queue.len();
        state.queue.retain(|(id, _)| *id != self.id);
        if state.queue.len() == before {
            // Not in the queue any more: it was handed a slot just as it left.
            state.release();
        }
    }
}

pub(crate) async fn enter(
    key: Arc<KeyPace>,
    cap: i64,
    timeout: Duration,
) -> Result<ParallelPermit, PaceRefusal> {
    let refusal = || PaceRefusal {
        kind: PaceKind::MaxParallelRequests,
        limit: cap,
        used: cap,
        needed: 1,
        retry_after: Some(Duration::from_secs(1)),
    };
    let (id, rx) = {
        let mut state = key.slots.state.lock();
        state.cap = cap;
        // A raised cap lets waiters in first.
        state.hand_over();
        if state.queue.is_empty() && state.running < cap {
            state.running += 1;
            drop(state);
            return Ok(ParallelPermit {
                key,
                waited: Duration::ZERO,
            });
        }
        if cap <= 0 {
            // Nothing ever frees a slot of a zero cap: no point in waiting or retrying.
            return Err(PaceRefusal {
                retry_after: None,
                ..refusal()
            });
        }
        let id = state.next_id;
        state.next_id += 1;
        let (tx, rx) = oneshot::channel();
        state.queue.push_back((id, tx));
        (id, rx)
    };
    let started = Instant::now();
    let mut waiter = Waiter {
        key: Arc::clone(&key),
        id,
        rx,
        served: false,
    };
    match tokio::time::timeout(timeout, &mut waiter.rx).await {
        Ok(Ok(())) => {
            waiter.served = true;
            Ok(ParallelPermit {
                key,
                waited: started.elapsed(),
            })
        }
        _ => Err(refusal()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pacing::window::Window;

    fn key() -> Arc<KeyPace> {
        Arc::new(KeyPace {
            window: Mutex::new(Window::default()),
            slots: Slots::default(),
            granting: tokio::sync::Mutex::new(()),
        })
    }

    /// Two run, the third waits and gets the first slot freed; waiting past the timeout is a
    /// refusal that leaves no trace in the queue.
    #[tokio::test]
    async fn cap_queue_and_timeout() {
        let k = key();
        let a = enter(Arc::clone(&k), 2, Duration::from_secs(5))
            .await
            .unwrap();
        let _b = enter(Arc::clone(&k), 2, Duration::from_secs(5))
            .await
            .unwrap();
        let third = tokio::spawn(enter(Arc::clone(&k), 2, Duration::from_secs(5)));
        while k.slots.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        drop(a);
        let c = third.await.unwrap().unwrap();
        assert_eq!(k.slots.state.lock().running, 2);
        let refused = enter(Arc::clone(&k), 2, Duration::from_millis(10)).await;
        assert_eq!(refused.unwrap_err().kind, PaceKind::MaxParallelRequests);
        assert_eq!(k.slots.waiting(), 0);
        drop(c);
        assert_eq!(k.slots.state.lock().running, 1);
    }

    /// Waiters timing out just as slots are handed to them never free a slot twice: after
    /// every round the count is back to what is held.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn handover_racing_timeouts_keeps_the_count() {
        let k = key();
        for round in 0..300u64 {
            let held = enter(Arc::clone(&k), 1, Duration::from_secs(5))
                .await
                .unwrap();
            let waiter = tokio::spawn(enter(
                Arc::clone(&k),
                1,
                Duration::from_micros(200 + (round % 7) * 50),
            ));
            tokio::time::sleep(Duration::from_micros(250)).await;
            drop(held);
            drop(waiter.await.unwrap());
            assert_eq!(k.slots.state.lock().running, 0, "round {round}");
            assert_eq!(k.slots.waiting(), 0);
        }
    }

    /// A cap of 0 admits nothing and says retrying does not help.
    #[tokio::test]
    async fn zero_cap() {
        let refused = enter(key(), 0, Duration::from_secs(5)).await.unwrap_err();
        assert!(!refused.can_refill());
        assert!(refused.to_string().contains("max_parallel_requests is 0"));
    }

    /// A waiter whose future is dropped (the client hung up) leaves the queue.
    #[tokio::test]
    async fn dropped_waiter_leaves() {
        let k = key();
        let _a = enter(Arc::clone(&k), 1, Duration::from_secs(5))
            .await
            .unwrap();
        let waiting = tokio::spawn(enter(Arc::clone(&k), 1, Duration::from_secs(5)));
        while k.slots.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        let _ = waiting.await;
        assert_eq!(k.slots.waiting(), 0);
        assert_eq!(k.slots.state.lock().running, 1);
    }
}
