//! What a handler holds: [`Upgrade`] before the handshake is answered, [`WebSocket`]
//! after. Both are handles on state the connection's driver (`driver.rs`) shares with
//! them; they never touch the socket, so any task on the shard may use them.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

use super::frame::CloseCode;
use super::handshake::Handshake;
use super::message::{CloseFrame, Message};
use crate::http::date::DATE_LEN;
use crate::http::response::{ServerHeaders, Stamp};
use crate::http::{HeaderText, Response, ResponseMode, StatusCode};
use crate::stats::ShardStats;

/// Where the connection stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Phase {
    /// The handshake awaits the handler's answer.
    Handshake,
    /// Accepted: messages flow.
    Open,
    /// Refused with an HTTP response: the connection closes once it is out.
    Refused,
}

/// State shared by the driver and every handle on one connection.
pub(crate) struct Shared {
    pub(crate) phase: Cell<Phase>,
    /// Messages read and not yet taken by `recv`, each with its cost (the bytes read
    /// for it, and its place here: see the driver), and their total cost.
    pub(crate) inbound: RefCell<VecDeque<(Message, usize)>>,
    pub(crate) inbound_bytes: Cell<usize>,
    /// No more messages will arrive (the peer closed, left, or broke the protocol).
    pub(crate) input_done: Cell<bool>,
    /// Encoded output not yet written.
    pub(crate) out: RefCell<BytesMut>,
    /// `send` waits while `out` holds this much.
    pub(crate) out_limit: usize,
    /// A close frame is queued or written: nothing more may be sent.
    pub(crate) close_sent: Cell<bool>,
    /// The driver's task, woken when a handle queues output or takes input.
    pub(crate) driver: RefCell<Option<Waker>>,
    /// Tasks waiting in `recv`, and in `send` for room.
    receivers: RefCell<Vec<Waker>>,
    senders: RefCell<Vec<Waker>>,
    /// The subprotocol chosen at accept.
    protocol: RefCell<Option<String>>,
    /// permessage-deflate was accepted: messages may go out compressed, and come in so.
    pub(crate) deflate: Cell<bool>,
    pub(crate) stats: Rc<ShardStats>,
}

impl Shared {
    pub(crate) fn new(out_limit: usize, stats: Rc<ShardStats>) -> Shared {
        Shared {
            phase: Cell::new(Phase::Handshake),
            inbound: RefCell::new(VecDeque::new()),
            inbound_bytes: Cell::new(0),
            input_done: Cell::new(false),
            out: RefCell::new(BytesMut::new()),
            out_limit,
            close_sent: Cell::new(false),
            driver: RefCell::new(None),
            receivers: RefCell::new(Vec::new()),
            senders: RefCell::new(Vec::new()),
            protocol: RefCell::new(None),
            deflate: Cell::new(false),
            stats,
        }
    }

    pub(crate) fn wake_driver(&self) {
        if let Some(waker) = self.driver.borrow_mut().take() {
            waker.wake();
        }
    }

