//! The per-connection loop: the only module that reads and writes a connection's socket.
//!
//! Each turn: decode every complete request in the read buffer (pipelining), dispatch
//! each in order, encode every response into one write buffer, and write it with one
//! call; then read again. Asynchronous handlers of one batch run concurrently, and
//! their responses still leave in request order.
//!
//! The connection reads and writes through a `Transport`: the plain socket, or TLS over
//! it (`net::tls`); the loop is generic, so each has its own compiled instance.
//!
//! Every wait has a deadline (see `watchdog`): an idle keep-alive connection, a head or
//! body that arrives too slowly, a client that does not read its responses, a handler
//! that does not finish. Output is bounded: requests are dispatched only while the
//! output they will queue (encoded bytes and ready bodies) is under `OUTPUT_CAP`;
//! responses are encoded only while the write buffer is under it, and written before
//! more are; large bodies go to the socket from where they are, streamed ones a piece
//! at a time as it drains; nothing more is read while a write is pending.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::access_log::Entry;
use crate::body::{BodyFeed, BODY_WINDOW};
use crate::handler::Reply;
use crate::http::encode::{BodyEncoder, ShortBody};
use crate::http::file::FileBody;
use crate::http::ChunkStream;
use crate::http::ResponseMode;
use crate::http::{BodyPiece, Decoder, Event, Request, Response, StatusCode};
use crate::inflight::Slot;
use crate::linger::{linger, LINGER_TIME};
use crate::net::{Socket, TlsStream, Transport};
use crate::shard::Shard;
use crate::watchdog::{self, Deadline};

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
/// Queued output per connection above which nothing more is dispatched or encoded
/// until it is written: what a client that does not read can make the server hold.
const OUTPUT_CAP: usize = 64 * 1024;
/// Bodies and streamed pieces at least this large are written from where they are,
/// not copied into the write buffer.
const DIRECT_PIECE: usize = 16 * 1024;
/// Most bytes of large streamed pieces that are ready together gathered into one write
/// (half the Python package's stream window: what a fast app has ready at once).
const GATHER: usize = 256 * 1024;
/// What a response's head counts for before it is encoded.
const HEAD_COST: usize = 256;
/// What a response still being made counts for: its size is known only once its
/// handler finishes, so this bounds how many handlers of a pipeline run at once
/// (`OUTPUT_CAP / PENDING_COST`), and so how many finished bodies can wait behind one
/// the client does not read.
const PENDING_COST: usize = 16 * 1024;
/// Requests dispatched before their responses are collected.
const MAX_INFLIGHT: usize = 128;
/// Most bytes one `sendfile` call is asked for, so one large file does not hold the
/// shard from its other connections for long.
const FILE_CHUNK: u64 = 1024 * 1024;
/// A file body's client has `timeouts.write` to take each this many bytes.
const FILE_WINDOW: u64 = 64 * 1024;

/// Who ended the connection.
enum Closed {
    PeerLeft,
    /// The client may still be sending (unread requests, a refused body): drain briefly
    /// before closing, so a reset does not destroy the last response.
    DrainThenClose,
    /// Nothing is expected from the client: close at once.
    CloseNow,
    /// The last request upgraded to WebSocket: `Connection::upgrade` takes over.
    Upgrade,
}

/// Serves one accepted connection until it closes: over TLS when the shard has a TLS
/// config now, else plaintext. Each is its own instance of the generic loop, so the
/// plaintext one has no TLS branch inside. `peer` is the client's address as accept
/// gave it (`None` on a Unix socket); `deadline` is the connection's, made when it
/// was admitted (an eviction to make room for another connection expires it).
pub(crate) async fn serve(
    stream: Socket,
    peer: Option<SocketAddr>,
    shard: Rc<Shard>,
    deadline: Rc<Deadline>,
) {
    match shard.tls.current() {
        None => serve_on(stream, peer, false, shard, deadline).await,
        Some(config) => {
            // Fails only when rustls cannot allocate its state: drop the connection.
            if let Ok(stream) = TlsStream::new(stream, config) {
                // Boxed: the TLS state is several KB, and inline it would size every
                // connection's task, plaintext ones included, idle ones included.
                Box::pin(serve_on(stream, peer, true, shard, deadline)).await;
            }
        }
    }
}

async fn serve_on<T: Transport>(
    stream: T,
    peer: Option<SocketAddr>,
    secure: bool,
    shard: Rc<Shard>,
    deadline: Rc<Deadline>,
) {
    let mut decoder = Decoder::new(shard.settings.get().limits, shard.id);
    decoder.set_connection(peer, secure);
    let mut conn = Connection {
        read: BytesMut::new(),
        write: BytesMut::new(),
        decoder,
        inflight: VecDeque::new(),
        deadline,
        head_started: None,
        body_started: None,
        bytes_read: 0,
        errored: false,
        streaming: None,
        feeding: None,
        upgrade: None,
        tls_taken: false,
    };
    // I/O errors (resets, broken pipes) just end the connection.
    match conn.run(&stream, &shard).await {
        Ok(Closed::DrainThenClose) => linger(&stream, &shard, &conn.deadline).await,
        // TLS: a close_notify, so the client can tell the end from a truncation.
        Ok(Closed::CloseNow) => stream.close_notify(),
        Ok(Closed::Upgrade) => {
            if let Some(pending) = conn.upgrade.take() {
                let read = std::mem::take(&mut conn.read);
                // Boxed, as is the handshake: inline they would size every connection.
                let socket =
                    crate::ws::driver::serve(&stream, &shard, &conn.deadline, *pending, read);
                Box::pin(socket).await;
            }
        }
        _ => {}
    }
    shard.pool.give(conn.read);
    shard.pool.give(conn.write);
    shard.queues.give(conn.inflight);
}

