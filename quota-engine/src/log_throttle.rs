//! Warnings that repeat for as long as a fault lasts (a full disk fails every flush, many
//! times a second) are logged at warn once a minute and at debug otherwise.

use std::sync::atomic::{AtomicU64, Ordering};

/// Seconds between two warnings of one [`Throttle`].
const EVERY_SECONDS: u64 = 60;

/// When a warning was last logged, as Unix seconds. One `static` per warning.
pub(crate) struct Throttle(AtomicU64);

impl Throttle {
    pub(crate) const fn new() -> Throttle {
        Throttle(AtomicU64::new(0))
    }

    /// True at most once a minute: log at warn then, at debug otherwise.
    pub(crate) fn ready(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.0.load(Ordering::Relaxed);
        now >= last + EVERY_SECONDS
            && self
                .0
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_a_minute() {
        let t = Throttle::new();
        assert!(t.ready());
        assert!(!t.ready());
    }
}
