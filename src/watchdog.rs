//! Connection deadlines without a timer per read: each connection owns a `Deadline`,
//! and one task per shard checks them all on a coarse tick and wakes the expired ones.
//!
//! Setting a deadline is a `Cell` store against the shard's cached clock, so the
//! request path pays no syscall and no allocation for its timeouts. The clock is read
//! at each tick, so a deadline set just before a tick counts from a clock up to a tick
//! old and may fire up to one tick early; one checked just after it passed fires up to
//! a tick late.
//!
//! The watchdog also knows which connections sit idle between requests, so that at
//! `max_connections` the longest-idle one can make room for a new client.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// How often deadlines are checked, and so how late one may fire.
pub const TICK: Duration = Duration::from_millis(100);

/// One connection's current deadline.
#[derive(Default)]
pub struct Deadline {
    at: Cell<Option<Instant>>,
    expired: Cell<bool>,
    /// The connection waits between requests (its deadline is the keep-alive's).
    idle: Cell<bool>,
    /// Expired early to make room for a new connection.
    evicted: Cell<bool>,
    /// Its connection gave its place at `max_connections` to a new one: set by an
    /// eviction and never cleared, so the place is released exactly once.
    released: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Deadline {
    /// Expire at `at` (replacing any earlier deadline), or never with `None`.
    pub fn set(&self, at: Option<Instant>) {
        self.at.set(at);
        self.expired.set(false);
        self.idle.set(false);
        self.evicted.set(false);
    }

    /// Expire at `at`, while the connection waits idle between requests: until the
    /// next `set`, it may be evicted (see [`Watchdog::evict_longest_idle`]).
    pub fn set_idle(&self, at: Instant) {
        self.set(Some(at));
        self.idle.set(true);
    }

    /// Whether the deadline has passed since it was last set.
    pub fn expired(&self) -> bool {
        self.expired.get()
    }

    /// Whether it expired because its idle connection was evicted.
    pub fn evicted(&self) -> bool {
        self.evicted.get()
    }

    /// Whether an eviction has taken its connection's place for a new connection.
    pub fn released(&self) -> bool {
        self.released.get()
    }

    /// Remembers the task to wake when the deadline passes.
    pub fn register(&self, waker: &Waker) {
        let mut slot = self.waker.borrow_mut();
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    fn check(&self, now: Instant) {
        if self.at.get().is_some_and(|at| at <= now) && !self.expired.replace(true) {
            if let Some(waker) = self.waker.borrow_mut().take() {
                waker.wake();
            }
        }
    }
}

/// A shard's deadline checker and coarse clock.
pub struct Watchdog {
    now: Cell<Instant>,
    deadlines: RefCell<Vec<Rc<Deadline>>>,
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog {
            now: Cell::new(Instant::now()),
            deadlines: RefCell::new(Vec::new()),
        }
    }
}

impl Watchdog {
    /// The shard's clock as of the last tick.
    pub fn now(&self) -> Instant {
        self.now.get()
    }

    /// A new deadline watched until its owner drops it.
    pub fn deadline(&self) -> Rc<Deadline> {
        let deadline = Rc::new(Deadline::default());
        self.deadlines.borrow_mut().push(deadline.clone());
        deadline
    }

    /// Advances the clock, fires what has expired and forgets dropped deadlines.
    pub fn tick(&self, now: Instant) {
        self.now.set(now);
        self.deadlines.borrow_mut().retain(|deadline| {
            deadline.check(now);
            Rc::strong_count(deadline) > 1
        });
    }

    /// Expires the idle connection that has waited longest (the earliest keep-alive
    /// deadline), so it closes and makes room; its place counts as free from now (see
    /// [`Deadline::released`]). `false` when no connection is idle. A scan of every
    /// deadline: it runs only at `max_connections`.
    pub fn evict_longest_idle(&self) -> bool {
        let deadlines = self.deadlines.borrow();
        let longest = deadlines
            .iter()
            // A deadline only the watchdog holds belongs to a closed connection.
            .filter(|d| d.idle.get() && !d.expired.get() && Rc::strong_count(d) > 1)
            .min_by_key(|d| d.at.get());
        let Some(deadline) = longest else {
            return false;
        };
        deadline.evicted.set(true);
        deadline.released.set(true);
        deadline.expired.set(true);
        deadline.idle.set(false);
        deadline.wake();
        true
    }

    /// Expires every deadline now, waking its task: each connection gives up what it
    /// waits for (a handler, a producer, a slow client) and ends. For the end of a
    /// graceful shutdown's grace.
    pub fn expire_all(&self) {
        for deadline in self.deadlines.borrow().iter() {
            deadline.expired.set(true);
            deadline.wake();
        }
    }

    /// Wakes every task waiting on a deadline without expiring it, so each looks at the
    /// shard's state again (used to start a graceful shutdown).
    pub fn wake_all(&self) {
        for deadline in self.deadlines.borrow().iter() {
            deadline.wake();
        }
    }

    /// Ticks every [`TICK`], for the life of the shard.
    pub async fn run(self: Rc<Self>) {
        loop {
            glommio::timer::sleep(TICK).await;
            self.tick(Instant::now());
        }
    }
}

/// Runs `poll` until it is ready, or returns `None` once `deadline` expires.
pub async fn until<T>(
    deadline: &Deadline,
    mut poll: impl FnMut(&mut std::task::Context<'_>) -> Poll<T>,
) -> Option<T> {
    poll_fn(|cx| {
        if let Poll::Ready(value) = poll(cx) {
            return Poll::Ready(Some(value));
        }
        if deadline.expired() {
            return Poll::Ready(None);
        }
        deadline.register(cx.waker());
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_only_after_its_time_and_forgets_dropped_deadlines() {
        let watchdog = Watchdog::default();
        let start = watchdog.now();
        let deadline = watchdog.deadline();
        deadline.set(Some(start + Duration::from_secs(1)));
        watchdog.tick(start + Duration::from_millis(500));
        assert!(!deadline.expired());
        watchdog.tick(start + Duration::from_secs(2));
        assert!(deadline.expired());
        deadline.set(None);
        watchdog.tick(start + Duration::from_secs(3));
        assert!(!deadline.expired());
        drop(deadline);
        watchdog.tick(start + Duration::from_secs(4));
        assert!(watchdog.deadlines.borrow().is_empty());
    }

    #[test]
    fn expire_all_expires_deadlines_set_or_not() {
        let watchdog = Watchdog::default();
        let (far, none) = (watchdog.deadline(), watchdog.deadline());
        far.set(Some(watchdog.now() + Duration::from_secs(3600)));
        none.set(None);
        watchdog.expire_all();
        assert!(far.expired() && none.expired());
    }

    #[test]
    fn eviction_takes_a_live_idle_connection_and_releases_its_place_once() {
        let watchdog = Watchdog::default();
        let now = watchdog.now();
        let closed = watchdog.deadline();
        closed.set_idle(now);
        drop(closed); // its connection ended before the next tick
        let busy = watchdog.deadline();
        busy.set(Some(now));
        assert!(!watchdog.evict_longest_idle(), "no live idle connection");
        let idle = watchdog.deadline();
        idle.set_idle(now + Duration::from_secs(5));
        assert!(watchdog.evict_longest_idle());
        assert!(idle.expired() && idle.evicted() && idle.released());
        idle.set(None);
        assert!(idle.released(), "the place stays given away");
        assert!(!watchdog.evict_longest_idle(), "evicted once only");
    }
}
