//! Responses in flight on a connection, in request order, and the shard's pool of the
//! queues that hold them.
//!
//! A connection's queue grows to the depth of its deepest batch (4 slots, 832 bytes,
//! after its first request) and would keep that allocation while the connection sits
//! idle; instead an emptied queue goes back to the shard between batches, so an idle
//! keep-alive connection holds none, and the next batch takes one without allocating.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use crate::handler::Reply;
use crate::http::ResponseMode;

/// A response in flight, with how to frame it.
pub(crate) struct Slot {
    pub(crate) reply: Reply,
    pub(crate) mode: ResponseMode,
    /// What the access log needs from the request; `None` when it is off.
    pub(crate) access: Option<crate::access_log::Entry>,
}

/// Emptied in-flight queues kept for reuse, within a byte budget. Shard-local.
pub(crate) struct Queues {
    budget: usize,
    pooled: Cell<usize>,
    free: RefCell<Vec<VecDeque<Slot>>>,
}

impl Queues {
    /// A pool that keeps idle queues of up to `budget` bytes of slots in all.
    pub(crate) fn new(budget: usize) -> Queues {
        Queues {
            budget,
            pooled: Cell::new(0),
            free: RefCell::new(Vec::new()),
        }
    }

    /// An empty queue: a pooled one when there is one.
    pub(crate) fn take(&self) -> VecDeque<Slot> {
        match self.free.borrow_mut().pop() {
            Some(queue) => {
                self.pooled.set(self.pooled.get() - bytes(&queue));
                queue
            }
            None => VecDeque::new(),
        }
    }

    /// Returns a queue for reuse (emptied first), or drops it once the budget is full.
    pub(crate) fn give(&self, mut queue: VecDeque<Slot>) {
        queue.clear();
        let size = bytes(&queue);
        if size == 0 || self.pooled.get() + size > self.budget {
            return;
        }
        self.pooled.set(self.pooled.get() + size);
        self.free.borrow_mut().push(queue);
    }
}

/// What a queue's allocation holds.
fn bytes(queue: &VecDeque<Slot>) -> usize {
    queue.capacity() * std::mem::size_of::<Slot>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Response, StatusCode};

    fn slot() -> Slot {
        Slot {
            reply: Reply::Ready(Response::new(StatusCode::OK)),
            mode: ResponseMode {
                head_only: false,
                keep_alive: true,
                http10: false,
            },
            access: None,
        }
    }

    #[test]
    fn queues_are_reused_emptied_and_kept_within_budget() {
        let mut grown = VecDeque::new();
        grown.push_back(slot());
        let one = bytes(&grown);
        let queues = Queues::new(2 * one);
        queues.give(VecDeque::new());
        assert_eq!(queues.free.borrow().len(), 0, "a queue without allocation");
        let capacity = grown.capacity();
        queues.give(grown);
        let reused = queues.take();
        assert!(reused.is_empty() && reused.capacity() == capacity);
        assert_eq!(queues.pooled.get(), 0);
        for _ in 0..3 {
            let mut queue = VecDeque::new();
            queue.push_back(slot());
            queues.give(queue);
        }
        assert_eq!(queues.free.borrow().len(), 2, "the budget holds two");
        assert_eq!(queues.pooled.get(), 2 * one);
    }
}
