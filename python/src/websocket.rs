//! WebSocket for ASGI apps, on the server's own WebSocket support (`haywire::ws`): the
//! shard checks the handshake, frames, UTF-8, size limits (1009), pings and the close
//! handshake; this module carries the ASGI conversation between a connection's task on
//! the shard and the worker's Python thread.
//!
//! Shard → Python: [`Event`]s in a [`Mailbox`] whose doorbell the event loop watches
//! (`Worker.websocket_fileno`, `Worker.take_websocket`). Python → shard: commands in
//! another mailbox, served by a task on the shard (`serve_mailbox`), queued per
//! connection.
//!
//! Backpressure both ways, in bytes per connection ([`Link`]): the shard stops taking
//! messages from the connection (which then stops reading the socket) while the app
//! leaves [`RECV_WINDOW`] unread (payloads plus a per-message overhead); the app's
//! `send` waits while [`SEND_WINDOW`] of its messages are not yet in the connection's
//! output buffer, which itself waits on `websocket.write_buffer` and so on the client.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use bytes::Bytes;
use haywire::ws::{CloseCode, Message, Upgrade};
use haywire::{HeaderText, Request, Router, StatusCode};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use crate::bridge::{serve_mailbox, Answer, Job, Mailbox, FALLBACK};
use crate::{body_bytes, build_response, header_pairs, Site};

/// What received messages the app leaves unread may cost ([`unread_cost`]) before the
/// shard stops taking more from the connection.
pub const RECV_WINDOW: usize = 64 * 1024;
/// What a received message holds in Python beyond its payload: the `str` or `bytes`
/// object, the ASGI event dict and its queue entry (about 300 bytes in CPython 3.11).
/// Counted so that a flood of empty or tiny messages fills [`RECV_WINDOW`] too.
const MESSAGE_OVERHEAD: usize = 256;
/// Bytes of the app's messages that may wait for the connection's output buffer
/// before `send` waits.
pub const SEND_WINDOW: usize = 256 * 1024;

/// The close code reported when the connection ended without a close frame.
const ABNORMAL: u16 = 1006;

/// What the shard tells the Python thread about connection `id`.
enum Event {
    /// A handshake awaits the app's answer.
    Connect(Box<Connect>),
    /// A text message (its [`unread_cost`] counted unread).
    Text(u64, String),
    /// A binary message (its [`unread_cost`] counted unread).
    Binary(u64, Bytes),
    /// The connection is over: the client's close code and reason (1005 for a close
    /// without a code, 1006 when none came). Always the last event of a connection.
    Disconnect(u64, u16, String),
    /// The app's sent messages are below [`SEND_WINDOW`] again.
    Room(u64),
}

/// The handshake of connection `id`, as the Python thread receives it.
struct Connect {
    id: u64,
    job: Job,
    protocols: Vec<String>,
    link: Arc<Link>,
}

/// What the Python thread tells the shard about one connection.
enum Command {
    /// Answer 101 with this subprotocol and these headers.
    Accept {
        protocol: Option<String>,
        headers: Vec<(Bytes, Bytes)>,
    },
    /// Refuse the handshake with this HTTP response.
    Reject(Answer),
    /// Send a text or binary message.
    Send(Message),
    /// Start the closing handshake.
    Close(CloseCode, String),
    /// The app has read below [`RECV_WINDOW`] or `--ws-max-queue`: take messages again.
    Resume,
}

/// The body of a refusal the app did not word itself.
const REFUSED: &str = "WebSocket refused\n";

/// Counts both threads keep for one connection.
struct Link {
    /// Delivered to Python and not yet received by the app ([`unread_cost`]).
    unread: AtomicUsize,
    /// Messages delivered to Python and not yet received by the app.
    unread_messages: AtomicUsize,
    /// `--ws-max-queue`: the most messages left unread (`usize::MAX`: bytes alone).
    max_messages: usize,
    /// Sent by the app and not yet in the connection's output buffer.
    unsent: AtomicUsize,
}

impl Link {
    fn new(max_messages: usize) -> Link {
        Link {
            unread: AtomicUsize::new(0),
            unread_messages: AtomicUsize::new(0),
            max_messages,
            unsent: AtomicUsize::new(0),
        }
    }

    /// Whether the shard may take another message for the app: it leaves less than
    /// [`RECV_WINDOW`] and fewer than `max_messages` unread.
    fn has_room(&self) -> bool {
        self.unread.load(Ordering::Acquire) < RECV_WINDOW
            && self.unread_messages.load(Ordering::Acquire) < self.max_messages
    }

