//! HTTPS: a real rustls client over TCP against a 2-shard server with a certificate made
//! here; plaintext, garbage and truncated handshakes; reload of the certificate; curl
//! and openssl (the test command installs both).

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use haywire::config::{Balancer, Config, ConfigError};
use haywire::{RunningServer, Server};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, HandshakeKind, RootCertStore, StreamOwned};

use common::*;

/// A self-signed certificate for `localhost` written to `dir` (cert.pem, key.pem).
struct Cert {
    der: CertificateDer<'static>,
    cert: PathBuf,
    key: PathBuf,
}

fn make_cert(dir: &Path) -> Cert {
    std::fs::create_dir_all(dir).unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    Cert {
        der: made.cert.der().clone(),
        cert,
        key,
    }
}

fn temp_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("haywire-tls-{name}-{}", std::process::id()))
}

fn tls_config(cert: &Cert) -> Config {
    let mut config = test_config();
    config.tls.cert = cert.cert.display().to_string();
    config.tls.key = cert.key.display().to_string();
    config
}

fn start_tls(cert: &Cert) -> RunningServer {
    start_server(tls_config(cert))
}

/// A client that trusts `cert` only, offering `versions`.
fn client(
    cert: &Cert,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cert.der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

type Tls = BufReader<StreamOwned<ClientConnection, TcpStream>>;

fn connect_tls(addr: SocketAddr, config: &Arc<ClientConfig>) -> std::io::Result<Tls> {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(config.clone(), name).unwrap();
    let mut stream = StreamOwned::new(conn, connect(addr));
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(BufReader::new(stream))
}

fn tls_get(reader: &mut Tls, path: &str) -> Reply {
    reader.get_mut().write_all(get(path).as_bytes()).unwrap();
    reader.get_mut().flush().unwrap();
    read_reply(reader, false)
}

/// `/stats` over TLS.
fn tls_stats(addr: SocketAddr, config: &Arc<ClientConfig>) -> serde_json::Value {
    let mut reader = connect_tls(addr, config).unwrap();
    let reply = tls_get(&mut reader, "/stats");
    assert_eq!(reply.status, 200);
    serde_json::from_slice(&reply.body).unwrap()
}

/// Whether the server closed a raw connection: EOF or a reset within the read timeout.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            // An alert may come first.
            Ok(_) => continue,
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

#[test]
fn get_pipelining_and_keep_alive_over_tls_1_3_and_1_2() {
    let cert = make_cert(&temp_dir("basic"));
    let server = start_tls(&cert);
    let addr = server.local_addr();
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let config = client(&cert, versions);
        let mut reader = connect_tls(addr, &config).unwrap();
        let conn = &reader.get_ref().conn;
        assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert_eq!(conn.protocol_version(), Some(versions[0].version));
        // Handlers see the version and cipher suite negotiated.
        let suite = u16::from(conn.negotiated_cipher_suite().unwrap().suite());
        let name = ["TLSv1.3", "TLSv1.2"][usize::from(versions[0] == &rustls::version::TLS12)];
        assert_eq!(
            tls_get(&mut reader, "/tls").text(),
            format!("{name} {suite:#06x}")
        );
        // Keep-alive: several requests, one after another, on one connection.
        for _ in 0..3 {
            let reply = tls_get(&mut reader, "/");
            assert_eq!((reply.status, reply.text()), (200, "hello world".into()));
        }
        // Pipelining: 16 requests in one write, answered in order.
        let wire: String = (0..16).map(|i| get(&format!("/items/{i}"))).collect();
        reader.get_mut().write_all(wire.as_bytes()).unwrap();
        for i in 0..16 {
            assert_eq!(read_reply(&mut reader, false).text(), i.to_string());
        }
        // A body larger than one TLS record, both ways.
        let big = tls_get(&mut reader, "/big");
        assert_eq!(big.body.len(), BIG.len());
        let body = vec![b'y'; 40_000];
        let head = format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        reader.get_mut().write_all(head.as_bytes()).unwrap();
        reader.get_mut().write_all(&body).unwrap();
        assert_eq!(read_reply(&mut reader, false).body, body);
        // Connection: close ends with close_notify: a clean end for the client.
        reader
            .get_mut()
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert_eq!(read_reply(&mut reader, false).status, 200);
        let mut rest = Vec::new();
        reader
            .read_to_end(&mut rest)
            .expect("close_notify, not a bare EOF");
        assert!(rest.is_empty());
    }
    let report = tls_stats(addr, &client(&cert, &[&rustls::version::TLS13]));
    assert_eq!(report["total"]["tls"]["handshakes"], 3);
    assert_eq!(report["total"]["tls"]["failed"], 0);
    server.stop();
    server.join().unwrap();
}

