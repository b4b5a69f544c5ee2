//! Serving on a Unix socket (`server.unix`, or one inherited through
//! `Server::listener`): both shards accept from the one socket, keep-alive and
//! pipelining work, a stale socket file is replaced, a live one is not stolen, and the
//! file goes at a clean stop, after the drain has answered what was in flight.

mod common;

use std::collections::BTreeSet;
use std::io::{BufReader, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common::{get, is_closed, read_reply, test_config, test_routes, Reply};
use haywire::config::{Balancer, Config};
use haywire::{RunningServer, Server};

/// A fresh socket path in its own directory under the system temporary directory,
/// removed when dropped (short: a socket path holds at most 107 bytes).
struct SocketDir(PathBuf);

impl SocketDir {
    fn new() -> SocketDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hw-unix-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        SocketDir(dir)
    }

    fn path(&self) -> PathBuf {
        self.0.join("s.sock")
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The test config (2 shards) listening on `path`.
fn unix_config(path: &Path) -> Config {
    let mut config = test_config();
    config.server.unix = path.to_str().unwrap().into();
    config
}

fn start(config: Config) -> RunningServer {
    Server::new(config)
        .routes(test_routes)
        .start()
        .expect("server starts")
}

/// A client connection with a 10 s read timeout, so a hang fails instead of blocking.
fn connect(path: &Path) -> UnixStream {
    let stream = UnixStream::connect(path).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Sends `wire` on a new connection and reads one response.
fn exchange(path: &Path, wire: &str) -> (Reply, BufReader<UnixStream>) {
    let mut stream = connect(path);
    stream.write_all(wire.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let reply = read_reply(&mut reader, false);
    (reply, reader)
}

/// The shards that answer `/shard` on fresh connections, until both have (at most 500
/// tries: every shard's epoll set reports each connection and the first to accept
/// serves it, so which one does is up to the scheduler).
fn shards_reached(path: &Path) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..500 {
        let (reply, _) = exchange(path, &get("/shard"));
        assert_eq!(reply.status, 200);
        seen.insert(reply.text());
        if seen.len() == 2 {
            break;
        }
    }
    seen
}

/// Stops `server` and waits (at most 30 s) for it to have stopped.
fn stop_and_join(server: RunningServer) {
    server.stop();
    let (done, joined) = mpsc::channel();
    std::thread::spawn(move || done.send(server.join()));
    joined
        .recv_timeout(Duration::from_secs(30))
        .expect("the server did not stop")
        .expect("the server stopped cleanly");
}

fn both_shards() -> BTreeSet<String> {
    ["0", "1"].map(String::from).into()
}

#[test]
fn both_shards_accept_from_the_socket_and_the_file_goes_at_stop() {
    let dir = SocketDir::new();
    let path = dir.path();
    let server = start(unix_config(&path));
    assert_eq!(server.unix_path(), Some(path.as_path()));
    assert_eq!(server.local_addr().port(), 0);
    assert_eq!(shards_reached(&path), both_shards());
    // A Unix socket's peer has no address.
    let (reply, _) = exchange(&path, &get("/peer"));
    assert!(reply.text().ends_with(" none false"), "{}", reply.text());
    let (reply, _) = exchange(&path, &get("/stats"));
    assert_eq!(reply.status, 200);
    stop_and_join(server);
    assert!(!path.exists(), "the socket file is removed at stop");
}

#[test]
fn with_handoff_both_shards_serve_the_socket() {
    let dir = SocketDir::new();
    let path = dir.path();
    let mut config = unix_config(&path);
    config.server.balancer = Balancer::Handoff;
    config.server.handoff = haywire::config::HandoffPolicy::RoundRobin;
    let server = start(config);
    assert_eq!(shards_reached(&path), both_shards());
    stop_and_join(server);
    assert!(!path.exists());
}

#[test]
fn keep_alive_and_pipelining_over_the_socket() {
    let dir = SocketDir::new();
    let path = dir.path();
    let server = start(unix_config(&path));
    let mut stream = connect(&path);
    stream
        .write_all(format!("{}{}{}", get("/items/1"), get("/items/2"), get("/items/3")).as_bytes())
        .unwrap();
    let mut reader = BufReader::new(stream);
    for id in 1..=3 {
        let reply = read_reply(&mut reader, false);
        assert_eq!((reply.status, reply.text()), (200, id.to_string()));
    }
    reader.get_mut().write_all(get("/").as_bytes()).unwrap();
    assert_eq!(read_reply(&mut reader, false).text(), "hello world");
    stop_and_join(server);
}

#[test]
fn a_request_in_flight_at_stop_is_answered_before_the_file_goes() {
    let dir = SocketDir::new();
    let path = dir.path();
    let server = start(unix_config(&path));
    let mut stream = connect(&path);
    stream.write_all(get("/slow/300").as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    // The request is being served (its shard sleeps) when the stop begins.
    std::thread::sleep(Duration::from_millis(100));
    server.stop();
    let reply = read_reply(&mut reader, false);
    assert_eq!((reply.status, reply.text()), (200, "slept 300".to_owned()));
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(is_closed(&mut reader));
    stop_and_join(server);
    assert!(!path.exists());
}

#[test]
fn a_stale_socket_file_is_replaced_and_its_mode_set() {
    let dir = SocketDir::new();
    let path = dir.path();
    // A server that died left its socket file: nothing listens on it.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let mut config = unix_config(&path);
    config.server.unix_mode = 0o600;
    let server = start(config);
    let (reply, _) = exchange(&path, &get("/"));
    assert_eq!(reply.text(), "hello world");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    stop_and_join(server);
}

#[test]
fn a_live_socket_is_not_stolen_and_other_files_are_kept() {
    let dir = SocketDir::new();
    let path = dir.path();
    let first = start(unix_config(&path));
    let error = Server::new(unix_config(&path))
        .start()
        .err()
        .expect("a second server on a live socket fails");
    assert!(error.to_string().contains("key `server.unix`"), "{error}");
    assert!(error.to_string().contains("listening"), "{error}");
    let (reply, _) = exchange(&path, &get("/"));
    assert_eq!(reply.text(), "hello world", "the first server still serves");
    stop_and_join(first);

    std::fs::write(&path, "not a socket").unwrap();
    let error = Server::new(unix_config(&path)).start().err().unwrap();
    assert!(error.to_string().contains("key `server.unix`"), "{error}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
}

#[test]
fn an_inherited_unix_listener_is_served_and_its_file_kept() {
    let dir = SocketDir::new();
    let path = dir.path();
    let listener = UnixListener::bind(&path).unwrap();
    let server = Server::new(test_config())
        .routes(test_routes)
        .listener(OwnedFd::from(listener))
        .start()
        .expect("server starts");
    assert_eq!(server.unix_path(), Some(path.as_path()));
    assert_eq!(shards_reached(&path), both_shards());
    stop_and_join(server);
    assert!(path.exists(), "the file is for whoever bound it to remove");
}

#[test]
fn an_inherited_tcp_listener_is_served() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(test_config())
        .routes(test_routes)
        .listener(OwnedFd::from(listener))
        .start()
        .expect("server starts");
    assert_eq!(server.local_addr(), addr);
    assert_eq!(server.unix_path(), None);
    let (reply, _) = common::exchange(addr, get("/peer").as_bytes());
    assert!(reply.text().contains(" 127.0.0.1:"), "{}", reply.text());
    stop_and_join(server);
}

#[test]
fn a_socket_that_does_not_listen_is_refused() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let error = Server::new(test_config())
        .listener(OwnedFd::from(socket))
        .start()
        .err()
        .expect("a UDP socket is not a listener");
    assert!(error.to_string().contains("not a listening"), "{error}");
}

#[test]
fn the_binary_serves_config_unix_and_removes_the_file_on_sigterm() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = SocketDir::new();
    let path = dir.path();
    let config = dir.0.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nunix = \"{}\"\nshards = 2\nplacement = \"unbound\"\n\
             [[route]]\nhandler = \"text\"\npath = \"/\"\nbody = \"hello world\"\n",
            path.display()
        ),
    )
    .unwrap();
    let mut child = common::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_haywire"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Lines arrive through a channel, so a banner without an address line fails after
    // a timeout instead of blocking.
    let stdout = BufReader::new(child.0.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let address = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("an address line in the banner");
        if let Some(address) = line.trim().strip_prefix("address:") {
            break address.trim().to_owned();
        }
    };
    assert_eq!(address, format!("unix:{}", path.display()));
    let (reply, _) = exchange(&path, &get("/"));
    assert_eq!(reply.text(), "hello world");
    let pid = child.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    assert!(!path.exists(), "the socket file is removed at stop");
}
