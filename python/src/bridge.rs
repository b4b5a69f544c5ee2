//! The bridge between one shard and the worker's Python thread.
//!
//! Shard → Python: the handler turns the request into an owned [`Job`], posts it to the
//! inbox (a [`Mailbox`]: a locked queue plus a doorbell socket) and returns a future
//! that waits on a shard-local slot. Python → shard: the Python thread posts the
//! response to the outbox (another [`Mailbox`]), which rings its doorbell; a task on
//! the shard reads that doorbell as a glommio stream and completes the slots. A
//! streamed response's pieces go through a [`ResponsePipe`] shared with the shard,
//! which is rung only when its connection waits for them. No foreign thread ever touches
//! a glommio `Waker` (see `shards/src/mailbox.rs` for why: glommio 0.9 can leave the
//! executor parked when woken from another thread).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, TryLockError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_lite::AsyncReadExt;
use haywire::handler::Reply;

use crate::stall::Progress;
use haywire::{
    BodyHandler, Handler, HeaderText, Headers, Request, RequestBody, Response, StatusCode,
};

/// Route index of the fallback (WSGI and ASGI apps get every unrouted path).
pub const FALLBACK: usize = usize::MAX;

/// A request copied out of the shard so it can cross to the Python thread.
pub struct Job {
    /// Matches the response to the waiting slot.
    pub token: u64,
    /// Index of the native route, or [`FALLBACK`].
    pub route: usize,
    /// Method token as sent.
    pub method: String,
    /// Path without the query, as sent (still percent-encoded).
    pub path: String,
    /// Query string without `?`, empty when there was none.
    pub query: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: &'static str,
    /// Header names as sent and their raw values: spans of the request's head, which
    /// is shared, not copied (a copy was two allocations per header).
    pub headers: Headers,
    /// The de-chunked body (empty when `stream` brings it).
    pub body: Bytes,
    /// The body as it arrives, for a request whose body is streamed.
    pub stream: Option<Arc<BodyPipe>>,
    /// `:name` captures of a native route.
    pub params: Vec<(String, String)>,
    /// The connection's peer.
    pub peer: Option<SocketAddr>,
    /// The TLS connection's parameters; `None` over plaintext.
    pub tls: Option<JobTls>,
}

/// What the app learns of a TLS connection, copied out of the shard's shared
/// [`haywire::http::TlsInfo`] (a job crosses threads).
#[derive(Debug)]
pub struct JobTls {
    /// The version's wire code (`0x0304`: TLS 1.3).
    pub version: u16,
    /// The version as mod_ssl names it (`TLSv1.3`).
    pub version_name: &'static str,
    /// The cipher suite's IANA code.
    pub cipher_suite: u16,
    /// The certificate the client presented (DER), verified (`tls.client_ca`).
    pub client_cert: Option<Bytes>,
    /// Its subject as RFC 4514 text.
    pub client_subject: Option<String>,
}

impl Job {
    /// Copies `request` out of the shard; `token` names it on the way back.
    pub fn new(token: u64, route: usize, request: &Request) -> Job {
        Job {
            token,
            route,
            method: request.method_str().to_owned(),
            path: request.path().to_owned(),
            query: request.query().unwrap_or("").to_owned(),
            version: match request.version() {
                haywire::http::Version::Http10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            headers: request.headers().clone(),
            body: request.body().clone(),
            stream: None,
            params: request_params(request, route),
            peer: request.peer_addr(),
            tls: request.tls().map(|tls| JobTls {
                version: tls.version,
                version_name: tls.version_name(),
                cipher_suite: tls.cipher_suite,
                client_cert: tls.client_cert.as_deref().map(Bytes::copy_from_slice),
                client_subject: tls.client_subject.as_deref().map(String::from),
            }),
        }
    }
}

/// A response made by the Python thread. Plain data, so it can cross threads (a
/// haywire `Response` may hold shard-local state); the shard turns it into one.
#[derive(Debug)]
pub struct Answer {
    /// The status code (200..=999, checked when made).
    pub status: StatusCode,
    /// Content-Type of the body; `None` with an empty body sends none.
    pub content_type: Option<Bytes>,
    /// Other headers as the app's bytes (framing headers already removed).
    pub headers: Vec<(Bytes, Bytes)>,
    /// The whole body.
    pub body: Bytes,
    /// Close the connection after this response.
    pub close: bool,
}

impl Answer {
    /// A plain-text answer.
    pub fn text(status: StatusCode, body: &'static str) -> Answer {
        Answer {
            status,
            content_type: Some(Bytes::from_static(b"text/plain")),
            headers: Vec::new(),
            body: Bytes::from_static(body.as_bytes()),
            close: false,
        }
    }

    /// The haywire response (built on the shard).
    pub fn into_response(self) -> Response {
        let body = self.body.clone();
        let has_body = !body.is_empty() || self.content_type.is_some();
        let (response, content_type) = self.head();
        if has_body {
            response.with_body(content_type, body)
        } else {
            response
        }
    }

    /// The response with `len` bytes of `file` from `start` as its body.
    fn into_file(self, file: std::fs::File, start: u64, len: u64) -> Response {
        let (response, content_type) = self.head();
        response.with_file(content_type, file, start, len)
    }

    /// The response with `stream` as its body (`len`: its Content-Length).
    fn into_streamed(
        self,
        len: Option<u64>,
        stream: impl futures_lite::Stream<Item = Bytes> + 'static,
    ) -> Response {
        let (response, content_type) = self.head();
        response.with_stream(content_type, len, stream)
    }

    /// Status, headers and Connection; the content type for the body to set.
    fn head(self) -> (Response, HeaderText) {
        let mut response = Response::new(self.status);
        for (name, value) in self.headers {
            response =
                response.with_header(HeaderText::from_bytes(name), HeaderText::from_bytes(value));
        }
        if self.close {
            response = response.with_close();
        }
        let content_type = self
            .content_type
            .unwrap_or_else(|| Bytes::from_static(b"application/octet-stream"));
        (response, HeaderText::from_bytes(content_type))
    }
}

/// What the Python thread sends the shard about one request.
pub enum Out {
    /// The whole response.
    Whole(Answer),
    /// The head of a streamed response (`answer.body` is empty): `len` announces a
    /// Content-Length, else it is chunked. The body follows through `pipe`.
    Start {
        /// Status and headers.
        answer: Answer,
        /// The app's Content-Length, if it gave one.
        len: Option<u64>,
        /// Where the app puts the body's pieces and its end.
        pipe: Arc<ResponsePipe>,
    },
    /// A piece or the end was put in a streamed response's [`ResponsePipe`] while its
    /// connection waited on it empty: the connection takes it.
    More,
    /// The whole response, its body `len` bytes of `file` from `start`, read by the
    /// shard as static files are (`Response::with_file`: `sendfile` on a plain connection).
    File {
        /// Status and headers (`answer.body` is empty).
        answer: Answer,
        /// An open regular file, the shard's own descriptor.
        file: std::fs::File,
        /// Where the body starts in the file.
        start: u64,
        /// The body's length (its Content-Length).
        len: u64,
    },
    /// The app took request-body bytes (or let the body go) while the shard waited
    /// for room in the [`BodyPipe`]: the shard reads on.
    BodyTaken,
}

/// How a streamed request body ended, as the app sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEnd {
    /// Every byte arrived.
    Complete,
    /// It cannot be completed: the client left, sent bad framing or too slowly.
    Gone,
    /// It went past `limits.max_request_size` (`--max-body-size`); the client was
    /// answered 413.
    TooLarge,
}

