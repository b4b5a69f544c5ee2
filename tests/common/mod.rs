//! A raw-TCP test client and a test server: 2 shards on an ephemeral loopback port.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod counting;
pub mod ws;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use haywire::config::{Config, PlacementKind, RouteConfig};
use haywire::{Request, Response, Router, RunningServer, Server, ShardCtx};

/// A config for tests: 2 unbound shards on 127.0.0.1, port 0, small limits, stock routes.
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.server.address = "127.0.0.1".into();
    config.server.port = 0;
    config.server.shards = 2;
    config.server.placement = PlacementKind::Unbound;
    config.limits.max_request_size = 64 * 1024;
    config.limits.max_head_size = 4096;
    config.limits.max_uri_length = 1024;
    config.routes = vec![
        RouteConfig::Text {
            path: "/".into(),
            body: "hello world".into(),
            content_type: "text/plain; charset=utf-8".into(),
        },
        RouteConfig::Echo {
            path: "/echo".into(),
        },
        RouteConfig::Stats {
            path: "/stats".into(),
        },
        RouteConfig::Metrics {
            path: "/metrics".into(),
        },
    ];
    config
}

/// The body of `/big`: 64 KiB.
pub static BIG: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// Test routes on top of the stock ones.
pub fn test_routes(router: &mut Router, shard: &Rc<ShardCtx>) {
    let id = shard.id();
    router.get("/shard", move |_: Request| Response::text(format!("{id}")));
    // Who asked, and how: `shard peer secure`.
    router.get("/peer", move |req: Request| {
        let peer = req.peer_addr().map_or("none".into(), |a| a.to_string());
        Response::text(format!("{id} {peer} {}", req.is_secure()))
    });
    // The TLS connection's version and cipher suite, or `plain`.
    router.get("/tls", |req: Request| {
        Response::text(req.tls().map_or("plain".into(), |tls| {
            format!("{} {:#06x}", tls.version_name(), tls.cipher_suite)
        }))
    });
    router.get("/items/:id", |req: Request| {
        Response::text(req.param("id").unwrap_or("?").to_owned())
    });
    router.get("/users/*", |req: Request| {
        Response::text(format!("user {}", req.path()))
    });
    router.get("/files/:dir/*", |req: Request| {
        Response::text(format!("dir {}", req.param("dir").unwrap_or("?")))
    });
    router.get("/slow/:ms", |req: Request| async move {
        let ms: u64 = req.param("ms").and_then(|v| v.parse().ok()).unwrap_or(0);
        glommio::timer::sleep(Duration::from_millis(ms)).await;
        Response::text(format!("slept {ms}"))
    });
    router.get("/big", |_: Request| Response::bytes(&BIG[..]));
    // Holds the whole shard (a blocking handler), so input queues up behind it.
    router.get("/block/:ms", |req: Request| {
        let ms: u64 = req.param("ms").and_then(|v| v.parse().ok()).unwrap_or(0);
        std::thread::sleep(Duration::from_millis(ms));
        Response::text("unblocked")
    });
    router.get("/panic", |_: Request| -> Response {
        panic!("handler failure on purpose")
    });
    router.get("/panic-async", |_: Request| async {
        panic!("async handler failure on purpose") as Response
    });
}

/// Starts a fresh server with the test config and routes.
pub fn start_server(config: Config) -> RunningServer {
    Server::new(config)
        .routes(test_routes)
        .start()
        .expect("server starts")
}

/// One server shared by every test in a binary.
pub fn shared_server() -> SocketAddr {
    static SERVER: OnceLock<SocketAddr> = OnceLock::new();
    *SERVER.get_or_init(|| {
        let running = start_server(test_config());
        let addr = running.local_addr();
        // Runs until the test process exits.
        std::mem::forget(running);
        addr
    })
}

/// A connected client with a 10 s read timeout, so a hang fails instead of blocking.
pub fn connect(addr: SocketAddr) -> TcpStream {
    client(TcpStream::connect(addr).expect("connect"))
}

/// A new connection as the tests use it: reads time out after 10 s, no Nagle delay.
fn client(stream: TcpStream) -> TcpStream {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// A parsed response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response; `head_only` for a HEAD request (no body follows).
pub fn read_reply<R: BufRead>(reader: &mut R, head_only: bool) -> Reply {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    assert!(line.starts_with("HTTP/1.1 "), "bad status line {line:?}");
    let status: u16 = line[9..12].parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end_matches("\r\n");
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(": ").expect("header has ': '");
        headers.push((name.to_owned(), value.to_owned()));
    }
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    if !head_only {
        if let Some(len) = reply.header("content-length") {
            let mut body = vec![0; len.parse().unwrap()];
            reader.read_exact(&mut body).expect("body");
            reply.body = body;
        }
    }
    reply
}

/// Sends `wire` on a new connection and reads one response.
pub fn exchange(addr: SocketAddr, wire: &[u8]) -> (Reply, BufReader<TcpStream>) {
    let mut stream = connect(addr);
    stream.write_all(wire).unwrap();
    let mut reader = BufReader::new(stream);
    let reply = read_reply(&mut reader, false);
    (reply, reader)
}

