//! A shard's epoll set and the wakers of the tasks waiting on it.

use std::cell::RefCell;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::task::Waker;
use std::time::Duration;

use futures_lite::{future, AsyncReadExt};
use rustix::event::epoll::{self, Event, EventData, EventFlags};
use rustix::event::Timespec;
use rustix::io::Errno;

use crate::stats::ShardStats;

/// Readiness events harvested by one `epoll_wait`. More wait for the next call, made
/// once the tasks just woken have run.
const BATCH: usize = 64;

/// Harvests in a row, each after the tasks the previous one woke have run, before the
/// shard waits in glommio again. A wait costs glommio's reactor a round (a poll armed on
/// the epoll descriptor, its completion, the preemption timer re-armed: about half the
/// user-space instructions of a keep-alive request); input that arrived while the woken
/// tasks ran is served from a plain `epoll_wait` instead. Bounded, so that under
/// unbroken load glommio still polls its own rings, timers and cross-shard messages
/// every few harvests. Measured one request per read (`benchmarks/callgrind.sh haywire
/// --depth 1`): 5,664 user-space instructions per request at 1 (the old loop), 4,678 at
/// 4, 4,472 at 8, 4,346 at 32.
const HARVESTS_PER_WAIT: u32 = 8;

/// Events after which a read may find something: data, the peer's FIN, an error.
const INPUT: EventFlags = EventFlags::IN.union(HANG_UP);

/// Events that say the input ends (the peer's FIN) or the socket failed. Edge-triggered,
/// each arrives once, often together with the last data.
const HANG_UP: EventFlags = EventFlags::RDHUP
    .union(EventFlags::HUP)
    .union(EventFlags::ERR);

/// Where a registered descriptor's waker lives: an index into the poller's slots and
/// that slot's generation, packed into the epoll event's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    index: u32,
    generation: u32,
}

impl Token {
    fn key(self) -> u64 {
        u64::from(self.generation) << 32 | u64::from(self.index)
    }

    fn from_key(key: u64) -> Self {
        Token {
            index: key as u32,
            generation: (key >> 32) as u32,
        }
    }
}

#[derive(Default)]
struct Slot {
    generation: u32,
    waker: Option<Waker>,
    /// Input may be waiting: set by an input event, cleared when a read finds the
    /// socket drained. Saves the `recv` that would only say `EAGAIN`.
    readable: bool,
    /// The peer closed its side or the socket failed: no event will follow, so the
    /// socket stays readable (the next read returns the end of input or the error)
    /// even after a read that drained the data.
    hung_up: bool,
}

/// The waker slots, reused as descriptors come and go. A released slot's generation
/// moves on, so an event for the descriptor that held it wakes nobody.
#[derive(Default)]
struct Slots {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl Slots {
    fn allocate(&mut self) -> Token {
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot::default());
            (self.slots.len() - 1) as u32
        });
        // A new descriptor may already hold input (a request sent right after connect).
        self.slots[index as usize].readable = true;
        Token {
            index,
            generation: self.slots[index as usize].generation,
        }
    }

    fn release(&mut self, token: Token) {
        let slot = &mut self.slots[token.index as usize];
        *slot = Slot {
            generation: slot.generation.wrapping_add(1),
            ..Slot::default()
        };
        self.free.push(token.index);
    }

    fn slot(&mut self, token: Token) -> Option<&mut Slot> {
        self.slots
            .get_mut(token.index as usize)
            .filter(|slot| slot.generation == token.generation)
    }
}

/// One shard's epoll set. Shard-local: every method runs on the shard's thread.
pub(crate) struct Poller {
    epoll: OwnedFd,
    slots: RefCell<Slots>,
    /// Where the shard's sockets count their `recv` calls.
    pub(crate) stats: Rc<ShardStats>,
}

impl Poller {
    /// A new, empty epoll set for the shard that keeps `stats`.
    pub(crate) fn new(stats: Rc<ShardStats>) -> io::Result<Self> {
        Ok(Poller {
            epoll: epoll::create(epoll::CreateFlags::CLOEXEC)?,
            slots: RefCell::default(),
            stats,
        })
    }

    /// Watches `fd` for input and output, edge-triggered, until it is closed.
    pub(crate) fn register(&self, fd: BorrowedFd<'_>) -> io::Result<Token> {
        let token = self.slots.borrow_mut().allocate();
        let interest = EventFlags::IN | EventFlags::OUT | EventFlags::RDHUP | EventFlags::ET;
        if let Err(error) = epoll::add(&self.epoll, fd, EventData::new_u64(token.key()), interest) {
            self.release(token);
            return Err(error.into());
        }
        Ok(token)
    }

