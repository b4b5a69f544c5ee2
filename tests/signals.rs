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
const CONFIG_FILE: &str = "HAYWIRE_SIGNALS_CONFIG";

fn reload_config(max_request_size: usize, port: u16) -> String {
    format!(
        "[server]\naddress = \"127.0.0.1\"\nport = {port}\nshards = 2\nplacement = \"unbound\"\n\
         [limits]\nmax_request_size = {max_request_size}\n\
         [[route]]\nhandler = \"echo\"\npath = \"/echo\"\n"
    )
}

fn post(size: usize) -> Vec<u8> {
    let mut wire =
        format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\r\n").into_bytes();
    wire.resize(wire.len() + size, b'x');
    wire
}

fn sighup_reloads_limits_reports_restart_keys_and_rejects_a_bad_file() {
    let path = std::env::temp_dir().join(format!("haywire-reload-{}.toml", std::process::id()));
    std::fs::write(&path, reload_config(1000, 0)).unwrap();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(CHILD, "1")
        .env(CONFIG_FILE, &path)
        .stderr(Stdio::piped());
    let (mut child, addr) = spawn_child_with(&mut command);
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    thread::spawn(move || {
        stderr
            .lines()
            .map_while(Result::ok)
            .for_each(|l| drop(lines_tx.send(l)))
    });
    let next_line = || {
        lines
            .recv_timeout(Duration::from_secs(5))
            .expect("a reload report")
    };

    // A persistent connection that lives through both reloads.
    let mut kept = connect(addr);
    let mut kept_reader = BufReader::new(kept.try_clone().unwrap());
    kept.write_all(&post(2000)).unwrap();
    assert_eq!(read_reply(&mut kept_reader, false).status, 413);
    let mut kept = connect(addr);
    let mut kept_reader = BufReader::new(kept.try_clone().unwrap());
    kept.write_all(&post(10)).unwrap();
    assert_eq!(read_reply(&mut kept_reader, false).status, 200);

    // A larger limit applies; the new port needs a restart and is left alone.
    std::fs::write(&path, reload_config(5000, 1)).unwrap();
    signal(&child, "HUP");
    let report = next_line();
    assert!(report.contains("server.port"), "{report}");
    kept.write_all(&post(2000)).unwrap();
    assert_eq!(
        read_reply(&mut kept_reader, false).status,
        200,
        "the kept connection"
    );
    let (reply, _) = exchange(addr, &post(2000));
    assert_eq!(reply.status, 200, "a new connection on the old port");

    // An invalid file is rejected by key; the running config stays.
    std::fs::write(&path, reload_config(0, 1)).unwrap();
    signal(&child, "HUP");
    let report = next_line();
    assert!(report.contains("limits.max_request_size"), "{report}");
    let (reply, _) = exchange(addr, &post(2000));
    assert_eq!(reply.status, 200);
    let (reply, _) = exchange(addr, &post(6000));
    assert_eq!(reply.status, 413);
    kept.write_all(&post(100)).unwrap();
    assert_eq!(
        read_reply(&mut kept_reader, false).status,
        200,
        "the kept connection"
    );

    signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(5)).code(),
        Some(0)
    );
    std::fs::remove_file(&path).unwrap();
}

/// The child: the test config with `HAYWIRE_SIGNALS_CHILD` as the shutdown grace, or
/// the file named by `HAYWIRE_SIGNALS_CONFIG`, which SIGHUP then reloads.
fn child_main() {
    let file = std::env::var_os(CONFIG_FILE);
    let config = match &file {
        Some(path) => haywire::Config::load(path.as_ref()).unwrap(),
        None => {
            let mut config = test_config();
            config.server.shutdown_grace = std::env::var(CHILD).unwrap().parse().unwrap();
            config
        }
    };
    let server = start_server(config);
    let mut reloader = file.map(|path| server.reloader(path, Default::default()));
    server
        .stop_on_signals(move || {
            if let Some(reloader) = &mut reloader {
                reloader.reload_and_report();
            }
        })
        .unwrap();
    println!("{}", server.local_addr());
    server.join().unwrap();
}

fn spawn_child(grace: &str) -> (Child, SocketAddr) {
    spawn_child_with(Command::new(std::env::current_exe().unwrap()).env(CHILD, grace))
}

fn spawn_child_with(command: &mut Command) -> (Child, SocketAddr) {
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
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
    let tests: [(&str, fn()); 3] = [
        (
            "sighup_reloads_limits_reports_restart_keys_and_rejects_a_bad_file",
            sighup_reloads_limits_reports_restart_keys_and_rejects_a_bad_file,
        ),
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
