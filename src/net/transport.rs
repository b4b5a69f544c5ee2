//! What a connection reads and writes through: the plain [`Socket`], or TLS over it
//! ([`super::TlsStream`]). The connection loop (`conn.rs`) is generic over it, so the
//! plaintext path is compiled on its own with no TLS branch in it.

use std::io;
use std::task::{Context, Poll};

use super::Socket;
use crate::http::TlsSession;

/// What a connection reads and writes through: the plain socket or TLS over it.
pub(crate) trait Transport {
    /// Whether a write may leave bytes queued above the socket, so that a batch is
    /// only out after [`Transport::poll_flush`]. `false` lets the plain path skip it.
    const BUFFERED: bool;

    /// The socket, when bytes written to it reach the client as they are (no TLS
    /// above it): file bodies then go to it by the kernel (`sendfile`).
    fn plain(&self) -> Option<&Socket>;

    /// Reads plaintext into `buf`; `Ok(0)` is the end of input.
    fn poll_read(&self, cx: &Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Takes what it can of `buf`.
    fn poll_write(&self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;

    /// Takes what it can of `bufs`, in order, as one write (a chunk's size line, the
    /// piece from where it is, its CRLF: one `sendmsg`, not three).
    fn poll_write_vectored(
        &self,
        cx: &Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;

    /// Writes out whatever earlier writes left queued.
    fn poll_flush(&self, cx: &Context<'_>) -> Poll<io::Result<()>>;

    /// Reads what is waiting right now, `None` when nothing is (see [`Socket::read_now`]).
    fn read_now(&self, buf: &mut [u8]) -> io::Result<Option<usize>>;

    /// Ends the output (after a `close_notify` for TLS).
    fn shutdown_write(&self) -> io::Result<()>;

    /// TLS: sends a `close_notify` if the socket takes it now; the caller then closes.
    fn close_notify(&self);

    /// Whether the TLS handshake is still under way: the connection is then held to the
    /// header timeout rather than the keep-alive one.
    fn handshaking(&self) -> bool;

    /// The TLS connection's parameters and client certificate, once the handshake
    /// has completed; `None` over plaintext.
    fn tls_session(&self) -> Option<TlsSession>;
}

impl Transport for Socket {
    const BUFFERED: bool = false;

    #[inline]
    fn plain(&self) -> Option<&Socket> {
        Some(self)
    }

    #[inline]
    fn poll_read(&self, cx: &Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Socket::poll_read(self, cx, buf)
    }

    #[inline]
    fn poll_write(&self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Socket::poll_write(self, cx, buf)
    }

    #[inline]
    fn poll_write_vectored(
        &self,
        cx: &Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Socket::poll_write_vectored(self, cx, bufs)
    }

    #[inline]
    fn poll_flush(&self, _cx: &Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn read_now(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Socket::read_now(self, buf)
    }

    #[inline]
    fn shutdown_write(&self) -> io::Result<()> {
        Socket::shutdown_write(self)
    }

    #[inline]
    fn close_notify(&self) {}

    #[inline]
    fn handshaking(&self) -> bool {
        false
    }

    fn tls_session(&self) -> Option<TlsSession> {
        None
    }
}
