//! Streamed request bodies: the connection feeds the pieces of a body as they arrive
//! into a bounded queue that the handler reads through [`RequestBody`].
//!
//! The connection reads from the socket only while the queue has room, so a handler
//! that reads slowly (writing to a file, say) slows the client through TCP flow
//! control, and a body of any size holds at most one window plus one read in memory.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_lite::Stream;

/// Bytes queued for the handler before the connection stops reading.
pub(crate) const BODY_WINDOW: usize = 64 * 1024;

/// How the body ended, as the handler will see it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Open,
    Complete,
    Failed(io::ErrorKind),
}

/// The queue between the connection (writer) and the handler (reader).
pub(crate) struct BodyFeed {
    pieces: RefCell<VecDeque<Bytes>>,
    queued: Cell<usize>,
    end: Cell<End>,
    reader_alive: Cell<bool>,
    reader: RefCell<Option<Waker>>,
    writer: RefCell<Option<Waker>>,
}

impl BodyFeed {
    /// A feed and the handler's end of it.
    pub(crate) fn new() -> (Rc<BodyFeed>, RequestBody) {
        let feed = Rc::new(BodyFeed {
            pieces: RefCell::new(VecDeque::new()),
            queued: Cell::new(0),
            end: Cell::new(End::Open),
            reader_alive: Cell::new(true),
            reader: RefCell::new(None),
            writer: RefCell::new(None),
        });
        let body = RequestBody { feed: feed.clone() };
        (feed, body)
    }

    /// Whether the handler can take more now.
    pub(crate) fn has_room(&self) -> bool {
        self.queued.get() < BODY_WINDOW
    }

    /// Whether the handler dropped its end: the rest of the body is unwanted.
    pub(crate) fn abandoned(&self) -> bool {
        !self.reader_alive.get()
    }

    /// Queues a piece for the handler.
    pub(crate) fn push(&self, piece: Bytes) {
        self.queued.set(self.queued.get() + piece.len());
        self.pieces.borrow_mut().push_back(piece);
        self.wake_reader();
    }

    /// The body is complete.
    pub(crate) fn finish(&self) {
        self.end.set(End::Complete);
        self.wake_reader();
    }

    /// The body cannot be completed (bad framing, the client left, a timeout).
    pub(crate) fn fail(&self, kind: io::ErrorKind) {
        if self.end.get() == End::Open {
            self.end.set(End::Failed(kind));
        }
        self.wake_reader();
    }

    /// Wakes the connection's task once there is room or the reader is gone.
    pub(crate) fn wait_room(&self, waker: &Waker) {
        *self.writer.borrow_mut() = Some(waker.clone());
    }

    fn wake_reader(&self) {
        if let Some(waker) = self.reader.borrow_mut().take() {
            waker.wake();
        }
    }

    fn wake_writer(&self) {
        if let Some(waker) = self.writer.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// The body of a request on a streaming route (`Router::post_streaming`), read piece
/// by piece as it arrives. `max_request_size` does not apply: the handler decides what
/// to keep. Dropping it before the end tells the connection to stop reading the body;
/// the connection then closes after the response.
pub struct RequestBody {
    feed: Rc<BodyFeed>,
}

impl RequestBody {
    /// A body that is already complete and empty (a request with no body).
    pub(crate) fn empty() -> RequestBody {
        let (feed, body) = BodyFeed::new();
        feed.finish();
        body
    }

    /// The next piece: `None` once the body is complete; an error when it cannot be
    /// (`InvalidData`: bad chunked framing; `UnexpectedEof`: the client left;
    /// `TimedOut`: it sent too slowly).
    pub async fn chunk(&mut self) -> Option<io::Result<Bytes>> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// Whether the body is complete with every piece read: `chunk` would return
    /// `None` at once. Lets a reader that passes pieces on (to another thread, say)
    /// mark the last one as last instead of sending the end on its own.
    pub fn ended(&self) -> bool {
        self.feed.end.get() == End::Complete && self.feed.pieces.borrow().is_empty()
    }

    /// The rest of the body when it has all arrived, in one piece: taken at once, with
    /// no wait. A body of up to 64 KiB (under Content-Length, or chunked) that came in
    /// the same read as its head is so when the handler is called. `None` (nothing
    /// taken) otherwise: read it with [`RequestBody::chunk`].
    pub fn take_whole(&mut self) -> Option<Bytes> {
        let feed = &self.feed;
        let mut pieces = feed.pieces.borrow_mut();
        if feed.end.get() != End::Complete || pieces.len() > 1 {
            return None;
        }
        feed.queued.set(0);
        Some(pieces.pop_front().unwrap_or_default())
    }

    /// Reads the whole body into memory, refusing more than `limit` bytes
    /// (`InvalidData`).
    pub async fn collect(mut self, limit: usize) -> io::Result<Bytes> {
        let mut all = bytes::BytesMut::new();
        while let Some(piece) = self.chunk().await {
            let piece = piece?;
            if all.len() + piece.len() > limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "body over the limit",
                ));
            }
            all.extend_from_slice(&piece);
        }
        Ok(all.freeze())
    }

    fn poll_chunk(&mut self, cx: &Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        let feed = &self.feed;
        if let Some(piece) = feed.pieces.borrow_mut().pop_front() {
            feed.queued.set(feed.queued.get() - piece.len());
            feed.wake_writer();
            return Poll::Ready(Some(Ok(piece)));
        }
        match feed.end.get() {
            End::Complete => Poll::Ready(None),
            End::Failed(kind) => Poll::Ready(Some(Err(kind.into()))),
            End::Open => {
                *feed.reader.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Stream for RequestBody {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx)
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        self.feed.reader_alive.set(false);
        self.feed.wake_writer();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    #[test]
    fn ended_once_the_last_piece_of_a_complete_body_is_read() {
        let (feed, mut body) = BodyFeed::new();
        feed.push(Bytes::from_static(b"x"));
        assert!(!body.ended(), "a piece is still queued");
        let piece = block_on(body.chunk()).unwrap().unwrap();
        assert_eq!(piece, "x");
        assert!(!body.ended(), "the end has not arrived");
        feed.push(Bytes::from_static(b"y"));
        feed.finish();
        assert!(!body.ended());
        block_on(body.chunk()).unwrap().unwrap();
        assert!(body.ended());
        assert!(block_on(body.chunk()).is_none());
        let (feed, body) = BodyFeed::new();
        feed.fail(io::ErrorKind::UnexpectedEof);
        assert!(!body.ended(), "a failed body is not complete");
    }

    #[test]
    fn take_whole_takes_only_a_complete_body_in_one_piece() {
        let (feed, mut body) = BodyFeed::new();
        feed.push(Bytes::from_static(b"x"));
        assert_eq!(body.take_whole(), None, "not complete yet");
        feed.push(Bytes::from_static(b"y"));
        feed.finish();
        assert_eq!(body.take_whole(), None, "two pieces");
        assert_eq!(block_on(body.chunk()).unwrap().unwrap(), "x");
        assert_eq!(body.take_whole().as_deref(), Some(&b"y"[..]));
        assert!(body.ended());
        assert!(feed.has_room());
        assert_eq!(RequestBody::empty().take_whole().as_deref(), Some(&b""[..]));
        let (feed, mut body) = BodyFeed::new();
        feed.fail(io::ErrorKind::UnexpectedEof);
        assert_eq!(body.take_whole(), None, "a failed body");
    }
}
