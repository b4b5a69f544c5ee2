//! Counts heap allocations made on the shard threads while they serve pipelined GETs.
//!
//! The hot path must not allocate per request. glommio itself allocates about a dozen
//! small objects per batch (its io_uring poll sources, 256-511 bytes each), and how many
//! operations a batch takes varies with scheduling, so batches of 200 requests are
//! compared with batches of 4 on average over many: one allocation per request would
//! add 196 per batch (1.0 per request); the per-batch noise measures about 0.04 per
//! request, and the bound is 0.25. A batch as a whole is bounded too: its responses
//! must go into a pooled buffer, not one regrown from empty.

mod common;

use std::rc::Rc;

use common::counting::*;
use common::*;
use haywire::{Request, Response, Router, Server, ShardCtx};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn pipelined_plaintext_gets_allocate_nothing_per_request() {
    let mut config = test_config();
    config.server.shards = 2;
    // Room for a whole batch of 200 requests (7.6 KB) in one read.
    config.limits.read_buffer = 16 * 1024;
    let server = Server::new(config)
        .routes(mark_shard_thread)
        .routes(|router: &mut Router, _: &Rc<ShardCtx>| {
            router.get("/plain", |_: Request| Response::text("hello world"));
        })
        .start()
        .unwrap();
    let mut stream = connect(server.local_addr());
    // Warm-up: buffers, the in-flight queue and the pool reach their steady sizes.
    run_batches(&mut stream, 200, 50);
    let shallow = mean_per_batch(&mut stream, 4, 300);
    let deep = mean_per_batch(&mut stream, 200, 300);
    let per_request = (deep - shallow) / 196.0;
    eprintln!("allocations per batch: {shallow:.2} for 4 requests, {deep:.2} for 200 ({per_request:.4} per request)");
    assert!(
        per_request < 0.25,
        "{deep:.2} allocations per batch of 200, {shallow:.2} per batch of 4: the request path allocates"
    );
    // A batch's responses are encoded into a pooled buffer. Grown from empty instead,
    // 200 responses (30 KB) cost about nine reallocations more per batch (about 21 in
    // all, against about 12 for glommio's own per-batch objects and the rest).
    assert!(
        deep < 17.0,
        "{deep:.2} allocations per batch of 200: the write buffer is not pooled"
    );
    server.stop();
    server.join().unwrap();
}
