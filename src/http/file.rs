//! A response body that is a slice of an open file.
//!
//! On a plain connection the connection hands the slice to the kernel (`sendfile`),
//! which moves it from the page cache to the socket without passing through user
//! memory. Where bytes must pass through the process (TLS encrypts them, a layer
//! re-encodes them), the same body is also a stream of positional reads, so every
//! consumer of a streamed body still works.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::rc::Rc;

use bytes::Bytes;
use futures_lite::{stream, Stream};

/// Bytes per read when the file is copied through user memory: the connection's
/// direct-write size, so one piece at a time is held while the client drains it.
const PIECE: usize = 16 * 1024;

/// `len` bytes of `file` from `offset`: what the kernel sends on a plain connection.
#[derive(Debug)]
pub(crate) struct FileBody {
    file: Rc<File>,
    offset: u64,
    len: u64,
}

impl FileBody {
    /// The slice `offset..offset + len` of `file`, and the same slice as a stream of
    /// reads (for a connection that must copy it).
    pub(crate) fn new(
        file: File,
        offset: u64,
        len: u64,
    ) -> (FileBody, impl Stream<Item = Bytes> + 'static) {
        let file = Rc::new(file);
        let pieces = read_pieces(file.clone(), offset, offset + len);
        (FileBody { file, offset, len }, pieces)
    }

    /// The open file.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Where the slice starts in the file, and its length.
    pub(crate) fn range(&self) -> (u64, u64) {
        (self.offset, self.len)
    }
}

/// Bytes `at..end` of `file` in `PIECE`-sized positional reads, each made when the
/// connection asks for the next piece (so a slow client slows the reads).
fn read_pieces(file: Rc<File>, at: u64, end: u64) -> impl Stream<Item = Bytes> + 'static {
    stream::unfold((file, at), move |(file, at)| async move {
        if at >= end {
            return None;
        }
        let want = (end - at).min(PIECE as u64) as usize;
        // Read into spare capacity: no zeroing of a buffer the read overwrites.
        let mut buf = Vec::with_capacity(want);
        match rustix::io::pread(&*file, rustix::buffer::spare_capacity(&mut buf), at) {
            // A read error or a file cut short ends the body early; the connection
            // then closes, since the length was announced.
            Ok(0) | Err(_) => None,
            Ok(n) => Some((Bytes::from(buf), (file, at + n as u64))),
        }
    })
}
