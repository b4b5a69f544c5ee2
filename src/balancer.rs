//! How connections reach shards.
//!
//! `reuseport`: every shard accepts on its own SO_REUSEPORT listener and the kernel
//! spreads connections by a hash of their addresses. `handoff`: shard 0 alone accepts
//! and passes each connection to a shard it picks (round-robin, or the one with the
//! fewest open connections) over the control mesh; the receiving shard then owns it.

use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;
use haywire_shards::ShardCtx;

use crate::config::HandoffPolicy;
use crate::conn;
use crate::net::Socket;
use crate::shard::Shard;

/// Open connections per shard, shared for the `least-connections` handoff. Written when a
/// connection opens or closes, never per request.
pub(crate) type Loads = Arc<[AtomicUsize]>;

/// Serves the accepted connection `fd` on this shard. At `max_connections` the
/// longest-idle keep-alive connection is closed to make room (as nginx reuses idle
/// connections); only when none is idle is the new one answered `503` and closed.
pub(crate) fn admit(shard: &Rc<Shard>, fd: OwnedFd, loads: Option<&Loads>) {
    // Registration fails only when the kernel is out of memory: drop the connection.
    let Ok(stream) = Socket::register(fd, &shard.poller) else {
        shard.stats.refused();
        return;
    };
    if shard.stats.active() >= shard.settings.get().max_connections {
        if shard.watchdog.evict_longest_idle() {
            shard.stats.evicted();
        } else {
            shard.stats.refused();
            glommio::spawn_local(conn::refuse(stream, shard.clone())).detach();
            return;
        }
    }
    // The socket inherited the listener's TCP_NODELAY; only a reload that changed the
    // setting costs a syscall here. A socket that refuses it still works, only slower.
    let nodelay = shard.settings.get().tcp_nodelay;
    if nodelay != shard.listener_nodelay {
        let _ = stream.set_nodelay(nodelay);
    }
    let loads = loads.cloned();
    let id = shard.id;
    let shard = shard.clone();
    if let Some(loads) = &loads {
        loads[id].fetch_add(1, Ordering::Relaxed);
    }
    glommio::spawn_local(async move {
        conn::serve(stream, shard).await;
        if let Some(loads) = loads {
            loads[id].fetch_sub(1, Ordering::Relaxed);
        }
    })
    .detach();
}

/// Accepts on this shard's own listener until the shard is asked to stop.
pub(crate) async fn accept_here(ctx: &ShardCtx, shard: &Rc<Shard>, listener: Socket) {
    while let Some(accepted) = until_stopped(ctx, listener.accept()).await {
        match accepted {
            Ok(fd) => admit(shard, fd, None),
            Err(_) => backoff().await,
        }
    }
}

/// Accepts on shard 0's listener and hands each connection to a shard.
pub(crate) async fn hand_off(
    ctx: &ShardCtx,
    listener: Socket,
    policy: HandoffPolicy,
    loads: Loads,
) {
    let mut next = 0;
    while let Some(accepted) = until_stopped(ctx, listener.accept()).await {
        let Ok(accepted) = accepted else {
            backoff().await;
            continue;
        };
        let target = match policy {
            HandoffPolicy::RoundRobin => {
                next = (next + 1) % ctx.count();
                next
            }
            HandoffPolicy::LeastConnections => least_loaded(&loads),
        };
        let loads = loads.clone();
        ctx.run_on(target, move |ctx: &ShardCtx| {
            if let Some(shard) = ctx.local::<Shard>() {
                admit(&shard, accepted, Some(&loads));
            }
        });
    }
}

/// The shard with the fewest open connections (the lowest id among equals).
fn least_loaded(loads: &[AtomicUsize]) -> usize {
    (0..loads.len())
        .min_by_key(|&i| loads[i].load(Ordering::Relaxed))
        .unwrap_or(0)
}

async fn until_stopped<T>(ctx: &ShardCtx, work: impl std::future::Future<Output = T>) -> Option<T> {
    future::or(async { Some(work.await) }, async {
        ctx.stop_event().wait().await;
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

    #[test]
    fn least_loaded_picks_the_emptiest_shard() {
        let loads: Vec<AtomicUsize> = [3, 1, 2, 1].into_iter().map(AtomicUsize::new).collect();
        assert_eq!(least_loaded(&loads), 1);
    }
}
