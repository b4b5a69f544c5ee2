//! The health routes over raw TCP on a 2-shard server: readiness turns 503 as soon as a
//! graceful stop begins, while an in-flight request is still being served; liveness
//! answers 200 while the shard serves.

mod common;

use std::io::{BufReader, Write};
use std::time::Duration;

use common::*;
use haywire::config::RouteConfig;

#[test]
fn readiness_turns_503_during_the_grace_while_a_request_is_in_flight() {
    let mut config = test_config();
    config.server.shutdown_grace = 5.0;
    config.routes.push(RouteConfig::Ready {
        path: "/ready".into(),
    });
    config.routes.push(RouteConfig::Live {
        path: "/live".into(),
    });
    let running = start_server(config);
    let addr = running.local_addr();

    for _ in 0..4 {
        let (reply, _) = exchange(addr, get("/ready").as_bytes());
        assert_eq!((reply.status, reply.text().as_str()), (200, "ready\n"));
        let (reply, _) = exchange(addr, get("/live").as_bytes());
        assert_eq!((reply.status, reply.text().as_str()), (200, "live\n"));
    }

    // In flight through the stop: a slow request.
    let mut slow = connect(addr);
    slow.write_all(get("/slow/1500").as_bytes()).unwrap();
    // A probe whose head has begun (an idle connection would just be closed by the stop).
    let mut probe = connect(addr);
    probe.write_all(b"GET /ready HTTP/1.1\r\n").unwrap();
    let mut live = connect(addr);
    live.write_all(b"GET /live HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));

    running.stop();
    std::thread::sleep(Duration::from_millis(200));
    probe.write_all(b"Host: t\r\n\r\n").unwrap();
    let mut reader = BufReader::new(probe);
    let reply = read_reply(&mut reader, false);
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.text(), "draining\n");
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(is_closed(&mut reader));

    // Liveness still answers during the grace (the shard serves).
    live.write_all(b"Host: t\r\n\r\n").unwrap();
    let reply = read_reply(&mut BufReader::new(live), false);
    assert_eq!(reply.status, 200);

    // The slow request is still being served, and completes.
    let mut reader = BufReader::new(slow);
    let reply = read_reply(&mut reader, false);
    assert_eq!((reply.status, reply.text().as_str()), (200, "slept 1500"));
    assert_eq!(reply.header("connection"), Some("close"));
    running.join().unwrap();
}