    /// A message of `payload` bytes goes to the app.
    fn delivered(&self, payload: usize) {
        self.unread
            .fetch_add(unread_cost(payload), Ordering::AcqRel);
        self.unread_messages.fetch_add(1, Ordering::AcqRel);
    }

    /// The app has received a message that cost `n`: whether that took either count
    /// below its limit (the shard may be waiting for room).
    fn received(&self, n: usize) -> bool {
        let bytes = release(&self.unread, n, RECV_WINDOW);
        let messages = release(&self.unread_messages, 1, self.max_messages);
        bytes || messages
    }
}

/// What a received message of `payload` bytes counts against [`RECV_WINDOW`].
fn unread_cost(payload: usize) -> usize {
    payload + MESSAGE_OVERHEAD
}

/// Subtracts `n` from `count`; whether that took it from `window` or more to below.
fn release(count: &AtomicUsize, n: usize, window: usize) -> bool {
    let before = count.fetch_sub(n, Ordering::AcqRel);
    before >= window && before - n < window
}

/// The worker's channels between its shard's WebSocket connections and its Python
/// thread.
pub struct Channels {
    events: Arc<Mailbox<Event>>,
    events_door: UnixStream,
    /// The buffer `take` drains the events into (see [`Mailbox::drain_with`]).
    taken: Mutex<VecDeque<Event>>,
    commands: Arc<Mailbox<(u64, Command)>>,
    /// Taken by the shard's command task when the routes are built.
    commands_door: Arc<Mutex<Option<UnixStream>>>,
    max_messages: usize,
}

impl Channels {
    /// New, empty channels; each connection leaves at most `max_messages` received
    /// messages unread (and [`RECV_WINDOW`]).
    pub fn new(max_messages: usize) -> io::Result<Channels> {
        let (events, events_door) = Mailbox::new()?;
        let (commands, commands_door) = Mailbox::new()?;
        Ok(Channels {
            events,
            events_door,
            taken: Mutex::default(),
            commands,
            commands_door: Arc::new(Mutex::new(Some(commands_door))),
            max_messages,
        })
    }

    /// What the route factory needs (it runs on the shard's thread).
    pub fn mount(&self) -> Mount {
        Mount {
            events: self.events.clone(),
            commands: self.commands.clone(),
            commands_door: self.commands_door.clone(),
            max_messages: self.max_messages,
        }
    }

    /// The doorbell to watch for readability; then call [`Channels::take`].
    pub fn fileno(&self) -> i32 {
        self.events_door.as_raw_fd()
    }

    /// The events waiting now, as `(kind, id, payload, size)` tuples: kind 0 a
    /// handshake (payload a `WebSocket`), 1 text (`str`), 2 bytes, 3 the end
    /// (`(code, reason)`), 4 room to send again; size is what to pass to
    /// `WebSocket.consumed` once the app has received the message.
    pub fn take<'py>(&self, py: Python<'py>, site: &Arc<Site>) -> PyResult<Bound<'py, PyList>> {
        crate::bridge::consume_rings(&self.events_door);
        let list = PyList::empty(py);
        self.events.drain_with(&self.taken, |events| {
            for event in events {
                let none = py.None().into_bound(py);
                let item = match event {
                    Event::Connect(connect) => {
                        let id = connect.id;
                        let ws = PyWebSocket {
                            id,
                            job: connect.job,
                            protocols: connect.protocols,
                            link: connect.link,
                            site: site.clone(),
                            commands: self.commands.clone(),
                            answered: AtomicBool::new(false),
                            closed: AtomicBool::new(false),
                        };
                        (0, id, Bound::new(py, ws)?.into_any(), 0)
                    }
                    Event::Text(id, text) => {
                        let n = unread_cost(text.len());
                        (1, id, PyString::new(py, &text).into_any(), n)
                    }
                    Event::Binary(id, data) => {
                        let n = unread_cost(data.len());
                        (2, id, PyBytes::new(py, &data).into_any(), n)
                    }
                    Event::Disconnect(id, code, reason) => {
                        (3, id, (code, reason).into_pyobject(py)?.into_any(), 0)
                    }
                    Event::Room(id) => (4, id, none, 0),
                };
                list.append(item)?;
            }
            PyResult::Ok(())
        })?;
        Ok(list)
    }
}

