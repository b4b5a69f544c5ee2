//! The stock handlers mounted from code instead of the config, on a 2-shard server:
//! readiness (turning 503 once a graceful stop begins), liveness, stats, metrics and
//! static files.

mod common;

use std::io::{BufReader, Write};
use std::rc::Rc;
use std::time::Duration;

use common::*;
use haywire::stock::{Live, Metrics, Ready, Stats};
use haywire::{Router, Server, ShardCtx};

#[test]
fn stock_handlers_mounted_from_code_answer_like_configured_ones() {
    let dir = std::env::temp_dir().join(format!("haywire-stock-code-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hello.txt"), "hello file\n").unwrap();
    let served = dir.to_str().unwrap().to_owned();
    let mut config = test_config();
    config.routes.clear();
    config.server.shutdown_grace = 5.0;
    let running = Server::new(config)
        .routes(move |router: &mut Router, shard: &Rc<ShardCtx>| {
            router.get("/code/ready", Ready::new(shard));
            router.get("/code/live", Live);
            router.get("/code/stats", Stats::new(shard));
            router.get("/code/metrics", Metrics::new(shard));
            router.static_files("/assets", &served);
        })
        .start()
        .unwrap();
    let addr = running.local_addr();

    let (reply, _) = exchange(addr, get("/code/ready").as_bytes());
    assert_eq!((reply.status, reply.text().as_str()), (200, "ready\n"));
    let (reply, _) = exchange(addr, get("/code/live").as_bytes());
    assert_eq!((reply.status, reply.text().as_str()), (200, "live\n"));
    let (reply, _) = exchange(addr, get("/code/stats").as_bytes());
    let stats: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(stats["shards"].as_array().map(Vec::len), Some(2));
    let (reply, _) = exchange(addr, get("/code/metrics").as_bytes());
    assert!(
        reply.text().contains("haywire_requests_total"),
        "{}",
        reply.text()
    );
    let (reply, _) = exchange(addr, get("/assets/hello.txt").as_bytes());
    assert_eq!((reply.status, reply.text().as_str()), (200, "hello file\n"));
    let (reply, _) = exchange(addr, get("/assets/../secret").as_bytes());
    assert_eq!(reply.status, 404);

    // A probe whose head has begun before the stop sees the shard draining.
    let mut probe = connect(addr);
    probe.write_all(b"GET /code/ready HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    running.stop();
    std::thread::sleep(Duration::from_millis(200));
    probe.write_all(b"Host: t\r\n\r\n").unwrap();
    let reply = read_reply(&mut BufReader::new(probe), false);
    assert_eq!((reply.status, reply.text().as_str()), (503, "draining\n"));
    running.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
