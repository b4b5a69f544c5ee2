//! `--stall-timeout`: a worker whose app leaves requests waiting too long without
//! beginning any (a deadlock, an endless loop, an event loop blocked by synchronous
//! code) is ended, so that the supervisor replaces it, as gunicorn's worker timeout
//! does. The shard thread watches: it never waits on Python, so it still runs when the
//! app is stuck. A request running long while nothing waits behind it is not a stall.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How far the app is behind: requests handed to it, requests it has begun, and since
/// when requests have waited.
pub struct Progress {
    born: Instant,
    posted: AtomicU64,
    begun: AtomicU64,
    /// Milliseconds after `born` when the app last began a request, or when a request
    /// arrived to find it caught up: the start of the current wait.
    since: AtomicU64,
}

impl Default for Progress {
    fn default() -> Progress {
        Progress {
            born: Instant::now(),
            posted: AtomicU64::new(0),
            begun: AtomicU64::new(0),
            since: AtomicU64::new(0),
        }
    }
}

impl Progress {
    fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    /// The shard handed the app a request.
    pub fn posted(&self) {
        let before = self.posted.fetch_add(1, Ordering::AcqRel);
        if self.begun.load(Ordering::Acquire) >= before {
            // The app was caught up: the wait starts now, not when it last began one.
            self.since.store(self.now_ms(), Ordering::Release);
        }
    }

    /// The app began a request.
    pub fn begun(&self) {
        self.since.store(self.now_ms(), Ordering::Release);
        self.begun.fetch_add(1, Ordering::AcqRel);
    }

    /// How long requests have waited for the app to begin one; `None` when it has
    /// begun every request handed to it.
    pub fn stalled_for(&self) -> Option<Duration> {
        let begun = self.begun.load(Ordering::Acquire);
        let posted = self.posted.load(Ordering::Acquire);
        let since = self.since.load(Ordering::Acquire);
        (posted > begun).then(|| Duration::from_millis(self.now_ms().saturating_sub(since)))
    }
}

/// Runs on the shard: once requests have waited `timeout` for the app, reports it on
/// stderr and aborts the process. SIGABRT lets Python's faulthandler (which the
/// worker enables with the flag) print every thread's traceback first: where the app
/// is stuck.
pub async fn watch(progress: Arc<Progress>, timeout: Duration, worker: usize) {
    let every = (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        glommio::timer::sleep(every).await;
        if let Some(waited) = progress.stalled_for().filter(|w| *w >= timeout) {
            eprintln!(
                "haywire: worker {worker}: requests have waited {:.1} s without the app \
                 beginning one (--stall-timeout {}); aborting so that the worker is \
                 replaced. Python's threads were at:",
                waited.as_secs_f64(),
                timeout.as_secs_f64()
            );
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_counts_from_the_first_request_the_app_has_not_begun() {
        let progress = Progress::default();
        assert_eq!(progress.stalled_for(), None);
        progress.posted();
        assert!(progress.stalled_for().unwrap() < Duration::from_millis(50));
        progress.begun();
        assert_eq!(progress.stalled_for(), None, "caught up");
        // Long idle, then a request: its wait starts at its arrival.
        progress.since.store(0, Ordering::Release);
        std::thread::sleep(Duration::from_millis(60));
        progress.posted();
        assert!(progress.stalled_for().unwrap() < Duration::from_millis(50));
        progress.posted();
        progress.begun();
        // One still waits: the wait runs from the last request begun.
        std::thread::sleep(Duration::from_millis(60));
        assert!(progress.stalled_for().unwrap() >= Duration::from_millis(60));
        progress.begun();
        assert_eq!(progress.stalled_for(), None);
    }
}
