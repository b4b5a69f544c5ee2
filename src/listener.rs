//! The listening sockets, bound before the shards start, and each shard's share of them.
//!
//! TCP: one SO_REUSEPORT listener per accepting shard, so the kernel spreads
//! connections. A Unix socket (`server.unix`) or an inherited listener
//! (`Server::listener`) is one socket: a path cannot be bound twice, and Unix sockets
//! have no SO_REUSEPORT balancing. Each accepting shard then gets its own duplicate of
//! the descriptor, registered in its own epoll set. Every such set reports each new
//! connection and every shard tries `accept`; the first to get there serves it, the
//! others find nothing (one `EAGAIN` each). A busy shard comes late, so an idle one
//! tends to win. (EPOLLEXCLUSIVE would not spare the others: it limits the waiters
//! woken inside `epoll_wait`, and shards wait on their epoll descriptor through
//! io_uring instead.)

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::config::ServerConfig;
use crate::net;

/// The bound listeners.
pub(crate) struct Listeners {
    /// One per accepting shard, in shard order.
    pub(crate) sockets: Vec<Socket>,
    /// The TCP address clients connect to; `None` for a Unix socket.
    pub(crate) addr: Option<SocketAddr>,
    /// The path of a Unix socket (`None` for TCP, or an unnamed Unix socket).
    pub(crate) unix_path: Option<PathBuf>,
    /// The listener is a Unix socket: no TCP options on it or its connections.
    pub(crate) unix: bool,
    /// The socket file this server bound (`server.unix`), removed once it has stopped.
    pub(crate) file: Option<UnixSocketFile>,
}

impl Listeners {
    /// Binds `count` listeners as `options` asks: TCP on `address`:`port`, or the Unix
    /// socket at `unix`.
    pub(crate) fn bind(options: &ServerConfig, count: usize) -> io::Result<Listeners> {
        if options.unix.is_empty() {
            let ip: IpAddr = options.address.parse().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "key `server.address`: not an IP address",
                )
            })?;
            let sockets = bind_tcp(SocketAddr::new(ip, options.port), count, options)?;
            let addr = sockets[0]
                .local_addr()?
                .as_socket()
                .ok_or_else(|| io::Error::other("listener has no IP address"))?;
            return Ok(Listeners {
                sockets,
                addr: Some(addr),
                unix_path: None,
                unix: false,
                file: None,
            });
        }
        let (fd, file) =
            UnixSocketFile::bind(Path::new(&options.unix), options.unix_mode, options.backlog)?;
        match Listeners::shared(fd.into(), count) {
            Ok(listeners) => Ok(Listeners {
                file: Some(file),
                ..listeners
            }),
            Err(e) => {
                file.remove();
                Err(e)
            }
        }
    }

    /// Shares `fd`, a listening socket bound elsewhere (TCP or Unix), among `count`
    /// shards. A TCP one gets the options a bound one has (TCP_NODELAY, which accepted
    /// sockets inherit, and TCP_DEFER_ACCEPT); either becomes non-blocking.
    pub(crate) fn inherited(
        fd: OwnedFd,
        options: &ServerConfig,
        count: usize,
    ) -> io::Result<Listeners> {
        let socket = Socket::from(fd);
        let listening = socket.r#type().is_ok_and(|t| t == Type::STREAM)
            && socket.is_listener().unwrap_or(false);
        if !listening {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the listener given is not a listening stream socket",
            ));
        }
        if !socket.local_addr()?.is_unix() {
            socket.set_nodelay(options.tcp_nodelay)?;
            net::defer_accept(socket.as_fd(), net::DEFER_ACCEPT_SECS)?;
        }
        socket.set_nonblocking(true)?;
        Listeners::shared(socket, count)
    }

    /// `socket` and `count - 1` duplicates of it, one per accepting shard.
    fn shared(socket: Socket, count: usize) -> io::Result<Listeners> {
        let local = socket.local_addr()?;
        let mut sockets = Vec::with_capacity(count);
        for _ in 1..count {
            sockets.push(socket.try_clone()?);
        }
        sockets.insert(0, socket);
        Ok(Listeners {
            sockets,
            addr: local.as_socket(),
            unix_path: local.as_pathname().map(Path::to_path_buf),
            unix: local.is_unix(),
            file: None,
        })
    }
}