struct Connection {
    read: BytesMut,
    write: BytesMut,
    decoder: Decoder,
    inflight: VecDeque<Slot>,
    deadline: Rc<Deadline>,
    /// When the first byte of the request head now arriving was read.
    head_started: Option<Instant>,
    /// When the body now arriving began, and `bytes_read` then: the body's average
    /// rate is held to `limits.min_body_rate`.
    body_started: Option<(Instant, u64)>,
    /// Bytes read on this connection so far.
    bytes_read: u64,
    /// An error response was queued: the request's mode is in doubt.
    errored: bool,
    /// A streamed body whose head is encoded and whose pieces are still to send.
    streaming: Option<Streaming>,
    /// The feed of a streamed request body just dispatched, and whether the client
    /// waits for `100 Continue`.
    feeding: Option<(Rc<BodyFeed>, bool)>,
    /// A WebSocket handshake that checked out: the connection becomes its after the
    /// responses before it.
    upgrade: Option<Box<crate::ws::Pending>>,
    /// The transport's TLS session has been handed to the decoder.
    tls_taken: bool,
}

/// A body on its way out after its head: streamed, or whole but large.
struct Streaming {
    pieces: Pieces,
    framing: BodyEncoder,
    /// Body bytes framed for the socket so far.
    sent: u64,
    /// The access log's entry for the request and the status: the line is written once
    /// the body has ended, with `sent` (nginx's `$body_bytes_sent`).
    log: (Option<Entry>, u16),
}

/// Where a body's pieces come from.
enum Pieces {
    Stream(ChunkStream),
    /// A ready body too large to copy: one piece, written from where it is.
    Whole(Option<bytes::Bytes>),
    /// A slice of a file: sent by the kernel on a plain connection, else read through
    /// the stream.
    File(Rc<FileBody>, ChunkStream),
}

/// What a batch of decoding asks of the connection.
#[derive(PartialEq, Eq)]
enum Next {
    /// Write, then read more.
    Read,
    /// More complete requests may be buffered: collect responses, then decode again.
    More,
    /// Write the `100 Continue` (after earlier responses), then read the body.
    Continue,
    /// Write, then close.
    Close,
    /// Feed the streamed body of the last request to its handler (see `feed_body`).
    Feed,
    /// Write, then hand the connection to the WebSocket in `upgrade`.
    Upgrade,
}

/// How feeding a streamed request body ended.
enum Fed {
    /// The body is complete: requests after it may follow.
    Done,
    /// No more of it will be read (the handler let go, bad framing, the client left):
    /// close after the responses.
    Stop,
    /// The client sent too slowly.
    TimedOut,
}

/// What a wait while feeding a body found.
enum FeedWait {
    Room,
    Read(usize),
    Abandoned,
}

/// What a read found.
enum Input {
    Data,
    Eof,
    TimedOut,
}

impl Connection {
    async fn run<T: Transport>(&mut self, stream: &T, shard: &Shard) -> io::Result<Closed> {
        loop {
            // glommio is cooperative, and the socket's reads and writes wait only when
            // it is not ready: a client that pipelines without pause and reads as fast
            // as it is answered never makes this loop wait, and without this it holds
            // the shard, every other connection there waiting. Once per turn (a batch
            // of up to `MAX_INFLIGHT` requests, or a read): a check of the preemption
            // timer's completion, and a yield only once the time slice is spent.
            glommio::yield_if_needed().await;
            let started = Instant::now();
            let queued = self.inflight.len();
            let mut next = self.decode_batch(shard);
            let dispatched = (self.inflight.len() - queued) as u64;
            let mut stop = false;
            if let Some((feed, expect_continue)) = self.feeding.take() {
                // Earlier responses come first; with none pending, the client may go on.
                if expect_continue && self.inflight.len() == 1 {
                    self.take_write_buffer(shard);
                    self.write.extend_from_slice(CONTINUE);
                    shard.stats.response(100);
                    self.flush(stream, shard).await?;
                }
                match self.feed_body(stream, shard, &feed).await? {
                    Fed::Done => next = Next::More,
                    outcome => {
                        if let Fed::TimedOut = outcome {
                            shard.stats.timeout();
                            feed.fail(io::ErrorKind::TimedOut);
                        }
                        // The handler answers (it sees the error, if any); the rest of
                        // the body is unread, so the connection closes after that.
                        if let Some(slot) = self.inflight.back_mut() {
                            slot.mode.keep_alive = false;
                        }
                        stop = true;
                    }
                }
            }
            let mut close = self.finish_responses(shard).await || stop;
            // Output goes out as the socket takes it: a streamed or large body in full,
            // a write buffer past the cap, before later responses are encoded.
            loop {
                if let Some(mut body) = self.streaming.take() {
                    // Boxed: sending a body is the largest state of the loop, which
                    // every connection's task would hold inline, idle ones included;
                    // one allocation is little next to a large or streamed body.
                    let sent = Box::pin(self.send_stream(stream, shard, &mut body)).await;
                    let (entry, status) = &body.log;
                    let date = shard.date.get();
                    shard
                        .access_log
                        .log_sent(entry.as_ref(), *status, body.sent, &date);
                    sent?;
                } else if self.write.len() >= OUTPUT_CAP {
                    self.flush(stream, shard).await?;
                }
                if close || self.inflight.is_empty() {
                    break;
                }
                close = self.finish_responses(shard).await;
            }
            if dispatched > 0 {
                shard.stats.latency(started.elapsed(), dispatched);
            }
            if next == Next::Continue && !close {
                self.take_write_buffer(shard);
                self.write.extend_from_slice(CONTINUE);
                shard.stats.response(100);
            }
            close |= next == Next::Close;
            let flush = close || next != Next::More || self.write.len() >= OUTPUT_CAP;
            if flush && !self.write.is_empty() {
                self.flush(stream, shard).await?;
            }
            if close {
                return Ok(self.closing());
            }
            if next == Next::Upgrade {
                return Ok(Closed::Upgrade);
            }
            if next == Next::More {
                continue;
            }
            match self.fill(stream, shard).await? {
                Input::Data => {}
                Input::Eof => return Ok(Closed::PeerLeft),
                Input::TimedOut => return self.timed_out(stream, shard).await,
            }
        }
    }