#[test]
fn websocket_echo_and_close_over_tls() {
    use common::ws::*;
    use haywire::ws::{Message, WebSocket};
    use haywire::{Request, Router, ShardCtx};

    let cert = make_cert(&temp_dir("websocket"));
    let server = Server::new(tls_config(&cert))
        .routes(|router: &mut Router, _: &std::rc::Rc<ShardCtx>| {
            router.websocket("/ws", |_: Request, ws: WebSocket| async move {
                while let Some(message) = ws.recv().await {
                    if let Message::Text(_) | Message::Binary(_) = message {
                        let _ = ws.send(message).await;
                    }
                }
            });
        })
        .start()
        .unwrap();
    let config = client(&cert, &[&rustls::version::TLS13]);
    let stream = connect_tls(server.local_addr(), &config)
        .unwrap()
        .into_inner();
    let (mut ws, reply) = Client::open(stream, "/ws", "");
    assert_eq!(reply.status, 101);
    ws.frame(true, TEXT, b"over tls");
    assert_eq!(ws.read_text(), "over tls");
    // Larger than one TLS record both ways.
    let big: Vec<u8> = (0..40_000).map(|i| i as u8).collect();
    ws.frame(true, BINARY, &big);
    assert_eq!(ws.read(), (true, BINARY, big));
    ws.frame(true, CLOSE, &1000u16.to_be_bytes());
    assert_eq!(ws.read_close(), Some(1000));
    let mut rest = Vec::new();
    ws.io
        .read_to_end(&mut rest)
        .expect("close_notify, not a bare EOF");
    assert!(rest.is_empty());
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_second_connection_resumes_the_session_on_any_shard() {
    let cert = make_cert(&temp_dir("resume"));
    let server = start_tls(&cert);
    let addr = server.local_addr();
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let config = client(&cert, versions);
        let mut first = connect_tls(addr, &config).unwrap();
        assert_eq!(
            first.get_ref().conn.handshake_kind(),
            Some(HandshakeKind::Full)
        );
        // TLS 1.3 tickets arrive after the handshake: read a response to take them.
        assert_eq!(tls_get(&mut first, "/").status, 200);
        // The kernel spreads connections over both shards; every one resumes.
        for _ in 0..6 {
            let mut next = connect_tls(addr, &config).unwrap();
            assert_eq!(
                next.get_ref().conn.handshake_kind(),
                Some(HandshakeKind::Resumed),
                "{versions:?}"
            );
            assert_eq!(tls_get(&mut next, "/").status, 200);
        }
    }
    let report = tls_stats(addr, &client(&cert, &[&rustls::version::TLS13]));
    assert_eq!(report["total"]["tls"]["resumed"], 12);
    server.stop();
    server.join().unwrap();
}

#[test]
fn plaintext_garbage_and_truncated_handshakes_are_closed_and_counted() {
    let cert = make_cert(&temp_dir("bad"));
    let server = start_tls(&cert);
    let addr = server.local_addr();
    let config = client(&cert, &[&rustls::version::TLS13]);

    // Plaintext HTTP to the TLS port.
    let mut plain = connect(addr);
    plain.write_all(get("/").as_bytes()).unwrap();
    assert!(closed_by_server(&mut plain));

    // A handshake record full of garbage.
    let mut garbage = connect(addr);
    let mut wire = vec![0x16, 3, 1, 0, 40];
    wire.extend((0..40u8).map(|i| i.wrapping_mul(37)));
    garbage.write_all(&wire).unwrap();
    assert!(closed_by_server(&mut garbage));

    // Half a real ClientHello, then the end of input.
    let mut hello = Vec::new();
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = ClientConnection::new(config.clone(), name).unwrap();
    conn.write_tls(&mut hello).unwrap();
    let mut cut = connect(addr);
    cut.write_all(&hello[..hello.len() / 2]).unwrap();
    cut.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed_by_server(&mut cut));

    // Non-TLS binary noise.
    let mut noise = connect(addr);
    noise.write_all(&[0u8; 64]).unwrap();
    assert!(closed_by_server(&mut noise));

    let report = tls_stats(addr, &config);
    let tls = &report["total"]["tls"];
    assert_eq!(tls["plaintext"], 1, "{tls}");
    assert_eq!(tls["failed"], 2, "{tls}");
    assert_eq!(tls["truncated"], 1, "{tls}");
    // The same counters in /metrics.
    let mut reader = connect_tls(addr, &config).unwrap();
    let metrics = tls_get(&mut reader, "/metrics").text();
    for line in [
        "haywire_tls_plaintext_total{shard=\"total\"} 1",
        "haywire_tls_failed_total{shard=\"total\"} 2",
        "haywire_tls_truncated_total{shard=\"total\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    // The server is unharmed.
    assert_eq!(tls_get(&mut reader, "/").status, 200);
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_bad_certificate_or_key_is_a_config_error_naming_the_key() {
    let dir = temp_dir("config");
    let cert = make_cert(&dir);
    let other = make_cert(&dir.join("other"));
    let toml = |c: &Path, k: &Path| {
        format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            c.display(),
            k.display()
        )
    };
    let missing = dir.join("missing.pem");
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let cases: [(String, &str); 5] = [
        (toml(&missing, &cert.key), "tls.cert"),
        (toml(&not_pem, &cert.key), "tls.cert"),
        (toml(&cert.cert, &missing), "tls.key"),
        (toml(&cert.cert, &other.key), "tls.key"),
        (
            format!("[tls]\nkey = \"{}\"\n", cert.key.display()),
            "tls.cert",
        ),
    ];
    for (text, key) in &cases {
        let err: ConfigError = Config::from_toml(text).unwrap_err();
        assert_eq!(err.key, *key, "{text}: {err}");
    }
    assert!(Config::from_toml(&toml(&cert.cert, &cert.key)).is_ok());
    // The binary exits 2 and names the key.
    let path = dir.join("bad.toml");
    std::fs::write(&path, &cases[0].0).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_haywire"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tls.cert"), "{stderr}");
    // A programmatic config with a bad file does not start.
    let mut config = test_config();
    config.tls.cert = missing.display().to_string();
    config.tls.key = cert.key.display().to_string();
    let err = Server::new(config).start().err().expect("refused");
    assert!(err.to_string().contains("tls.cert"), "{err}");
}

