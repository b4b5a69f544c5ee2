//! WebSocket (RFC 6455): routes that upgrade, and the connection a handler drives.
//!
//! ```no_run
//! use haywire::ws::{Message, WebSocket};
//! use haywire::{Request, Router};
//!
//! fn routes(router: &mut Router) {
//!     // Every valid handshake is accepted; the handler then owns the connection.
//!     router.websocket("/ws", |_req: Request, ws: WebSocket| async move {
//!         while let Some(message) = ws.recv().await {
//!             match message {
//!                 Message::Text(_) | Message::Binary(_) => {
//!                     if ws.send(message).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!                 _ => {}
//!             }
//!         }
//!     });
//! }
//! ```
//!
//! # How it runs
//! The connection loop decides the upgrade: a request whose path is a WebSocket route
//! is checked as a handshake (400, 405 or 426 if it is not a valid one) once every
//! request before it is answered; then the connection's task becomes the WebSocket's,
//! on the same shard, with the socket (plain or TLS) and any bytes already read. Frames
//! are decoded by a sans-I/O codec (`frame.rs`, `message.rs`; fuzzed by
//! `tests/fuzz/fuzz_targets/ws_frame.rs`).
//!
//! The server answers pings, echoes the client's close, enforces the protocol (a
//! violation closes with 1002, text that is not UTF-8 with 1007, a frame or message
//! over `websocket.max_frame_size` / `max_message_size` with 1009), and closes with
//! 1001 after `websocket.idle_timeout` without traffic or at a graceful shutdown. When
//! the handler returns, the connection is closed with 1000; when it panics, with 1011.
//! A client silent for `websocket.ping_interval` is pinged (a live one answers, and the
//! connection stays open however long it has nothing to say), and closed with 1011
//! when it then sends nothing for `websocket.ping_timeout`. A client's permessage-deflate
//! offer is accepted (unless `websocket.compression` is off), each message compressed
//! on its own both ways (`deflate.rs`): handlers see and send plain messages.
//!
//! Backpressure both ways: [`WebSocket::send`] waits while more than
//! `websocket.write_buffer` bytes are unwritten, and while received messages wait
//! unread in [`WebSocket::recv`] for which 64 KiB were read (frames and control frames
//! among them counted, and a little per message), the socket is not read.
//!
//! # Driving a connection from elsewhere (Python's ASGI, a queue)
//! Everything here is a shard-local handle (`Rc`, `!Send`): a driver on another thread
//! talks to a task on the shard through a channel, and that task calls these methods.
//! Register the route with [`Router::websocket_upgrade`](crate::Router::websocket_upgrade)
//! (or, for an app that decides on any path, [`Router::websocket_fallback`](crate::Router::websocket_fallback)),
//! whose handler gets the request and an [`Upgrade`] before anything is answered:
//! 1. **connect**: send the request (path, headers, [`Upgrade::protocols`]) to the
//!    driver, and await its answer; the client waits meanwhile.
//! 2. **accept or reject**: [`Upgrade::accept`]`(Some(protocol))` writes the 101 (with
//!    the subprotocol, if the client offered it; [`Upgrade::accept_with_headers`] adds
//!    headers) and returns the [`WebSocket`];
//!    [`Upgrade::reject`]`(response)` answers with an HTTP response instead (ASGI's
//!    `websocket.close` before accept is a 403). Dropping the `Upgrade` answers 403.
//! 3. **receive**: loop on [`WebSocket::recv`], forwarding each [`Message`] to the
//!    driver; `Message::Close(frame)` carries the client's code (ASGI's
//!    `websocket.disconnect`), and `None` ends the loop (the connection is gone; report
//!    code 1006 if no close was seen).
//! 4. **send**: in the same task, concurrently with receiving (the methods take
//!    `&self`; race the two futures with `futures_lite::future::or`, or clone the
//!    handle into a second local task), call [`WebSocket::send`] for each message from
//!    the driver; awaiting it gives the driver backpressure. An `Err` means the
//!    connection is closed.
//! 5. **close**: [`WebSocket::close`]`(code, reason)`, then keep receiving until
//!    `None` (the client's close arrives, or [`WebSocket::recv`] ends after a short
//!    wait). Returning from the handler closes with 1000.
//!
//! # Rooms across shards
//! A room is shard-local state (a list of [`WebSocket`] clones of its members on this
//! shard). A message for the whole room crosses to each other shard once, through the
//! control mesh ([`ShardCtx::broadcast`](crate::ShardCtx::broadcast)), and each shard
//! fans it out to its own members with [`WebSocket::try_send_prepared`] (a member too
//! slow to keep up is dropped rather than allowed to hold up the room): a [`Prepared`]
//! message is encoded once, and compressed once for the members with
//! permessage-deflate, however many members it reaches. See `examples/websocket.rs`.

mod deflate;
pub(crate) mod driver;
pub(crate) mod frame;
mod handshake;
pub(crate) mod message;
mod socket;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

pub use frame::CloseCode;
pub use message::{CloseFrame, Message};
pub use socket::{Prepared, SendError, Upgrade, WebSocket};

pub(crate) use handshake::{has_token, Handshake};

use crate::http::{Request, Response};

/// A WebSocket route's handler: given the upgrade request and its [`Upgrade`], it
/// answers the handshake and then runs the connection. `Fn(Request, Upgrade) -> impl
/// Future<Output = ()>` closures are handlers.
pub trait UpgradeHandler: 'static {
    /// Runs one connection.
    fn call(&self, request: Request, upgrade: Upgrade) -> Pin<Box<dyn Future<Output = ()>>>;
}

impl<F, Fut> UpgradeHandler for F
where
    F: Fn(Request, Upgrade) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    fn call(&self, request: Request, upgrade: Upgrade) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(self(request, upgrade))
    }
}

/// Accepts every handshake (no subprotocol), then runs the inner handler.
pub(crate) struct AcceptAll<F>(pub(crate) F);

impl<F, Fut> UpgradeHandler for AcceptAll<F>
where
    F: Fn(Request, WebSocket) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    fn call(&self, request: Request, upgrade: Upgrade) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin((self.0)(request, upgrade.accept(None)))
    }
}

/// An upgrade request whose handshake checked out, on its way from the connection
/// loop to [`serve`].
pub(crate) struct Pending {
    pub(crate) request: Request,
    pub(crate) handler: Rc<dyn UpgradeHandler>,
    pub(crate) handshake: Handshake,
}

impl Pending {
    /// Checks `request`'s handshake: a `Pending` to hand over, or the response that
    /// refuses it.
    pub(crate) fn new(
        request: Request,
        handler: Rc<dyn UpgradeHandler>,
    ) -> Result<Pending, Box<Response>> {
        let handshake = Handshake::check(&request)?;
        Ok(Pending {
            request,
            handler,
            handshake,
        })
    }
}

/// The `[websocket]` settings a connection runs with: defined with the other live
/// settings, so that the configuration does not depend on this module.
pub(crate) use crate::config::WebSocketSettings as Settings;

impl Settings {
    pub(crate) fn limits(&self) -> message::Limits {
        message::Limits {
            max_frame: self.max_frame_size,
            max_message: self.max_message_size,
        }
    }
}