    /// Decodes and dispatches the complete requests in the read buffer, up to
    /// `MAX_INFLIGHT` at a time, and only while the output already queued is under
    /// `OUTPUT_CAP`: a pipeline of requests for large bodies waits in the read buffer.
    fn decode_batch(&mut self, shard: &Shard) -> Next {
        // A reload applies from the next request on.
        self.decoder.set_limits(shard.settings.get().limits);
        let mut queued = self.write.len() + self.inflight.iter().map(held).sum::<usize>();
        loop {
            if self.inflight.len() >= MAX_INFLIGHT || queued >= OUTPUT_CAP {
                return Next::More;
            }
            let router = &shard.router;
            match self
                .decoder
                .decode_routed(&mut self.read, &|r| router.streams(r))
            {
                Ok(Event::Streamed {
                    request,
                    expect_continue,
                }) => {
                    self.began(shard, &request);
                    let mode = request.response_mode();
                    let access = shard.access_log.entry(&request);
                    let (feed, body) = BodyFeed::new();
                    // A small body that came with its head is complete before the
                    // handler starts: it can take it at once (`RequestBody::take_whole`)
                    // instead of waiting for a feed, and the next request is decoded
                    // as after any other.
                    let whole = self.decoder.whole_body(&mut self.read, BODY_WINDOW);
                    if let Some(piece) = &whole {
                        if !piece.is_empty() {
                            feed.push(piece.clone());
                        }
                        feed.finish();
                    }
                    let mut parts = Some((request, body));
                    let reply = catch_unwind(AssertUnwindSafe(|| {
                        let (request, body) = parts.take().expect("dispatched once");
                        router.dispatch_streaming(request, body)
                    }))
                    .unwrap_or_else(|_| panicked(shard));
                    let slot = Slot {
                        reply,
                        mode,
                        access,
                    };
                    if whole.is_none() {
                        self.push(shard, slot);
                        self.feeding = Some((feed, expect_continue));
                        return Next::Feed;
                    }
                    queued += held(&slot);
                    self.push(shard, slot);
                    if !mode.keep_alive {
                        return Next::Close;
                    }
                }
                Ok(Event::Request(mut request)) => {
                    self.began(shard, &request);
                    if let Some(handler) = router.websocket_for(&mut request) {
                        match crate::ws::Pending::new(request, handler) {
                            Ok(pending) => {
                                self.upgrade = Some(Box::new(pending));
                                return Next::Upgrade;
                            }
                            Err(refusal) => {
                                self.push_error(shard, *refusal);
                                return Next::Close;
                            }
                        }
                    }
                    let mode = request.response_mode();
                    // The closure borrows the request rather than owning it: a closure
                    // that owns it is copied whole, twice, on its way into catch_unwind.
                    let access = shard.access_log.entry(&request);
                    let mut request = Some(request);
                    let reply = catch_unwind(AssertUnwindSafe(|| {
                        router.dispatch(request.take().expect("dispatched once"))
                    }))
                    .unwrap_or_else(|_| panicked(shard));
                    let slot = Slot {
                        reply,
                        mode,
                        access,
                    };
                    queued += held(&slot);
                    self.push(shard, slot);
                    if !mode.keep_alive {
                        return Next::Close;
                    }
                }
                Ok(Event::Continue) => return Next::Continue,
                Ok(Event::NeedMore) => return Next::Read,
                Err(error) => {
                    shard.stats.parse_error(error);
                    self.push_error(shard, error.response());
                    return Next::Close;
                }
            }
        }
    }

    /// A request's head is in: its read deadlines start over, and it is counted.
    fn began(&mut self, shard: &Shard, request: &Request) {
        self.head_started = None;
        self.body_started = None;
        shard.stats.request(request.method());
    }

    /// Encoded responses go into a pooled buffer (which `flush` gives back): grown from
    /// nothing, it would be reallocated several times per batch.
    fn take_write_buffer(&mut self, shard: &Shard) {
        if self.write.capacity() == 0 {
            self.write = shard.pool.take();
        }
    }

