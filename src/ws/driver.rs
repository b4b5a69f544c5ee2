//! The WebSocket task: after the connection loop (`conn.rs`) has answered every
//! request before the upgrade, it hands its socket and the bytes it already read to
//! [`serve`], on the same task and shard. One poll function drives everything: the
//! handler's future, frames read and decoded, output written, deadlines.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::message::{CloseFrame, Message, Reader};
use super::socket::{Phase, Shared, Upgrade};
use super::{CloseCode, Pending};
use crate::config::WebSocketSettings;
use crate::http::{Response, StatusCode};
use crate::net::Transport;
use crate::shard::Shard;
use crate::watchdog::{self, Deadline};

/// What read messages the handler has not taken may cost (see `Driver::cost`) before
/// the socket is no longer read (backpressure towards the client).
const INBOUND_WINDOW: usize = 64 * 1024;
/// How long a close handshake may take, and a handler may run on after the end.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How the connection ends.
enum End {
    /// Close now (after a TLS `close_notify`).
    Close,
    /// The client may still be sending: half-close and drain briefly, so our last
    /// words (a refusal, a close frame after a protocol error) are not lost to a reset.
    Linger,
    /// The socket failed or the client vanished.
    Abort,
}

/// Runs the WebSocket connection `pending` to its end. `read` holds what the
/// connection loop read past the upgrade request.
pub(crate) async fn serve<T: Transport>(
    stream: &T,
    shard: &Shard,
    deadline: &Deadline,
    pending: Pending,
    read: BytesMut,
) {
    let settings = shard.settings.get().websocket;
    let shared = Rc::new(Shared::new(settings.write_buffer, shard.stats.clone()));
    let mut handshake = pending.handshake;
    handshake.deflate &= settings.compression;
    let upgrade = Upgrade::new(
        shared.clone(),
        handshake,
        shard.date.get(),
        shard.server_headers.clone(),
    );
    let (handler, request) = (pending.handler, pending.request);
    let mut task = match catch_unwind(AssertUnwindSafe(|| handler.call(request, upgrade))) {
        Ok(future) => Some(future),
        Err(_) => {
            // The upgrade, dropped while unwinding, queued a 500.
            shard.stats.handler_panic();
            None
        }
    };
    let mut driver = Driver {
        shared: &shared,
        reader: Reader::new(settings.limits()),
        read,
        unqueued: 0,
        peer_closed: false,
        failed: false,
        eof: false,
        progress_at: shard.watchdog.now(),
        heard_at: shard.watchdog.now(),
        answer_by: None,
        close_by: None,
    };
    let end = loop {
        let mut armed = None;
        let polled = watchdog::until(deadline, |cx| {
            let polled = driver.poll(cx, stream, shard, &mut task);
            // The deadline moves while the connection runs: traffic pushes the idle
            // timeout and the next keepalive ping back, and a close started here (the
            // handler's end, a shutdown, a protocol error) must end within
            // `CLOSE_WAIT`. Set only when it moved, since setting it clears an expiry.
            let at = driver.deadline(&settings);
            if armed.replace(at) != Some(at) {
                deadline.set(Some(at));
            }
            polled
        })
        .await;
        match polled {
            Some(end) => break end,
            None if driver.close_by.is_some() || shared.phase.get() != Phase::Open => {
                break End::Abort
            }
            None => driver.expired(shard, &settings),
        }
    };
    match end {
        End::Close => stream.close_notify(),
        End::Linger => crate::linger::linger(stream, shard, deadline).await,
        End::Abort => {}
    }
    shard.pool.give(std::mem::take(&mut driver.read));
    // The handler sees the end (`recv` answers `None`, `send` fails) and may finish.
    shared.close_sent.set(true);
    shared.end_input();
    shared.wake_senders();
    if let Some(mut future) = task {
        deadline.set(Some(shard.watchdog.now() + CLOSE_WAIT));
        watchdog::until(deadline, |cx| {
            catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))).unwrap_or(Poll::Ready(()))
        })
        .await;
    }
}

struct Driver<'a> {
    shared: &'a Shared,
    reader: Reader,
    /// Bytes read and not yet decoded.
    read: BytesMut,
    /// Bytes decoded since the last message delivered to the handler (see `cost`).
    unqueued: usize,
    /// The client's close frame has arrived.
    peer_closed: bool,
    /// The client broke the protocol; our close frame says how.
    failed: bool,
    /// The client's input ended without a close frame.
    eof: bool,
    /// The last time bytes moved either way: the idle timeout counts from here.
    progress_at: Instant,
    /// The last time bytes came from the client: the next keepalive ping is due
    /// `ping_interval` later.
    heard_at: Instant,
    /// A keepalive ping went out: the client must send something by then.
    answer_by: Option<Instant>,
    /// Once we sent a close: when to give up waiting for the client's.
    close_by: Option<Instant>,
}