    pub(crate) fn wake_receivers(&self) {
        for waker in self.receivers.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    pub(crate) fn wake_senders(&self) {
        for waker in self.senders.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Queues a message the driver read, which holds `cost` bytes until taken.
    pub(crate) fn deliver(&self, message: Message, cost: usize) {
        self.inbound_bytes.set(self.inbound_bytes.get() + cost);
        self.inbound.borrow_mut().push_back((message, cost));
        self.stats.ws_message_in();
        self.wake_receivers();
    }

    /// Queues a close frame unless one is already out; ends sending.
    pub(crate) fn queue_close(&self, frame: Option<CloseFrame>) {
        if self.close_sent.replace(true) {
            return;
        }
        Message::Close(frame).encode(&mut self.out.borrow_mut());
        self.wake_senders();
        self.wake_driver();
    }

    /// Input has ended: `recv` drains what is queued, then answers `None`.
    pub(crate) fn end_input(&self) {
        self.input_done.set(true);
        self.wake_receivers();
    }

    /// Answers the handshake with `response` (plain, not streamed); the connection
    /// closes after it.
    pub(crate) fn refuse(&self, response: &Response, stamp: Stamp<'_>) {
        response.encode(ResponseMode::CLOSE, stamp, &mut self.out.borrow_mut());
        self.stats.response(response.status().as_u16());
        self.phase.set(Phase::Refused);
        self.end_input();
        self.wake_driver();
    }

    fn poll_recv(&self, cx: &Context<'_>) -> Poll<Option<Message>> {
        if let Some((message, cost)) = self.inbound.borrow_mut().pop_front() {
            self.inbound_bytes.set(self.inbound_bytes.get() - cost);
            self.wake_driver();
            return Poll::Ready(Some(message));
        }
        if self.input_done.get() {
            return Poll::Ready(None);
        }
        self.receivers.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }

    /// Why nothing may be queued now (the error to hand the message back in), if so.
    fn refusal(&self) -> Option<fn(Message) -> SendError> {
        if self.close_sent.get() || self.phase.get() != Phase::Open {
            Some(SendError::Closed)
        } else if self.out.borrow().len() >= self.out_limit {
            Some(SendError::Full)
        } else {
            None
        }
    }

    fn try_queue_prepared(&self, prepared: &Prepared) -> Result<(), SendError> {
        if let Message::Close(_) = prepared.message {
            return self.try_queue(prepared.message.clone());
        }
        if let Some(refuse) = self.refusal() {
            return Err(refuse(prepared.message.clone()));
        }
        self.out
            .borrow_mut()
            .extend_from_slice(prepared.frame(self.deflate.get()));
        self.stats.ws_message_out();
        self.wake_driver();
        Ok(())
    }

    fn try_queue(&self, message: Message) -> Result<(), SendError> {
        if let Some(refuse) = self.refusal() {
            return Err(refuse(message));
        }
        match message {
            Message::Close(frame) => self.queue_close(frame),
            message => {
                let out = &mut self.out.borrow_mut();
                if self.deflate.get() {
                    message.encode_compressed(out);
                } else {
                    message.encode(out);
                }
                self.stats.ws_message_out();
                self.wake_driver();
            }
        }
        Ok(())
    }
}

/// A message encoded once for many connections ([`WebSocket::try_send_prepared`]):
/// its frame, and its compressed frame for connections with permessage-deflate, made
/// on first need; shard-local, like the connections it goes to.
pub struct Prepared {
    message: Message,
    plain: OnceCell<Bytes>,
    compressed: OnceCell<Bytes>,
}

impl Prepared {
    /// Prepares `message` for sending to many connections.
    pub fn new(message: Message) -> Prepared {
        Prepared {
            message,
            plain: OnceCell::new(),
            compressed: OnceCell::new(),
        }
    }

    /// The frame to send: compressed (where that makes it smaller) for a connection
    /// that negotiated permessage-deflate.
    fn frame(&self, deflate: bool) -> &Bytes {
        let (cell, encode): (_, fn(&Message, &mut BytesMut)) = if deflate {
            (&self.compressed, Message::encode_compressed)
        } else {
            (&self.plain, Message::encode)
        };
        cell.get_or_init(|| {
            let mut out = BytesMut::new();
            encode(&self.message, &mut out);
            out.freeze()
        })
    }
}

/// Why a message was not sent; it comes back inside.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// The connection is closing or closed: nothing more can be sent.
    Closed(Message),
    /// (`try_send` only) the output buffer is over `websocket.write_buffer`: the client
    /// reads more slowly than messages are produced.
    Full(Message),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Closed(_) => f.write_str("the WebSocket is closed"),
            SendError::Full(_) => f.write_str("the WebSocket's output buffer is full"),
        }
    }
}

impl std::error::Error for SendError {}

/// An accepted WebSocket connection. Clones are handles on the same connection (a chat
/// room keeps one per member to send to); it stays on its shard (`!Send`).
#[derive(Clone)]
pub struct WebSocket {
    shared: Rc<Shared>,
}

impl WebSocket {
    /// The next text, binary or close message from the client; `None` once no more will
    /// come (after the client's close, which arrives as [`Message::Close`], after a
    /// protocol error, or when the connection ends). Pings are answered by the server
    /// and pongs are dropped, so neither comes out here. While messages wait here
    /// unread, the server stops reading the socket.
    pub async fn recv(&self) -> Option<Message> {
        // Queued messages are ready at once: a handler that works on each would take
        // the whole window (some 1,700 small messages) before the shard serves others.
        // As between requests, a yield once the time slice is spent.
        glommio::yield_if_needed().await;
        poll_fn(|cx| self.shared.poll_recv(cx)).await
    }

