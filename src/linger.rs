//! Closing a connection without losing its last response: half-close, then read and
//! drop what the client still sends, briefly. Used by the connection loop and by
//! WebSocket connections.

use std::time::Duration;

use crate::net::Transport;
use crate::shard::Shard;
use crate::watchdog::{self, Deadline};

/// How long a closing connection drains its client's input.
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(1);
/// How many bytes a closing connection drains at most.
const LINGER_BYTES: usize = 256 * 1024;

/// Half-closes, then reads and drops what the client still sends, briefly: closing a
/// socket with unread input makes the kernel answer with a reset, which can destroy the
/// response before the client has read it.
pub(crate) async fn linger<T: Transport>(stream: &T, shard: &Shard, deadline: &Deadline) {
    if stream.shutdown_write().is_err() {
        return;
    }
    deadline.set(Some(shard.watchdog.now() + LINGER_TIME));
    let mut drained = 0;
    while drained < LINGER_BYTES {
        let read = watchdog::until(deadline, |cx| {
            stream.poll_read(cx, &mut shard.scratch.borrow_mut()[..])
        })
        .await;
        match read {
            Some(Ok(n)) if n > 0 => drained += n,
            _ => break,
        }
    }
}
