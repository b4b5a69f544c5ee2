//! A global allocator that counts allocations made on shard threads, and the bytes
//! they hold, for the tests that hold the request path to zero allocations per request
//! and a connection's memory to a bound. Each such test binary
//! installs it: `#[global_allocator] static GLOBAL: Counting = Counting;`.
//!
//! Every counted allocation is also attributed to its owner: the innermost frame of its
//! call stack that is Haywire's code (`haywire`, `haywire_shards`, or a handler the
//! test registered, which Haywire called) or glommio's. glommio allocates a few objects
//! every time a shard wakes up (its poll sources and timers), a number that varies
//! with scheduling; attributing lets a test hold Haywire's own allocations to zero at
//! one request per wake-up, where glommio's noise would hide one allocation per
//! request in a plain count.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use haywire::{Router, ShardCtx};

use super::get;

/// Counts allocations on threads marked by [`mark_shard_thread`].
pub struct Counting;

/// Allocations counted so far.
pub static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Of those, allocations whose innermost owning frame is Haywire's (or a handler's).
pub static HAYWIRE_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Of those, allocations whose innermost owning frame is glommio's.
pub static RUNTIME_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Bytes allocated on shard threads and not freed yet (frees on other threads of
/// memory a shard allocated are not seen: a lower bound there).
pub static LIVE: AtomicI64 = AtomicI64::new(0);
/// The highest `LIVE` reached since it was last reset (see [`reset_peak`]).
pub static PEAK: AtomicI64 = AtomicI64::new(0);

/// Starts a new `PEAK` from what is live now.
pub fn reset_peak() {
    PEAK.store(LIVE.load(Ordering::SeqCst), Ordering::SeqCst);
}

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes as i64, Ordering::Relaxed) + bytes as i64;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

/// Whether this allocation's bytes count: a shard's, and not the attribution's own.
fn holds() -> bool {
    COUNTED.with(Cell::get) && !ATTRIBUTING.with(Cell::get)
}

fn shrank(bytes: usize) {
    LIVE.fetch_sub(bytes as i64, Ordering::Relaxed);
}

thread_local! {
    /// Set on shard threads only, so the test client's own allocations do not count.
    pub static COUNTED: Cell<bool> = const { Cell::new(false) };
    /// Set while an allocation is being attributed: what that allocates is not counted.
    static ATTRIBUTING: Cell<bool> = const { Cell::new(false) };
    /// The owner of each code address seen, resolved once.
    static OWNERS: RefCell<HashMap<usize, Option<Owner>>> = RefCell::new(HashMap::new());
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    Haywire,
    Runtime,
}

/// Which code a symbol belongs to; `None` for the standard library and the helper
/// crates in between (bytes, hashbrown, futures-lite, ...), which the walk passes
/// through to whoever called them. The test's own frames count as Haywire's only
/// through the handler that Haywire called, so they are passed through too.
fn owner_of(symbol: &str) -> Option<Owner> {
    let path = symbol.trim_start_matches('<');
    if path.starts_with("haywire::") || path.starts_with("haywire_shards::") {
        Some(Owner::Haywire)
    } else if path.starts_with("glommio::") {
        Some(Owner::Runtime)
    } else {
        None
    }
}

fn resolve(ip: usize) -> Option<Owner> {
    let mut owner = None;
    // Inlined frames resolve to several symbols, innermost first.
    backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
        if owner.is_none() {
            if let Some(name) = symbol.name() {
                owner = owner_of(&format!("{name:#}"));
            }
        }
    });
    owner
}

/// Counts one allocation and attributes it (see the module docs).
fn count() {
    if !COUNTED.with(Cell::get) || ATTRIBUTING.with(Cell::get) {
        return;
    }
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    ATTRIBUTING.with(|a| a.set(true));
    let mut owner = None;
    backtrace::trace(|frame| {
        let ip = frame.ip() as usize;
        owner = OWNERS
            .try_with(|owners| *owners.borrow_mut().entry(ip).or_insert_with(|| resolve(ip)))
            .ok()
            .flatten();
        owner.is_none()
    });
    match owner {
        Some(Owner::Haywire) => HAYWIRE_ALLOCATIONS.fetch_add(1, Ordering::Relaxed),
        Some(Owner::Runtime) => RUNTIME_ALLOCATIONS.fetch_add(1, Ordering::Relaxed),
        None => 0,
    };
    ATTRIBUTING.with(|a| a.set(false));
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        if holds() {
            grew(layout.size());
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if holds() {
            shrank(layout.size());
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        if holds() {
            shrank(layout.size());
            grew(new_size);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The allocation counters now: (all, Haywire's, glommio's).
pub fn snapshot() -> [u64; 3] {
    [
        ALLOCATIONS.load(Ordering::SeqCst),
        HAYWIRE_ALLOCATIONS.load(Ordering::SeqCst),
        RUNTIME_ALLOCATIONS.load(Ordering::SeqCst),
    ]
}

/// What `counters` gained since `before`, per `per` (requests, batches).
pub fn per(before: [u64; 3], per: usize) -> [f64; 3] {
    let now = snapshot();
    [0, 1, 2].map(|i| (now[i] - before[i]) as f64 / per as f64)
}

/// Sends `batches` batches of `depth` pipelined GETs of `path` and reads every response
/// (`path` answers `hello world`).
pub fn run_batches_of(stream: &mut TcpStream, path: &str, depth: usize, batches: usize) {
    let wire: Vec<u8> = get(path).repeat(depth).into_bytes();
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..batches {
        stream.write_all(&wire).unwrap();
        let mut got = 0;
        loop {
            let n = stream.read(&mut buf[got..]).unwrap();
            assert!(n > 0, "server closed");
            got += n;
            let responses = buf[..got]
                .windows(11)
                .filter(|w| w == b"hello world")
                .count();
            if responses == depth {
                break;
            }
        }
    }
}

/// [`run_batches_of`] for `/`.
pub fn run_batches(stream: &mut TcpStream, depth: usize, batches: usize) {
    run_batches_of(stream, "/", depth, batches);
}

/// Mean allocations per batch of `depth` requests, over `batches` batches.
pub fn mean_per_batch(stream: &mut TcpStream, depth: usize, batches: usize) -> f64 {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    run_batches(stream, depth, batches);
    (ALLOCATIONS.load(Ordering::SeqCst) - before) as f64 / batches as f64
}

/// A route factory that marks its shard's thread as counted.
pub fn mark_shard_thread(_: &mut Router, _: &Rc<ShardCtx>) {
    COUNTED.with(|c| c.set(true));
}