    /// Queues a dispatched response, in a pooled queue when the connection holds none
    /// (`fill` gives it back).
    fn push(&mut self, shard: &Shard, slot: Slot) {
        if self.inflight.capacity() == 0 {
            self.inflight = shard.queues.take();
        }
        self.inflight.push_back(slot);
    }

    fn push_error(&mut self, shard: &Shard, response: Response) {
        self.errored = true;
        self.push(
            shard,
            Slot {
                reply: Reply::Ready(response),
                mode: ResponseMode::CLOSE,
                access: None,
            },
        );
    }

    /// Drives pending handlers and encodes responses in request order. Returns whether
    /// a response closes the connection (later ones are then dropped unsent).
    async fn finish_responses(&mut self, shard: &Shard) -> bool {
        let handler_deadline = shard
            .settings
            .get()
            .timeouts
            .handler
            .map(|t| shard.watchdog.now() + t);
        self.deadline.set(handler_deadline);
        if !self.inflight.is_empty() {
            self.take_write_buffer(shard);
        }
        let inflight = &mut self.inflight;
        let streaming = &mut self.streaming;
        let write = &mut self.write;
        let date = shard.date.get();
        let deadline = &self.deadline;
        let finished = watchdog::until(deadline, |cx| {
            poll_handlers(inflight, shard, cx);
            encode_ready(inflight, streaming, write, &date, shard)
        })
        .await;
        if let Some(close) = finished {
            return close;
        }
        // The handler timeout passed (or a stop's grace): every response still
        // pending becomes a 503.
        let why = match shard.draining.get() {
            true => "server stopping\n",
            false => "handler timed out\n",
        };
        for slot in self.inflight.iter_mut() {
            if let Reply::Pending(_) = slot.reply {
                shard.stats.timeout();
                slot.reply = Reply::Ready(
                    Response::new(StatusCode::SERVICE_UNAVAILABLE).with_body("text/plain", why),
                );
            }
        }
        match encode_ready(
            &mut self.inflight,
            &mut self.streaming,
            &mut self.write,
            &date,
            shard,
        ) {
            Poll::Ready(close) => close,
            Poll::Pending => unreachable!("every slot is ready"),
        }
    }

    /// Writes the encoded responses, giving the client `timeouts.write` to take them.
    async fn flush<T: Transport>(&mut self, stream: &T, shard: &Shard) -> io::Result<()> {
        let write = std::mem::take(&mut self.write);
        let written = self.write_direct(stream, shard, &write).await;
        // Back to the pool until the next batch: idle connections hold no buffer.
        shard.pool.give(write);
        written
    }