#[test]
fn a_reload_swaps_the_certificate_for_new_connections_only() {
    let dir = temp_dir("reload");
    let first = make_cert(&dir);
    let path = dir.join("haywire.toml");
    let text = |cert: &Cert| {
        format!(
            "[server]\naddress = \"127.0.0.1\"\nport = 0\nshards = 2\nplacement = \"unbound\"\n\
             [tls]\ncert = \"{}\"\nkey = \"{}\"\n\
             [[route]]\nhandler = \"text\"\npath = \"/\"\nbody = \"hello world\"\n",
            cert.cert.display(),
            cert.key.display()
        )
    };
    std::fs::write(&path, text(&first)).unwrap();
    let server = Server::new(Config::load(&path).unwrap()).start().unwrap();
    let addr = server.local_addr();
    let mut reloader = server.reloader(&path, Default::default());
    let trusts_first = client(&first, &[&rustls::version::TLS13]);
    let mut open = connect_tls(addr, &trusts_first).unwrap();
    assert_eq!(tls_get(&mut open, "/").status, 200);

    // New files at the same paths.
    let second = make_cert(&dir);
    reloader.reload().unwrap();
    let trusts_second = client(&second, &[&rustls::version::TLS13]);
    let mut fresh = connect_tls(addr, &trusts_second).unwrap();
    assert_eq!(tls_get(&mut fresh, "/").status, 200);
    assert!(
        connect_tls(addr, &client(&first, &[&rustls::version::TLS13])).is_err(),
        "a new connection still got the old certificate"
    );
    // The connection opened before the reload goes on.
    assert_eq!(tls_get(&mut open, "/").status, 200);

    // A broken certificate is rejected, naming the key; the running one stays.
    std::fs::write(&second.cert, "broken").unwrap();
    assert_eq!(reloader.reload().unwrap_err().key, "tls.cert");
    let mut after = connect_tls(addr, &trusts_second).unwrap();
    assert_eq!(tls_get(&mut after, "/").status, 200);
    server.stop();
    server.join().unwrap();
}

/// `binary` must be installed: the test command (`.ci/test`) installs curl and openssl,
/// so a missing one is a failure, not a skip.
fn require(binary: &str) {
    let found = Command::new(binary).arg("--version").output().is_ok()
        || Command::new(binary).arg("version").output().is_ok();
    assert!(found, "{binary} is not installed (.ci/test installs it)");
}