impl Driver<'_> {
    fn start_close(&self, code: CloseCode, reason: &str) {
        self.shared.queue_close(Some(CloseFrame {
            code,
            reason: reason.to_owned(),
        }));
    }

    /// When the connection's next timer is due: the end of the close's wait, else the
    /// idle timeout or the keepalive's next ping or the deadline for its answer.
    fn deadline(&self, settings: &WebSocketSettings) -> Instant {
        if let Some(at) = self.close_by {
            return at;
        }
        let idle = self.progress_at + settings.idle_timeout;
        match (self.answer_by, settings.ping_interval) {
            (Some(by), _) => idle.min(by),
            (None, Some(interval)) => idle.min(self.heard_at + interval),
            (None, None) => idle,
        }
    }

    /// The deadline passed with the connection open: a client silent for
    /// `ping_interval` is pinged, one that then says nothing for `ping_timeout` is gone
    /// (close 1011), and a connection without traffic for `idle_timeout` is closed
    /// with 1001.
    fn expired(&mut self, shard: &Shard, settings: &WebSocketSettings) {
        let now = shard.watchdog.now();
        if !self.wants_input() {
            // The socket is not being read (the handler is behind, or the client reads
            // nothing of ours): the client's silence says nothing, its pong may be
            // waiting unread. The idle timeout still applies.
            self.heard_at = now;
            self.answer_by = None;
        }
        match self.answer_by {
            Some(by) if now >= by => {
                shard.stats.timeout();
                self.start_close(CloseCode::INTERNAL, "keepalive ping timeout");
                return;
            }
            Some(_) => {}
            None => {
                if let Some(interval) = settings.ping_interval {
                    if now >= self.heard_at + interval {
                        Message::Ping(Bytes::new()).encode(&mut self.shared.out.borrow_mut());
                        self.answer_by = Some(now + settings.ping_timeout);
                        return;
                    }
                }
            }
        }
        if now >= self.progress_at + settings.idle_timeout {
            shard.stats.timeout();
            self.start_close(CloseCode::GOING_AWAY, "idle timeout");
        }
    }

    /// Drives the connection until nothing can progress (`Pending`) or it is over.
    fn poll<T: Transport>(
        &mut self,
        cx: &mut Context<'_>,
        stream: &T,
        shard: &Shard,
        task: &mut Option<Pin<Box<dyn Future<Output = ()>>>>,
    ) -> Poll<End> {
        let shared = self.shared;
        *shared.driver.borrow_mut() = Some(cx.waker().clone());
        loop {
            let mut progress = false;
            if let Some(future) = task {
                match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => {}
                    Ok(Poll::Ready(())) => {
                        *task = None;
                        progress = true;
                        if shared.phase.get() == Phase::Open {
                            self.start_close(CloseCode::NORMAL, "");
                        }
                    }
                    Err(_) => {
                        *task = None;
                        progress = true;
                        shard.stats.handler_panic();
                        match shared.phase.get() {
                            Phase::Handshake => shared.refuse(
                                &Response::new(StatusCode::INTERNAL_SERVER_ERROR)
                                    .with_body("text/plain", "internal server error\n"),
                                shard.stamp(&shard.date.get()),
                            ),
                            Phase::Open => self.start_close(CloseCode::INTERNAL, "handler failed"),
                            Phase::Refused => {}
                        }
                    }
                }
            }
            if shared.phase.get() == Phase::Open {
                if shard.draining.get() && !shared.close_sent.get() {
                    self.start_close(CloseCode::GOING_AWAY, "server going down");
                }
                progress |= self.decode(shard);
            }
            // However our close was queued (here, or by the handler's `close`), the
            // client has `CLOSE_WAIT` to answer it.
            if shared.close_sent.get() && self.close_by.is_none() {
                self.close_by = Some(shard.watchdog.now() + CLOSE_WAIT);
            }
            let Ok((wrote, all_out)) = self.write(cx, stream, shard) else {
                return Poll::Ready(End::Abort);
            };
            progress |= wrote;
            if all_out {
                if let Some(end) = self.finished() {
                    return Poll::Ready(end);
                }
            }
            if self.wants_input() {
                let mut scratch = shard.scratch.borrow_mut();
                match stream.poll_read(cx, &mut scratch[..]) {
                    Poll::Ready(Ok(0)) => {
                        self.eof = true;
                        shared.end_input();
                        progress = true;
                    }
                    Poll::Ready(Ok(n)) => {
                        self.read.extend_from_slice(&scratch[..n]);
                        shard.stats.bytes_in(n);
                        self.progress_at = shard.watchdog.now();
                        self.heard_at = self.progress_at;
                        self.answer_by = None;
                        progress = true;
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(End::Abort),
                    Poll::Pending => {}
                }
            }
            if !progress {
                return Poll::Pending;
            }
            // glommio is cooperative, and the socket's reads and writes wait only when
            // it is not ready: a client whose frames keep arriving, to a handler that
            // takes them as they come, never makes this loop wait, and without this it
            // holds the shard, every other connection there waiting. Once per turn: a
            // check of the preemption timer's completion, and a yield (wake at once,
            // come back after the others) only once the time slice is spent.
            if glommio::executor().need_preempt() {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    /// How the connection ends, once all output is out; `None` while it goes on.
    fn finished(&self) -> Option<End> {
        let shared = self.shared;
        match shared.phase.get() {
            Phase::Refused => Some(End::Linger),
            Phase::Handshake => None,
            Phase::Open if self.eof => Some(End::Abort),
            Phase::Open if shared.close_sent.get() && self.failed => Some(End::Linger),
            Phase::Open if shared.close_sent.get() && self.peer_closed => Some(End::Close),
            Phase::Open => None,
        }
    }

    fn wants_input(&self) -> bool {
        let shared = self.shared;
        shared.phase.get() == Phase::Open
            && !self.eof
            && !self.failed
            && !self.peer_closed
            && self.has_room()
    }

    /// Whether both queues have room: received messages the handler has not taken,
    /// and output the client has not read (pongs are output too: a client that sends
    /// pings and reads nothing must not grow it).
    fn has_room(&self) -> bool {
        self.shared.inbound_bytes.get() < INBOUND_WINDOW
            && self.shared.out.borrow().len() < self.shared.out_limit
    }

    /// Decodes the frames read so far; answers pings and the client's close. Whether
    /// anything was decoded.
    fn decode(&mut self, shard: &Shard) -> bool {
        let shared = self.shared;
        if shared.deflate.get() {
            self.reader.accept_compressed();
        }
        let mut progress = false;
        while !self.failed && !self.peer_closed && self.has_room() {
            let before = self.read.len();
            let read = self.reader.read(&mut self.read);
            self.unqueued += before - self.read.len();
            match read {
                Ok(None) => break,
                Ok(Some(message)) => {
                    progress = true;
                    match message {
                        Message::Ping(payload) if !shared.close_sent.get() => {
                            Message::Pong(payload).encode(&mut shared.out.borrow_mut());
                        }
                        Message::Ping(_) | Message::Pong(_) => {}
                        Message::Close(frame) => {
                            self.peer_closed = true;
                            // Echo the client's code (§5.5.1); a close with none gets none.
                            shared.queue_close(frame.as_ref().map(|f| CloseFrame {
                                code: f.code,
                                reason: String::new(),
                            }));
                            shared.deliver(Message::Close(frame), self.cost(0));
                            shared.end_input();
                        }
                        // After our close, the client's data is dropped (§1.4).
                        _ if shared.close_sent.get() => {}
                        message => {
                            let cost = self.cost(message.len());
                            shared.deliver(message, cost);
                        }
                    }
                }
                Err(error) => {
                    progress = true;
                    self.failed = true;
                    shard.stats.ws_protocol_error();
                    self.start_close(error.code, error.reason);
                    shared.end_input();
                }
            }
        }
        progress
    }

    /// What the message decoded last costs while it waits for the handler: the bytes
    /// read since the message before it, its own frames and any control frames between
    /// (a binary payload keeps the read buffer it arrived in alive, and with it what
    /// was read after it), and its place in the queue. Counting payloads only, empty
    /// messages cost nothing and queued without bound, and small ones each held a read
    /// buffer filled with pongs. A compressed message costs at least its `len` inflated:
    /// counting what was read, a kilobyte could queue a megabyte.
    fn cost(&mut self, len: usize) -> usize {
        std::mem::take(&mut self.unqueued).max(len) + std::mem::size_of::<Message>()
    }

    /// Writes what output is queued, as far as the socket takes it: whether bytes went
    /// out, and whether all are out (flushed, under TLS). `Err` when the socket failed.
    fn write<T: Transport>(
        &mut self,
        cx: &mut Context<'_>,
        stream: &T,
        shard: &Shard,
    ) -> Result<(bool, bool), ()> {
        let shared = self.shared;
        let mut out = shared.out.borrow_mut();
        if out.is_empty() {
            return Ok((false, true));
        }
        let was_full = out.len() >= shared.out_limit;
        let mut wrote = false;
        while !out.is_empty() {
            match stream.poll_write(cx, &out) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Err(()),
                Poll::Ready(Ok(n)) => {
                    shard.stats.wrote(n);
                    out.advance(n);
                    wrote = true;
                }
                Poll::Pending => break,
            }
        }
        if wrote {
            self.progress_at = shard.watchdog.now();
        }
        let mut all_out = out.is_empty();
        if T::BUFFERED && all_out {
            match stream.poll_flush(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Err(()),
                Poll::Pending => all_out = false,
            }
        }
        if was_full && out.len() < shared.out_limit {
            drop(out);
            shared.wake_senders();
        }
        Ok((wrote, all_out))
    }
}
