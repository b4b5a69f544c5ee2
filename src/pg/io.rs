//! The database socket on the shard's own epoll set (as client connections are), with
//! tokio's `AsyncRead`/`AsyncWrite`, which tokio-postgres needs.
//!
//! glommio's streams would arm a one-shot io_uring poll for every idle period of the
//! socket (about 4.6 `io_uring_enter` calls per sleep and wake across two rings); here
//! the socket is registered once, edge-triggered, and its readiness arrives with the
//! shard's other sockets from one `epoll_wait`.
//!
//! Reads go through a scratch buffer zeroed once: tokio-postgres hands each read a
//! fresh, uninitialized 8 KiB chunk, and filling that safely would zero it every time.

use std::future::poll_fn;
use std::io;
use std::net::ToSocketAddrs;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

use socket2::{Domain, SockAddr, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::net::{Poller, Socket};

/// Bytes read at most per call: the size tokio-postgres reserves for its read buffer.
const SCRATCH: usize = 8 * 1024;

/// A connected TCP or Unix-domain socket to the database, registered with the shard's
/// poller.
pub(crate) struct PgStream {
    socket: Socket,
    scratch: Box<[u8]>,
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
        Ok(PgStream {
            socket,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
        })
    }
}

impl AsyncRead for PgStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let want = buf.remaining().min(this.scratch.len());
        let scratch = &mut this.scratch[..want];
        let n = ready!(this.socket.poll_read(cx, scratch))?;
        this.socket.stats().db_read();
        buf.put_slice(&scratch[..n]);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for PgStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(self.socket.poll_write(cx, buf))?;
        self.socket.stats().db_wrote();
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the socket: nothing is held back here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.socket.shutdown_write())
    }
}