/// The shard's share of [`Channels`].
#[derive(Clone)]
pub struct Mount {
    events: Arc<Mailbox<Event>>,
    commands: Arc<Mailbox<(u64, Command)>>,
    commands_door: Arc<Mutex<Option<UnixStream>>>,
    max_messages: usize,
}

impl Mount {
    /// Serves WebSocket upgrades on every path no WebSocket route takes (plain
    /// requests still reach the app's HTTP side), and starts the shard's command task.
    pub fn on(&self, router: &mut Router) {
        let hub = Rc::new(Hub {
            conns: RefCell::default(),
            next: Cell::new(0),
            events: self.events.clone(),
            max_messages: self.max_messages,
        });
        let door = self
            .commands_door
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(door) = door {
            let (hub, commands) = (hub.clone(), self.commands.clone());
            glommio::spawn_local(async move {
                serve_mailbox(&commands, door, |(id, command)| hub.command(id, command)).await
            })
            .detach();
        }
        router.websocket_fallback(move |request: Request, upgrade: Upgrade| {
            hub.clone().run(request, upgrade)
        });
    }
}

/// The shard's WebSocket connections that belong to the app.
struct Hub {
    conns: RefCell<HashMap<u64, Rc<Conn>>>,
    next: Cell<u64>,
    events: Arc<Mailbox<Event>>,
    max_messages: usize,
}

/// One connection's commands from Python, and the tasks waiting on them.
struct Conn {
    commands: RefCell<VecDeque<Command>>,
    /// The task waiting for a command.
    waker: RefCell<Option<Waker>>,
    /// The task waiting for the app to read below [`RECV_WINDOW`].
    resume: RefCell<Option<Waker>>,
    link: Arc<Link>,
}

impl Conn {
    fn new(max_messages: usize) -> Conn {
        Conn {
            commands: RefCell::default(),
            waker: RefCell::default(),
            resume: RefCell::default(),
            link: Arc::new(Link::new(max_messages)),
        }
    }

