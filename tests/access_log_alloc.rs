//! The access log adds no allocation per request once warm: each shard formats lines
//! into one reused buffer, and the request's head is kept by reference, not copied.
//! Measured like tests/alloc.rs (its own binary: the counting allocator is global),
//! with the log on, to a file, in both formats.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use haywire::config::LogFormat;
use haywire::{Router, Server, ShardCtx};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on shard threads only, so the test client's own allocations do not count.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
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

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Sends `batches` batches of `depth` pipelined GETs and reads every response.
fn run_batches(stream: &mut TcpStream, depth: usize, batches: usize) {
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
fn mean_per_batch(stream: &mut TcpStream, depth: usize, batches: usize) -> f64 {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    run_batches(stream, depth, batches);
    (ALLOCATIONS.load(Ordering::SeqCst) - before) as f64 / batches as f64
}

fn mark_shard_thread(_: &mut Router, _: &Rc<ShardCtx>) {
    COUNTED.with(|c| c.set(true));
}

#[test]
fn logged_requests_allocate_nothing_per_request() {
    for format in [LogFormat::Combined, LogFormat::Json] {
        let path = std::env::temp_dir().join(format!(
            "haywire-alloc-log-{}-{format:?}",
            std::process::id()
        ));
        let mut config = test_config();
        config.server.shards = 2;
        config.limits.read_buffer = 16 * 1024;
        config.log.access = path.display().to_string();
        config.log.format = format;
        let server = Server::new(config)
            .routes(mark_shard_thread)
            .start()
            .unwrap();
        let mut stream = connect(server.local_addr());
        // Warm-up: the log buffer reaches its steady size too.
        run_batches(&mut stream, 200, 50);
        let shallow = mean_per_batch(&mut stream, 4, 300);
        let deep = mean_per_batch(&mut stream, 200, 300);
        let per_request = (deep - shallow) / 196.0;
        eprintln!("{format:?}: allocations per batch: {shallow:.2} for 4 requests, {deep:.2} for 200 ({per_request:.4} per request)");
        assert!(
            per_request < 0.25,
            "{format:?}: {deep:.2} allocations per batch of 200, {shallow:.2} per batch of 4: logging allocates"
        );
        server.stop();
        server.join().unwrap();
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(
            lines,
            200 * 50 + 4 * 300 + 200 * 300,
            "{format:?}: every request logged"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
