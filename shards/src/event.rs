//! A one-shot, shard-local event: set once, awaited by any number of tasks.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// Fires once; every waiter, present or future, then completes. Not `Send`: it lives on
/// one shard.
#[derive(Default)]
pub struct LocalEvent {
    fired: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl LocalEvent {
    /// Fires the event and wakes every task waiting on it.
    pub fn fire(&self) {
        if !self.fired.replace(true) {
            for waker in self.waiters.take() {
                waker.wake();
            }
        }
    }

    /// Whether the event has fired.
    pub fn is_fired(&self) -> bool {
        self.fired.get()
    }

    /// Completes once the event has fired.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.fired.get() {
                return Poll::Ready(());
            }
            let mut waiters = self.waiters.borrow_mut();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}
