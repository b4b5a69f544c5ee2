//! What a connection makes the server hold, counted with the counting allocator on the
//! shard threads: an idle keep-alive connection, and a client that pipelines requests
//! for large bodies and never reads its answers. The tests share the counters, so they
//! run one at a time.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::counting::*;
use common::*;
use haywire::config::RouteConfig;
use haywire::{Request, Response, Router, Server, ShardCtx};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Held by each test: the byte counters are the whole process's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const CONNECTIONS: usize = 8;
const PIPELINE: usize = 128;
const BODY: usize = 64 * 1024;

/// Waits until the server decodes no more requests: every connection has stalled on
/// output its client does not read. Each look at `/stats` is itself one request.
fn settle(addr: SocketAddr) {
    let started = Instant::now();
    let mut last = u64::MAX;
    loop {
        let now = stats(addr)["total"]["requests"].as_u64().unwrap();
        if now == last.wrapping_add(1) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server kept decoding"
        );
        last = now;
        thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn an_idle_keep_alive_connection_holds_under_2_kib() {
    const IDLE: usize = 500;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::new(test_config())
        .routes(mark_shard_thread)
        .start()
        .unwrap();
    let addr = server.local_addr();
    // The shards' pools and caches fill on the first connections, not per connection.
    for _ in 0..8 {
        assert_eq!(exchange(addr, get("/").as_bytes()).0.status, 200);
    }
    settle(addr);
    let before = LIVE.load(Ordering::SeqCst);
    // One request on each, so every connection has taken (and given back) its buffers.
    let idle: Vec<_> = (0..IDLE)
        .map(|_| {
            let (reply, reader) = exchange(addr, get("/").as_bytes());
            assert_eq!(reply.status, 200);
            reader
        })
        .collect();
    settle(addr);
    let per = (LIVE.load(Ordering::SeqCst) - before) / IDLE as i64;
    eprintln!("{per} bytes held per idle connection");
    assert!(
        per < 2048,
        "{per} bytes held per idle keep-alive connection"
    );
    drop(idle);
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_client_that_pipelines_large_answers_and_never_reads_makes_the_server_hold_a_few_bodies() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("haywire-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("big.bin"), vec![b'x'; BODY]).unwrap();
    let mut config = test_config();
    config.routes.push(RouteConfig::Static {
        path: "/static".into(),
        dir: dir.display().to_string(),
        allow_check_then_open: false,
        max_age: None,
        index: "index.html".into(),
    });
    let server = Server::new(config)
        .routes(mark_shard_thread)
        .routes(|router: &mut Router, _: &Rc<ShardCtx>| {
            // A handler body made for each request.
            router.get("/owned", |_: Request| Response::bytes(vec![b'x'; BODY]));
            // The same from an asynchronous handler: its size is known only once it
            // has finished.
            router.get("/owned-later", |_: Request| async {
                Response::bytes(vec![b'x'; BODY])
            });
        })
        .start()
        .unwrap();
    let addr = server.local_addr();
    // 128 answers of 64 KiB are 8 MiB. What may be held per connection: a file, one
    // piece of it and the buffers; a ready body, that body; asynchronous handlers, the
    // few of a pipeline that run at once (`OUTPUT_CAP / PENDING_COST`), each with its
    // body. Never the pipeline's worth.
    let bounds = [
        ("/static/big.bin", 64 * 1024),
        ("/owned", 2 * BODY as i64),
        ("/owned-later", 5 * BODY as i64),
    ];
    for (path, bound) in bounds {
        settle(addr);
        let before = LIVE.load(Ordering::SeqCst);
        reset_peak();
        let wire = get(path).repeat(PIPELINE);
        let clients: Vec<TcpStream> = (0..CONNECTIONS)
            .map(|_| {
                let mut stream = connect(addr);
                stream.write_all(wire.as_bytes()).unwrap();
                stream
            })
            .collect();
        settle(addr);
        let held = (LIVE.load(Ordering::SeqCst) - before) / CONNECTIONS as i64;
        let peak = (PEAK.load(Ordering::SeqCst) - before) / CONNECTIONS as i64;
        eprintln!("{path}: {held} bytes held per connection, {peak} at the peak");
        assert!(held < bound, "{path}: {held} bytes held per connection");
        assert!(
            peak < bound * 5 / 4,
            "{path}: {peak} bytes per connection at the peak"
        );
        drop(clients);
    }
    server.stop();
    server.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
