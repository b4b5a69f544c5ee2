//! The per-connection loop: the only module that touches a `TcpStream`.
//!
//! Each turn: decode every complete request in the read buffer (pipelining), dispatch
//! each in order, encode every response into one write buffer, and write it with one
//! call; then read again. Asynchronous handlers of one batch run concurrently, and
//! their responses still leave in request order.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::Shutdown;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::handler::Reply;
use crate::http::response::Framing;
use crate::http::{Decoder, Event, Method, ParseError, Response, StatusCode, Version};
use crate::server::Shard;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
/// How long, and how many bytes, a closing connection drains its client's input.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;

/// Who ended the connection.
enum Closed {
    ByPeer,
    ByServer,
}

/// A response in flight, with how to frame it.
struct Slot {
    reply: Reply,
    framing: Framing,
}

/// Serves one accepted connection until it closes.
pub(crate) async fn serve(mut stream: TcpStream, shard: Rc<Shard>) {
    shard.stats.connection_opened();
    let mut conn = Connection {
        read: shard.pool.take(),
        write: shard.pool.take(),
        decoder: Decoder::new(shard.limits, shard.id),
        inflight: VecDeque::new(),
    };
    // I/O errors (resets, broken pipes) just end the connection.
    if let Ok(Closed::ByServer) = conn.run(&mut stream, &shard).await {
        linger(&mut stream).await;
    }
    shard.pool.give(conn.read);
    shard.pool.give(conn.write);
    shard.stats.connection_closed();
}

struct Connection {
    read: BytesMut,
    write: BytesMut,
    decoder: Decoder,
    inflight: VecDeque<Slot>,
}

/// What a batch of decoding asks of the connection.
enum Next {
    /// Write, then read more.
    Read,
    /// Write the `100 Continue` (after earlier responses), then read the body.
    Continue,
    /// Write, then close.
    Close,
}

impl Connection {
    async fn run(&mut self, stream: &mut TcpStream, shard: &Shard) -> io::Result<Closed> {
        loop {
            let next = self.decode_batch(shard);
            let mut close = self.finish_responses(shard).await;
            if matches!(next, Next::Continue) && !close {
                self.write.extend_from_slice(CONTINUE);
                shard.stats.response(100);
            }
            close |= matches!(next, Next::Close);
            if !self.write.is_empty() {
                stream.write_all(&self.write).await?;
                shard.stats.wrote(self.write.len());
                self.write.clear();
                if shard.pool.oversized(&self.write) {
                    self.write = shard.pool.take();
                }
            }
            if close {
                return Ok(Closed::ByServer);
            }
            if self.fill(stream, shard).await? == 0 {
                return Ok(Closed::ByPeer);
            }
        }
    }

    /// Decodes and dispatches every complete request in the read buffer.
    fn decode_batch(&mut self, shard: &Shard) -> Next {
        loop {
            match self.decoder.decode(&mut self.read) {
                Ok(Event::Request(request)) => {
                    shard.stats.request();
                    let framing = Framing {
                        head_only: request.method() == Method::Head,
                        keep_alive: request.keep_alive(),
                        http10: request.version() == Version::Http10,
                    };
                    let reply =
                        match catch_unwind(AssertUnwindSafe(|| shard.router.dispatch(request))) {
                            Ok(reply) => reply,
                            Err(_) => panicked(shard),
                        };
                    self.inflight.push_back(Slot { reply, framing });
                    if !framing.keep_alive {
                        return Next::Close;
                    }
                }
                Ok(Event::Continue) => return Next::Continue,
                Ok(Event::NeedMore) => return Next::Read,
                Err(error) => {
                    shard.stats.parse_error();
                    self.inflight.push_back(Slot {
                        reply: Reply::Ready(error_response(error)),
                        framing: Framing {
                            head_only: false,
                            keep_alive: false,
                            http10: false,
                        },
                    });
                    return Next::Close;
                }
            }
        }
    }

    /// Drives pending handlers and encodes responses in request order. Returns whether
    /// a response closes the connection (later ones are then dropped unsent).
    async fn finish_responses(&mut self, shard: &Shard) -> bool {
        let inflight = &mut self.inflight;
        let write = &mut self.write;
        let date = shard.date.get();
        poll_fn(|cx| {
            for slot in inflight.iter_mut() {
                if let Reply::Pending(future) = &mut slot.reply {
                    match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                        Ok(Poll::Ready(response)) => slot.reply = Reply::Ready(response),
                        Ok(Poll::Pending) => {}
                        Err(_) => slot.reply = panicked(shard),
                    }
                }
            }
            while let Some(Slot {
                reply: Reply::Ready(response),
                framing,
            }) = inflight.front()
            {
                response.encode(*framing, &date, write);
                shard.stats.response(response.status().as_u16());
                let closes = !framing.keep_alive || response.closes();
                inflight.pop_front();
                if closes {
                    inflight.clear();
                    return Poll::Ready(true);
                }
            }
            if inflight.is_empty() {
                Poll::Ready(false)
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Reads what the socket has into the read buffer, growing it when a request needs
    /// more room (the decoder's limits bound the growth). Returns the bytes read.
    async fn fill(&mut self, stream: &mut TcpStream, shard: &Shard) -> io::Result<usize> {
        let initial = shard.pool.buffer_size();
        if self.read.is_empty() && shard.pool.oversized(&self.read) {
            self.read = shard.pool.take();
        }
        if self.read.capacity() - self.read.len() < initial / 2 {
            self.read.reserve(initial.max(self.read.len()));
        }
        let filled = self.read.len();
        let capacity = self.read.capacity();
        self.read.resize(capacity, 0);
        let result = stream.read(&mut self.read[filled..]).await;
        let n = *result.as_ref().unwrap_or(&0);
        self.read.truncate(filled + n);
        shard.stats.bytes_in(n);
        result
    }
}

/// Half-closes, then reads and drops what the client still sends, briefly: closing a
/// socket with unread input makes the kernel answer with a reset, which can destroy the
/// response before the client has read it.
async fn linger(stream: &mut TcpStream) {
    if stream.shutdown(Shutdown::Write).await.is_err() {
        return;
    }
    if stream.set_read_timeout(Some(LINGER_TIME)).is_err() {
        return;
    }
    let mut scratch = [0u8; 2048];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match stream.read(&mut scratch).await {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
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

fn error_response(error: ParseError) -> Response {
    Response::new(error.status()).with_body("text/plain", format!("{}\n", error.reason()))
}
