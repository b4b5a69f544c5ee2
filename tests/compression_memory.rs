//! The compression layer streams a large body: it never holds the whole compressed
//! body, nor a second copy of the body.
//!
//! A global allocator tracks the bytes live on this thread. Serving a gzip response
//! of a 100 KiB and of a 1 MiB JSON body (bodies made before measuring, and pieces
//! dropped as they are read, as the connection does), the peak of live bytes above
//! the start must not grow with the body: buffering the compressed output would add
//! about its size (over 300 KiB more for the larger body), a second copy of the body
//! about 900 KiB. Levels 1 to 6.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use haywire::layer::{Compression, Encoding};
use haywire::testing::{for_each_piece, TestRequest};
use haywire::{Request, Response, Router};

struct Tracking;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn add(bytes: i64) {
    if ON.with(Cell::get) {
        let live = LIVE.with(|l| l.get()) + bytes;
        LIVE.with(|l| l.set(live));
        PEAK.with(|p| p.set(p.get().max(live)));
    }
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as i64));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as i64 - layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// `len` bytes of JSON that compress about 3:1 (numbers from a simple generator).
fn json_body(len: usize) -> Bytes {
    let mut out = String::with_capacity(len + 64);
    out.push('[');
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_str(&format!("{{\"id\":{},\"score\":{}}},", x % 1000, x >> 40));
    }
    out.push_str("{}]");
    Bytes::from(out)
}

/// Peak live bytes above the first piece while answering and reading `body`
/// gzipped, the compressed size, and the largest piece.
fn peak_while_serving(body: Bytes, level: u32) -> (i64, usize, usize) {
    let mut router = Router::new();
    router.get("/data", move |_: Request| Response::json(body.clone()));
    router.layer(Compression::new().encodings(&[Encoding::Gzip]).level(level));
    let request = TestRequest::get("/data").header("Accept-Encoding", "gzip");
    let response = request.send(&router);
    let mut sent = 0;
    let mut largest = 0;
    // Measured from the first piece on: the test executor's own setup (megabytes of
    // io_uring buffers) is over by then, and the encoder has the rest of the body
    // ahead of it.
    for_each_piece(&response, |piece| {
        if sent == 0 {
            LIVE.with(|l| l.set(0));
            PEAK.with(|p| p.set(0));
            ON.with(|on| on.set(true));
        }
        sent += piece.len();
        largest = largest.max(piece.len());
    });
    ON.with(|on| on.set(false));
    (PEAK.with(Cell::get), sent, largest)
}

#[test]
fn gzip_of_a_large_body_streams_without_holding_it_twice() {
    let small = json_body(100 * 1024);
    let large = json_body(1024 * 1024);
    for level in 1..=6 {
        let (peak_small, sent_small, _) = peak_while_serving(small.clone(), level);
        let (peak_large, sent_large, largest) = peak_while_serving(large.clone(), level);
        eprintln!(
            "level {level}: 100 KiB -> {sent_small} B sent, peak {peak_small} B held; \
             1 MiB -> {sent_large} B sent, peak {peak_large} B held"
        );
        assert!(
            sent_large > 200 * 1024,
            "the body must not compress to nothing"
        );
        assert!(
            largest <= 64 * 1024,
            "level {level}: a {largest} B piece: the compressed body was gathered"
        );
        assert!(
            peak_large - peak_small < 64 * 1024,
            "level {level}: the peak grew by {} B with the body",
            peak_large - peak_small
        );
        assert!(
            peak_small.max(peak_large) < 128 * 1024,
            "level {level}: {peak_small} B and {peak_large} B held"
        );
    }
}