/// Who waits on one side of a request (its body's next bytes, or room for its
/// response): threads blocked on a condvar, counted because only they need a notify
/// (a futex wake per piece for nobody is a syscall per piece), and an event loop,
/// by the request's token, which the shard posts to the worker's ready mailbox. No
/// thread waits for the loop (a thread per wait, an executor, costs a hand-off each
/// way and futex calls per piece).
#[derive(Default)]
struct Waiters {
    threads: usize,
    watcher: Option<u64>,
}

impl Waiters {
    /// Takes whom to tell, to be told by [`Wake::send`] after the unlock (a woken
    /// thread does not block at once on the lock held here).
    fn wake(&mut self) -> Wake {
        Wake {
            threads: self.threads > 0,
            watcher: self.watcher.take(),
        }
    }
}

/// Whom [`Waiters::wake`] took.
#[derive(Default)]
struct Wake {
    threads: bool,
    watcher: Option<u64>,
}

impl Wake {
    /// Notifies `condvar` if threads wait on it and posts the watching loop's token to
    /// `ready`, which rings once the shard's round ends (see [`RingLater`]); returns
    /// whether threads were notified.
    fn send(self, condvar: &Condvar, ready: &RingLater<u64>) -> bool {
        if self.threads {
            condvar.notify_all();
        }
        if let Some(token) = self.watcher {
            ready.post(token);
        }
        self.threads
    }
}

/// A request body on its way from the shard to the Python thread, read as it arrives.
/// The shard puts pieces in while fewer than [`BODY_WINDOW`] bytes wait and reads
/// no more from the client until the app takes some (the connection then stops
/// reading the socket: TCP flow control slows the client), so an upload of any size
/// holds about one window in memory.
pub struct BodyPipe {
    /// The request's Content-Length (`None`: chunked).
    pub length: Option<u64>,
    state: Mutex<BodyState>,
    ready: Condvar,
}

#[derive(Default)]
struct BodyState {
    pieces: VecDeque<Bytes>,
    queued: usize,
    end: Option<BodyEnd>,
    /// The shard waits for the app to take bytes (an [`Out::BodyTaken`] wakes it).
    shard_waiting: bool,
    /// The app is done with the request: the rest of the body is unwanted.
    reader_gone: bool,
    /// Threads blocked in [`BodyPipe::wait`], and an event loop waiting for the next
    /// piece or the end (see [`BodyPipe::watch`]).
    waiting: Waiters,
}

/// Request-body bytes that may wait between the connection and the app.
pub const BODY_WINDOW: usize = 256 * 1024;

/// What [`BodyPipe::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// The next bytes, and whether the shard must be told (see [`Out::BodyTaken`]).
    Piece(Bytes, bool),
    /// Nothing yet.
    Empty,
    /// Nothing more will come.
    End(BodyEnd),
}

