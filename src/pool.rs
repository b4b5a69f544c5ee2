//! The shard's buffer pool: connection buffers are reused instead of reallocated.

use std::cell::{Cell, RefCell};

use bytes::BytesMut;

/// Buffers that start at one size, kept for reuse within a byte budget. Shard-local.
pub struct BufferPool {
    size: usize,
    budget: usize,
    pooled: Cell<usize>,
    free: RefCell<Vec<BytesMut>>,
}

impl BufferPool {
    /// A pool of `size`-byte buffers that keeps idle ones up to `budget` bytes in all.
    pub fn new(size: usize, budget: usize) -> BufferPool {
        BufferPool {
            size,
            budget,
            pooled: Cell::new(0),
            free: RefCell::new(Vec::new()),
        }
    }

    /// An empty buffer with room for at least the pool's initial size.
    pub fn take(&self) -> BytesMut {
        match self.free.borrow_mut().pop() {
            Some(buf) => {
                self.pooled.set(self.pooled.get() - 4 * self.size);
                buf
            }
            None => BytesMut::with_capacity(self.size),
        }
    }

    /// Returns a buffer for reuse, or drops it.
    ///
    /// A read buffer's `capacity()` only shows the room after the requests split off it,
    /// not the allocation behind it, so the allocation is probed without allocating
    /// (`try_reclaim`): one still shared with a live request is dropped (it is freed
    /// when the request is), one that grew past four times the initial size is dropped
    /// so a single large request does not pin memory for the life of the shard, and the
    /// rest are kept, counted at that upper bound against the budget.
    pub fn give(&self, mut buf: BytesMut) {
        buf.clear();
        let ceiling = 4 * self.size;
        if buf.try_reclaim(ceiling + 1) || !buf.try_reclaim(self.size) {
            return;
        }
        if self.pooled.get() + ceiling > self.budget {
            return;
        }
        self.pooled.set(self.pooled.get() + ceiling);
        self.free.borrow_mut().push(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_buffers_within_budget_and_drops_oversized_ones() {
        let pool = BufferPool::new(1024, 3 * 4096);
        let a = pool.take();
        let mut big = pool.take();
        big.reserve(64 * 1024);
        pool.give(big);
        assert_eq!(
            pool.free.borrow().len(),
            0,
            "an oversized buffer is dropped"
        );
        pool.give(a);
        for _ in 0..3 {
            pool.give(BytesMut::with_capacity(1024));
        }
        assert_eq!(pool.free.borrow().len(), 3, "the budget holds three");
        let reused = pool.take();
        assert!(reused.capacity() >= 1024 && reused.is_empty());
        assert_eq!(pool.pooled.get(), 2 * 4096);
    }

    #[test]
    fn a_buffer_split_down_to_nothing_is_judged_by_its_allocation() {
        let pool = BufferPool::new(1024, 1 << 20);
        // Grown far past the initial size, then consumed: its view looks small.
        let mut grown = BytesMut::with_capacity(64 * 1024);
        grown.resize(64 * 1024 - 10, b'x');
        drop(grown.split_to(64 * 1024 - 10));
        assert!(grown.capacity() <= 10);
        pool.give(grown);
        assert_eq!(
            pool.free.borrow().len(),
            0,
            "the 64 KiB allocation is not pooled"
        );
        // Still shared with a live request: not pooled either.
        let mut shared = pool.take();
        shared.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let request = shared.split_to(8).freeze();
        pool.give(shared);
        assert_eq!(pool.free.borrow().len(), 0);
        drop(request);
    }
}