    /// Sends a streamed or large body after what is already encoded. The next piece is asked for
    /// only once the buffer is below `OUTPUT_CAP` or written (large pieces ready
    /// together are taken up to `GATHER`), so memory stays bounded
    /// and a client that does not read stalls only this stream, until `timeouts.write`
    /// closes the connection. Waiting for the producer has no deadline (server-sent
    /// events may be quiet for long); pieces already buffered are written meanwhile.
    async fn send_stream<T: Transport>(
        &mut self,
        stream: &T,
        shard: &Shard,
        body: &mut Streaming,
    ) -> io::Result<()> {
        if let (Some(socket), Pieces::File(file, _)) = (stream.plain(), &body.pieces) {
            return self
                .send_file(stream, socket, shard, file, &mut body.sent)
                .await;
        }
        // The next piece, asked for before a large piece is written (see below).
        let mut ahead = None;
        loop {
            // glommio is cooperative, and neither a ready producer nor a socket whose
            // client keeps up ever makes this task wait: without this, a stream
            // always ready (an endless or large body) to a fast client holds the shard,
            // and its other connections wait until the socket fills. Yields once the
            // task queue's time slice is spent (a check of the preemption timer's
            // completion, nothing more while it is not).
            glommio::yield_if_needed().await;
            let next = match ahead
                .take()
                .map_or_else(|| poll_now(&mut body.pieces, shard), Poll::Ready)
            {
                Poll::Ready(next) => next,
                Poll::Pending => {
                    if !self.write.is_empty() {
                        self.flush(stream, shard).await?;
                    }
                    // No timeout for the producer; the deadline only lets a stop's
                    // end of grace (`Watchdog::expire_all`) end the wait.
                    self.deadline.set(None);
                    let piece = watchdog::until(&self.deadline, |cx| {
                        poll_piece(&mut body.pieces, shard, cx)
                    });
                    piece
                        .await
                        .unwrap_or_else(|| Err(io::ErrorKind::TimedOut.into()))
                }
            };
            let next = match next {
                Ok(next) => next,
                Err(e) => {
                    // What came before the failure still goes out; then the connection
                    // ends, with the body visibly incomplete.
                    if !self.write.is_empty() {
                        self.flush(stream, shard).await?;
                    }
                    return Err(e);
                }
            };
            let Some(piece) = next else { break };
            self.take_write_buffer(shard);
            let Some(piece) = body.framing.begin_piece(piece, &mut self.write) else {
                if body.framing.complete() {
                    break;
                }
                continue;
            };
            body.sent += piece.len() as u64;
            let after = body.framing.after_piece();
            if piece.len() >= DIRECT_PIECE {
                // A large piece goes to the socket from where it is, not copied into
                // the write buffer first (a file's pieces, say), in one write with what
                // is buffered before it (its chunk-size line) and its CRLF, and with
                // the large pieces the stream has ready after it (up to `GATHER`), each
                // with its framing: one `sendmsg` for what is ready, and nothing left
                // to flush alone while the producer is waited for. The stream is asked
                // without waiting, so no piece waits for a later one; a body that has
                // ended by then ends in that write too (the last chunk went out alone
                // after the last piece), and a piece it has that is not taken here is
                // kept for the next turn.
                let mut pieces = vec![piece];
                let mut total = pieces[0].len();
                // The chunk-size lines of the pieces after the first, and where each ends.
                let mut lines = BytesMut::new();
                let mut line_ends = Vec::new();
                let mut end = Ok(&[][..]);
                let mut ended = false;
                loop {
                    let gather = total < GATHER && !body.framing.complete();
                    match poll_now(&mut body.pieces, shard) {
                        Poll::Ready(Ok(Some(next))) if gather && next.len() >= DIRECT_PIECE => {
                            if let Some(next) = body.framing.begin_piece(next, &mut lines) {
                                line_ends.push(lines.len());
                                total += next.len();
                                body.sent += next.len() as u64;
                                pieces.push(next);
                            }
                        }
                        Poll::Ready(Ok(None)) => {
                            ended = true;
                            end = body.framing.end();
                            break;
                        }
                        Poll::Ready(next) => {
                            ahead = Some(next);
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
                let write = std::mem::take(&mut self.write);
                let mut parts = Vec::with_capacity(3 * pieces.len() + 1);
                parts.push(IoSlice::new(&write));
                let mut line_start = 0;
                for (i, piece) in pieces.iter().enumerate() {
                    if i > 0 {
                        parts.push(IoSlice::new(&lines[line_start..line_ends[i - 1]]));
                        line_start = line_ends[i - 1];
                    }
                    parts.push(IoSlice::new(piece));
                    parts.push(IoSlice::new(after));
                }
                parts.push(IoSlice::new(end.unwrap_or_default()));
                let written = self.write_parts(stream, shard, &mut parts).await;
                drop(parts);
                shard.pool.give(write);
                written?;
                if ended {
                    return body_ended(end);
                }
            } else {
                self.write.extend_from_slice(&piece);
                self.write.extend_from_slice(after);
            }
            if self.write.len() >= OUTPUT_CAP {
                self.flush(stream, shard).await?;
            }
        }
        self.take_write_buffer(shard);
        let end = body.framing.end();
        self.write.extend_from_slice(end.unwrap_or_default());
        if !self.write.is_empty() {
            self.flush(stream, shard).await?;
        }
        body_ended(end)
    }

    /// Sends a file body after what is already encoded, by the kernel: `sendfile` from
    /// the page cache to the socket, never through user memory. When the socket is
    /// full the task waits for its writability event (never blocking the shard); the
    /// client has `timeouts.write` to take each `FILE_WINDOW` bytes, or the connection
    /// ends.
    async fn send_file<T: Transport>(
        &mut self,
        stream: &T,
        socket: &Socket,
        shard: &Shard,
        file: &FileBody,
        sent: &mut u64,
    ) -> io::Result<()> {
        if !self.write.is_empty() {
            self.flush(stream, shard).await?;
        }
        shard.stats.sendfile_body();
        let (mut at, len) = file.range();
        let end = at + len;
        let mut renew_at = at;
        while at < end {
            if at >= renew_at {
                let write = shard.settings.get().timeouts.write;
                self.deadline.set(Some(shard.watchdog.now() + write));
                renew_at = at + FILE_WINDOW;
            }
            let count = (end - at).min(FILE_CHUNK) as usize;
            let n = watchdog::until(&self.deadline, |cx| {
                socket.poll_sendfile(cx, file.fd(), &mut at, count)
            })
            .await
            .ok_or_else(|| write_timed_out(shard))??;
            if n == 0 {
                // The file was cut short: the announced length cannot be met.
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            shard.stats.sent_file(n);
            *sent += n as u64;
        }
        Ok(())
    }

    /// Feeds a streamed request body to its handler as it arrives: pieces already
    /// buffered first, then reads, only while the handler's queue has room (so a slow
    /// handler slows the client, and memory stays within the queue's window). Pending
    /// handlers are polled meanwhile, since the body's reader is one of them.
    async fn feed_body<T: Transport>(
        &mut self,
        stream: &T,
        shard: &Shard,
        feed: &BodyFeed,
    ) -> io::Result<Fed> {
        loop {
            // As in `run`: a client that sends without pause, to a handler that takes
            // each piece as it comes, never makes this loop wait for a read, and
            // without this it holds the shard. Once per turn (the pieces buffered, and
            // a read or a wait for room); a yield only once the time slice is spent.
            glommio::yield_if_needed().await;
            while feed.has_room() {
                match self.decoder.body_piece(&mut self.read) {
                    Ok(BodyPiece::Data(piece)) => feed.push(piece),
                    Ok(BodyPiece::End) => {
                        feed.finish();
                        self.body_started = None;
                        return Ok(Fed::Done);
                    }
                    Ok(BodyPiece::NeedMore) => break,
                    Err(error) => {
                        shard.stats.parse_error(error);
                        feed.fail(io::ErrorKind::InvalidData);
                        self.errored = true;
                        return Ok(Fed::Stop);
                    }
                }
            }
            if feed.abandoned() {
                return Ok(Fed::Stop);
            }
            let need_input = feed.has_room();
            if need_input {
                self.arm_read_deadline(shard, false);
            } else {
                // Waiting on the handler, not the client: `body` from now, and the
                // client's rate allowance starts over afterwards.
                let body = shard.settings.get().timeouts.body;
                self.deadline.set(Some(shard.watchdog.now() + body));
                self.body_started = None;
            }
            let Connection {
                read,
                inflight,
                deadline,
                ..
            } = self;
            let waited = watchdog::until(deadline, |cx| {
                poll_handlers(inflight, shard, cx);
                if feed.abandoned() {
                    Poll::Ready(Ok(FeedWait::Abandoned))
                } else if need_input {
                    poll_fill(read, stream, shard, cx).map(|r| r.map(FeedWait::Read))
                } else if feed.has_room() {
                    Poll::Ready(Ok(FeedWait::Room))
                } else {
                    feed.wait_room(cx.waker());
                    Poll::Pending
                }
            })
            .await;
            match waited {
                None => return Ok(Fed::TimedOut),
                Some(Ok(FeedWait::Abandoned)) => return Ok(Fed::Stop),
                Some(Ok(FeedWait::Room)) => {}
                Some(Ok(FeedWait::Read(0))) => {
                    feed.fail(io::ErrorKind::UnexpectedEof);
                    return Ok(Fed::Stop);
                }
                Some(Ok(FeedWait::Read(n))) => {
                    shard.stats.bytes_in(n);
                    self.bytes_read += n as u64;
                }
                Some(Err(e)) => {
                    feed.fail(e.kind());
                    return Err(e);
                }
            }
        }
    }

    /// Writes `bytes` as they are, giving the client `timeouts.write` to take them.
    async fn write_direct<T: Transport>(
        &mut self,
        stream: &T,
        shard: &Shard,
        bytes: &[u8],
    ) -> io::Result<()> {
        self.write_parts(stream, shard, &mut [IoSlice::new(bytes)])
            .await
    }

    /// Writes `parts` in order as one write (one `sendmsg` while the socket takes
    /// them all), giving the client `timeouts.write` to take them.
    async fn write_parts<T: Transport>(
        &mut self,
        stream: &T,
        shard: &Shard,
        mut parts: &mut [IoSlice<'_>],
    ) -> io::Result<()> {
        self.deadline.set(Some(
            shard.watchdog.now() + shard.settings.get().timeouts.write,
        ));
        let total = parts.iter().map(|part| part.len()).sum();
        // Drops empty parts in front: one part left is a plain `send`.
        IoSlice::advance_slices(&mut parts, 0);
        while !parts.is_empty() {
            let pending: &[IoSlice<'_>] = parts;
            let n = watchdog::until(&self.deadline, |cx| match pending {
                [one] => stream.poll_write(cx, one),
                many => stream.poll_write_vectored(cx, many),
            })
            .await
            .ok_or_else(|| write_timed_out(shard))??;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut parts, n);
        }
        if T::BUFFERED {
            watchdog::until(&self.deadline, |cx| stream.poll_flush(cx))
                .await
                .ok_or_else(|| write_timed_out(shard))??;
        }
        shard.stats.wrote(total);
        Ok(())
    }

    /// Reads what the socket has into the read buffer, within the deadline of the
    /// phase the connection is in.
    async fn fill<T: Transport>(&mut self, stream: &T, shard: &Shard) -> io::Result<Input> {
        // Every response is out: the emptied queue, and a write buffer taken but left
        // empty (a body written from where it is), go back to the shard while the
        // connection waits (it may wait idle for long).
        if self.inflight.is_empty() {
            shard.queues.give(std::mem::take(&mut self.inflight));
        }
        if self.write.is_empty() && self.write.capacity() > 0 {
            shard.pool.give(std::mem::take(&mut self.write));
        }
        self.arm_read_deadline(shard, stream.handshaking());
        let idle = self.read.is_empty() && !self.decoder.in_body();
        let Connection { read, deadline, .. } = self;
        let result = watchdog::until(deadline, |cx| {
            // A graceful stop lets an idle connection send one more request for a moment
            // (a balancer may be sending it just now), then closes it.
            if idle && shard.closing_idle.get() {
                return Poll::Ready(read_before_closing(read, stream, shard));
            }
            poll_fill(read, stream, shard, cx)
        })
        .await;
        let n = match &result {
            Some(Ok(n)) => *n,
            _ => 0,
        };
        shard.stats.bytes_in(n);
        self.bytes_read += n as u64;
        // Inlined, `plain()` is a constant: the plaintext loop has no such check.
        if stream.plain().is_none() && n > 0 && !self.tls_taken {
            // Request bytes come only after a TLS handshake: its parameters and the
            // client certificate are known by now.
            self.tls_taken = true;
            self.decoder.set_tls_session(stream.tls_session());
        }
        match result {
            None => Ok(Input::TimedOut),
            Some(Ok(0)) => Ok(Input::Eof),
            Some(Ok(_)) => Ok(Input::Data),
            Some(Err(e)) => Err(e),
        }
    }

    /// Idle between requests: `keep_alive`. Inside a head, or a TLS handshake:
    /// `header`, counted from its first byte. Inside a body: `body`, counted from the
    /// last progress, and no later than the body's allowance at `min_body_rate` (so a
    /// drip of bytes, each within `body` of the last, cannot hold the connection for
    /// ever).
    fn arm_read_deadline(&mut self, shard: &Shard, handshaking: bool) {
        let now = shard.watchdog.now();
        let settings = shard.settings.get();
        let timeouts = settings.timeouts;
        if self.decoder.in_body() {
            let pause = now + timeouts.body;
            let (started, bytes_then) = *self.body_started.get_or_insert((now, self.bytes_read));
            let at = match settings.min_body_rate {
                0 => pause,
                rate => {
                    let earned = (self.bytes_read - bytes_then) as f64 / rate as f64;
                    pause.min(started + timeouts.body + Duration::from_secs_f64(earned))
                }
            };
            self.deadline.set(Some(at));
        } else if self.read.is_empty() && !handshaking {
            // A handshake's start does not count against the first request's head.
            self.head_started = None;
            if self.bytes_read == 0 {
                // Nothing read yet: its first request may already wait in the socket
                // (TCP_DEFER_ACCEPT reports connections with their first bytes), and
                // evicting it would lose that request. Only a used connection is idle.
                self.deadline.set(Some(now + timeouts.keep_alive));
            } else {
                self.deadline.set_idle(now + timeouts.keep_alive);
            }
        } else {
            let at = *self.head_started.get_or_insert(now) + timeouts.header;
            self.deadline.set(Some(at));
        }
    }

    /// A read deadline passed: an idle connection just closes; a request in progress
    /// gets 408 first. An idle connection evicted to make room for a new one closes the same way.
    async fn timed_out<T: Transport>(&mut self, stream: &T, shard: &Shard) -> io::Result<Closed> {
        if self.read.is_empty() && !self.decoder.in_body() {
            if !self.deadline.evicted() {
                shard.stats.timeout();
            }
            return Ok(Closed::CloseNow);
        }
        shard.stats.timeout();
        self.push_error(
            shard,
            Response::new(StatusCode::REQUEST_TIMEOUT)
                .with_body("text/plain", "request timed out\n"),
        );
        self.finish_responses(shard).await;
        self.flush(stream, shard).await?;
        Ok(Closed::DrainThenClose)
    }

    /// How to close after the last response: a clean `Connection: close` with nothing
    /// left unread closes at once; after an error, or with input still buffered, the
    /// client may still be sending.
    fn closing(&self) -> Closed {
        if self.errored || !self.read.is_empty() || self.decoder.in_body() {
            Closed::DrainThenClose
        } else {
            Closed::CloseNow
        }
    }
}

/// One read attempt, appended to `read`.
///
/// The socket is read into the shard's scratch buffer, which was zeroed once, and the
/// bytes read are copied onto the connection's buffer: cheaper than zeroing room in
/// that buffer before every read, and a connection waiting for input holds no buffer at
/// all (the socket is read with a non-blocking `recv` at poll time, and waits for
/// readiness without one).
fn poll_fill<T: Transport>(
    read: &mut BytesMut,
    stream: &T,
    shard: &Shard,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    // An emptied buffer goes back to the pool, which judges whether it is worth keeping.
    if read.is_empty() && read.capacity() > 0 {
        shard.pool.give(std::mem::take(read));
    }
    let mut scratch = shard.scratch.borrow_mut();
    let poll = stream.poll_read(cx, &mut scratch[..]);
    if let Poll::Ready(Ok(n)) = poll {
        append(read, &scratch[..n], shard);
    }
    poll
}

/// The client left output unread past `timeouts.write`: counted, and the connection ends.
fn write_timed_out(shard: &Shard) -> io::Error {
    shard.stats.timeout();
    io::ErrorKind::TimedOut.into()
}

/// Answers a connection the shard has no room for with `503` and closes it, after
/// briefly draining what the client sends (so the answer is not lost to a reset).
pub(crate) async fn refuse(stream: Socket, shard: Rc<Shard>) {
    // A TLS client could not read a plaintext answer: just close.
    if shard.tls.enabled() {
        return;
    }
    // Through the encoder like every answer (status line, Date, framing).
    let mut busy = BytesMut::with_capacity(256);
    Response::new(StatusCode::SERVICE_UNAVAILABLE)
        .with_body("text/plain", "server at capacity\n")
        .encode(
            ResponseMode::CLOSE,
            shard.stamp(&shard.date.get()),
            &mut busy,
        );
    let deadline = shard.watchdog.deadline();
    deadline.set(Some(shard.watchdog.now() + LINGER_TIME));
    let mut written = 0;
    while written < busy.len() {
        match watchdog::until(&deadline, |cx| stream.poll_write(cx, &busy[written..])).await {
            Some(Ok(n)) if n > 0 => written += n,
            _ => return,
        }
    }
    shard.stats.response(503);
    linger(&stream, &shard, &deadline).await;
}

/// Between requests, a graceful stop past its idle linger closes the connection, unless
/// a request has already arrived: that one is read now (its readiness may not be
/// harvested yet) and answered with `Connection: close`. Nothing waiting reads as the
/// end of input.
fn read_before_closing<T: Transport>(
    read: &mut BytesMut,
    stream: &T,
    shard: &Shard,
) -> io::Result<usize> {
    let mut scratch = shard.scratch.borrow_mut();
    let n = stream.read_now(&mut scratch[..])?.unwrap_or(0);
    append(read, &scratch[..n], shard);
    Ok(n)
}

/// Appends what a read brought, taking a pooled buffer when the connection holds none.
fn append(read: &mut BytesMut, bytes: &[u8], shard: &Shard) {
    if !bytes.is_empty() && read.capacity() == 0 {
        *read = shard.pool.take();
    }
    read.extend_from_slice(bytes);
}

/// Encodes the ready responses at the front of `inflight`. Ready(close) once all are
/// encoded (close: a response ended the connection), Pending while one still waits.
fn encode_ready(
    inflight: &mut VecDeque<Slot>,
    streaming: &mut Option<Streaming>,
    write: &mut BytesMut,
    date: &[u8; 29],
    shard: &Shard,
) -> Poll<bool> {
    while let Some(Slot {
        reply: Reply::Ready(response),
        mode,
        access,
    }) = inflight.front()
    {
        debug_assert!(streaming.is_none(), "a stream is sent before what follows");
        if write.len() >= OUTPUT_CAP {
            // Written before more is encoded.
            return Poll::Ready(false);
        }
        // A shutdown that began while the handler ran closes the connection after it.
        let mode = ResponseMode {
            keep_alive: mode.keep_alive && !shard.draining.get() && shard.settings.get().keep_alive,
            ..*mode
        };
        let sends_body = !mode.head_only && !response.status().forbids_body();
        // A streamed or large body: its pieces follow the head before any later response.
        let body = match response.body_stream() {
            Some(body) if sends_body => body.take().map(|p| {
                let pieces = match body.file() {
                    Some(file) => Pieces::File(file.clone(), p),
                    None => Pieces::Stream(p),
                };
                (pieces, body.len())
            }),
            None if sends_body && response.body().len() >= DIRECT_PIECE => {
                let whole = response.body().clone();
                let len = Some(whole.len() as u64);
                Some((Pieces::Whole(Some(whole)), len))
            }
            _ => None,
        };
        if let Some((Pieces::Whole(_), _)) = body {
            response.encode_head(mode, shard.stamp(date), write);
        } else {
            response.encode(mode, shard.stamp(date), write);
        }
        let status = response.status().as_u16();
        if body.is_none() {
            shard.access_log.log(access.as_ref(), response, mode, date);
        }
        shard.stats.response(status);
        let closes = response.closes_in(mode);
        let access = inflight.pop_front().and_then(|slot| slot.access);
        if closes {
            inflight.clear();
        }
        if let Some((pieces, len)) = body {
            *streaming = Some(Streaming {
                pieces,
                framing: BodyEncoder::new(len, mode.http10),
                sent: 0,
                log: (access, status),
            });
            return Poll::Ready(closes);
        }
        if closes {
            return Poll::Ready(true);
        }
    }
    if inflight.is_empty() {
        Poll::Ready(false)
    } else {
        Poll::Pending
    }
}

/// Polls every pending handler once: while their responses are collected, and while
/// the connection waits on something else (a streamed request body they read). A
/// panic becomes a 500.
fn poll_handlers(inflight: &mut VecDeque<Slot>, shard: &Shard, cx: &mut Context<'_>) {
    for slot in inflight.iter_mut() {
        if let Reply::Pending(future) = &mut slot.reply {
            match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                Ok(Poll::Ready(response)) => slot.reply = Reply::Ready(response),
                Ok(Poll::Pending) => {}
                Err(_) => slot.reply = panicked(shard),
            }
        }
    }
}

/// Output a dispatched response holds until it is written: its head and body; a
/// streamed body is read a piece at a time as the socket drains, so it counts one
/// piece; a pending handler's body is not known yet (`PENDING_COST`).
fn held(slot: &Slot) -> usize {
    HEAD_COST
        + match &slot.reply {
            Reply::Ready(response) if response.body_stream().is_some() => DIRECT_PIECE,
            Reply::Ready(response) => response.body().len(),
            Reply::Pending(_) => PENDING_COST,
        }
}

/// A body's outcome once its end is written: fewer bytes than announced break the
/// framing, so the connection ends.
fn body_ended(end: Result<&[u8], ShortBody>) -> io::Result<()> {
    end.map(drop)
        .map_err(|ShortBody| io::ErrorKind::UnexpectedEof.into())
}

/// The next piece if the producer has it now, without waiting (and without a waker
/// to call: the caller polls again with its own before it waits).
fn poll_now(pieces: &mut Pieces, shard: &Shard) -> Poll<io::Result<Option<bytes::Bytes>>> {
    poll_piece(
        pieces,
        shard,
        &mut Context::from_waker(std::task::Waker::noop()),
    )
}

/// Polls a body for its next piece; a panic in a stream's producer ends the
/// connection (the head is already out, so no error response can follow).
fn poll_piece(
    pieces: &mut Pieces,
    shard: &Shard,
    cx: &mut Context<'_>,
) -> Poll<io::Result<Option<bytes::Bytes>>> {
    let pieces = match pieces {
        Pieces::Stream(pieces) | Pieces::File(_, pieces) => pieces,
        Pieces::Whole(whole) => return Poll::Ready(Ok(whole.take())),
    };
    match catch_unwind(AssertUnwindSafe(|| pieces.as_mut().poll_next(cx))) {
        Ok(poll) => poll.map(Ok),
        Err(_) => {
            shard.stats.handler_panic();
            Poll::Ready(Err(io::Error::other("a response stream panicked")))
        }
    }
}

fn panicked(shard: &Shard) -> Reply {
    shard.stats.handler_panic();
    Reply::Ready(
        Response::new(StatusCode::INTERNAL_SERVER_ERROR)
            .with_body("text/plain", "internal server error\n")
            .with_close(),
    )
}