    async fn next(&self) -> Command {
        poll_fn(|cx| match self.commands.borrow_mut().pop_front() {
            Some(command) => Poll::Ready(command),
            None => {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Waits until the app leaves room for another message ([`Link::has_room`]).
    async fn room(&self) {
        poll_fn(|cx| {
            *self.resume.borrow_mut() = Some(cx.waker().clone());
            if self.link.has_room() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

fn wake(waker: &RefCell<Option<Waker>>) {
    if let Some(waker) = waker.borrow_mut().take() {
        waker.wake();
    }
}

/// Ends a connection for the Python side when its task ends, however it ends (the
/// client left, the server dropped the task): forgets it and reports the close code.
struct Ending<'a> {
    hub: &'a Hub,
    id: u64,
    code: Cell<u16>,
    reason: RefCell<String>,
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        self.hub.conns.borrow_mut().remove(&self.id);
        let reason = std::mem::take(&mut *self.reason.borrow_mut());
        self.hub
            .events
            .post(Event::Disconnect(self.id, self.code.get(), reason));
    }
}

impl Hub {
    fn command(&self, id: u64, command: Command) {
        // Commands for a connection that has ended are dropped.
        if let Some(conn) = self.conns.borrow().get(&id) {
            match command {
                Command::Resume => wake(&conn.resume),
                command => {
                    conn.commands.borrow_mut().push_back(command);
                    wake(&conn.waker);
                }
            }
        }
    }

    /// Runs one connection: the handshake goes to the app, which accepts or refuses
    /// it; then messages flow both ways until the connection ends.
    async fn run(self: Rc<Self>, request: Request, upgrade: Upgrade) {
        let id = self.next.get();
        self.next.set(id + 1);
        let conn = Rc::new(Conn::new(self.max_messages));
        self.conns.borrow_mut().insert(id, conn.clone());
        let ending = Ending {
            hub: &self,
            id,
            code: Cell::new(ABNORMAL),
            reason: RefCell::default(),
        };
        self.events.post(Event::Connect(Box::new(Connect {
            id,
            job: Job::new(id, FALLBACK, &request),
            protocols: upgrade.protocols().to_vec(),
            link: conn.link.clone(),
        })));
        let ws = loop {
            match conn.next().await {
                Command::Accept { protocol, headers } => {
                    let headers = headers
                        .into_iter()
                        .map(|(n, v)| (HeaderText::from_bytes(n), HeaderText::from_bytes(v)))
                        .collect();
                    break upgrade.accept_with_headers(protocol.as_deref(), headers);
                }
                Command::Reject(answer) => {
                    upgrade.reject(answer.into_response());
                    return;
                }
                // Nothing is sent before the handshake is answered.
                _ => {}
            }
        };
        let link = &conn.link;
        let receiving = async {
            loop {
                conn.room().await;
                match ws.recv().await {
                    Some(Message::Text(text)) => {
                        link.delivered(text.len());
                        self.events.post(Event::Text(id, text));
                    }
                    Some(Message::Binary(data)) => {
                        link.delivered(data.len());
                        self.events.post(Event::Binary(id, data));
                    }
                    Some(Message::Close(frame)) => {
                        let frame = frame.unwrap_or(haywire::ws::CloseFrame {
                            code: CloseCode(1005),
                            reason: String::new(),
                        });
                        ending.code.set(frame.code.0);
                        *ending.reason.borrow_mut() = frame.reason;
                    }
                    Some(_) => {}
                    None => return,
                }
            }
        };
        let sending = async {
            loop {
                match conn.next().await {
                    Command::Send(message) => {
                        let n = message.len();
                        // An error means the connection is closing: `receiving` ends.
                        let _ = ws.send(message).await;
                        if release(&link.unsent, n, SEND_WINDOW) {
                            self.events.post(Event::Room(id));
                        }
                    }
                    Command::Close(code, reason) => ws.close(code, &reason),
                    _ => {}
                }
            }
        };
        futures_lite::future::or(receiving, sending).await;
    }
}

/// One WebSocket connection of the app, on the Python side (`haywire/websocket.py`
/// drives it as ASGI). Answer the handshake once (`accept` or `reject`); `finish`
/// when the app is done (also done when this is dropped).
#[pyclass(module = "haywire._haywire", name = "WebSocket", frozen)]
pub struct PyWebSocket {
    id: u64,
    job: Job,
    protocols: Vec<String>,
    link: Arc<Link>,
    site: Arc<Site>,
    commands: Arc<Mailbox<(u64, Command)>>,
    /// The handshake was answered.
    answered: AtomicBool,
    /// A close was sent or the handshake refused: nothing more goes out.
    closed: AtomicBool,
}

impl PyWebSocket {
    fn post(&self, command: Command) {
        self.commands.post((self.id, command));
    }

    fn answer(&self) -> PyResult<()> {
        if self.answered.swap(true, Ordering::AcqRel) {
            return Err(PyRuntimeError::new_err(
                "the WebSocket handshake was already answered",
            ));
        }
        Ok(())
    }

    fn refuse(&self, answer: Answer) {
        self.closed.store(true, Ordering::Release);
        self.post(Command::Reject(answer));
    }
}

#[pymethods]
impl PyWebSocket {
    /// The ASGI `websocket` scope: `base` plus the handshake's keys (as for HTTP),
    /// scheme `ws` or `wss`, and `subprotocols` in the client's order.
    fn asgi_scope<'py>(
        &self,
        py: Python<'py>,
        base: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let scope = crate::asgi_scope(py, &self.job, &self.site, base)?;
        let secure = crate::client_info(&self.job, &self.site).scheme == "https";
        scope.set_item(intern!(py, "type"), "websocket")?;
        scope.set_item(intern!(py, "scheme"), if secure { "wss" } else { "ws" })?;
        scope.set_item(
            intern!(py, "subprotocols"),
            PyList::new(py, &self.protocols)?,
        )?;
        Ok(scope)
    }

    /// Answers 101 with `subprotocol` (announced only if the client offered it) and
    /// `headers` (`(name, value)`, bytes or Latin-1 text; those the handshake owns are
    /// dropped).
    #[pyo3(signature = (subprotocol=None, headers=None))]
    fn accept(
        &self,
        subprotocol: Option<String>,
        headers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let headers = match headers {
            Some(headers) => header_pairs(headers)?,
            None => Vec::new(),
        };
        self.answer()?;
        self.post(Command::Accept {
            protocol: subprotocol,
            headers,
        });
        Ok(())
    }

    /// Refuses the handshake with `status` (ASGI's `websocket.close` before accept: 403).
    #[pyo3(signature = (status=403))]
    fn reject(&self, status: u16) -> PyResult<()> {
        let status = StatusCode::from_u16(status)
            .filter(|s| s.as_u16() >= 400)
            .ok_or_else(|| {
                PyValueError::new_err(format!("a refusal needs a 4xx or 5xx status, not {status}"))
            })?;
        self.answer()?;
        self.refuse(Answer::text(status, REFUSED));
        Ok(())
    }

    /// Refuses the handshake with the app's own HTTP response (ASGI's
    /// `websocket.http.response` extension, the denial response): `status` (not 1xx),
    /// `headers` as for HTTP responses (framing headers are the server's) and `body`.
    fn deny(
        &self,
        status: u16,
        headers: &Bound<'_, PyAny>,
        body: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let answer = build_response(status, header_pairs(headers)?, body_bytes(body)?)?;
        self.answer()?;
        self.refuse(answer);
        Ok(())
    }

    /// Sends `data`: `str` as a text message, bytes-like as binary. False when the
    /// app is now [`SEND_WINDOW`] ahead of the connection: wait for room (event 4)
    /// while `over_window()` before sending more.
    fn send(&self, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        if !self.answered.load(Ordering::Acquire) || self.closed.load(Ordering::Acquire) {
            return Err(PyRuntimeError::new_err("the WebSocket is not open"));
        }
        let message = match data.cast::<PyString>() {
            Ok(text) => Message::Text(text.to_str()?.to_owned()),
            Err(_) => Message::Binary(body_bytes(data)?),
        };
        let n = message.len();
        let before = self.link.unsent.fetch_add(n, Ordering::AcqRel);
        self.post(Command::Send(message));
        Ok(before + n < SEND_WINDOW)
    }

    /// Whether the app's sent messages are still [`SEND_WINDOW`] or more ahead.
    fn over_window(&self) -> bool {
        self.link.unsent.load(Ordering::Acquire) >= SEND_WINDOW
    }

    /// The app has received messages of size `n` (what `take_websocket` gave).
    fn consumed(&self, n: usize) {
        if self.link.received(n) {
            self.post(Command::Resume);
        }
    }

    /// Starts the closing handshake with `code` (one valid on the wire: 1000-1003,
    /// 1007-1014, 3000-4999) and `reason` (cut to 123 bytes).
    #[pyo3(signature = (code=1000, reason=String::new()))]
    fn close(&self, code: u16, reason: String) -> PyResult<()> {
        let code = CloseCode(code);
        if !code.is_valid_on_wire() {
            return Err(PyValueError::new_err(format!(
                "{} is not a close code to send",
                code.0
            )));
        }
        if !self.answered.load(Ordering::Acquire) {
            return Err(PyRuntimeError::new_err("close before accept: use reject"));
        }
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.post(Command::Close(code, reason));
        }
        Ok(())
    }

    /// The app is done (`failed`: it raised). An unanswered handshake is refused
    /// (403, or 500 after a failure), an open connection closed (1000, or 1011).
    #[pyo3(signature = (failed=false))]
    fn finish(&self, failed: bool) {
        if !self.answered.swap(true, Ordering::AcqRel) {
            let status = if failed {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::from_u16(403).expect("a valid status")
            };
            self.refuse(Answer::text(status, REFUSED));
        } else if !self.closed.swap(true, Ordering::AcqRel) {
            let code = if failed {
                CloseCode::INTERNAL
            } else {
                CloseCode::NORMAL
            };
            self.post(Command::Close(code, String::new()));
        }
    }
}

impl Drop for PyWebSocket {
    fn drop(&mut self) {
        self.finish(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_has_room_under_both_the_byte_window_and_the_message_count() {
        let link = Link::new(2);
        assert!(link.has_room());
        link.delivered(10);
        link.delivered(10);
        assert!(!link.has_room(), "two messages: the count is full");
        assert!(link.received(unread_cost(10)), "back under the count");
        assert!(link.has_room());
        assert!(!link.received(unread_cost(10)), "already under both");
        let bytes_only = Link::new(usize::MAX);
        bytes_only.delivered(RECV_WINDOW);
        assert!(!bytes_only.has_room(), "the byte window is full");
        assert!(bytes_only.received(unread_cost(RECV_WINDOW)));
        assert!(bytes_only.has_room());
    }

    #[test]
    fn release_reports_crossing_below_the_window_once() {
        let count = AtomicUsize::new(50);
        assert!(!release(&count, 20, 80), "never at the window");
        count.fetch_add(60, Ordering::AcqRel); // 90
        assert!(!release(&count, 5, 80), "still at 85");
        assert!(release(&count, 10, 80), "85 -> 75 crosses");
        assert!(!release(&count, 10, 80), "already below");
    }
}
