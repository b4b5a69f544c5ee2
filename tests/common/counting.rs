//! A global allocator that counts allocations made on shard threads, for the tests that
//! hold the request path to zero allocations per request. Each such test binary
//! installs it: `#[global_allocator] static GLOBAL: Counting = Counting;`.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use haywire::{Router, ShardCtx};

use super::get;

/// Counts allocations on threads marked by [`mark_shard_thread`].
pub struct Counting;

/// Allocations counted so far.
pub static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on shard threads only, so the test client's own allocations do not count.
    pub static COUNTED: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTED.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTED.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Sends `batches` batches of `depth` pipelined GETs and reads every response.
pub fn run_batches(stream: &mut TcpStream, depth: usize, batches: usize) {
    let wire: Vec<u8> = get("/").repeat(depth).into_bytes();
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
