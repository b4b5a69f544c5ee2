//! The shard's buffer pool: connection buffers are reused instead of reallocated.

use std::cell::RefCell;

use bytes::BytesMut;

/// Buffers of one initial size, kept for reuse. Shard-local.
pub struct BufferPool {
    size: usize,
    keep: usize,
    free: RefCell<Vec<BytesMut>>,
}

impl BufferPool {
    /// A pool of `size`-byte buffers that keeps at most `keep` idle ones.
    pub fn new(size: usize, keep: usize) -> BufferPool {
        BufferPool {
            size,
            keep,
            free: RefCell::new(Vec::new()),
        }
    }

    /// The size buffers start at.
    pub fn buffer_size(&self) -> usize {
        self.size
    }

    /// An empty buffer with room for at least `buffer_size` bytes.
    pub fn take(&self) -> BytesMut {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(self.size))
    }

    /// Returns a buffer. One that grew well past the initial size is dropped instead,
    /// so a single large request does not pin memory for the life of the shard.
    pub fn give(&self, mut buf: BytesMut) {
        let mut free = self.free.borrow_mut();
        let fits = buf.capacity() > 0 && buf.capacity() <= 2 * self.size;
        if free.len() < self.keep && fits {
            buf.clear();
            free.push(buf);
        }
    }

    /// Whether `buf` grew so far past the initial size that it should be swapped for a
    /// fresh one once it is empty.
    pub fn oversized(&self, buf: &BytesMut) -> bool {
        buf.capacity() > 4 * self.size
    }
}
