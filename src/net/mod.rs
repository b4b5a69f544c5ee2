//! Sockets driven by one epoll set per shard, inside glommio.
//!
//! glommio's own streams arm a one-shot io_uring poll for every wait: each request on a
//! keep-alive connection pays a poll arm, a wake-up callback, kernel task-work and a
//! completion. Here a shard registers each connection once, edge-triggered, in its own
//! epoll set; one task harvests the readiness of every connection with one
//! `epoll_wait`, and waits in glommio on the epoll descriptor alone. Reads, writes and
//! accepts are plain non-blocking syscalls, made when a task polls them.

mod poller;
mod socket;
pub(crate) mod tls;
mod tls_suites;
mod transport;

pub(crate) use poller::Poller;
pub(crate) use socket::{defer_accept, Socket, DEFER_ACCEPT_SECS};
pub(crate) use tls::{ShardTls, TlsFileError, TlsKeys, TlsStream};
pub use tls_suites::{cipher_suites, CipherSuite};
pub(crate) use transport::Transport;
