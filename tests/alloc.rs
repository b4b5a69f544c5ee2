//! The request path allocates nothing per request, pipelined or at one request per
//! read. Allocations on the shard threads are counted and attributed (see
//! tests/common/counting.rs): Haywire's own, handlers included, must stay at zero per
//! request once warm. The bound, one per 100 requests, leaves room only for what
//! happens per second (the cached `Date`) or once (a buffer reaching its steady size);
//! a single allocation per request would be 100 times over it. glommio's allocations
//! per wake-up are printed, not asserted: they are the runtime's, and vary.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::Mutex;

use common::counting::*;
use common::*;
use haywire::{Request, Response, Router, Server, ShardCtx};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Haywire's allocations per request may not exceed this.
const BOUND: f64 = 0.01;

/// The counters are global: tests that read them run one at a time, or one test's
/// warm-up would land in another's window.
static SERIAL: Mutex<()> = Mutex::new(());

fn start() -> haywire::RunningServer {
    let mut config = test_config();
    config.server.shards = 2;
    // Room for a whole batch of 200 requests (7.6 KB) in one read.
    config.limits.read_buffer = 16 * 1024;
    Server::new(config)
        .routes(mark_shard_thread)
        .routes(|router: &mut Router, _: &Rc<ShardCtx>| {
            router.get("/plain", |_: Request| Response::text("hello world"));
        })
        .start()
        .unwrap()
}

#[test]
fn pipelined_gets_allocate_nothing_per_request() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = start();
    for path in ["/", "/plain"] {
        let mut stream = connect(server.local_addr());
        // Warm-up: buffers, the in-flight queue and the pool reach their steady sizes.
        run_batches_of(&mut stream, path, 200, 50);
        let before = snapshot();
        let batches = 300;
        run_batches_of(&mut stream, path, 200, batches);
        let [all, haywire, runtime] = per(before, batches * 200);
        eprintln!(
            "{path} pipelined 200 deep: per request {all:.4} allocations, Haywire's {haywire:.4}, glommio's {runtime:.4}"
        );
        assert!(
            haywire < BOUND,
            "{path}: Haywire allocates {haywire:.4} times per pipelined request"
        );
    }
    server.stop();
    server.join().unwrap();
}

#[test]
fn keep_alive_gets_one_per_read_allocate_nothing_per_request() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = start();
    for path in ["/", "/plain"] {
        let mut stream = connect(server.local_addr());
        let requests = 2000;
        one_at_a_time(&mut stream, path, 200);
        let before = snapshot();
        one_at_a_time(&mut stream, path, requests);
        let [all, haywire, runtime] = per(before, requests);
        eprintln!(
            "{path} one request per read: per request {all:.3} allocations, Haywire's {haywire:.4}, glommio's {runtime:.3}"
        );
        assert!(
            haywire < BOUND,
            "{path}: Haywire allocates {haywire:.4} times per keep-alive request"
        );
    }
    server.stop();
    server.join().unwrap();
}

/// Sends one request, reads its response, and only then sends the next: every read
/// the server makes carries exactly one request.
fn one_at_a_time(stream: &mut TcpStream, path: &str, requests: usize) {
    let wire = get(path);
    let mut buf = [0u8; 4096];
    for _ in 0..requests {
        stream.write_all(wire.as_bytes()).unwrap();
        let mut got = 0;
        while !buf[..got].ends_with(b"hello world") {
            let n = stream.read(&mut buf[got..]).unwrap();
            assert!(n > 0, "server closed");
            got += n;
        }
    }
}

#[test]
fn a_batch_of_responses_goes_into_a_pooled_buffer() {
    // Grown from empty instead of taken from the shard's pool, 200 responses (30 KB)
    // cost about nine reallocations per batch, each of them Haywire's.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = start();
    let mut stream = connect(server.local_addr());
    run_batches(&mut stream, 200, 50);
    let before = snapshot();
    run_batches(&mut stream, 200, 100);
    let [_, haywire, _] = per(before, 100);
    assert!(
        haywire < 1.0,
        "{haywire:.2} allocations of Haywire's per batch of 200: the write buffer is not pooled"
    );
    server.stop();
    server.join().unwrap();
}