    /// Frees `token`'s slot. The descriptor must be closed right after (closing it is
    /// what removes it from the epoll set, so no `epoll_ctl` call is needed, unless a
    /// duplicate of it stays open: see [`Poller::deregister`]).
    pub(crate) fn release(&self, token: Token) {
        self.slots.borrow_mut().release(token);
    }

    /// Takes `fd` out of the epoll set, for a descriptor whose socket stays open
    /// elsewhere (closing a duplicate does not remove the socket from the set). Its
    /// slot is freed when its `Socket` drops.
    pub(crate) fn deregister(&self, fd: BorrowedFd<'_>) {
        // Fails only for a descriptor not in the set: nothing then to take out.
        let _ = epoll::delete(&self.epoll, fd);
    }

    /// Wakes `waker` at the next readiness event on `token`'s descriptor. Only the
    /// connection's own task waits on it, so one waker per descriptor is enough.
    pub(crate) fn wake_on_event(&self, token: Token, waker: &Waker) {
        if let Some(slot) = self.slots.borrow_mut().slot(token) {
            if !slot.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
                slot.waker = Some(waker.clone());
            }
        }
    }

    /// Whether input may be waiting on `token`'s descriptor.
    pub(crate) fn readable(&self, token: Token) -> bool {
        self.slots
            .borrow_mut()
            .slot(token)
            .is_some_and(|slot| slot.readable)
    }

    /// A read found the descriptor drained: the next read waits for an input event,
    /// unless the peer has hung up (then the next read sees the end).
    pub(crate) fn drained(&self, token: Token) {
        if let Some(slot) = self.slots.borrow_mut().slot(token) {
            slot.readable = slot.hung_up;
        }
    }

    fn wake(&self, token: Token, flags: EventFlags) {
        let waker = self.slots.borrow_mut().slot(token).and_then(|slot| {
            if flags.intersects(INPUT) {
                slot.readable = true;
            }
            if flags.intersects(HANG_UP) {
                slot.hung_up = true;
            }
            slot.waker.take()
        });
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Harvests readiness for the life of the shard: wakes the waiting tasks, and when
    /// nothing is ready, waits in glommio for the epoll descriptor to become readable.
    pub(crate) async fn run(self: Rc<Self>) {
        let mut events = vec![MaybeUninit::<Event>::uninit(); BATCH];
        let now = Timespec::default();
        let mut harvests = 0;
        loop {
            self.stats.loop_turn();
            match epoll::wait(&self.epoll, &mut events[..], Some(&now)) {
                Ok((ready, _)) => {
                    let full = ready.len() == BATCH;
                    let woke = !ready.is_empty();
                    for event in ready.iter() {
                        let Event { flags, data } = *event;
                        self.wake(Token::from_key(data.u64()), flags);
                    }
                    harvests += 1;
                    // More may be ready (a full batch), or may arrive while the woken
                    // tasks run: let them run, then harvest again.
                    if full || (woke && harvests < HARVESTS_PER_WAIT) {
                        future::yield_now().await;
                        continue;
                    }
                }
                Err(Errno::INTR) => continue,
                Err(_) => {}
            }
            harvests = 0;
            self.stats.loop_park();
            // Out of descriptors for the duplicate: poll on a short timer instead.
            if self.event().await.is_err() {
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
        }
    }

    /// Waits until the epoll set has an event, through glommio's own readiness poll.
    ///
    /// glommio has no public way to poll an arbitrary descriptor, so a duplicate of the
    /// epoll descriptor is wrapped in a glommio stream, which arms a one-shot poll on it
    /// as it is made. Its read returns once that poll fires (the `recv` glommio then
    /// tries fails with `ENOTSOCK`, which is ignored); dropping the stream closes the
    /// duplicate. This costs a poll arm per idle period of the whole shard, not per
    /// request.
    async fn event(&self) -> io::Result<()> {
        let duplicate = self.epoll.as_fd().try_clone_to_owned()?;
        // SAFETY: `duplicate` is an open descriptor that nothing else owns; the stream
        // takes sole ownership and closes it when dropped. glommio only polls it and
        // tries a non-blocking `recv`, which fails harmlessly on an epoll descriptor.
        let mut watcher = unsafe { glommio::net::TcpStream::from_raw_fd(duplicate.into_raw_fd()) };
        let _ = watcher.read(&mut []).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_slots_are_reused_with_a_new_generation() {
        let mut slots = Slots::default();
        let first = slots.allocate();
        let second = slots.allocate();
        assert_ne!(first.index, second.index);
        slots.release(first);
        let reused = slots.allocate();
        assert_eq!(reused.index, first.index);
        assert_ne!(reused.generation, first.generation);
        assert!(slots.slot(first).is_none(), "a stale token finds no slot");
        assert!(slots.slot(reused).is_some());
        assert_eq!(Token::from_key(reused.key()), reused);
    }
}