impl BodyPipe {
    /// An empty pipe for a body of `length` bytes (`None`: chunked).
    pub fn new(length: Option<u64>) -> BodyPipe {
        BodyPipe {
            length,
            state: Mutex::default(),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BodyState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shard's question before reading more: room (`Some(true)`), full
    /// (`Some(false)`: the app will post [`Out::BodyTaken`]), or the app let go (`None`).
    fn room(&self) -> Option<bool> {
        let mut state = self.lock();
        if state.reader_gone {
            return None;
        }
        let room = state.queued < BODY_WINDOW;
        state.shard_waiting = !room;
        Some(room)
    }

    /// Adds a piece for the app; with `last`, ends the body under the same lock, so
    /// the app that takes the piece already sees the body complete (an ASGI app then
    /// gets one `http.request` with `more_body: False`, not an empty one after it).
    fn push(&self, piece: Bytes, last: bool, ready: &RingLater<u64>) {
        let mut state = self.lock();
        state.queued += piece.len();
        state.pieces.push_back(piece);
        if last {
            state.end.get_or_insert(BodyEnd::Complete);
        }
        let wake = state.waiting.wake();
        drop(state);
        wake.send(&self.ready, ready);
    }

    /// Ends the body.
    fn end(&self, end: BodyEnd, ready: &RingLater<u64>) {
        let mut state = self.lock();
        state.end.get_or_insert(end);
        let wake = state.waiting.wake();
        drop(state);
        wake.send(&self.ready, ready);
    }

    /// For an event loop, which must not block: with nothing to take, arranges for
    /// `token` to be posted to the worker's ready mailbox once a piece or the end
    /// arrives, and returns true; false (nothing will be posted) when
    /// [`BodyPipe::take`] has something now.
    pub fn watch(&self, token: u64) -> bool {
        let mut state = self.lock();
        let empty = state.pieces.is_empty() && state.end.is_none();
        if empty {
            state.waiting.watcher = Some(token);
        }
        empty
    }

    /// Takes up to `max` bytes of the next piece without waiting.
    pub fn take(&self, max: usize) -> Taken {
        let mut state = self.lock();
        let Some(piece) = state.pieces.front_mut() else {
            return state.end.map_or(Taken::Empty, Taken::End);
        };
        let piece = if piece.len() > max {
            piece.split_to(max)
        } else {
            state.pieces.pop_front().unwrap_or_default()
        };
        state.queued -= piece.len();
        let tell = std::mem::take(&mut state.shard_waiting);
        Taken::Piece(piece, tell)
    }

    /// Blocks (call it without the GIL) until a piece or the end is there.
    pub fn wait(&self) {
        let mut state = self.lock();
        state.waiting.threads += 1;
        while state.pieces.is_empty() && state.end.is_none() {
            state = self.ready.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state.waiting.threads -= 1;
    }

    /// Whether every byte has arrived and been taken.
    pub fn complete(&self) -> bool {
        let state = self.lock();
        state.pieces.is_empty() && state.end == Some(BodyEnd::Complete)
    }

    /// The app is done with the request; returns whether the shard must be told.
    pub fn leave(&self) -> bool {
        let mut state = self.lock();
        state.reader_gone = true;
        std::mem::take(&mut state.shard_waiting)
    }
}

/// One streamed response on its way from the Python thread to the connection: the
/// pieces the app has posted that the connection has not taken yet, and the body's end.
/// Backpressure: the app waits (GIL released) while [`STREAM_WINDOW`] bytes or more
/// wait here, so memory per stream stays bounded whatever the app produces and however
/// slowly the client reads; a waiting app is woken once the connection has taken them
/// down to [`STREAM_RESUME`] (an app faster than its client sleeps and wakes once per
/// three quarters of a window, not once per piece). The shard is told of a piece (an [`Out::More`]
/// rings its doorbell) only when its connection found nothing to take and waits: a
/// connection busy sending takes the next piece from here as it finishes the last,
/// where a message per piece cost the shard a doorbell read and a reactor round each
/// time its own sending got ahead of the app.
#[derive(Default)]
pub struct ResponsePipe {
    state: Mutex<ResponseState>,
    room: Condvar,
}

#[derive(Default)]
struct ResponseState {
    pieces: VecDeque<Bytes>,
    /// The bytes of `pieces`.
    queued: usize,
    /// `Some(abort)` once the app has ended the body.
    end: Option<bool>,
    /// The connection is gone (client left, or the response was dropped).
    closed: bool,
    /// The connection found nothing to take and waits to be told (see [`Out::More`]).
    shard_waiting: bool,
    /// Threads blocked in [`ResponsePipe::wait_room`] (told only once, at the resume
    /// mark), and an event loop waiting for room (see [`ResponsePipe::watch`]).
    waiting: Waiters,
}

/// Bytes of a streamed response that may wait between the app and the connection: two
/// of the connection's largest writes (the core gathers up to 256 KiB of ready pieces
/// into one), small next to what the kernel buffers for a fast client's socket (its
/// send buffer grows to megabytes). A WSGI thread faster than its client blocks once
/// per three quarters of a window, and each time costs a futex wait and wake and, on
/// the shard's core, two context switches: a 1 MiB body blocked 4 times at 256 KiB,
/// twice at 512 KiB.
pub const STREAM_WINDOW: usize = 512 * 1024;

/// Where an app blocked on a full window is woken: with a quarter left, so that it posts
/// three quarters of a window per wake-up (half at half), while the connection still has
/// pieces to send as the app is scheduled.
pub const STREAM_RESUME: usize = STREAM_WINDOW / 4;

/// What the connection found in a [`ResponsePipe`].
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// The next piece.
    Piece(Bytes),
    /// The body ended (`true`: cut short by the app).
    End(bool),
    /// Nothing yet: the next piece or the end tells the shard.
    Empty,
}

impl ResponsePipe {
    fn lock(&self) -> std::sync::MutexGuard<'_, ResponseState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a piece may be posted now (`Some(true)`), the window is full
    /// (`Some(false)`), or the connection is gone (`None`).
    pub fn has_room(&self) -> Option<bool> {
        let state = self.lock();
        (!state.closed).then_some(state.queued < STREAM_WINDOW)
    }

    /// With the window full, blocks until it has drained to [`STREAM_RESUME`];
    /// returns whether there is room (false: the connection is gone).
    pub fn wait_room(&self) -> bool {
        let mut state = self.lock();
        if !state.closed && state.queued >= STREAM_WINDOW {
            state.waiting.threads += 1;
            while !state.closed && state.queued > STREAM_RESUME {
                state = self.room.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            state.waiting.threads -= 1;
        }
        !state.closed
    }

    /// For an event loop, which must not block: with the window full, arranges for
    /// `token` to be posted to the worker's ready mailbox once it has drained to
    /// [`STREAM_RESUME`] or the connection is gone, and returns true; false (nothing
    /// will be posted) when there is room now or the connection is gone.
    pub fn watch(&self, token: u64) -> bool {
        let mut state = self.lock();
        let full = !state.closed && state.queued >= STREAM_WINDOW;
        if full {
            state.waiting.watcher = Some(token);
        }
        full
    }

    /// Adds the body's next piece (dropped if the connection is gone); returns whether
    /// the shard must be told (an [`Out::More`]): only when its connection waits.
    pub fn post(&self, piece: Bytes) -> bool {
        let mut state = self.lock();
        if state.closed {
            return false;
        }
        state.queued += piece.len();
        state.pieces.push_back(piece);
        std::mem::take(&mut state.shard_waiting)
    }

    /// Ends the body (`abort`: cut short); returns whether the shard must be told.
    pub fn finish(&self, abort: bool) -> bool {
        let mut state = self.lock();
        state.end.get_or_insert(abort);
        std::mem::take(&mut state.shard_waiting)
    }

    /// The connection's next piece, or the end. A piece that brings the bytes down to
    /// [`STREAM_RESUME`] wakes the app's waiters: a waiter blocks only above it, and
    /// sees the room whatever later takes do. The notify comes after the unlock, so
    /// the woken thread does not block at once on the lock held here.
    fn next(&self, ready: &RingLater<u64>) -> Found {
        let mut state = self.lock();
        let Some(piece) = state.pieces.pop_front() else {
            return match state.end {
                Some(abort) => Found::End(abort),
                None => {
                    state.shard_waiting = true;
                    Found::Empty
                }
            };
        };
        let before = state.queued;
        state.queued = before - piece.len();
        let wake = if before > STREAM_RESUME && state.queued <= STREAM_RESUME {
            state.waiting.wake()
        } else {
            Wake::default()
        };
        drop(state);
        wake.send(&self.room, ready);
        Found::Piece(piece)
    }

    /// The connection is gone: drops what waits and wakes the waiters (returns whether
    /// there were any; a stream that ends with nobody waiting costs no futex wake).
    fn close(&self, ready: &RingLater<u64>) -> bool {
        let mut state = self.lock();
        state.closed = true;
        state.shard_waiting = false;
        state.queued = 0;
        state.pieces.clear();
        let wake = state.waiting.wake();
        drop(state);
        wake.send(&self.room, ready)
    }
}

/// The connection waiting on each streamed response whose pipe it found empty, by
/// token: an [`Out::More`] wakes it.
type StreamWakers = Rc<RefCell<HashMap<u64, Waker>>>;

/// The body stream handed to the connection.
struct PipeStream {
    token: u64,
    pipe: Arc<ResponsePipe>,
    wakers: StreamWakers,
    /// The worker's ready mailbox, for an event loop waiting for room.
    ready: Rc<RingLater<u64>>,
}

impl futures_lite::Stream for PipeStream {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        match self.pipe.next(&self.ready) {
            Found::Piece(piece) => Poll::Ready(Some(piece)),
            Found::End(false) => Poll::Ready(None),
            // The body is cut short: a stream cannot report an error, but the
            // connection ends (without completing the chunked framing) when its
            // producer unwinds. `resume_unwind` skips the panic hook: no backtrace
            // for what the app's traceback already told.
            Found::End(true) => std::panic::resume_unwind(Box::new("response stream aborted")),
            Found::Empty => {
                self.wakers
                    .borrow_mut()
                    .insert(self.token, cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for PipeStream {
    fn drop(&mut self) {
        self.wakers.borrow_mut().remove(&self.token);
        self.pipe.close(&self.ready);
    }
}

/// A queue plus a doorbell: any thread posts, one reader drains after a ring.
pub struct Mailbox<T> {
    queue: Mutex<VecDeque<T>>,
    rung: AtomicBool,
    closed: AtomicBool,
    bell: UnixStream,
}

impl<T> Mailbox<T> {
    /// A mailbox and the reading end of its doorbell.
    pub fn new() -> io::Result<(Arc<Mailbox<T>>, UnixStream)> {
        let (bell, door) = UnixStream::pair()?;
        bell.set_nonblocking(true)?;
        door.set_nonblocking(true)?;
        let mailbox = Mailbox {
            queue: Mutex::new(VecDeque::new()),
            rung: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            bell,
        };
        Ok((Arc::new(mailbox), door))
    }

    /// Queues `item` and rings unless a ring is already pending.
    pub fn post(&self, item: T) {
        self.push(item);
        let _ = self.ring();
    }

    /// Queues `item` without ringing: the caller rings later (see [`RingLater`]).
    fn push(&self, item: T) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(item);
    }

    /// Rings unless a ring is already pending; returns whether it rang (the reader
    /// has drained since the last ring, so it may be waiting for this one).
    fn ring(&self) -> bool {
        let ring = !self.rung.swap(true, Ordering::AcqRel);
        if ring {
            // A full socket buffer means unread rings are pending; an error means the
            // reader is gone. Either way there is nothing more to do.
            let _ = (&self.bell).write(&[1]);
        }
        ring
    }

    /// Takes everything queued. Clears the ring first: a post racing with this either
    /// lands in this drain or rings again. (Readers use [`Mailbox::drain_with`].)
    #[cfg(test)]
    pub fn drain(&self) -> VecDeque<T> {
        let mut all = VecDeque::new();
        self.drain_into(&mut all);
        all
    }

    /// Takes everything queued into `spare`, an emptied buffer that becomes the queue;
    /// clears the ring first, so a racing post lands in this drain or rings again. A
    /// reader that drains into the same buffer each time (emptying it as it goes) keeps
    /// two buffers going round, where a fresh queue per drain grew again from nothing
    /// (about 1,100 instructions per request of growing and reallocating).
    pub fn drain_into(&self, spare: &mut VecDeque<T>) {
        debug_assert!(spare.is_empty());
        self.rung.store(false, Ordering::Release);
        std::mem::swap(
            &mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()),
            spare,
        );
    }

    /// [`Mailbox::drain_into`] `spare`, a reader's own buffer kept between calls, and
    /// hands `take` the items: `spare` is left empty with its room, to become the queue
    /// at the next drain. A reader that took a fresh buffer each time left the queue one
    /// with no room, which the shard then grew (moving the items) as it posted a batch.
    pub fn drain_with<R>(
        &self,
        spare: &Mutex<VecDeque<T>>,
        take: impl FnOnce(std::collections::vec_deque::Drain<'_, T>) -> R,
    ) -> R {
        let mut own = VecDeque::new();
        let mut spare = match spare.try_lock() {
            Ok(spare) => Some(spare),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            // Drained again from inside `take` (Python code run by an allocation there,
            // such as a finalizer): a buffer of its own rather than a deadlock.
            Err(TryLockError::WouldBlock) => None,
        };
        let spare = spare.as_deref_mut().unwrap_or(&mut own);
        self.drain_into(spare);
        take(spare.drain(..))
    }

    /// Marks the mailbox closed and wakes the reader.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.rung.store(false, Ordering::Release);
        let _ = self.ring();
    }

    /// Whether [`Mailbox::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// How many items the queue holds before it must grow.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.queue.lock().unwrap().capacity()
    }
}

/// A shard's posts to a mailbox, rung once per round of the shard's scheduler rather
/// than once per item: the requests of every connection that became readable together
/// (or the tokens of every stream that drained together) reach the Python thread with
/// one wake-up. A ring per request woke the Python thread
/// (on the same core) as soon as the first was posted, so it took one or two requests
/// per wake-up and every wake-up cost two context switches and a doorbell read.
pub struct RingLater<T> {
    mailbox: Arc<Mailbox<T>>,
    /// Items are queued that no ring has announced yet.
    due: Cell<bool>,
    /// The [`RingLater::run`] task, waiting for `due`.
    ringer: RefCell<Option<Waker>>,
}

impl<T> RingLater<T> {
    /// Posts to `mailbox`; [`RingLater::run`] must run on the same shard.
    pub fn new(mailbox: Arc<Mailbox<T>>) -> Rc<RingLater<T>> {
        Rc::new(RingLater {
            mailbox,
            due: Cell::new(false),
            ringer: RefCell::new(None),
        })
    }

    /// Queues `item`; the ring follows once the tasks runnable now have run.
    pub fn post(&self, item: T) {
        self.mailbox.push(item);
        if !self.due.replace(true) {
            if let Some(ringer) = self.ringer.borrow_mut().take() {
                ringer.wake();
            }
        }
    }

    /// Rings for what was posted, for the life of the shard. Woken by the first post of
    /// a round, this task queues behind the tasks already runnable (the connections
    /// that the same readiness harvest woke), so it rings after they have posted.
    pub async fn run(self: Rc<Self>) {
        loop {
            std::future::poll_fn(|cx| {
                if self.due.replace(false) {
                    Poll::Ready(())
                } else {
                    *self.ringer.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
            if self.mailbox.ring() {
                // The Python thread may have been woken, on this core: let it run now,
                // while the shard is still awake. It answers before the shard's next
                // turn, which finds the answer without parking. Without the yield the
                // shard ran on into glommio's sleep (5 io_uring_enter calls) and was
                // woken again by the answer: one sequential client cost 1.8 sleeps
                // and 17 io_uring_enter per request, 1.0 and 12.8 with it.
                rustix::thread::sched_yield();
            }
        }
    }
}

/// Runs on a shard until the mailbox's writers are gone: at each ring of `door` (read
/// as a glommio stream, so no foreign thread touches a glommio waker), hands every
/// posted item to `each`.
pub async fn serve_mailbox<T>(mailbox: &Mailbox<T>, door: UnixStream, mut each: impl FnMut(T)) {
    // SAFETY: `into_raw_fd` hands over sole ownership of a valid, open, nonblocking
    // stream socket; glommio's stream takes over closing it. glommio offers no safe
    // conversion from a std socket.
    let mut door = unsafe { glommio::net::UnixStream::from_raw_fd(door.into_raw_fd()) };
    let mut rings = [0u8; 256];
    let mut batch = VecDeque::new();
    loop {
        match door.read(&mut rings).await {
            Ok(0) => return,
            Ok(_) => {
                mailbox.drain_into(&mut batch);
                batch.drain(..).for_each(&mut each);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Reads every pending ring byte from a nonblocking doorbell without waiting.
pub fn consume_rings(door: &UnixStream) {
    let mut rings = [0u8; 256];
    loop {
        match (&*door).read(&mut rings) {
            // Rings are coalesced (one per drain), so a short read has taken them all.
            Ok(n) if n < rings.len() => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Blocks (call it without the GIL) until the doorbell rings or a signal interrupts
/// the wait: one `read` on a door that `Worker::serve` has made blocking. Returns
/// whether a signal did: the caller, Python's main thread, then runs the app's own
/// signal handlers, which Python runs only when asked on that thread (retrying the
/// read here left them waiting for the next request).
pub fn wait_ring(door: &UnixStream) -> bool {
    let mut rings = [0u8; 256];
    matches!((&*door).read(&mut rings), Err(e) if e.kind() == ErrorKind::Interrupted)
}

/// A shard-local one-shot: the response and the waiting task.
#[derive(Default)]
struct Slot {
    response: RefCell<Option<Response>>,
    waker: RefCell<Option<Waker>>,
}

/// The shard's half of the bridge: slots waiting for Python, and the in-flight cap.
pub struct ShardBridge {
    inbox: Rc<RingLater<Job>>,
    /// The worker's ready mailbox: the tokens of requests whose event loop waits for
    /// body bytes or response room, rung once per round like the inbox, so that an
    /// ASGI loop resumes every stream that drained in a round with one wake-up (a ring
    /// per token woke it, on the same core, for each one).
    ready: Rc<RingLater<u64>>,
    pending: RefCell<HashMap<u64, Rc<Slot>>>,
    /// Streamed responses whose connection waits for the next piece.
    streams: StreamWakers,
    /// Request-body pumps waiting for the app to take bytes.
    body_wakers: RefCell<HashMap<u64, Waker>>,
    next: Cell<u64>,
    in_flight: Cell<usize>,
    max_in_flight: usize,
    /// With `--stall-timeout`: counts the requests handed to the app.
    progress: Option<Arc<Progress>>,
}

impl ShardBridge {
    /// A bridge that sends jobs to `inbox` with at most `max_in_flight` unanswered,
    /// and watching event loops' tokens to `ready`, counting jobs in `progress`;
    /// spawns the tasks that ring them (see [`RingLater`]) on the current shard.
    pub fn new(
        inbox: Arc<Mailbox<Job>>,
        ready: Arc<Mailbox<u64>>,
        max_in_flight: usize,
        progress: Option<Arc<Progress>>,
    ) -> Rc<ShardBridge> {
        let inbox = RingLater::new(inbox);
        glommio::spawn_local(inbox.clone().run()).detach();
        let ready = RingLater::new(ready);
        glommio::spawn_local(ready.clone().run()).detach();
        Rc::new(ShardBridge {
            inbox,
            ready,
            pending: RefCell::default(),
            streams: StreamWakers::default(),
            body_wakers: RefCell::default(),
            next: Cell::new(0),
            in_flight: Cell::new(0),
            max_in_flight: max_in_flight.max(1),
            progress,
        })
    }

    /// Serves the outbox: completes slots with the responses the Python thread posts
    /// and feeds streamed bodies. Runs on the shard until the shard ends.
    pub async fn serve(self: Rc<Self>, outbox: Arc<Mailbox<(u64, Out)>>, door: UnixStream) {
        serve_mailbox(&outbox, door, |(token, out)| self.deliver(token, out)).await;
    }

    fn deliver(&self, token: u64, out: Out) {
        let response = match out {
            Out::Whole(answer) => answer.into_response(),
            Out::File {
                answer,
                file,
                start,
                len,
            } => answer.into_file(file, start, len),
            Out::Start { answer, len, pipe } => {
                let stream = PipeStream {
                    token,
                    pipe,
                    wakers: self.streams.clone(),
                    ready: self.ready.clone(),
                };
                answer.into_streamed(len, stream)
            }
            Out::More => {
                if let Some(waker) = self.streams.borrow_mut().remove(&token) {
                    waker.wake();
                }
                return;
            }
            Out::BodyTaken => {
                if let Some(waker) = self.body_wakers.borrow_mut().remove(&token) {
                    waker.wake();
                }
                return;
            }
        };
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
        let slot = self.pending.borrow_mut().remove(&token);
        match slot {
            Some(slot) => {
                *slot.response.borrow_mut() = Some(response);
                if let Some(waker) = slot.waker.borrow_mut().take() {
                    waker.wake();
                }
            }
            // Nobody waits (the handler timed out): dropping the response drops its
            // stream, which tells the app the client is gone.
            None => drop(response),
        }
    }

    /// Hands `request` to Python with its body as `given`; `None` (answer 503) at the
    /// in-flight bound.
    fn submit(&self, route: usize, request: Request, given: Given) -> Option<(u64, Reply)> {
        if self.in_flight.get() >= self.max_in_flight {
            return None;
        }
        let token = self.next.get();
        self.next.set(token.wrapping_add(1));
        let mut job = Job::new(token, route, &request);
        match given {
            Given::InRequest => {}
            Given::Whole(body) => job.body = body,
            Given::Piped(pipe) => job.stream = Some(pipe),
        }
        let slot = Rc::new(Slot::default());
        self.pending.borrow_mut().insert(token, slot.clone());
        self.in_flight.set(self.in_flight.get() + 1);
        if let Some(progress) = &self.progress {
            progress.posted();
        }
        self.inbox.post(job);
        Some((token, Reply::Pending(Box::pin(Waiting { slot }))))
    }

    /// Answers `token`'s request now, before the app has (whose answer is then
    /// dropped); the in-flight count still waits for the app.
    fn answer_early(&self, token: u64, response: Response) {
        if let Some(slot) = self.pending.borrow_mut().remove(&token) {
            *slot.response.borrow_mut() = Some(response);
            if let Some(waker) = slot.waker.borrow_mut().take() {
                waker.wake();
            }
        }
    }

    /// Moves `body` into `pipe` as it arrives, while the app keeps up (see
    /// [`BodyPipe`]), at most `limit` bytes. Dropping `body` early (the app let go, or
    /// too large) tells the connection to stop reading it and close after the response.
    async fn pump(
        self: Rc<Self>,
        token: u64,
        mut body: RequestBody,
        pipe: Arc<BodyPipe>,
        limit: u64,
    ) {
        let mut total = 0u64;
        loop {
            let room = std::future::poll_fn(|cx| match pipe.room() {
                None => Poll::Ready(false),
                Some(true) => Poll::Ready(true),
                Some(false) => {
                    self.body_wakers
                        .borrow_mut()
                        .insert(token, cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
            if !room {
                return;
            }
            match body.chunk().await {
                None => return pipe.end(BodyEnd::Complete, &self.ready),
                Some(Ok(piece)) => {
                    total += piece.len() as u64;
                    if total > limit {
                        pipe.end(BodyEnd::TooLarge, &self.ready);
                        return self.answer_early(token, too_large());
                    }
                    pipe.push(piece, body.ended(), &self.ready);
                }
                Some(Err(_)) => return pipe.end(BodyEnd::Gone, &self.ready),
            }
        }
    }
}

fn busy() -> Reply {
    Reply::Ready(
        Response::new(StatusCode::SERVICE_UNAVAILABLE)
            .with_header("Retry-After", "1")
            .with_body("text/plain", "server busy\n"),
    )
}

/// The answer to a body over `limits.max_request_size`; the connection then closes.
fn too_large() -> Response {
    Response::new(StatusCode::PAYLOAD_TOO_LARGE)
        .with_close()
        .with_body("text/plain", "request body too large\n")
}

thread_local! {
    /// Native routes' `:name` lists, by route index, for the shard's thread.
    static PARAM_NAMES: RefCell<Vec<Vec<String>>> = const { RefCell::new(Vec::new()) };
}

/// Records the `:name` segments of every native route (called where the routes are built).
pub fn set_param_names(routes: &[(String, String)]) {
    PARAM_NAMES.with(|names| {
        *names.borrow_mut() = routes
            .iter()
            .map(|(_, path)| {
                path.split('/')
                    .filter_map(|s| s.strip_prefix(':'))
                    .map(str::to_owned)
                    .collect()
            })
            .collect();
    });
}

fn request_params(request: &Request, route: usize) -> Vec<(String, String)> {
    if route == FALLBACK {
        return Vec::new();
    }
    PARAM_NAMES.with(|names| {
        names.borrow().get(route).map_or_else(Vec::new, |names| {
            names
                .iter()
                .filter_map(|n| Some((n.clone(), request.param(n)?.to_owned())))
                .collect()
        })
    })
}

/// The future a bridged handler returns: ready when the slot is filled.
struct Waiting {
    slot: Rc<Slot>,
}

impl Future for Waiting {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        if let Some(response) = self.slot.response.borrow_mut().take() {
            return Poll::Ready(response);
        }
        *self.slot.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Where the body of a request handed to Python is.
enum Given {
    /// In the request (a route whose body the core gathered).
    InRequest,
    /// Complete, taken from the request's [`RequestBody`].
    Whole(Bytes),
    /// Still arriving, through the pipe.
    Piped(Arc<BodyPipe>),
}

/// A route (or the fallback) answered by the Python thread.
pub struct PyRoute {
    /// The shard's bridge.
    pub bridge: Rc<ShardBridge>,
    /// Native route index or [`FALLBACK`].
    pub route: usize,
}

impl Handler for PyRoute {
    fn call(&self, request: Request) -> Reply {
        match self.bridge.submit(self.route, request, Given::InRequest) {
            Some((_, reply)) => reply,
            None => busy(),
        }
    }
}

/// The fallback for WSGI and ASGI apps: every request no route matches, its body
/// handed to the app as it arrives (see [`BodyPipe`]) rather than gathered first,
/// unless it is already complete: then it goes with the request as bytes.
pub struct PyStreamRoute {
    /// The shard's bridge.
    pub bridge: Rc<ShardBridge>,
    /// `limits.max_request_size`: the most body bytes an app is given.
    pub limit: u64,
}

impl BodyHandler for PyStreamRoute {
    fn call(&self, request: Request, mut body: RequestBody) -> Reply {
        // The core has checked the framing: a request with neither header has no body.
        let length = request
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if length.is_some_and(|length| length > self.limit) {
            return Reply::Ready(too_large());
        }
        // No body, or one that came with the head (the core hands such a body over
        // complete): bytes with the request. Through a pipe it cost a pump task, a
        // lock per step and, when the app asked before the pump had run, a wait and a
        // wake-up on each side: a POST of 1 KiB cost 2.5 times a GET.
        if let Some(whole) = body.take_whole() {
            if whole.len() as u64 > self.limit {
                // Chunked: its length is known only now.
                return Reply::Ready(too_large());
            }
            return match self.bridge.submit(FALLBACK, request, Given::Whole(whole)) {
                Some((_, reply)) => reply,
                None => busy(),
            };
        }
        let pipe = Arc::new(BodyPipe::new(length));
        match self
            .bridge
            .submit(FALLBACK, request, Given::Piped(pipe.clone()))
        {
            Some((token, reply)) => {
                let pump = self.bridge.clone().pump(token, body, pipe, self.limit);
                glommio::spawn_local(pump).detach();
                reply
            }
            None => busy(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_drains_into_a_spare_buffer_that_goes_round() {
        let (mailbox, _door) = Mailbox::<u32>::new().unwrap();
        let mut spare = VecDeque::with_capacity(64);
        mailbox.post(1);
        mailbox.post(2);
        mailbox.drain_into(&mut spare);
        assert_eq!(spare, [1, 2]);
        spare.clear();
        // The queue is the 64-slot buffer now; the next drain hands it back.
        mailbox.post(3);
        let mut other = VecDeque::new();
        mailbox.drain_into(&mut other);
        assert_eq!(other, [3]);
        assert!(other.capacity() >= 64, "{}", other.capacity());
        assert!(mailbox.drain().is_empty());
    }

    #[test]
    fn a_drain_from_inside_a_drain_uses_a_buffer_of_its_own() {
        let (mailbox, _door) = Mailbox::<u32>::new().unwrap();
        let spare = Mutex::new(VecDeque::new());
        mailbox.post(1);
        let (outer, inner) = mailbox.drain_with(&spare, |items| {
            let outer: Vec<u32> = items.collect();
            mailbox.post(2);
            // As Python code run by an allocation in `Worker::take` could: no deadlock.
            let inner: Vec<u32> = mailbox.drain_with(&spare, |items| items.collect());
            (outer, inner)
        });
        assert_eq!((outer, inner), (vec![1], vec![2]));
    }

    /// The ring bytes waiting on `door` (nonblocking).
    fn rings(door: &UnixStream) -> usize {
        let mut rings = [0u8; 16];
        match (&*door).read(&mut rings) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
            Err(e) => panic!("{e}"),
        }
    }

    /// A ready mailbox for pipes whose tests have no event loop watching.
    fn unrung() -> Rc<RingLater<u64>> {
        RingLater::new(Mailbox::new().unwrap().0)
    }

    #[test]
    fn ring_later_rings_once_after_the_runnable_tasks_have_posted() {
        let (mailbox, door) = Mailbox::<u32>::new().unwrap();
        let executor = glommio::LocalExecutorBuilder::default().make().unwrap();
        executor.run(async move {
            let inbox = RingLater::new(mailbox.clone());
            glommio::spawn_local(inbox.clone().run()).detach();
            futures_lite::future::yield_now().await;
            // Connections woken by one harvest post in turn: nobody is rung yet.
            let posters: Vec<_> = (0..3)
                .map(|i| {
                    let inbox = inbox.clone();
                    glommio::spawn_local(async move { inbox.post(i) })
                })
                .collect();
            for poster in posters {
                poster.await;
            }
            assert_eq!(rings(&door), 0, "rung before the round ended");
            futures_lite::future::yield_now().await;
            assert_eq!(rings(&door), 1);
            assert_eq!(mailbox.drain(), [0, 1, 2]);
            // The next round rings again.
            inbox.post(3);
            assert_eq!(rings(&door), 0);
            futures_lite::future::yield_now().await;
            assert_eq!(rings(&door), 1);
            assert_eq!(mailbox.drain(), [3]);
            // A ring says whether it rang: only the first after a drain does.
            assert!(mailbox.ring());
            assert!(!mailbox.ring());
            assert_eq!(rings(&door), 1);
        });
    }

    #[test]
    fn body_pipe_splits_pieces_and_tells_a_waiting_shard_once() {
        let ready = unrung();
        let pipe = BodyPipe::new(Some(10));
        assert_eq!(pipe.take(4), Taken::Empty);
        pipe.push(Bytes::from(vec![7; BODY_WINDOW]), false, &ready);
        // Full: the shard waits, and the next take says to wake it (once).
        assert_eq!(pipe.room(), Some(false));
        assert_eq!(pipe.take(4), Taken::Piece(Bytes::from(vec![7; 4]), true));
        assert_eq!(pipe.room(), Some(true));
        match pipe.take(usize::MAX) {
            Taken::Piece(rest, false) => assert_eq!(rest.len(), BODY_WINDOW - 4),
            other => panic!("{other:?}"),
        }
        assert!(!pipe.complete());
        pipe.end(BodyEnd::Complete, &ready);
        assert!(pipe.complete());
        assert_eq!(pipe.take(4), Taken::End(BodyEnd::Complete));
        // The first end stands.
        pipe.end(BodyEnd::Gone, &ready);
        assert_eq!(pipe.take(4), Taken::End(BodyEnd::Complete));
        pipe.push(Bytes::from(vec![0; BODY_WINDOW]), false, &ready);
        assert_eq!(pipe.room(), Some(false));
        assert!(pipe.leave());
        assert_eq!(pipe.room(), None);
    }

    #[test]
    fn body_pipe_tells_a_watching_loop_once_when_a_piece_or_the_end_arrives() {
        let (ready, _door) = Mailbox::<u64>::new().unwrap();
        let later = RingLater::new(ready.clone());
        let pipe = BodyPipe::new(None);
        assert!(pipe.watch(3));
        assert!(ready.drain().is_empty());
        pipe.push(Bytes::from_static(b"abc"), false, &later);
        assert_eq!(ready.drain(), [3]);
        // Told once: the next piece tells nobody, and with bytes there is nothing to
        // watch for.
        pipe.push(Bytes::from_static(b"def"), false, &later);
        assert!(ready.drain().is_empty());
        assert!(!pipe.watch(3));
        assert!(matches!(pipe.take(usize::MAX), Taken::Piece(..)));
        assert!(matches!(pipe.take(usize::MAX), Taken::Piece(..)));
        // Empty again: the end (the client left) tells the loop too.
        assert!(pipe.watch(4));
        pipe.end(BodyEnd::Gone, &later);
        assert_eq!(ready.drain(), [4]);
        assert!(!pipe.watch(4));
        assert_eq!(pipe.take(1), Taken::End(BodyEnd::Gone));
    }

    #[test]
    fn body_pipe_last_piece_ends_the_body_with_it() {
        let pipe = BodyPipe::new(Some(1));
        pipe.push(Bytes::from_static(b"x"), true, &unrung());
        assert!(!pipe.complete(), "the piece is still to be taken");
        assert_eq!(pipe.take(64), Taken::Piece(Bytes::from_static(b"x"), false));
        // Complete as soon as the piece is taken: no moment where the app sees the
        // bytes without the end.
        assert!(pipe.complete());
        assert_eq!(pipe.take(64), Taken::End(BodyEnd::Complete));
    }

    #[test]
    fn body_pipe_wakes_a_blocked_reader() {
        let pipe = Arc::new(BodyPipe::new(None));
        let reader = {
            let pipe = pipe.clone();
            std::thread::spawn(move || pipe.wait())
        };
        let started = std::time::Instant::now();
        while pipe.lock().waiting.threads != 1 {
            assert!(started.elapsed().as_secs() < 5, "the reader never waited");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        pipe.push(Bytes::from_static(b"x"), false, &unrung());
        reader.join().unwrap();
        assert_eq!(pipe.lock().waiting.threads, 0);
    }

    /// Waits (at most 5 s) until `n` threads are blocked in `pipe.wait_room`.
    fn await_waiters(pipe: &ResponsePipe, n: usize) {
        let started = std::time::Instant::now();
        while pipe.lock().waiting.threads != n {
            assert!(started.elapsed().as_secs() < 5, "never {n} waiters");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Posts a piece of `n` bytes.
    fn post(pipe: &ResponsePipe, n: usize) {
        pipe.post(Bytes::from(vec![b'x'; n]));
    }

    /// Takes the next piece, which must be `n` bytes.
    fn take(pipe: &ResponsePipe, n: usize) {
        match pipe.next(&unrung()) {
            Found::Piece(piece) => assert_eq!(piece.len(), n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn response_pipe_wakes_a_blocked_waiter_when_three_quarters_are_taken() {
        // A window of 64 KiB pieces, and a byte more: the app waits.
        let piece = 64 * 1024;
        let pipe = Arc::new(ResponsePipe::default());
        post(&pipe, 1);
        for _ in 0..STREAM_WINDOW / piece {
            post(&pipe, piece);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let pipe = pipe.clone();
            std::thread::spawn(move || tx.send(pipe.wait_room()).unwrap())
        };
        await_waiters(&pipe, 1);
        // Room for a piece, then for more, up to a piece above the resume mark: the
        // waiter sleeps on (it was woken at half, and posted half a window per
        // wake-up where it now posts three quarters).
        take(&pipe, 1);
        for _ in 0..(STREAM_WINDOW - STREAM_RESUME) / piece - 1 {
            take(&pipe, piece);
        }
        let short = std::time::Duration::from_millis(50);
        assert!(
            rx.recv_timeout(short).is_err(),
            "woken before three quarters were taken"
        );
        // A quarter left: the waiter is woken and sees the room.
        take(&pipe, piece);
        let bounded = std::time::Duration::from_secs(5);
        assert_eq!(rx.recv_timeout(bounded), Ok(true));
        waiter.join().unwrap();
        await_waiters(&pipe, 0);
    }

    #[test]
    fn response_pipe_tells_the_shard_only_when_its_connection_waits() {
        let ready = unrung();
        let pipe = ResponsePipe::default();
        // Pieces posted before the connection looks, or while it is busy sending, are
        // taken as it gets to them: no message to the shard for any of them.
        assert!(!pipe.post(Bytes::from_static(b"a")));
        assert!(!pipe.post(Bytes::from_static(b"b")));
        assert_eq!(pipe.next(&ready), Found::Piece(Bytes::from_static(b"a")));
        assert!(!pipe.post(Bytes::from_static(b"c")));
        assert_eq!(pipe.next(&ready), Found::Piece(Bytes::from_static(b"b")));
        assert_eq!(pipe.next(&ready), Found::Piece(Bytes::from_static(b"c")));
        // Found empty: the connection waits, and the next piece tells the shard, once.
        assert_eq!(pipe.next(&ready), Found::Empty);
        assert!(pipe.post(Bytes::from_static(b"d")));
        assert!(!pipe.post(Bytes::from_static(b"e")));
        // The end behind pieces comes after them, and tells only a waiting connection.
        assert!(!pipe.finish(false));
        assert_eq!(pipe.next(&ready), Found::Piece(Bytes::from_static(b"d")));
        assert_eq!(pipe.next(&ready), Found::Piece(Bytes::from_static(b"e")));
        assert_eq!(pipe.next(&ready), Found::End(false));
        let pipe = ResponsePipe::default();
        assert_eq!(pipe.next(&ready), Found::Empty);
        assert!(pipe.finish(true));
        // The first end stands.
        assert!(!pipe.finish(false));
        assert_eq!(pipe.next(&ready), Found::End(true));
    }

    #[test]
    fn response_pipe_posts_a_watching_loops_token_at_the_resume_mark_or_the_close() {
        let (room, _door) = Mailbox::<u64>::new().unwrap();
        let later = RingLater::new(room.clone());
        let pipe = ResponsePipe::default();
        // Room now: nothing to watch for.
        assert!(!pipe.watch(7));
        for n in [STREAM_WINDOW - STREAM_RESUME - 1, 1, 1, STREAM_RESUME - 1] {
            post(&pipe, n);
        }
        assert!(pipe.watch(7));
        let take = |n| match pipe.next(&later) {
            Found::Piece(piece) => assert_eq!(piece.len(), n),
            other => panic!("{other:?}"),
        };
        take(STREAM_WINDOW - STREAM_RESUME - 1);
        assert!(room.drain().is_empty(), "posted above the resume mark");
        take(1);
        assert_eq!(room.drain(), [7]);
        // Posted once: later takes and the close post nothing more.
        take(1);
        assert!(!pipe.close(&later));
        assert!(room.drain().is_empty());
        // A watcher whose connection goes is told too.
        let pipe = ResponsePipe::default();
        post(&pipe, STREAM_WINDOW);
        assert!(pipe.watch(8));
        pipe.close(&later);
        assert_eq!(room.drain(), [8]);
        assert!(!pipe.watch(8));
    }

    #[test]
    fn streams_drained_in_one_round_ring_the_watching_loop_once() {
        let (ready, door) = Mailbox::<u64>::new().unwrap();
        let executor = glommio::LocalExecutorBuilder::default().make().unwrap();
        executor.run(async move {
            let later = RingLater::new(ready.clone());
            glommio::spawn_local(later.clone().run()).detach();
            futures_lite::future::yield_now().await;
            // Three streams whose event loop waits for room; their connections, woken
            // together, each send down to the resume mark.
            let pipes: Vec<_> = (0..3)
                .map(|token| {
                    let pipe = Arc::new(ResponsePipe::default());
                    post(&pipe, STREAM_WINDOW - STREAM_RESUME);
                    post(&pipe, STREAM_RESUME);
                    assert!(pipe.watch(token));
                    pipe
                })
                .collect();
            let senders: Vec<_> = pipes
                .iter()
                .map(|pipe| {
                    let (pipe, later) = (pipe.clone(), later.clone());
                    glommio::spawn_local(async move {
                        assert!(matches!(pipe.next(&later), Found::Piece(_)));
                    })
                })
                .collect();
            for sender in senders {
                sender.await;
            }
            // One ring for the three, after the round: the loop resumes them together
            // (a ring per token woke it, on the same core, for each).
            assert_eq!(rings(&door), 0, "rung before the round ended");
            futures_lite::future::yield_now().await;
            assert_eq!(rings(&door), 1);
            assert_eq!(ready.drain(), [0, 1, 2]);
        });
    }

    #[test]
    fn response_pipe_bounds_the_window_and_frees_waiters_and_pieces_on_close() {
        // Nobody waits: closing notifies nobody.
        assert!(!ResponsePipe::default().close(&unrung()));
        let pipe = Arc::new(ResponsePipe::default());
        assert_eq!(pipe.has_room(), Some(true));
        post(&pipe, STREAM_WINDOW);
        assert_eq!(pipe.has_room(), Some(false));
        let waiter = {
            let pipe = pipe.clone();
            std::thread::spawn(move || pipe.wait_room())
        };
        await_waiters(&pipe, 1);
        assert!(pipe.close(&unrung()));
        assert!(!waiter.join().unwrap());
        assert_eq!(pipe.has_room(), None);
        // What waited is freed, and what comes after is dropped, telling nobody.
        assert!(pipe.lock().pieces.is_empty());
        assert!(!pipe.post(Bytes::from_static(b"late")));
        assert!(pipe.lock().pieces.is_empty());
    }
}
