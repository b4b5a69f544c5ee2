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

    /// An empty buffer with room for at least `buffer_size` bytes.
    pub fn take(&self) -> BytesMut {
        match self.free.borrow_mut().pop() {
            Some(buf) => {
                self.pooled.set(self.pooled.get() - buf.capacity());
                buf
            }
            None => BytesMut::with_capacity(self.size),
        }
    }

    /// Returns a buffer. One that grew past `oversized` is dropped instead, so a single
    /// large request does not pin memory for the life of the shard; a moderately grown
    /// one is kept, so batches that regularly need more room do not regrow it each time.
    pub fn give(&self, mut buf: BytesMut) {
        let capacity = buf.capacity();
        if capacity == 0 || self.oversized(&buf) || self.pooled.get() + capacity > self.budget {
            return;
        }
        buf.clear();
        self.pooled.set(self.pooled.get() + capacity);
        self.free.borrow_mut().push(buf);
    }

    /// Whether `buf` grew so far past the initial size that it should be swapped for a
    /// fresh one once it is empty.
    pub fn oversized(&self, buf: &BytesMut) -> bool {
        buf.capacity() > 4 * self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_buffers_within_budget_and_drops_oversized_ones() {
        let pool = BufferPool::new(1024, 3 * 1024);
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
        pool.give(BytesMut::with_capacity(1024));
        pool.give(BytesMut::with_capacity(1024));
        pool.give(BytesMut::with_capacity(1024));
        assert_eq!(pool.free.borrow().len(), 3, "the budget holds three");
        let reused = pool.take();
        assert!(reused.capacity() >= 1024 && reused.is_empty());
        assert_eq!(pool.pooled.get(), 2 * 1024);
    }
}