    /// Sends `message`, waiting while the output buffer is over `websocket.write_buffer`
    /// (a client that reads slowly slows its sender). Sending [`Message::Close`] starts
    /// the closing handshake. Fails once a close has been sent or the connection ended.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        let mut message = Some(message);
        poll_fn(|cx| {
            match self
                .shared
                .try_queue(message.take().expect("polled after completion"))
            {
                Err(SendError::Full(back)) => {
                    message = Some(back);
                    self.shared.senders.borrow_mut().push(cx.waker().clone());
                    Poll::Pending
                }
                done => Poll::Ready(done),
            }
        })
        .await
    }

    /// Sends `message` now, or gives it back: [`SendError::Full`] when the output buffer
    /// is over its bound. For fan-out to many connections, where one slow client must
    /// not hold up the rest.
    pub fn try_send(&self, message: Message) -> Result<(), SendError> {
        self.shared.try_queue(message)
    }

    /// [`WebSocket::try_send`] for a message encoded once for many connections (a
    /// room's fan-out): its frame is copied, not encoded (or compressed) again per
    /// connection. An error hands back a copy of the message.
    pub fn try_send_prepared(&self, prepared: &Prepared) -> Result<(), SendError> {
        self.shared.try_queue_prepared(prepared)
    }

    /// Starts the closing handshake with `code` and `reason` (cut to 123 bytes). The
    /// client's close then arrives through [`WebSocket::recv`]; the connection ends
    /// once it has, or after a short wait. Does nothing if a close was already sent.
    pub fn close(&self, code: CloseCode, reason: &str) {
        if self.shared.phase.get() == Phase::Open {
            self.shared.queue_close(Some(CloseFrame {
                code,
                reason: reason.to_owned(),
            }));
        }
    }

    /// Whether the connection can still send: open, and no close sent.
    pub fn is_open(&self) -> bool {
        self.shared.phase.get() == Phase::Open && !self.shared.close_sent.get()
    }

    /// The subprotocol chosen when the connection was accepted.
    pub fn protocol(&self) -> Option<String> {
        self.shared.protocol.borrow().clone()
    }
}

/// An upgrade request the handler has not answered yet: [`Upgrade::accept`] it (with
/// a subprotocol the client offered, or none) or [`Upgrade::reject`] it with an HTTP
/// response. Dropped unanswered, it is refused with 403 (500 if the handler panicked).
pub struct Upgrade {
    shared: Rc<Shared>,
    handshake: Handshake,
    /// The shard's cached `Date`, its `Server` line and `server.headers`, for the
    /// answer.
    date: [u8; DATE_LEN],
    server_headers: Rc<ServerHeaders>,
}

impl Upgrade {
    pub(crate) fn new(
        shared: Rc<Shared>,
        handshake: Handshake,
        date: [u8; DATE_LEN],
        server_headers: Rc<ServerHeaders>,
    ) -> Upgrade {
        Upgrade {
            shared,
            handshake,
            date,
            server_headers,
        }
    }

    /// The subprotocols the client offered (`Sec-WebSocket-Protocol`), in its order.
    pub fn protocols(&self) -> &[String] {
        &self.handshake.protocols
    }

    /// Answers 101 and opens the connection. A `protocol` the client did not offer is
    /// not announced (the client would have to fail the connection).
    pub fn accept(self, protocol: Option<&str>) -> WebSocket {
        self.accept_with_headers(protocol, Vec::new())
    }

