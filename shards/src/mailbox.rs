//! The cross-shard transport under the control mesh: a locked queue per shard plus a
//! doorbell socket the receiving shard waits on.
//!
//! Why not glommio's channel mesh: glommio 0.9 wakes a parked executor for a
//! cross-thread message through its latency ring, and the scheduler reads a pending
//! latency completion as "preempt now" before running anything, then parks again with
//! the woken task still queued (fixed upstream after 0.9, unreleased). Under load the
//! receiving shard hung. A doorbell socket completes on the main ring like any socket
//! read, so a parked shard always wakes and runs. The lock is taken only for control
//! traffic, which is rare by design.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Write};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_lite::AsyncReadExt;

/// The sending side of one shard's mailbox, usable from any thread (shared in an `Arc`).
pub(crate) struct Mailbox<T> {
    queue: Mutex<VecDeque<T>>,
    rung: AtomicBool,
    bell: StdUnixStream,
}

/// The receiving side, owned by the shard; becomes async inside its executor.
pub(crate) struct Doorbell(StdUnixStream);

pub(crate) fn mailbox<T>() -> io::Result<(Arc<Mailbox<T>>, Doorbell)> {
    let (bell, door) = StdUnixStream::pair()?;
    bell.set_nonblocking(true)?;
    door.set_nonblocking(true)?;
    let mailbox = Mailbox {
        queue: Mutex::new(VecDeque::new()),
        rung: AtomicBool::new(false),
        bell,
    };
    Ok((Arc::new(mailbox), Doorbell(door)))
}

impl<T> Mailbox<T> {
    /// Queues `item` and rings the doorbell unless a ring is already pending.
    pub(crate) fn post(&self, item: T) {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push_back(item);
        if !self.rung.swap(true, Ordering::AcqRel) {
            match (&self.bell).write(&[1]) {
                // A full socket buffer means unread rings are pending: the shard wakes.
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // The shard has ended and closed its door: nobody will read this.
                Err(_) => {}
            }
        }
    }

    fn drain(&self) -> VecDeque<T> {
        // Clear before draining: a post racing with us either lands in this drain or
        // rings again.
        self.rung.store(false, Ordering::Release);
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Doorbell {
    /// Serves the mailbox on the current executor: waits for rings and hands every
    /// queued item to `deliver`, in posting order. Ends when the process does.
    pub(crate) async fn serve<T>(self, mailbox: Arc<Mailbox<T>>, mut deliver: impl FnMut(T)) {
        // SAFETY: `into_raw_fd` hands over sole ownership of a valid, open, nonblocking
        // stream socket; glommio's stream takes over closing it. glommio offers no safe
        // conversion from a std socket.
        let mut door = unsafe { glommio::net::UnixStream::from_raw_fd(self.0.into_raw_fd()) };
        let mut rings = [0u8; 64];
        loop {
            match door.read(&mut rings).await {
                Ok(0) => return,
                Ok(_) => mailbox.drain().into_iter().for_each(&mut deliver),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}
