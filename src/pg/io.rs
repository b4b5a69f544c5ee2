//! The database socket as tokio's `AsyncRead`/`AsyncWrite`, which tokio-postgres needs,
//! over glommio's streams (futures-io traits).
//!
//! `tokio_util::compat` would do the same, but it zeroes the whole unfilled part of the
//! read buffer on every read (tokio-postgres hands it a fresh, uninitialized 8 KiB
//! chunk each time). This adapter reads into its own scratch buffer, zeroed once, and
//! copies only the bytes that arrived: a response batch is usually far smaller than the
//! buffer, and no `unsafe` is needed.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_lite::{AsyncRead as _, AsyncWrite as _};
use glommio::net::{TcpStream, UnixStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read at most per call: the size tokio-postgres reserves for its read buffer.
const SCRATCH: usize = 8 * 1024;

/// A TCP or Unix-domain connection to the database.
enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A glommio TCP or Unix stream with tokio's `AsyncRead`/`AsyncWrite`, for
/// `tokio_postgres::Config::connect_raw`. [`Pg`](super::Pg) uses it for its connections;
/// it is public for code that drives tokio-postgres itself on a shard.
pub struct PgStream {
    socket: Socket,
    scratch: Box<[u8]>,
}

impl PgStream {
    fn new(socket: Socket) -> PgStream {
        PgStream {
            socket,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
        }
    }

    /// Wraps a TCP stream (set TCP_NODELAY on it first: queries are small).
    pub fn tcp(stream: TcpStream) -> PgStream {
        PgStream::new(Socket::Tcp(stream))
    }

    /// Wraps a Unix-domain stream.
    pub fn unix(stream: UnixStream) -> PgStream {
        PgStream::new(Socket::Unix(stream))
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
        let n = ready!(match &mut this.socket {
            Socket::Tcp(s) => Pin::new(s).poll_read(cx, scratch),
            Socket::Unix(s) => Pin::new(s).poll_read(cx, scratch),
        })?;
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
        match &mut self.get_mut().socket {
            Socket::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().socket {
            Socket::Tcp(s) => Pin::new(s).poll_flush(cx),
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().socket {
            Socket::Tcp(s) => Pin::new(s).poll_close(cx),
            Socket::Unix(s) => Pin::new(s).poll_close(cx),
        }
    }
}