    /// [`Upgrade::accept`] with more headers on the 101 (a cookie; ASGI's
    /// `websocket.accept` headers). Those the handshake owns are dropped: `Upgrade`,
    /// `Connection`, `Sec-WebSocket-*` (the subprotocol is `protocol`),
    /// `Content-Length` and `Transfer-Encoding`.
    pub fn accept_with_headers(
        self,
        protocol: Option<&str>,
        mut headers: Vec<(HeaderText, HeaderText)>,
    ) -> WebSocket {
        headers.retain(|(name, _)| !handshake_owns(name.as_str()));
        let protocol = protocol.filter(|p| self.handshake.protocols.iter().any(|o| o == p));
        let stamp = Stamp {
            date: &self.date,
            headers: &self.server_headers,
        };
        self.handshake
            .encode_accept(protocol, &headers, stamp, &mut self.shared.out.borrow_mut());
        *self.shared.protocol.borrow_mut() = protocol.map(str::to_owned);
        self.shared.deflate.set(self.handshake.deflate);
        self.shared.phase.set(Phase::Open);
        self.shared.stats.ws_opened();
        self.shared.stats.response(101);
        self.shared.wake_driver();
        WebSocket {
            shared: self.shared.clone(),
        }
    }

    /// Refuses the upgrade with `response` (its status should be 4xx or 5xx); the
    /// connection closes after it.
    pub fn reject(self, response: Response) {
        self.refuse(&response);
    }

    fn refuse(&self, response: &Response) {
        let stamp = Stamp {
            date: &self.date,
            headers: &self.server_headers,
        };
        self.shared.refuse(response, stamp);
    }
}

/// Whether a 101's header `name` is the handshake's own. A name that is not UTF-8
/// (`as_str` gives "") is kept: it is none of these.
fn handshake_owns(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("sec-websocket-")
        || matches!(
            name.as_str(),
            "upgrade" | "connection" | "content-length" | "transfer-encoding"
        )
}

impl Drop for Upgrade {
    fn drop(&mut self) {
        if self.shared.phase.get() != Phase::Handshake {
            return;
        }
        let response = if std::thread::panicking() {
            Response::new(StatusCode::INTERNAL_SERVER_ERROR)
                .with_body("text/plain", "internal server error\n")
        } else {
            let forbidden = StatusCode::from_u16(403).expect("a valid status");
            Response::new(forbidden).with_body("text/plain", "WebSocket refused\n")
        };
        self.refuse(&response);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn a_prepared_message_is_encoded_once_per_form() {
        let text = "the same words, again and again; ".repeat(10);
        let prepared = Prepared::new(Message::Text(text.clone()));
        let mut plain = BytesMut::new();
        Message::Text(text.clone()).encode(&mut plain);
        assert_eq!(prepared.frame(false), &plain);
        let compressed = prepared.frame(true);
        assert!(
            compressed.len() < plain.len() / 4,
            "{} bytes",
            compressed.len()
        );
        assert_eq!(compressed[0] & 0x40, 0x40, "RSV1: compressed");
        // The same frames again, not made again.
        assert_eq!(prepared.frame(true).as_ptr(), compressed.as_ptr());
        assert_eq!(
            prepared.frame(false).as_ptr(),
            prepared.frame(false).as_ptr()
        );
    }

    #[test]
    fn a_handler_working_through_queued_messages_lets_other_tasks_run() {
        let executor = glommio::LocalExecutorBuilder::default()
            .make()
            .expect("a glommio executor for the test");
        executor.run(async {
            let shared = Rc::new(Shared::new(1 << 16, Rc::default()));
            let queued = 5_000;
            for _ in 0..queued {
                shared.deliver(Message::Binary(bytes::Bytes::new()), 0);
            }
            shared.end_input();
            let ws = WebSocket { shared };
            let other_ran = Rc::new(Cell::new(false));
            // Another connection's work, due in 1 ms (as a request arriving would be,
            // both need the shard to look at its events).
            glommio::spawn_local({
                let other_ran = other_ran.clone();
                async move {
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                    other_ran.set(true)
                }
            })
            .detach();
            // 1 ms of work per message; the other task must get its turn long before
            // the queue is empty (a time slice is some tens of messages).
            let mut taken = 0;
            while !other_ran.get() && ws.recv().await.is_some() {
                let worked = Instant::now() + Duration::from_millis(1);
                while Instant::now() < worked {
                    std::hint::spin_loop();
                }
                taken += 1;
            }
            assert!(
                other_ran.get(),
                "the other task waited for all {taken} messages"
            );
            assert!(
                taken < queued / 5,
                "the other task waited for {taken} messages"
            );
        });
    }
}
