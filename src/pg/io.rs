//! The database socket on the shard's own epoll set (as client connections are), and
//! the buffer its input is read into.
//!
//! glommio's streams would arm a one-shot io_uring poll for every idle period of the
//! socket (about 4.6 `io_uring_enter` calls per sleep and wake across two rings); here
//! the socket is registered once, edge-triggered, and its readiness arrives with the
//! shard's other sockets from one `epoll_wait`.

use std::future::poll_fn;
use std::io;
use std::net::ToSocketAddrs;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use socket2::{Domain, SockAddr, Type};

use crate::net::{Poller, Socket};

/// Bytes read at most per call.
const READ: usize = 8 * 1024;

/// A connected TCP or Unix-domain socket to the database, registered with the shard's
/// poller.
pub(crate) struct PgStream {
    socket: Socket,
}

impl PgStream {
    /// Connects over TCP to `addr` (`host:port`) with TCP_NODELAY (queries are small and
    /// latency-bound), without blocking the shard while the handshake is in flight.
    pub(crate) async fn tcp(addr: &str, poller: &Rc<Poller>) -> io::Result<PgStream> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for target in addr.to_socket_addrs()? {
            let socket = socket2::Socket::new(
                Domain::for_address(target),
                Type::STREAM.nonblocking().cloexec(),
                None,
            )?;
            socket.set_nodelay(true)?;
            match PgStream::connect(socket, &target.into(), poller).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Connects to the Unix-domain socket at `path`.
    pub(crate) async fn unix(path: &Path, poller: &Rc<Poller>) -> io::Result<PgStream> {
        let socket =
            socket2::Socket::new(Domain::UNIX, Type::STREAM.nonblocking().cloexec(), None)?;
        PgStream::connect(socket, &SockAddr::unix(path)?, poller).await
    }

    async fn connect(
        socket: socket2::Socket,
        addr: &SockAddr,
        poller: &Rc<Poller>,
    ) -> io::Result<PgStream> {
        let pending = match socket.connect(addr) {
            Ok(()) => false,
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {
                true
            }
            Err(e) => return Err(e),
        };
        let socket = Socket::register(OwnedFd::from(socket), poller)?;
        if pending {
            // A zero-length send on a connecting TCP socket says `EAGAIN` (and waits for
            // the socket's next event), `Ok(0)` once it is connected, and the connect's
            // error (refused, unreachable) when it failed.
            poll_fn(|cx| socket.poll_write(cx, &[])).await?;
        }
        Ok(PgStream { socket })
    }
}

impl PgStream {
    /// Reads what the socket has into `buf`, counted in `database.reads` when it found
    /// input; `Ok(0)` is the end of input.
    pub(crate) fn poll_read(&self, cx: &Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let n = ready!(self.socket.poll_read(cx, buf))?;
        if n > 0 {
            self.socket.stats().db_read();
        }
        Poll::Ready(Ok(n))
    }

    /// Writes what the socket takes of `buf`, counted in `database.writes`.
    pub(crate) fn poll_write(&self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = ready!(self.socket.poll_write(cx, buf))?;
        self.socket.stats().db_wrote();
        Poll::Ready(Ok(written))
    }

    /// Writes all of `buf` (the login and the statements to prepare).
    pub(crate) async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = poll_fn(|cx| self.poll_write(cx, buf)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Reads more input into `into`; the end of input is an error.
    pub(crate) async fn read_more(&self, into: &mut ReadBuf) -> io::Result<()> {
        let n = poll_fn(|cx| self.poll_read(cx, into.spare())).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        into.filled(n);
        Ok(())
    }
}

/// Input from the server: whole messages are taken from the front, reads fill the back.
///
/// A data row leaves as a [`Bytes`] slice of this buffer (no copy, no allocation);
/// the buffer's storage is reused once the rows cut from it are dropped. The bytes past
/// the input are kept zeroed (initialized once, not before every read), so a read goes
/// straight into them without `unsafe`.
pub(crate) struct ReadBuf {
    /// `[..filled]` is input not yet taken, the rest is room for the next read.
    buf: BytesMut,
    filled: usize,
}

impl ReadBuf {
    /// An empty buffer with room for a few reads.
    pub(crate) fn new() -> ReadBuf {
        ReadBuf {
            buf: BytesMut::with_capacity(4 * READ),
            filled: 0,
        }
    }

    /// Room for one read of up to [`READ`] bytes after the input.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        let want = self.filled + READ;
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        &mut self.buf[self.filled..]
    }

    /// A read put `n` bytes into [`ReadBuf::spare`].
    pub(crate) fn filled(&mut self, n: usize) {
        self.filled += n;
    }

    /// The input not yet taken.
    pub(crate) fn input(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// Drops the first `n` bytes of input.
    pub(crate) fn skip(&mut self, n: usize) {
        self.buf.advance(n);
        self.filled -= n;
    }

    /// Takes the first `n` bytes of input, sharing the buffer's storage.
    pub(crate) fn take(&mut self, n: usize) -> Bytes {
        self.filled -= n;
        self.buf.split_to(n).freeze()
    }
}