/// Whether the server closed the connection: the next read sees EOF (or a reset).
pub fn is_closed<R: Read>(reader: &mut R) -> bool {
    let mut byte = [0u8; 1];
    match reader.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// A keep-alive connection to `addr` served by shard `want`, found by asking `/shard`
/// on fresh connections (the kernel spreads them over the shards). Bounded: a shard
/// that no connection reaches in 500 tries is dead, and the test fails saying so.
pub fn connect_to_shard(addr: SocketAddr, want: usize) -> BufReader<TcpStream> {
    connect_to_shard_with(addr, want, connect)
}

/// [`connect_to_shard`], opening each try with `open`.
fn connect_to_shard_with(
    addr: SocketAddr,
    want: usize,
    open: fn(SocketAddr) -> TcpStream,
) -> BufReader<TcpStream> {
    for _ in 0..500 {
        let mut stream = open(addr);
        stream.write_all(get("/shard").as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        if read_reply(&mut reader, false).text() == want.to_string() {
            return reader;
        }
    }
    panic!("no connection reached shard {want} in 500 tries: is it dead?");
}

/// Two keep-alive connections to each of `shards` shards, in shard order: one to keep
/// the shard busy (in Ethernet-sized segments: [`connect_small_segments`]), one to ask
/// it something meanwhile (`assert_shard_answers`).
pub fn two_on_every_shard(
    addr: SocketAddr,
    shards: usize,
) -> Vec<(BufReader<TcpStream>, BufReader<TcpStream>)> {
    (0..shards)
        .map(|s| {
            let flood = connect_to_shard_with(addr, s, connect_small_segments);
            (flood, connect_to_shard(addr, s))
        })
        .collect()
}

/// [`connect`] with segments of at most 1,400 bytes, as on Ethernet. Loopback's are
/// 64 KiB: a socket that holds one full segment then falls short of the server's
/// 64 KiB read, which marks it drained and lets the shard wait, so a client that sends
/// without pause could not make a shard that never yields hold on to it.
pub fn connect_small_segments(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .unwrap();
    socket.set_mss(1400).unwrap();
    socket.connect(&addr.into()).expect("connect");
    client(socket.into())
}

/// The work a flooded shard may do for its flood while a request on another of its
/// connections waits, in the flood tests' pieces of 1 ms: 5 s of it. A shard that
/// yields answered within 340 pieces (requests, streamed or uploaded pieces, WebSocket
/// messages) in runs beside two busy loops on a 2-core machine; one that does not
/// never answers, its flood's client never letting it wait.
pub const FLOOD_WORK_LIMIT: u64 = 5_000;

/// Asks `/shard` on `probe`, a keep-alive connection to shard `shard`, while another
/// connection there is busy (`busy` says how), for which `worked` counts the pieces of
/// work (1 ms each) the shard has done: the answer must come before the shard has done
/// `FLOOD_WORK_LIMIT` more, or the busy connection holds its shard. Measured in the
/// flood's own work, not in time, so that a loaded machine, which slows the shard's
/// work for both, does not fail it; time bounds the wait only as a last resort.
pub fn assert_shard_answers(
    probe: &mut BufReader<TcpStream>,
    shard: usize,
    busy: &str,
    worked: impl Fn() -> u64,
) {
    let started = std::time::Instant::now();
    let before = worked();
    probe.get_mut().write_all(get("/shard").as_bytes()).unwrap();
    probe
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    loop {
        // Counted before the read: work done after the answer came would not count.
        let done = worked() - before;
        match probe.fill_buf() {
            Ok([]) => panic!("shard {shard} {busy} closed another connection"),
            Ok(_) => break,
            Err(e) if timed_out(&e) => {}
            Err(e) => panic!("shard {shard} {busy}: another connection failed: {e}"),
        }
        assert!(
            done < FLOOD_WORK_LIMIT,
            "shard {shard} {busy} did not answer another connection while it did {done} \
             pieces of work for the flood ({:?})",
            started.elapsed()
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "shard {shard} {busy} neither answered another connection nor did \
             {FLOOD_WORK_LIMIT} pieces of work for the flood in 60 s ({done} done)"
        );
    }
    probe
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut line = String::new();
    probe.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line:?}");
    // An answer that came because the flood had ended (its connection cut, say)
    // proves nothing: it must still be served.
    let answered = worked();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while worked() == answered {
        assert!(
            std::time::Instant::now() < deadline,
            "shard {shard} {busy} answered another connection only once the flood stopped"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until `running` says that every flood of a test is being served. Up to 60 s:
/// this only makes sure the floods have started, and a loaded machine may start them
/// slowly.
pub fn wait_for_floods(what: &str, running: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !running() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} did not start in 60 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes `batch` over and over on `socket`, without pause, from a new thread until
/// `stop` (the client of the tests where one connection must not hold its shard).
/// Partial writes go on where they stopped: a request, chunk or frame cut short would
/// end the connection. Each write waits at most 200 ms, so the thread sees `stop` soon
/// whatever the server does.
pub fn write_without_pause(
    mut socket: TcpStream,
    batch: Vec<u8>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    socket
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    std::thread::spawn(move || {
        let mut at = 0;
        while !stop.load(Ordering::Relaxed) {
            match socket.write(&batch[at..]) {
                Ok(n) => at = (at + n) % batch.len(),
                Err(e) if !timed_out(&e) => break,
                Err(_) => {}
            }
        }
    })
}

/// Whether a socket call failed only because its timeout passed.
pub fn timed_out(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// A GET request for `path`.
pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// The server's `/stats` report (JSON), on a fresh connection.
pub fn stats(addr: SocketAddr) -> serde_json::Value {
    let (reply, _) = exchange(addr, get("/stats").as_bytes());
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    serde_json::from_slice(&reply.body).unwrap()
}

/// A child process (the `haywire` binary) killed when dropped unless it has exited, so
/// a failing test leaves no server running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.0.kill().ok();
            self.0.wait().ok();
        }
    }
}
