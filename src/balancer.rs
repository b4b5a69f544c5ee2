//! How connections reach shards.
//!
//! `reuseport`: every shard accepts on its own SO_REUSEPORT listener and the kernel
//! spreads connections by a hash of their addresses. `handoff`: shard 0 alone accepts
//! and passes each connection to a shard it picks (round-robin, or the one with the
//! fewest open connections) over the control mesh; the receiving shard then owns it.

use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::{future, FutureExt};
use haywire_shards::ShardCtx;

use crate::config::HandoffPolicy;
use crate::conn;
use crate::net::Socket;
use crate::shard::Shard;
use crate::watchdog::Deadline;

/// Open connections per shard, shared for the `least-connections` handoff. Written when a
/// connection opens or closes, never per request.
pub(crate) type Loads = Arc<[AtomicUsize]>;

/// Refused connections one shard answers at a time. Each holds its descriptor while
/// its `503` goes out and the client's input drains (up to two `LINGER_TIME`s); past
/// this many, a refused connection is closed at once, so a storm of clients at
/// `max_connections` cannot pile up descriptors.
pub(crate) const MAX_REFUSING: usize = 32;

/// Connections accepted before the accept loop lets the shard's other tasks
/// run: a burst of clients must not hold up the connections already open.
const ACCEPT_BATCH: usize = 16;

/// Serves the accepted connection `fd` from `peer` on this shard. At `max_connections` the
/// longest-idle keep-alive connection is closed to make room (as nginx reuses idle
/// connections); only when none is idle is the new one answered `503` and closed.
///
/// The connection counts as open from here, not from when its task first runs: a burst
/// accepted in one turn would otherwise all pass the limit.
pub(crate) fn admit(
    shard: &Rc<Shard>,
    fd: OwnedFd,
    peer: Option<SocketAddr>,
    loads: Option<&Loads>,
) {
    if shard.stats.active() >= shard.settings.get().max_connections {
        if shard.watchdog.evict_longest_idle() {
            // The evicted connection is closing: its place is the new one's.
            shard.stats.evicted();
            shard.stats.connection_closed();
        } else {
            refuse(shard, fd);
            return;
        }
    }
    // Registration fails only when the kernel is out of memory: drop the connection.
    let Ok(stream) = Socket::register(fd, &shard.poller) else {
        shard.stats.refused();
        return;
    };
    // The socket inherited the listener's TCP_NODELAY; only a reload that changed the
    // setting costs a syscall here. A socket that refuses it still works, only slower.
    let nodelay = shard.settings.get().tcp_nodelay;
    if !shard.unix && nodelay != shard.listener_nodelay {
        let _ = stream.set_nodelay(nodelay);
    }
    let open = Open::new(shard, loads);
    let deadline = open.deadline.clone();
    let shard = shard.clone();
    glommio::spawn_local(async move {
        // Handlers and response streams are caught where they run (a 500, or the
        // stream's end); this catches what is left, such as a user type whose `Drop`
        // panics: the connection ends (its place freed with `open`) and the shard goes
        // on, where an unwinding task would take the whole executor with it.
        let served = AssertUnwindSafe(conn::serve(stream, peer, shard.clone(), deadline))
            .catch_unwind()
            .await;
        if served.is_err() {
            shard.stats.handler_panic();
            tracing::error!(
                shard = shard.id,
                "a connection task panicked: connection closed"
            );
        }
        drop(open);
    })
    .detach();
}

/// Answers `fd` with `503` while fewer than [`MAX_REFUSING`] refusals linger on this
/// shard; otherwise closes it at once.
fn refuse(shard: &Rc<Shard>, fd: OwnedFd) {
    shard.stats.refused();
    if shard.refusing.get() >= MAX_REFUSING {
        return;
    }
    let Ok(stream) = Socket::register(fd, &shard.poller) else {
        return;
    };
    shard.refusing.set(shard.refusing.get() + 1);
    let shard = shard.clone();
    glommio::spawn_local(async move {
        conn::refuse(stream, shard.clone()).await;
        shard.refusing.set(shard.refusing.get() - 1);
    })
    .detach();
}

/// One of the shard's `max_connections` places, held by a connection from its accept
/// until its task ends (also when the task is dropped unfinished), or until an
/// eviction gives it to a new connection.
struct Open {
    shard: Rc<Shard>,
    loads: Option<Loads>,
    /// The connection's deadline, which records an eviction.
    deadline: Rc<Deadline>,
}

