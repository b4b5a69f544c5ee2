//! Graceful shutdown on SIGTERM, checked against a real child process.
//!
//! The test binary runs itself as the child (with `HAYWIRE_SIGNALS_CHILD` set): a
//! 2-shard server with the test routes, stopping on signals like the `haywire` binary.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const CHILD: &str = "HAYWIRE_SIGNALS_CHILD";

fn child_main() {
    let mut config = test_config();
    config.server.shutdown_grace = std::env::var(CHILD).unwrap().parse().unwrap();
    let server = start_server(config);
    server.stop_on_signals(|| {}).unwrap();
    println!("{}", server.local_addr());
    server.join().unwrap();
}

fn spawn_child(grace: &str) -> (Child, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, grace)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().parse().unwrap())
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < limit,
            "child still running after {limit:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits_0() {
    let (mut child, addr) = spawn_child("10");
    // An idle keep-alive connection and a request whose handler is still running.
    let (reply, mut idle) = exchange(addr, get("/").as_bytes());
    assert_eq!(reply.status, 200);
    let mut busy = connect(addr);
    busy.write_all(get("/slow/1500").as_bytes()).unwrap();
    thread::sleep(Duration::from_millis(300));

    signal(&child, "TERM");
    thread::sleep(Duration::from_millis(300));
    assert!(is_closed(&mut idle), "idle connection left open");
    assert!(
        TcpStream::connect(addr).is_err(),
        "a new connection was accepted after SIGTERM"
    );

    let mut reader = BufReader::new(busy);
    let reply = read_reply(&mut reader, false);
    assert_eq!(
        (reply.status, reply.text()),
        (200, "slept 1500".to_string())
    );
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(is_closed(&mut reader));
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(5)).code(),
        Some(0)
    );
}

fn a_second_signal_exits_at_once() {
    let (mut child, addr) = spawn_child("30");
    let mut busy = connect(addr);
    busy.write_all(get("/slow/20000").as_bytes()).unwrap();
    thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    thread::sleep(Duration::from_millis(200));
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited before the grace period with work in flight"
    );
    signal(&child, "INT");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(3)).code(),
        Some(1)
    );
}

fn main() {
    if std::env::var_os(CHILD).is_some() {
        return child_main();
    }
    let tests: [(&str, fn()); 2] = [
        (
            "sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits_0",
            sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits_0,
        ),
        (
            "a_second_signal_exits_at_once",
            a_second_signal_exits_at_once,
        ),
    ];
    let mut failed = 0;
    for (name, test) in tests {
        match std::panic::catch_unwind(test) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("signals: {} passed, {failed} failed", tests.len() - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}
