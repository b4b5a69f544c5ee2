//! A non-blocking socket registered with its shard's poller.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::task::{Context, Poll};

use rustix::io::Errno;
use rustix::net::{self, RecvFlags, SendFlags, SocketFlags};

use super::poller::{Poller, Token};

/// A listening or connected socket owned by one shard.
pub(crate) struct Socket {
    fd: OwnedFd,
    token: Token,
    poller: Rc<Poller>,
}

impl Socket {
    /// Registers `fd`, which must be non-blocking, with `poller`.
    pub(crate) fn register(fd: OwnedFd, poller: &Rc<Poller>) -> io::Result<Self> {
        let token = poller.register(fd.as_fd())?;
        Ok(Socket {
            fd,
            token,
            poller: poller.clone(),
        })
    }

    /// The counters of the shard that owns the socket.
    pub(crate) fn stats(&self) -> &crate::stats::ShardStats {
        &self.poller.stats
    }

    /// Reads what the socket has into `buf`; `Ok(0)` is the end of input.
    pub(crate) fn poll_read(&self, cx: &Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if !self.poller.readable(self.token) {
            self.poller.wake_on_event(self.token, cx.waker());
            return Poll::Pending;
        }
        let len = buf.len();
        self.poller.stats.read_call();
        let read = self.poll_io(cx, |fd| {
            net::recv(fd, &mut *buf, RecvFlags::empty()).map(|(n, _)| n)
        });
        match read {
            // A short read emptied the socket's queue; new input brings a new event.
            Poll::Ready(Ok(n)) if n > 0 && n < len => self.poller.drained(self.token),
            Poll::Pending => self.poller.drained(self.token),
            _ => {}
        }
        read
    }

    /// Reads what the socket holds right now, whatever readiness has been harvested:
    /// `None` when nothing is waiting. For decisions that must not miss input that
    /// arrived since the last event (a graceful stop closing idle connections).
    pub(crate) fn read_now(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.poller.stats.read_call();
        loop {
            return match net::recv(&self.fd, &mut *buf, RecvFlags::empty()) {
                Ok((n, _)) => Ok(Some(n)),
                Err(Errno::AGAIN) => Ok(None),
                Err(Errno::INTR) => continue,
                Err(error) => Err(error.into()),
            };
        }
    }

    /// Writes what the socket takes of `buf`.
    pub(crate) fn poll_write(&self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // NOSIGNAL: a peer that left is an error on this connection, not a SIGPIPE.
        self.poll_io(cx, |fd| net::send(fd, buf, SendFlags::NOSIGNAL))
    }

    /// Writes what the socket takes of `bufs`, in order, with one `sendmsg` (TLS
    /// records queued by rustls go out together).
    pub(crate) fn poll_write_vectored(
        &self,
        cx: &Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, |fd| {
            let mut control = net::SendAncillaryBuffer::default();
            net::sendmsg(fd, bufs, &mut control, SendFlags::NOSIGNAL)
        })
    }

    /// Sends what the socket takes of `count` bytes of `file` from `*offset`, by the
    /// kernel (`sendfile`: from the page cache, not through user memory), moving
    /// `*offset` past them. `Ok(0)`: the file ends before `*offset`.
    pub(crate) fn poll_sendfile(
        &self,
        cx: &Context<'_>,
        file: BorrowedFd<'_>,
        offset: &mut u64,
        count: usize,
    ) -> Poll<io::Result<usize>> {
        // sendfile has no MSG_NOSIGNAL: a peer that left raises SIGPIPE, which Rust
        // programs and Python ignore from their start, so it is EPIPE here.
        self.poll_io(cx, |fd| {
            rustix::fs::sendfile(fd, file, Some(&mut *offset), count)
        })
    }

    /// Accepts a connection, non-blocking from the start (no `fcntl` after `accept`),
    /// with the peer's address as `accept4` returns it (no `getpeername` later): `None`
    /// on a Unix socket, whose peers have no IP address.
    pub(crate) async fn accept(&self) -> io::Result<(OwnedFd, Option<SocketAddr>)> {
        poll_fn(|cx| {
            self.poll_io(cx, |fd| {
                let (fd, peer) =
                    net::acceptfrom_with(fd, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)?;
                Ok((fd, peer.and_then(|peer| SocketAddr::try_from(peer).ok())))
            })
        })
        .await
    }

    /// Closes a listener. A shared one (a duplicate of a Unix or inherited socket) stays
    /// open in other shards, and so in this shard's epoll set, which only drops a socket
    /// once every descriptor of it is closed: it leaves the set first, so its further
    /// connections wake nothing here.
    pub(crate) fn close_listener(self) {
        self.poller.deregister(self.fd.as_fd());
    }

    /// Sends a FIN: the peer reads the end of input after what was written.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        Ok(net::shutdown(&self.fd, net::Shutdown::Write)?)
    }

    /// Sets or (`secs` = 0) clears a listener's `TCP_DEFER_ACCEPT` (see [`defer_accept`]).
    pub(crate) fn defer_accept(&self, secs: i32) -> io::Result<()> {
        defer_accept(self.fd.as_fd(), secs)
    }

    /// Sets `TCP_NODELAY`.
    pub(crate) fn set_nodelay(&self, on: bool) -> io::Result<()> {
        Ok(net::sockopt::set_tcp_nodelay(&self.fd, on)?)
    }

    /// Tries `op` now; when the socket is not ready, waits for its next readiness
    /// event. Edge-triggered readiness is safe here because a task only waits after the
    /// socket said `EAGAIN`.
    fn poll_io<T>(
        &self,
        cx: &Context<'_>,
        mut op: impl FnMut(BorrowedFd<'_>) -> rustix::io::Result<T>,
    ) -> Poll<io::Result<T>> {
        loop {
            return match op(self.fd.as_fd()) {
                Ok(value) => Poll::Ready(Ok(value)),
                Err(Errno::AGAIN) => {
                    self.poller.wake_on_event(self.token, cx.waker());
                    Poll::Pending
                }
                Err(Errno::INTR) => continue,
                Err(error) => Poll::Ready(Err(error.into())),
            };
        }
    }
}

/// Seconds a new connection may wait for its first bytes before the listener reports
/// it anyway (Linux rounds up to its SYN-ACK retransmission times).
pub(crate) const DEFER_ACCEPT_SECS: i32 = 1;

/// Sets `TCP_DEFER_ACCEPT` on the listener `fd` (`secs` = 0 clears it): the kernel
/// reports a connection only once its first bytes (the request, a TLS ClientHello) have
/// arrived, so one wake-up accepts it and reads them, where a connection reported at its
/// handshake costs a second wake-up for its data. Measured with `benchmarks/run.sh
/// --scenarios close`: 35 -> 26.5 µs of server CPU per connection (hyper 30 in the same
/// runs). A client that connects and stays silent is still reported, after about `secs`.
/// Until then the connection is invisible to `accept`: a graceful stop clears the option
/// and keeps accepting for a while before the listener closes (`balancer::listen`).
pub(crate) fn defer_accept(fd: BorrowedFd<'_>, secs: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let secs: libc::c_int = secs;
    // SAFETY: `fd` is an open descriptor borrowed for the call; the option value points
    // at a live `c_int` whose size is passed with it. Neither rustix nor socket2 offers
    // this option.
    let result = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&secs as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // The descriptor closes right after, as the field drops: that leaves the epoll set.
        self.poller.release(self.token);
    }
}
