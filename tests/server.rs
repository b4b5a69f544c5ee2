//! Whole-server behaviour: stats across shards, batching, the binary's config errors,
//! what a graceful stop answers.

mod common;

use std::io::{BufReader, Write};
use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn stats_sum_both_shards() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    // Fresh connections land on shards by the kernel's reuseport hash.
    for _ in 0..24 {
        let (reply, _) = exchange(addr, get("/").as_bytes());
        assert_eq!(reply.status, 200);
    }
    let (reply, _) = exchange(addr, get("/missing").as_bytes());
    assert_eq!(reply.status, 404);
    let report = stats(addr);
    let shards = report["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    for (i, shard) in shards.iter().enumerate() {
        assert_eq!(shard["shard"], i);
        assert!(
            shard["connections"]["accepted"].as_u64().unwrap() > 0,
            "shard {i} got no connection"
        );
    }
    let total = &report["total"];
    // 24 + 1 + the /stats request itself, decoded before it gathered.
    assert_eq!(total["requests"], 26);
    assert_eq!(total["connections"]["accepted"], 26);
    assert_eq!(total["responses"]["2xx"], 24);
    assert_eq!(total["responses"]["4xx"], 1);
    for key in ["requests", "bytes_in", "bytes_out", "writes"] {
        let sum: u64 = shards.iter().map(|s| s[key].as_u64().unwrap()).sum();
        assert_eq!(total[key].as_u64().unwrap(), sum, "{key}");
    }
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_pipelined_batch_is_answered_in_few_writes() {
    let mut config = test_config();
    config.server.shards = 2;
    let server = start_server(config);
    let addr = server.local_addr();
    let mut stream = connect(addr);
    let wire: String = (0..100).map(|_| get("/")).collect();
    stream.write_all(wire.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    for _ in 0..100 {
        assert_eq!(read_reply(&mut reader, false).status, 200);
    }
    let report = stats(addr);
    let writes = report["total"]["writes"].as_u64().unwrap();
    // 100 requests (2.8 KB) arrive in one or a few reads; each read's batch is one
    // write. The /stats exchange adds one more.
    assert!(writes <= 6, "{writes} writes for 100 pipelined requests");
    server.stop();
    server.join().unwrap();
}

#[test]
fn each_keep_alive_request_costs_one_read() {
    let mut config = test_config();
    config.server.shards = 2;
    let server = start_server(config);
    let addr = server.local_addr();
    let mut reader = BufReader::new(connect(addr));
    for _ in 0..50 {
        reader.get_mut().write_all(get("/").as_bytes()).unwrap();
        assert_eq!(read_reply(&mut reader, false).status, 200);
    }
    let reads = stats(addr)["total"]["reads"].as_u64().unwrap();
    // A read that came back short drained the socket, so the connection waits for the
    // next readiness event instead of trying a `recv` that would find nothing: 50 reads,
    // plus the /stats exchange's and slack for a request split across two segments.
    // Trying first would make about 100.
    assert!(reads <= 60, "{reads} recv calls for 50 sequential requests");
    server.stop();
    server.join().unwrap();
}

#[test]
fn config_errors_exit_2_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("haywire-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("[server]\nport = \"eighty\"\n", "server.port"),
        ("[server]\nbogus = true\n", "bogus"),
        ("[server]\naddress = \"not-an-ip\"\n", "server.address"),
        (
            "[limits]\nmax_request_size = 0\n",
            "limits.max_request_size",
        ),
    ];
    for (i, (text, key)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad-{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_haywire"))
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(key), "{text}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "something started: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let missing = Command::new(env!("CARGO_BIN_EXE_haywire"))
        .args(["--config", "/nonexistent/haywire.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_binary_serves_config_toml_with_flag_overrides() {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_haywire"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--address", "127.0.0.1", "--port", "0", "--shards", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("banner").unwrap();
        if let Some(addr) = line.trim().strip_prefix("address:") {
            break addr.trim().parse().unwrap();
        }
    };
    let shards_line = lines.next().unwrap().unwrap();
    assert!(shards_line.contains("shards:       2"), "{shards_line}");
    let (reply, _) = exchange(addr, get("/").as_bytes());
    assert_eq!((reply.status, reply.text()), (200, "hello world".into()));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn the_binary_reloads_on_sighup_with_its_flags_and_stops_on_sigterm() {
    use std::io::BufRead;
    use std::process::Stdio;
    let path = std::env::temp_dir().join(format!("haywire-bin-reload-{}.toml", std::process::id()));
    let config = |limit: usize| {
        format!(
            "[server]\naddress = \"127.0.0.1\"\nport = 1\nshards = 3\nplacement = \"unbound\"\n\
             [limits]\nmax_request_size = {limit}\n[[route]]\nhandler = \"echo\"\npath = \"/echo\"\n"
        )
    };
    std::fs::write(&path, config(10)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_haywire"))
        .arg("--config")
        .arg(&path)
        // The file says port 1 and 3 shards: the flags win, at start and on reload.
        .args(["--port", "0", "--shards", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr: std::net::SocketAddr = loop {
        let line = lines.next().expect("banner").unwrap();
        if let Some(addr) = line.trim().strip_prefix("address:") {
            break addr.trim().parse().unwrap();
        }
    };
    let post = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\n01234567890123456789";
    assert_eq!(exchange(addr, post).0.status, 413);
    std::fs::write(&path, config(100)).unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let pid = child.id().to_string();
    let kill = |signal: &str| {
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success());
    };
    kill("-HUP");
    let report = stderr.next().expect("a reload report").unwrap();
    assert!(report.contains("reloaded"), "{report}");
    assert!(
        !report.contains("restart"),
        "flags given at start are kept on reload: {report}"
    );
    assert_eq!(exchange(addr, post).0.status, 200);
    kill("-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    std::fs::remove_file(&path).unwrap();
}

/// Keeps both shards of `addr` busy for `ms` (a handler that blocks its thread).
fn block_both_shards(addr: std::net::SocketAddr, ms: u64) -> Vec<BufReader<std::net::TcpStream>> {
    [0, 1]
        .into_iter()
        .map(|shard| {
            let mut blocker = connect_to_shard(addr, shard);
            blocker
                .get_mut()
                .write_all(get(&format!("/block/{ms}")).as_bytes())
                .unwrap();
            blocker
        })
        .collect()
}

#[test]
fn a_request_waiting_in_the_socket_when_a_stop_begins_is_answered() {
    for _ in 0..8 {
        let server = start_server(test_config());
        let addr = server.local_addr();
        let mut kept = connect_to_shard(addr, 0);
        // Both shards busy: the next request and the stop arrive while nothing runs.
        let blockers = block_both_shards(addr, 150);
        std::thread::sleep(Duration::from_millis(30));
        kept.get_mut().write_all(get("/").as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        server.stop();
        let reply = read_reply(&mut kept, false);
        assert_eq!((reply.status, reply.text()), (200, "hello world".into()));
        // Answered as the stop began (`Connection: close`) or just before it; then the
        // connection ends either way.
        assert!(is_closed(&mut kept), "the connection outlived the stop");
        drop(blockers);
        server.join().unwrap();
    }
}

#[test]
fn a_connection_accepted_before_a_stop_gets_its_first_request_answered() {
    first_request_after_a_stop_is_answered(test_config());
}

#[test]
fn with_handoff_a_connection_made_before_a_stop_gets_its_first_request_answered() {
    let mut config = test_config();
    config.server.balancer = haywire::config::Balancer::Handoff;
    first_request_after_a_stop_is_answered(config);
}

/// A client connected but silent, as a balancer's fresh connection is until its request
/// goes out; the stop begins meanwhile, and only then does the request come. Listeners
/// defer connections until their first bytes, so the listener must still be open then.
fn first_request_after_a_stop_is_answered(config: haywire::config::Config) {
    let server = start_server(config);
    let addr = server.local_addr();
    let mut fresh = BufReader::new(connect(addr));
    std::thread::sleep(Duration::from_millis(50));
    server.stop();
    std::thread::sleep(Duration::from_millis(100));
    fresh.get_mut().write_all(get("/").as_bytes()).unwrap();
    let reply = read_reply(&mut fresh, false);
    assert_eq!((reply.status, reply.text()), (200, "hello world".into()));
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(is_closed(&mut fresh), "the connection outlived the stop");
    server.join().unwrap();
}

#[test]
fn connections_queued_when_a_stop_begins_are_all_answered() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    // Both shards busy: the next connections wait in the listeners' accept queues, their
    // requests sent, while the stop begins.
    let blockers = block_both_shards(addr, 300);
    std::thread::sleep(Duration::from_millis(30));
    let mut queued: Vec<_> = (0..8)
        .map(|_| {
            let mut stream = connect(addr);
            stream.write_all(get("/").as_bytes()).unwrap();
            BufReader::new(stream)
        })
        .collect();
    server.stop();
    // Accepted before the listeners close (nothing queued is reset), answered, closed.
    for (i, reader) in queued.iter_mut().enumerate() {
        let reply = read_reply(reader, false);
        assert_eq!(
            (i, reply.status, reply.text()),
            (i, 200, "hello world".into())
        );
        assert!(is_closed(reader), "queued connection {i} outlived the stop");
    }
    drop(blockers);
    server.join().unwrap();
}

/// When the grace is over, a connection still waiting for its handler is answered 503
/// and closed at once: not left open (its socket outlived the shard before) until the
/// process exits.
#[test]
fn the_end_of_the_grace_answers_busy_connections_and_closes_them() {
    let mut config = test_config();
    config.server.shutdown_grace = 0.5;
    let running = start_server(config);
    let mut busy = connect(running.local_addr());
    busy.write_all(get("/slow/20000").as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let stopped = std::time::Instant::now();
    running.stop();
    running.join().unwrap();
    let mut reader = BufReader::new(busy);
    let reply = read_reply(&mut reader, false);
    assert_eq!(
        (reply.status, reply.text()),
        (503, "server stopping\n".into())
    );
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(is_closed(&mut reader));
    // Well before the handler's 20 s (the client's read timeout is 10 s).
    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "{:?}",
        stopped.elapsed()
    );
}