impl Open {
    fn new(shard: &Rc<Shard>, loads: Option<&Loads>) -> Open {
        shard.stats.connection_opened();
        if let Some(loads) = loads {
            loads[shard.id].fetch_add(1, Ordering::Relaxed);
        }
        Open {
            shard: shard.clone(),
            loads: loads.cloned(),
            deadline: shard.watchdog.deadline(),
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if !self.deadline.released() {
            self.shard.stats.connection_closed();
        }
        if let Some(loads) = &self.loads {
            loads[self.shard.id].fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Accepts on this shard's own listener and serves each connection here, until the
/// shard has stopped (see [`listen`]).
pub(crate) async fn accept_here(ctx: &ShardCtx, shard: &Rc<Shard>, listener: Socket) {
    listen(ctx, shard, listener, |fd, peer| {
        admit(shard, fd, peer, None)
    })
    .await;
}

/// Accepts on shard 0's listener and hands each connection to a shard, until this
/// shard has stopped (see [`listen`]).
pub(crate) async fn hand_off(
    ctx: &ShardCtx,
    shard: &Rc<Shard>,
    listener: Socket,
    policy: HandoffPolicy,
    loads: Loads,
) {
    // The last shard given a connection: both policies go on from the one after it.
    let mut last = 0;
    listen(ctx, shard, listener, |fd, peer| {
        let after = (last + 1) % ctx.count();
        last = match policy {
            HandoffPolicy::RoundRobin => after,
            HandoffPolicy::LeastConnections => least_loaded(&loads, after),
        };
        let target = last;
        let loads = loads.clone();
        ctx.run_on(target, move |ctx: &ShardCtx| {
            if let Some(shard) = ctx.local::<Shard>() {
                admit(&shard, fd, peer, Some(&loads));
            }
        });
    })
    .await;
}

/// Gives every connection `listener` reports to `accepted` until the shard is asked to
/// stop, then drains the shard ([`Shard::drain`]) with the listener still open for the
/// drain's first moments (its idle linger), and closes it.
///
/// Under `TCP_DEFER_ACCEPT` a client that has connected but not yet sent (a balancer's
/// fresh connection) is not reported to `accept`: closing the listener at once would
/// reset it, where the stop promises it its first request. So at a stop the option is
/// cleared (new handshakes are reported at once, as the drain expects) and those hidden
/// connections are accepted as their requests arrive, answered with `Connection: close`.
async fn listen(
    ctx: &ShardCtx,
    shard: &Shard,
    listener: Socket,
    mut accepted: impl FnMut(OwnedFd, Option<SocketAddr>),
) {
    accept_until(&listener, || ctx.stop_event().wait(), &mut accepted).await;
    // Failing leaves new connections deferred as before: the window still takes those
    // that send their request in it.
    if !shard.unix {
        let _ = listener.defer_accept(0);
    }
    shard
        .drain(|linger_end| async move {
            let left =
                || glommio::timer::sleep(linger_end.saturating_duration_since(Instant::now()));
            accept_until(&listener, left, &mut accepted).await;
            // Dropping the listener refuses new connections from here (once every
            // shard has dropped its duplicate of a shared one).
            listener.close_listener();
        })
        .await;
}

/// Accepts on `listener`, giving each connection to `accepted`, until the future `end`
/// makes is ready. The accept is polled first, so connections already queued when the
/// end comes are still accepted (and answered) rather than reset.
async fn accept_until<E: Future>(
    listener: &Socket,
    end: impl Fn() -> E,
    accepted: &mut impl FnMut(OwnedFd, Option<SocketAddr>),
) {
    let mut since_yield = 0;
    while let Some(result) = until(end(), listener.accept()).await {
        match result {
            Ok((fd, peer)) => accepted(fd, peer),
            Err(_) => backoff().await,
        }
        pace(&mut since_yield).await;
    }
}

/// Lets the shard's other tasks run after every [`ACCEPT_BATCH`] accepts.
async fn pace(since_yield: &mut usize) {
    *since_yield += 1;
    if *since_yield == ACCEPT_BATCH {
        *since_yield = 0;
        future::yield_now().await;
    }
}

/// The shard with the fewest open connections; among equals the first from `from` on,
/// wrapping around. Starting after the last choice spreads connections that come one at
/// a time (each closed before the next arrives, so every load reads 0) over all shards
/// instead of giving them all to shard 0.
fn least_loaded(loads: &[AtomicUsize], from: usize) -> usize {
    let count = loads.len();
    (0..count)
        .map(|i| (from + i) % count)
        .min_by_key(|&i| loads[i].load(Ordering::Relaxed))
        .unwrap_or(0)
}

/// `work` unless `end` is ready first; `work` is polled first.
async fn until<T>(end: impl Future, work: impl Future<Output = T>) -> Option<T> {
    future::or(async { Some(work.await) }, async {
        end.await;
        None
    })
    .await
}

/// Out of descriptors or memory: back off briefly instead of spinning.
async fn backoff() {
    glommio::timer::sleep(Duration::from_millis(10)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loads(counts: &[usize]) -> Vec<AtomicUsize> {
        counts.iter().copied().map(AtomicUsize::new).collect()
    }

    #[test]
    fn least_loaded_picks_the_emptiest_shard() {
        assert_eq!(least_loaded(&loads(&[3, 1, 2, 1]), 0), 1);
        assert_eq!(least_loaded(&loads(&[3, 1, 2, 1]), 2), 3);
        assert_eq!(least_loaded(&loads(&[0, 5, 5, 5]), 1), 0);
    }

    #[test]
    fn least_loaded_takes_turns_among_equals() {
        let equal = loads(&[0, 0, 0]);
        let mut last = 0;
        let picks: Vec<usize> = (0..4)
            .map(|_| {
                last = least_loaded(&equal, (last + 1) % 3);
                last
            })
            .collect();
        assert_eq!(picks, [1, 2, 0, 1]);
    }
}