/// `count` SO_REUSEPORT listeners on one port (one per shard, or shard 0's alone with
/// `handoff`): the first binds the configured port (0 picks one), the rest the port it
/// got.
fn bind_tcp(addr: SocketAddr, count: usize, options: &ServerConfig) -> io::Result<Vec<Socket>> {
    let first = bind_one(addr, options)?;
    let port = first
        .local_addr()?
        .as_socket()
        .map_or(addr.port(), |a| a.port());
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(bind_one(SocketAddr::new(addr.ip(), port), options)?);
    }
    Ok(sockets)
}

fn bind_one(addr: SocketAddr, options: &ServerConfig) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    // Accepted sockets inherit TCP_NODELAY from the listener: no setsockopt per
    // connection (see `balancer::admit`).
    socket.set_nodelay(options.tcp_nodelay)?;
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")))?;
    socket.listen(listen_backlog(options.backlog))?;
    net::defer_accept(socket.as_fd(), net::DEFER_ACCEPT_SECS)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// The `listen` backlog for the configured `server.backlog`.
fn listen_backlog(backlog: u32) -> i32 {
    backlog.min(i32::MAX as u32) as i32
}

/// The file of a Unix socket this process bound. [`UnixSocketFile::remove`] deletes it
/// at a clean stop, and only while it is still the same file: a server started since
/// may have bound the path anew.
#[derive(Debug)]
pub struct UnixSocketFile {
    path: PathBuf,
    device: u64,
    inode: u64,
}

impl UnixSocketFile {
    /// Binds a listening Unix stream socket at `path` (non-blocking, close-on-exec)
    /// with listen `backlog`, and sets its file's permission bits to `mode` (0: as the
    /// umask makes them). A socket file left by a server that is gone (a connect to it
    /// is refused) is replaced; one that a server still listens on is not, nor is any
    /// other kind of file. Errors name the key `server.unix`.
    pub fn bind(path: &Path, mode: u32, backlog: u32) -> io::Result<(OwnedFd, UnixSocketFile)> {
        let fail = |e: io::Error, what: &str| {
            io::Error::new(
                e.kind(),
                format!("key `server.unix`: {}: {what}: {e}", path.display()),
            )
        };
        clear_stale(path)?;
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        let address = SockAddr::unix(path).map_err(|e| fail(e, "not a socket path"))?;
        socket.bind(&address).map_err(|e| fail(e, "cannot bind"))?;
        let bound = std::fs::symlink_metadata(path).map_err(|e| fail(e, "cannot stat"))?;
        let file = UnixSocketFile {
            path: path.to_path_buf(),
            device: bound.dev(),
            inode: bound.ino(),
        };
        // Before `listen`: no client connects while the bits are still the umask's.
        let ready = (|| {
            if mode != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| fail(e, "cannot set server.unix_mode"))?;
            }
            socket.listen(listen_backlog(backlog))?;
            socket.set_nonblocking(true)
        })();
        match ready {
            Ok(()) => Ok((socket.into(), file)),
            Err(e) => {
                file.remove();
                Err(e)
            }
        }
    }

    /// The socket file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the socket file if it is still the one bound here.
    pub fn remove(&self) {
        let same = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|now| now.dev() == self.device && now.ino() == self.inode);
        if same {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Deletes a socket file at `path` that nothing listens on any more (a server that
/// crashed or was killed leaves it behind, and `bind` would fail on it). A live socket,
/// or any other file, is an error naming the key.
fn clear_stale(path: &Path) -> io::Result<()> {
    let error = |kind: io::ErrorKind, message: String| {
        io::Error::new(
            kind,
            format!("key `server.unix`: {}: {message}", path.display()),
        )
    };
    let found = match std::fs::symlink_metadata(path) {
        Ok(found) => found,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(error(e.kind(), e.to_string())),
    };
    if !found.file_type().is_socket() {
        return Err(error(
            io::ErrorKind::AlreadyExists,
            "exists and is not a socket".into(),
        ));
    }
    // Non-blocking: a live server whose backlog is full answers EAGAIN, not a hang.
    let probe = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    probe.set_nonblocking(true)?;
    match probe.connect(&SockAddr::unix(path)?) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(error(
                    e.kind(),
                    format!("cannot remove the stale socket: {e}"),
                )),
                _ => Ok(()),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Ok(()) => Err(error(
            io::ErrorKind::AddrInUse,
            "a server is listening on it".into(),
        )),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(error(
            io::ErrorKind::AddrInUse,
            "a server is listening on it".into(),
        )),
        Err(e) => Err(error(
            e.kind(),
            format!("cannot tell whether a server listens on it: {e}"),
        )),
    }
}