#[test]
fn curl_and_openssl_speak_to_it() {
    let cert = make_cert(&temp_dir("tools"));
    let server = start_tls(&cert);
    let port = server.local_addr().port();
    require("curl");
    {
        let out = Command::new("curl")
            .args(["-sS", "--http1.1", "--cacert"])
            .arg(&cert.cert)
            .arg("--resolve")
            .arg(format!("localhost:{port}:127.0.0.1"))
            .arg(format!("https://localhost:{port}/"))
            .arg(format!("https://localhost:{port}/items/7"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello world7");
    }
    require("openssl");
    {
        for version in ["-tls1_2", "-tls1_3"] {
            let mut child = Command::new("openssl")
                .args(["s_client", "-quiet", "-alpn", "http/1.1", version])
                .arg("-connect")
                .arg(format!("127.0.0.1:{port}"))
                .arg("-CAfile")
                .arg(&cert.cert)
                .args(["-servername", "localhost", "-verify_return_error"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .unwrap();
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout.starts_with("HTTP/1.1 200") && stdout.ends_with("hello world"),
                "{version}: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_stalled_handshake_gets_the_header_timeout_and_an_unread_client_the_write_timeout() {
    let cert = make_cert(&temp_dir("timeouts"));
    let mut config = tls_config(&cert);
    config.timeouts.header = 0.3;
    config.timeouts.write = 0.5;
    let server = start_server(config);
    let addr = server.local_addr();
    let tls = client(&cert, &[&rustls::version::TLS13]);

    // Half a ClientHello, then silence: closed after `header`, not `keep_alive` (60 s).
    let mut hello = Vec::new();
    let name = ServerName::try_from("localhost").unwrap();
    ClientConnection::new(tls.clone(), name)
        .unwrap()
        .write_tls(&mut hello)
        .unwrap();
    let started = std::time::Instant::now();
    let mut stalled = connect(addr);
    stalled.write_all(&hello[..hello.len() / 2]).unwrap();
    assert!(closed_by_server(&mut stalled));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    // 200 pipelined requests for 64 KiB each, never read: closed after `write`.
    let mut reader = connect_tls(addr, &tls).unwrap();
    let wire: String = (0..200).map(|_| get("/big")).collect();
    reader.get_mut().write_all(wire.as_bytes()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let started = std::time::Instant::now();
    let mut sink = vec![0u8; 1 << 16];
    let mut total = 0;
    loop {
        match reader.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    assert!(total < 200 * BIG.len(), "all {total} bytes arrived");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let report = tls_stats(addr, &tls);
    assert!(
        report["total"]["timeouts"].as_u64().unwrap() >= 2,
        "{report}"
    );
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_request_waiting_in_a_tls_connection_when_a_stop_begins_is_answered() {
    let cert = make_cert(&temp_dir("drain"));
    let tls = client(&cert, &[&rustls::version::TLS13]);
    // Bounded: a shard that no connection reaches in 500 tries is dead.
    let to_shard = |addr, shard: &str| {
        for _ in 0..500 {
            let mut conn = connect_tls(addr, &tls).unwrap();
            if tls_get(&mut conn, "/shard").text() == shard {
                return conn;
            }
        }
        panic!("no TLS connection reached shard {shard} in 500 tries");
    };
    for _ in 0..4 {
        let server = start_tls(&cert);
        let addr = server.local_addr();
        let mut kept = to_shard(addr, "0");
        // Both shards busy: the next request and the stop arrive while nothing runs.
        let blockers: Vec<_> = ["0", "1"]
            .into_iter()
            .map(|shard| {
                let mut blocker = to_shard(addr, shard);
                blocker
                    .get_mut()
                    .write_all(get("/block/150").as_bytes())
                    .unwrap();
                blocker.get_mut().flush().unwrap();
                blocker
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(30));
        kept.get_mut().write_all(get("/").as_bytes()).unwrap();
        kept.get_mut().flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        server.stop();
        let reply = read_reply(&mut kept, false);
        assert_eq!((reply.status, reply.text()), (200, "hello world".into()));
        drop(blockers);
        server.join().unwrap();
    }
}

#[test]
fn a_large_file_streams_over_tls_and_the_connection_goes_on() {
    let dir = temp_dir("static");
    let cert = make_cert(&dir);
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 241) as u8).collect();
    std::fs::write(www.join("big.bin"), &big).unwrap();
    let mut config = tls_config(&cert);
    config.routes.push(haywire::config::RouteConfig::Static {
        path: "/static".into(),
        dir: www.display().to_string(),
        allow_check_then_open: false,
        max_age: None,
        index: "index.html".into(),
    });
    let server = start_server(config);
    let tls = client(&cert, &[&rustls::version::TLS13]);
    let mut reader = connect_tls(server.local_addr(), &tls).unwrap();
    for _ in 0..2 {
        let reply = tls_get(&mut reader, "/static/big.bin");
        assert_eq!(reply.status, 200);
        assert!(reply.body == big);
        assert_eq!(tls_get(&mut reader, "/").text(), "hello world");
    }
    // Copied through rustls, never sent by the kernel as plaintext.
    let report = tls_stats(server.local_addr(), &tls);
    assert_eq!(report["total"]["sendfile_bodies"], 0, "{report}");
    server.stop();
    server.join().unwrap();
}

#[test]
fn alpn_picks_http_1_1_and_refuses_h2_only_clients() {
    let cert = make_cert(&temp_dir("alpn"));
    let server = start_tls(&cert);
    let addr = server.local_addr();
    let with_alpn = |protocols: Vec<Vec<u8>>| {
        let mut config = (*client(&cert, &[&rustls::version::TLS13])).clone();
        config.alpn_protocols = protocols;
        Arc::new(config)
    };
    // No ALPN offered: plain HTTP/1.1 all the same.
    let mut reader = connect_tls(addr, &with_alpn(vec![])).unwrap();
    assert_eq!(reader.get_ref().conn.alpn_protocol(), None);
    assert_eq!(tls_get(&mut reader, "/").status, 200);
    // Only h2: no common protocol, the handshake fails (and is counted).
    assert!(connect_tls(addr, &with_alpn(vec![b"h2".to_vec()])).is_err());
    let report = tls_stats(addr, &client(&cert, &[&rustls::version::TLS13]));
    assert_eq!(report["total"]["tls"]["failed"], 1);
    server.stop();
    server.join().unwrap();
}

/// `GET /peer` answers `shard peer secure`; every shard is reached (within 500 tries, as
/// `connect_to_shard`, so a
/// dead shard fails) and each connection sees its own client address.
fn peers_on_every_shard(mut ask: impl FnMut() -> (SocketAddr, String), secure: bool) {
    let mut seen = [false; 2];
    for _ in 0..500 {
        let (client, text) = ask();
        let fields: Vec<&str> = text.split(' ').collect();
        assert_eq!(
            fields[1..],
            [client.to_string().as_str(), &secure.to_string()],
            "{text}"
        );
        seen[fields[0].parse::<usize>().unwrap()] = true;
        if seen == [true, true] {
            return;
        }
    }
    panic!("not every shard answered: {seen:?}");
}

#[test]
fn a_request_knows_its_client_address_and_whether_it_came_over_tls() {
    for balancer in [Balancer::Reuseport, Balancer::Handoff] {
        let mut config = test_config();
        config.server.balancer = balancer;
        let server = start_server(config);
        peers_on_every_shard(
            || {
                let (reply, reader) = exchange(server.local_addr(), get("/peer").as_bytes());
                (reader.get_ref().local_addr().unwrap(), reply.text())
            },
            false,
        );
        let (reply, _) = exchange(server.local_addr(), get("/tls").as_bytes());
        assert_eq!(reply.text(), "plain");
    }
    let cert = make_cert(&temp_dir("peer"));
    let server = start_tls(&cert);
    let config = client(&cert, &[&rustls::version::TLS13]);
    peers_on_every_shard(
        || {
            let mut reader = connect_tls(server.local_addr(), &config).unwrap();
            let reply = tls_get(&mut reader, "/peer");
            (reader.get_ref().sock.local_addr().unwrap(), reply.text())
        },
        true,
    );
}

/// A CA, and certificates it signs for clients, for mutual TLS.
struct Authority {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    pem: PathBuf,
}

fn make_authority(dir: &Path, name: &str) -> Authority {
    std::fs::create_dir_all(dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    let pem = dir.join(format!("{name}.pem"));
    std::fs::write(&pem, cert.pem()).unwrap();
    Authority { cert, key, pem }
}

/// A client that trusts `server`'s certificate and presents one `authority` signed
/// (none with `None`), and that certificate's DER.
fn mtls_client(server: &Cert, authority: Option<&Authority>) -> (Arc<ClientConfig>, Vec<u8>) {
    mtls_client_numbered(server, authority, 1)
}

/// [`mtls_client`] whose certificate has the serial number `serial`.
fn mtls_client_numbered(
    server: &Cert,
    authority: Option<&Authority>,
    serial: u64,
) -> (Arc<ClientConfig>, Vec<u8>) {
    let mut roots = RootCertStore::empty();
    roots.add(server.der.clone()).unwrap();
    let builder = ClientConfig::builder().with_root_certificates(roots);
    let (config, der) = match authority {
        None => (builder.with_no_client_auth(), Vec::new()),
        Some(authority) => {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(vec!["client-7".into()]).unwrap();
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
            params.serial_number = Some(serial.into());
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "client-7");
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationName, "Haywire, Test");
            let cert = params
                .signed_by(&key, &authority.cert, &authority.key)
                .unwrap();
            let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
            let config = builder
                .with_client_auth_cert(vec![cert.der().clone()], key.into())
                .unwrap();
            (config, cert.der().to_vec())
        }
    };
    (Arc::new(config), der)
}

/// The client certificate `/client-cert` saw (its DER), "none", or `None` when the
/// server refused the connection.
fn client_cert_seen(addr: SocketAddr, config: &Arc<ClientConfig>) -> Option<Vec<u8>> {
    let mut reader = connect_tls(addr, config).ok()?;
    reader
        .get_mut()
        .write_all(get("/client-cert").as_bytes())
        .ok()?;
    reader.get_mut().flush().ok()?;
    let mut line = String::new();
    // TLS 1.3: a refused certificate is known to the client only at its first read.
    std::io::BufRead::read_line(&mut reader, &mut line).ok()?;
    if line.is_empty() {
        return None;
    }
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    let at = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    Some(rest[at..].to_vec())
}

/// A server whose clients need certificates its CA signed (with `auth`); its
/// `/client-cert` answers the one it saw. Returns it, its certificate, its CA and
/// another CA.
fn start_mtls(
    name: &str,
    auth: haywire::config::ClientAuth,
) -> (RunningServer, Cert, Authority, Authority) {
    let dir = temp_dir(name);
    let cert = make_cert(&dir);
    let (ca, stranger) = (make_authority(&dir, "ca"), make_authority(&dir, "stranger"));
    let mut config = tls_config(&cert);
    config.tls.client_ca = ca.pem.display().to_string();
    config.tls.client_auth = auth;
    let server = Server::new(config)
        .routes(test_routes)
        .routes(|router, _| {
            router.get("/client-cert", |req: haywire::Request| {
                let cert = req
                    .client_certificate()
                    .map_or(b"none".to_vec(), <[u8]>::to_vec);
                haywire::Response::bytes(cert).with_close()
            });
            router.get("/client-subject", |req: haywire::Request| {
                let subject = req.tls().and_then(|tls| tls.client_subject.clone());
                haywire::Response::text(subject.map_or("none".into(), String::from))
            });
        })
        .start()
        .expect("server starts");
    (server, cert, ca, stranger)
}

#[test]
fn required_client_certificates_admit_the_cas_clients_only_and_reach_handlers() {
    let (server, cert, ca, stranger) =
        start_mtls("mtls-required", haywire::config::ClientAuth::Required);
    let addr = server.local_addr();
    let (ours, presented) = mtls_client(&cert, Some(&ca));
    // The handler sees the very certificate the client presented.
    let seen = client_cert_seen(addr, &ours).expect("the CA's client is served");
    assert_eq!(seen, presented);
    // Its subject, as RFC 4514 writes it: last RDN first, the comma escaped.
    let mut reader = connect_tls(addr, &ours).unwrap();
    assert_eq!(
        tls_get(&mut reader, "/client-subject").text(),
        r"O=Haywire\, Test,CN=client-7"
    );
    assert_eq!(client_cert_seen(addr, &mtls_client(&cert, None).0), None);
    let strangers = mtls_client(&cert, Some(&stranger)).0;
    assert_eq!(client_cert_seen(addr, &strangers), None);
    // The shards live on: the CA's client is served again.
    assert!(client_cert_seen(addr, &ours).is_some());
}

#[test]
fn optional_client_certificates_let_handlers_tell() {
    let (server, cert, ca, stranger) =
        start_mtls("mtls-optional", haywire::config::ClientAuth::Optional);
    let addr = server.local_addr();
    let none = client_cert_seen(addr, &mtls_client(&cert, None).0);
    assert_eq!(none, Some(b"none".to_vec()));
    let (ours, presented) = mtls_client(&cert, Some(&ca));
    assert_eq!(client_cert_seen(addr, &ours), Some(presented));
    // A certificate that does not verify is refused even when optional.
    let strangers = mtls_client(&cert, Some(&stranger)).0;
    assert_eq!(client_cert_seen(addr, &strangers), None);
}

/// The status line a GET gets over a new connection; TLS 1.3 clients learn of a refused
/// certificate only at their first read, so a refusal is an error or an empty line.
fn first_line(addr: SocketAddr, config: &Arc<ClientConfig>) -> std::io::Result<String> {
    let mut reader = connect_tls(addr, config)?;
    reader.get_mut().write_all(get("/").as_bytes())?;
    reader.get_mut().flush()?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line)?;
    Ok(line)
}

/// `tls.client_crl`: a client certificate its CA has revoked is refused in the
/// handshake, another from the same CA served; a bad CRL file is a config error.
#[test]
fn a_revoked_client_certificate_is_refused() {
    let dir = temp_dir("mtls-crl");
    let cert = make_cert(&dir);
    let ca = make_authority(&dir, "ca");
    let params = |next_update| rcgen::CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2019, 1, 1),
        next_update,
        crl_number: 1u64.into(),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: 2u64.into(),
            revocation_time: rcgen::date_time_ymd(2024, 1, 1),
            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    let crl = params(rcgen::date_time_ymd(2100, 1, 1))
        .signed_by(&ca.cert, &ca.key)
        .unwrap();
    let crl_path = dir.join("crl.pem");
    std::fs::write(&crl_path, crl.pem().unwrap()).unwrap();
    let mut config = tls_config(&cert);
    config.tls.client_ca = ca.pem.display().to_string();
    config.tls.client_crl = crl_path.display().to_string();
    let server = Server::new(config.clone())
        .routes(test_routes)
        .start()
        .expect("server starts");
    let addr = server.local_addr();
    let kept = mtls_client_numbered(&cert, Some(&ca), 1).0;
    let mut reader = connect_tls(addr, &kept).expect("an unrevoked client is served");
    assert_eq!(tls_get(&mut reader, "/").status, 200);
    let revoked = mtls_client_numbered(&cert, Some(&ca), 2).0;
    let refused = first_line(addr, &revoked);
    assert!(
        !matches!(&refused, Ok(line) if !line.is_empty()),
        "{refused:?}"
    );
    server.stop();
    server.join().unwrap();
    // One that expires while the server runs refuses every client from then on.
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let soon = rcgen::date_time_ymd(1970, 1, 1) + (unix + std::time::Duration::from_secs(3));
    let short = params(soon).signed_by(&ca.cert, &ca.key).unwrap();
    std::fs::write(&crl_path, short.pem().unwrap()).unwrap();
    let server = Server::new(config.clone())
        .routes(test_routes)
        .start()
        .expect("server starts");
    let mut reader = connect_tls(server.local_addr(), &kept).expect("served while current");
    assert_eq!(tls_get(&mut reader, "/").status, 200);
    std::thread::sleep(std::time::Duration::from_secs(5));
    // A new client: `kept` would resume its session, which skips the certificate.
    let fresh = mtls_client_numbered(&cert, Some(&ca), 1).0;
    let after = first_line(server.local_addr(), &fresh);
    assert!(!matches!(&after, Ok(line) if !line.is_empty()), "{after:?}");
    server.stop();
    server.join().unwrap();
    // One whose next update has passed is refused, naming its issuer and the date.
    let mut stale = params(rcgen::date_time_ymd(2020, 1, 1));
    stale.revoked_certs.clear();
    let stale = stale.signed_by(&ca.cert, &ca.key).unwrap();
    std::fs::write(&crl_path, stale.pem().unwrap()).unwrap();
    let err = config.validate().unwrap_err();
    assert_eq!(err.key, "tls.client_crl", "{err}");
    assert!(err.message.contains("expired at 2020-01-01"), "{err}");
    std::fs::write(&crl_path, "not a CRL\n").unwrap();
    let err = config.validate().unwrap_err();
    assert_eq!(err.key, "tls.client_crl", "{err}");
    config.tls.client_ca.clear();
    assert_eq!(config.validate().unwrap_err().key, "tls.client_crl");
}

#[test]
fn a_bad_client_ca_is_a_config_error_naming_it() {
    let dir = temp_dir("mtls-config");
    let cert = make_cert(&dir);
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let (c, k) = (cert.cert.display(), cert.key.display());
    for text in [
        format!("[tls]\nclient_ca = \"{c}\""),
        format!("[tls]\ncert = \"{c}\"\nkey = \"{k}\"\nclient_ca = \"/nonexistent.pem\""),
        format!(
            "[tls]\ncert = \"{c}\"\nkey = \"{k}\"\nclient_ca = \"{}\"",
            garbage.display()
        ),
    ] {
        let err: ConfigError = Config::from_toml(&text).unwrap_err();
        assert_eq!(err.key, "tls.client_ca", "{text}: {err}");
    }
}

/// `cert`'s key re-written by `openssl` into `path` with `args` (an encryption) and
/// the password `secret`.
fn openssl_key(cert: &Cert, path: &Path, args: &[&str]) {
    require("openssl");
    let out = Command::new("openssl")
        .args(args)
        .arg("-in")
        .arg(&cert.key)
        .arg("-out")
        .arg(path)
        .args(["-passout", "pass:s3cret pass"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An encrypted PKCS#8 key, as OpenSSL writes one (PBKDF2 or scrypt, AES-256-CBC), is
/// served with `tls.key_password`.
#[test]
fn an_encrypted_key_is_read_with_its_password() {
    let dir = temp_dir("encrypted");
    let cert = make_cert(&dir);
    for (name, args) in [
        ("pbkdf2", &["pkcs8", "-topk8", "-v2", "aes-256-cbc"][..]),
        ("scrypt", &["pkcs8", "-topk8", "-scrypt"][..]),
    ] {
        let key = dir.join(format!("{name}.pem"));
        openssl_key(&cert, &key, args);
        let text = std::fs::read_to_string(&key).unwrap();
        assert!(text.contains("ENCRYPTED PRIVATE KEY"), "{name}: {text}");
        let mut config = tls_config(&cert);
        config.tls.key = key.display().to_string();
        config.tls.key_password = "s3cret pass".into();
        let server = start_server(config);
        let tls = client(&cert, &[&rustls::version::TLS13]);
        let mut reader = connect_tls(server.local_addr(), &tls).unwrap();
        assert_eq!(tls_get(&mut reader, "/").body, b"hello world", "{name}");
        server.stop();
        server.join().unwrap();
    }
}

/// An encrypted key without its password, with a wrong one, or in OpenSSL's legacy
/// encrypted format is a config error naming `tls.key` and saying which.
#[test]
fn an_encrypted_key_without_its_password_is_a_config_error_saying_why() {
    let dir = temp_dir("badpass");
    let cert = make_cert(&dir);
    let key = dir.join("encrypted.pem");
    openssl_key(&cert, &key, &["pkcs8", "-topk8", "-v2", "aes-256-cbc"]);
    let legacy = dir.join("legacy.pem");
    openssl_key(&cert, &legacy, &["ec", "-aes256"]);
    let toml = |key: &Path, password: &str| {
        format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\nkey_password = \"{password}\"\n",
            cert.cert.display(),
            key.display()
        )
    };
    for (text, says) in [
        (toml(&key, ""), "set tls.key_password"),
        (toml(&key, "wrong"), "cannot decrypt"),
        (toml(&legacy, "s3cret pass"), "openssl pkcs8 -topk8"),
    ] {
        let err = Config::from_toml(&text).unwrap_err();
        assert_eq!(err.key, "tls.key", "{text}: {err}");
        assert!(err.message.contains(says), "{text}: {err}");
    }
    assert!(Config::from_toml(&toml(&key, "s3cret pass")).is_ok());
    // A logged configuration does not show the password.
    let config = Config::from_toml(&toml(&key, "s3cret pass")).unwrap();
    assert!(!format!("{config:?}").contains("s3cret"));
}

/// `tls.min_version = "1.3"` refuses a TLS 1.2 client in the handshake.
#[test]
fn min_version_1_3_refuses_tls_1_2_clients() {
    let cert = make_cert(&temp_dir("minversion"));
    let mut config = tls_config(&cert);
    config.tls.min_version = haywire::config::TlsVersion::Tls13;
    let server = start_server(config);
    let addr = server.local_addr();
    let old = client(&cert, &[&rustls::version::TLS12]);
    assert!(connect_tls(addr, &old).is_err(), "a TLS 1.2 client served");
    let new = client(&cert, &[&rustls::version::TLS13]);
    let mut reader = connect_tls(addr, &new).unwrap();
    assert_eq!(tls_get(&mut reader, "/").status, 200);
    assert!(Config::from_toml("[tls]\nmin_version = \"1.1\"\n").is_err());
    server.stop();
    server.join().unwrap();
}

/// A client that trusts `cert` and offers `suite` alone.
fn client_offering(cert: &Cert, suite: rustls::SupportedCipherSuite) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cert.der.clone()).unwrap();
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![suite];
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Connects offering each suite alone: served (with that suite) or refused, as `cases`
/// say.
fn check_suites(addr: SocketAddr, cert: &Cert, cases: &[(rustls::SupportedCipherSuite, bool)]) {
    for &(offered, served) in cases {
        match connect_tls(addr, &client_offering(cert, offered)) {
            Ok(mut reader) => {
                assert!(served, "{:?} served", offered.suite());
                let negotiated = reader.get_ref().conn.negotiated_cipher_suite();
                assert_eq!(negotiated, Some(offered));
                assert_eq!(tls_get(&mut reader, "/").status, 200);
            }
            Err(e) => assert!(!served, "{:?} refused: {e}", offered.suite()),
        }
    }
}

/// `tls.ciphers` (any spelling) is what the server offers: a client offering another
/// suite is refused in the handshake, and a version it names no suite of keeps them
/// all; a name it does not know is a config error naming the key.
#[test]
fn ciphers_limit_the_suites_offered() {
    use rustls::crypto::ring::cipher_suite as suite;
    let cert = make_cert(&temp_dir("ciphers"));
    let mut config = tls_config(&cert);
    config.tls.ciphers = vec![
        "TLS_AES_256_GCM_SHA384".into(),
        "ECDHE-ECDSA-CHACHA20-POLY1305".into(),
    ];
    let server = start_server(config);
    check_suites(
        server.local_addr(),
        &cert,
        &[
            (suite::TLS13_AES_256_GCM_SHA384, true),
            (suite::TLS13_AES_128_GCM_SHA256, false),
            (suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, true),
            (suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, false),
        ],
    );
    server.stop();
    server.join().unwrap();
    let mut unknown = tls_config(&cert);
    unknown.tls.ciphers = vec!["RC4-MD5".into()];
    let err = unknown.validate().unwrap_err();
    assert_eq!(err.key, "tls.ciphers", "{err}");
    assert!(
        err.message.contains("\"RC4-MD5\" is not a cipher suite"),
        "{err}"
    );
    let mut tls12_only = tls_config(&cert);
    tls12_only.tls.ciphers = vec!["ECDHE-ECDSA-AES128-GCM-SHA256".into()];
    let server = start_server(tls12_only);
    check_suites(
        server.local_addr(),
        &cert,
        &[
            (suite::TLS13_AES_128_GCM_SHA256, true),
            (suite::TLS13_CHACHA20_POLY1305_SHA256, true),
            (suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true),
            (suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, false),
        ],
    );
    server.stop();
    server.join().unwrap();
}
