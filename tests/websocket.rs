//! WebSocket against a 2-shard server running the `websocket` example's routes, with a
//! raw client that masks its frames: echo, fragmentation, ping/pong, the close
//! handshake, every protocol error's close code, refused handshakes, a chat message
//! crossing shards, and `/stats`.

mod common;

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/websocket.rs"]
mod websocket;

use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::ws::*;
use common::*;
use haywire::ws::{CloseCode, Message, Upgrade, WebSocket};
use haywire::{Request, Response, Router, Server, ShardCtx, StatusCode};

/// The example's routes plus a few that exercise the handler API.
fn routes(router: &mut Router, shard: &Rc<ShardCtx>) {
    websocket::routes(router, shard);
    // Accepts `chat` if offered, refuses a client offering only `nope`.
    router.websocket_upgrade("/proto", |_: Request, upgrade: Upgrade| async move {
        if upgrade.protocols().iter().any(|p| p == "nope") {
            upgrade.reject(Response::new(StatusCode::BAD_REQUEST).with_body("text/plain", "no\n"));
            return;
        }
        let ws = upgrade.accept(Some("chat"));
        let protocol = ws.protocol().unwrap_or_default();
        let _ = ws.send(Message::Text(format!("protocol {protocol}"))).await;
        while ws.recv().await.is_some() {}
    });
    // Closes at once with a code of its own.
    router.websocket("/bye", |_: Request, ws: WebSocket| async move {
        ws.close(CloseCode(4000), "bye now");
        while ws.recv().await.is_some() {}
    });
    router.websocket("/panic", |_: Request, ws: WebSocket| async move {
        ws.recv().await;
        panic!("WebSocket handler failure on purpose");
    });
}

fn server() -> SocketAddr {
    static SERVER: OnceLock<SocketAddr> = OnceLock::new();
    *SERVER.get_or_init(|| {
        let running = Server::new(test_config()).routes(routes).start().unwrap();
        let addr = running.local_addr();
        std::mem::forget(running);
        addr
    })
}

fn open(path: &str) -> Client<TcpStream> {
    let (client, reply) = Client::open(connect(server()), path, "");
    assert_eq!(reply.status, 101, "{reply:?}");
    client
}

#[test]
fn the_handshake_answers_101_with_the_rfc_accept_key() {
    let (_, reply) = Client::open(connect(server()), "/ws", "");
    assert_eq!(reply.status, 101);
    assert_eq!(reply.header("upgrade"), Some("websocket"));
    assert_eq!(reply.header("connection"), Some("Upgrade"));
    assert_eq!(
        reply.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(reply.header("sec-websocket-protocol"), None);
    assert_eq!(reply.header("server"), Some("haywire"));
    assert!(reply.header("date").is_some(), "{reply:?}");
}

#[test]
fn the_101_carries_the_configured_server_headers() {
    let mut config = test_config();
    config.server.server_header = "edge/1".into();
    config
        .server
        .headers
        .insert("Strict-Transport-Security".into(), "max-age=600".into());
    let running = Server::new(config).routes(routes).start().unwrap();
    let (_, reply) = Client::open(connect(running.local_addr()), "/ws", "");
    assert_eq!(reply.status, 101);
    assert_eq!(reply.header("server"), Some("edge/1"));
    assert_eq!(
        reply.header("strict-transport-security"),
        Some("max-age=600")
    );
    running.stop();
    running.join().expect("clean stop");
}

#[test]
fn echoes_text_and_binary_of_every_length_form() {
    let mut ws = open("/ws");
    ws.frame(true, TEXT, "héllo".as_bytes());
    assert_eq!(ws.read_text(), "héllo");
    for len in [0, 125, 126, 65_535, 65_536, 200_000] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        ws.frame(true, BINARY, &payload);
        assert_eq!(ws.read(), (true, BINARY, payload), "length {len}");
    }
}

#[test]
fn fragments_are_reassembled_and_pings_between_them_answered() {
    let mut ws = open("/ws");
    ws.frame(false, TEXT, b"frag");
    ws.frame(true, PING, b"are you there");
    ws.frame(false, CONT, "men€".as_bytes().split_at(5).0);
    ws.frame(true, CONT, "men€".as_bytes().split_at(5).1);
    assert_eq!(ws.read(), (true, PONG, b"are you there".to_vec()));
    assert_eq!(ws.read_text(), "fragmen€");
    ws.frame(true, PONG, b"unsolicited");
    ws.frame(true, TEXT, b"after");
    assert_eq!(ws.read_text(), "after", "an unsolicited pong is ignored");
}

#[test]
fn the_close_handshake_echoes_the_code_and_ends_the_connection() {
    let mut ws = open("/ws");
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"done");
    ws.frame(true, CLOSE, &payload);
    assert_eq!(ws.read_close(), Some(1000));
    assert!(ws.ends());

    let mut ws = open("/ws");
    ws.frame(true, CLOSE, &[]);
    assert_eq!(
        ws.read_close(),
        None,
        "an empty close is answered with an empty one"
    );
    assert!(ws.ends());

    // The server closes first: the client answers, and the server ends the connection.
    let mut ws = open("/bye");
    assert_eq!(ws.read_close(), Some(4000));
    ws.frame(true, CLOSE, &4000u16.to_be_bytes());
    assert!(ws.ends());
}

#[test]
fn every_protocol_error_gets_its_close_code_and_the_server_lives_on() {
    let mut long = vec![0x82, 0xFF];
    long.extend_from_slice(&(1u64 << 63).to_be_bytes());
    long.extend_from_slice(&KEY);
    let mut huge = vec![0x82, 0xFF];
    huge.extend_from_slice(&(1u64 << 62).to_be_bytes());
    huge.extend_from_slice(&KEY);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("a reserved data opcode", frame(true, 0x3, b"x", true), 1002),
        (
            "a reserved control opcode",
            frame(true, 0xB, b"x", true),
            1002,
        ),
        (
            "RSV1 with no extension",
            frame(true, 0x40 | TEXT, b"x", true),
            1002,
        ),
        (
            "an unmasked client frame",
            frame(true, TEXT, b"x", false),
            1002,
        ),
        ("a 126-byte ping", frame(true, PING, &[0; 126], true), 1002),
        ("a fragmented ping", frame(false, PING, b"x", true), 1002),
        (
            "a continuation of nothing",
            frame(true, CONT, b"x", true),
            1002,
        ),
        (
            "invalid UTF-8",
            frame(true, TEXT, &[0xCE, 0xBA, 0xFF], true),
            1007,
        ),
        (
            "a close reason not UTF-8",
            frame(true, CLOSE, &[0x03, 0xE8, 0xFF], true),
            1007,
        ),
        (
            "a close with code 1005",
            frame(true, CLOSE, &1005u16.to_be_bytes(), true),
            1002,
        ),
        (
            "a close with code 999",
            frame(true, CLOSE, &999u16.to_be_bytes(), true),
            1002,
        ),
        ("a one-byte close", frame(true, CLOSE, &[3], true), 1002),
        ("a 2^63 length", long, 1002),
        ("a 2^62 length", huge, 1009),
    ];
    for (what, wire, code) in cases {
        let mut ws = open("/ws");
        ws.raw(&wire);
        assert_eq!(ws.read_close(), Some(code), "{what}");
        assert!(ws.ends(), "{what}: the connection ends");
    }
    let mut ws = open("/ws");
    ws.frame(true, TEXT, b"still here");
    assert_eq!(ws.read_text(), "still here");
    let stats = stats(server());
    assert!(
        stats["total"]["websocket"]["protocol_errors"]
            .as_u64()
            .unwrap()
            >= 14
    );
}

#[test]
fn a_fragmented_text_invalid_in_its_first_fragment_fails_before_the_end() {
    let mut ws = open("/ws");
    ws.frame(false, TEXT, &[b'o', b'k', 0xFF]);
    assert_eq!(ws.read_close(), Some(1007));
}

#[test]
fn bad_handshakes_are_refused_with_400_405_or_426() {
    let addr = server();
    let (reply, _) = exchange(addr, get("/ws").as_bytes());
    assert_eq!(reply.status, 426, "a plain GET");
    assert_eq!(reply.header("upgrade"), Some("websocket"));
    let v8 = upgrade_request("/ws", "").replace("Version: 13", "Version: 8");
    let (reply, _) = exchange(addr, v8.as_bytes());
    assert_eq!(
        (reply.status, reply.header("sec-websocket-version")),
        (426, Some("13"))
    );
    let no_key = upgrade_request("/ws", "").replace("Sec-WebSocket-Key", "X-Key");
    let (reply, mut rest) = exchange(addr, no_key.as_bytes());
    assert_eq!(reply.status, 400);
    assert!(is_closed(&mut rest));
    let post = upgrade_request("/ws", "").replace("GET", "POST");
    assert_eq!(exchange(addr, post.as_bytes()).0.status, 405);
    let (reply, _) = exchange(addr, upgrade_request("/nowhere", "").as_bytes());
    assert_eq!(reply.status, 404, "not a WebSocket route");
}

#[test]
fn a_handler_picks_a_subprotocol_or_rejects_the_upgrade() {
    let (mut ws, reply) = Client::open(
        connect(server()),
        "/proto",
        "Sec-WebSocket-Protocol: x, chat\r\n",
    );
    assert_eq!(reply.status, 101);
    assert_eq!(reply.header("sec-websocket-protocol"), Some("chat"));
    assert_eq!(ws.read_text(), "protocol chat");
    let (mut ws, reply) = Client::open(connect(server()), "/proto", "");
    assert_eq!(
        reply.header("sec-websocket-protocol"),
        None,
        "not offered: not announced"
    );
    assert_eq!(ws.read_text(), "protocol ");
    let (mut ws, reply) = Client::open(
        connect(server()),
        "/proto",
        "Sec-WebSocket-Protocol: nope\r\n",
    );
    assert_eq!(reply.status, 400);
    assert!(ws.ends());
}

#[test]
fn a_panicking_handler_closes_with_1011_and_the_shard_lives_on() {
    let mut ws = open("/panic");
    ws.frame(true, TEXT, b"boom");
    assert_eq!(ws.read_close(), Some(1011));
    let mut ws = open("/ws");
    ws.frame(true, TEXT, b"alive");
    assert_eq!(ws.read_text(), "alive");
}

/// Opens `/chat/room` until a connection lands on `shard`.
fn chat_on_shard(room: &str, shard: usize) -> Client<TcpStream> {
    for _ in 0..200 {
        let mut ws = open(&format!("/chat/{room}"));
        if ws.read_text() == format!("shard {shard}") {
            return ws;
        }
    }
    panic!("no connection reached shard {shard}");
}

#[test]
fn a_chat_message_reaches_members_on_every_shard() {
    let mut a = chat_on_shard("lobby", 0);
    let mut b = chat_on_shard("lobby", 1);
    let mut elsewhere = chat_on_shard("other", 1);
    a.frame(true, TEXT, b"hello from shard 0");
    assert_eq!(b.read_text(), "hello from shard 0");
    assert_eq!(
        a.read_text(),
        "hello from shard 0",
        "the sender is a member too"
    );
    b.frame(true, TEXT, b"and back");
    assert_eq!(a.read_text(), "and back");
    assert_eq!(b.read_text(), "and back");
    elsewhere.frame(true, TEXT, b"other room");
    assert_eq!(
        elsewhere.read_text(),
        "other room",
        "only its own room hears it"
    );
    // A member that left is dropped from its room; the rest still hear each other.
    b.frame(true, CLOSE, &1000u16.to_be_bytes());
    assert_eq!(b.read_close(), Some(1000));
    a.frame(true, TEXT, b"alone");
    assert_eq!(a.read_text(), "alone");
}

#[test]
fn a_room_message_reaches_compressing_and_plain_members_alike() {
    // Two members on one shard, one with permessage-deflate: the fan-out's one prepared
    // message goes to the first compressed, to the second as it is.
    let mut plain = chat_on_shard("mixed", 0);
    let mut compressing = loop {
        let (mut ws, reply) = Client::open(connect(server()), "/chat/mixed", DEFLATE_OFFER);
        assert!(reply.header("sec-websocket-extensions").is_some());
        if ws.read_text() == "shard 0" {
            break ws;
        }
    };
    let text = "a message for the whole room, ".repeat(20);
    plain.frame(true, TEXT, text.as_bytes());
    assert_eq!(plain.read_text(), text);
    let (first, payload) = compressing.read_frame();
    assert_eq!(
        first,
        0x80 | 0x40 | TEXT,
        "compressed for the member that asked"
    );
    assert_eq!(inflated(&payload), text.as_bytes());
}

#[test]
fn stats_count_websocket_connections_and_messages() {
    let before = stats(server())["total"]["websocket"].clone();
    let mut ws = open("/ws");
    ws.frame(true, TEXT, b"counted");
    assert_eq!(ws.read_text(), "counted");
    let after = stats(server())["total"]["websocket"].clone();
    let grew = |key: &str| after[key].as_u64().unwrap() > before[key].as_u64().unwrap();
    assert!(
        grew("connections") && grew("messages_in") && grew("messages_out"),
        "{before} -> {after}"
    );
}

#[test]
fn an_idle_connection_is_closed_with_1001() {
    let mut config = test_config();
    config.websocket.idle_timeout = 0.3;
    let running = Server::new(config).routes(routes).start().unwrap();
    let (mut ws, reply) = Client::open(connect(running.local_addr()), "/ws", "");
    assert_eq!(reply.status, 101);
    ws.frame(true, TEXT, b"then silence");
    assert_eq!(ws.read_text(), "then silence");
    assert_eq!(ws.read_close(), Some(1001));
    ws.frame(true, CLOSE, &1001u16.to_be_bytes());
    assert!(ws.ends());
}

#[test]
fn traffic_defers_the_idle_timeout() {
    let mut config = test_config();
    config.websocket.idle_timeout = 0.3;
    let running = Server::new(config).routes(routes).start().unwrap();
    let (mut ws, reply) = Client::open(connect(running.local_addr()), "/ws", "");
    assert_eq!(reply.status, 101);
    let started = std::time::Instant::now();
    // A message every 100 ms for over three idle timeouts.
    for i in 0..12 {
        std::thread::sleep(Duration::from_millis(100));
        let text = format!("message {i} at {:?}", started.elapsed());
        ws.frame(true, TEXT, text.as_bytes());
        assert_eq!(ws.read_text(), text);
    }
    assert_eq!(ws.read_close(), Some(1001));
    running.stop();
    running.join().unwrap();
}

const DEFLATE_OFFER: &str =
    "Sec-WebSocket-Extensions: x-unknown, permessage-deflate; client_max_window_bits\r\n";

/// `payload` as a client's compressed frame (permessage-deflate: raw deflate, flushed,
/// its 4-byte tail cut; RSV1 set).
fn deflated_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut compressor = flate2::Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(payload.len() + 64);
    compressor
        .compress_vec(payload, &mut out, flate2::FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&[0, 0, 0xFF, 0xFF]), "flushed whole");
    out.truncate(out.len() - 4);
    let mut wire = frame(true, opcode, &out, true);
    wire[0] |= 0x40;
    wire
}

/// A server's compressed payload inflated.
fn inflated(payload: &[u8]) -> Vec<u8> {
    let mut inflater = flate2::Decompress::new(false);
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
    let mut out = Vec::with_capacity(1 << 20);
    inflater
        .decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
        .unwrap();
    out
}

#[test]
fn permessage_deflate_compresses_both_ways_once_offered() {
    let (mut ws, reply) = Client::open(connect(server()), "/ws", DEFLATE_OFFER);
    assert_eq!(reply.status, 101);
    assert_eq!(
        reply.header("sec-websocket-extensions"),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    let text = "a message worth compressing, ".repeat(100);
    for _ in 0..2 {
        // Each message on its own: the second decodes like the first.
        ws.raw(&deflated_frame(TEXT, text.as_bytes()));
        let (first, payload) = ws.read_frame();
        assert_eq!(first, 0x80 | 0x40 | TEXT, "a compressed text frame");
        assert!(payload.len() < text.len() / 5, "{} bytes", payload.len());
        assert_eq!(inflated(&payload), text.as_bytes());
    }
    // Uncompressed messages still go both ways; small ones come back as they are.
    ws.frame(true, TEXT, b"small");
    assert_eq!(ws.read_frame(), (0x80 | TEXT, b"small".to_vec()));
    // Without the offer nothing is compressed.
    let (mut plain, reply) = Client::open(connect(server()), "/ws", "");
    assert_eq!(reply.header("sec-websocket-extensions"), None);
    plain.frame(true, TEXT, text.as_bytes());
    assert_eq!(plain.read_frame(), (0x80 | TEXT, text.clone().into_bytes()));
}

#[test]
fn a_compressed_message_is_limited_inflated_and_refused_where_not_negotiated() {
    let mut config = test_config();
    config.websocket.max_message_size = 64 * 1024;
    let running = Server::new(config).routes(routes).start().unwrap();
    let (mut ws, reply) = Client::open(connect(running.local_addr()), "/ws", DEFLATE_OFFER);
    assert_eq!(reply.status, 101);
    // A megabyte in about a kilobyte: refused at the limit, not inflated.
    let bomb = deflated_frame(BINARY, &vec![0u8; 1 << 20]);
    assert!(bomb.len() < 8 * 1024);
    ws.raw(&bomb);
    assert_eq!(ws.read_close(), Some(1009));
    // With compression off, the offer is declined and RSV1 is a protocol error.
    let mut config = test_config();
    config.websocket.compression = false;
    let running = Server::new(config).routes(routes).start().unwrap();
    let (mut ws, reply) = Client::open(connect(running.local_addr()), "/ws", DEFLATE_OFFER);
    assert_eq!(reply.header("sec-websocket-extensions"), None);
    ws.raw(&deflated_frame(TEXT, b"hello hello hello"));
    assert_eq!(ws.read_close(), Some(1002));
}

/// A server on the test routes with these `[websocket]` timers, in seconds.
fn timed_server(idle: f64, ping_interval: f64, ping_timeout: f64) -> haywire::RunningServer {
    let mut config = test_config();
    config.websocket.idle_timeout = idle;
    config.websocket.ping_interval = ping_interval;
    config.websocket.ping_timeout = ping_timeout;
    Server::new(config).routes(routes).start().unwrap()
}

#[test]
fn a_silent_client_is_pinged_and_stays_open_while_it_answers() {
    // Without keepalive pings the connection would close (1001) after 0.5 s.
    let running = timed_server(0.5, 0.2, 1.0);
    let (mut ws, reply) = Client::open(connect(running.local_addr()), "/ws", "");
    assert_eq!(reply.status, 101);
    let started = std::time::Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        let (fin, opcode, payload) = ws.read();
        assert_eq!((fin, opcode), (true, PING), "{payload:?}");
        pings += 1;
        ws.frame(true, PONG, &payload);
    }
    // One per interval (0.2 s, to a 0.1 s tick), not a flood.
    assert!((4..=10).contains(&pings), "{pings} pings in 1.5 s");
    ws.frame(true, TEXT, b"still here");
    assert_eq!(ws.read_text(), "still here");
}

#[test]
fn a_pinged_client_that_says_nothing_is_closed_with_1011() {
    let running = timed_server(30.0, 0.2, 0.3);
    let (mut ws, reply) = Client::open(connect(running.local_addr()), "/ws", "");
    assert_eq!(reply.status, 101);
    let started = std::time::Instant::now();
    assert_eq!(ws.read().1, PING);
    assert_eq!(ws.read_close(), Some(1011));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "closed after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
    ws.frame(true, CLOSE, &1011u16.to_be_bytes());
    assert!(ws.ends());
}

#[test]
fn keepalive_pings_can_be_turned_off() {
    let running = timed_server(0.6, 0.0, 0.1);
    let (mut ws, reply) = Client::open(connect(running.local_addr()), "/ws", "");
    assert_eq!(reply.status, 101);
    let started = std::time::Instant::now();
    // No ping first: the idle timeout's close.
    assert_eq!(ws.read_close(), Some(1001));
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[test]
fn a_client_whose_messages_wait_for_the_handler_is_not_taken_for_gone() {
    // The handler takes nothing for 1.5 s: the server stops reading once 64 KiB of
    // messages wait, so the client's answers to pings could not be seen; its silence
    // must not count (else: a ping, then 1011 after 0.4 s).
    let mut config = test_config();
    config.websocket.ping_interval = 0.2;
    config.websocket.ping_timeout = 0.2;
    let running = Server::new(config)
        .routes(|router: &mut Router, _: &Rc<ShardCtx>| {
            router.websocket("/late", |_: Request, ws: WebSocket| async move {
                glommio::timer::sleep(Duration::from_millis(1500)).await;
                while let Some(message) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
        })
        .start()
        .unwrap();
    let (mut ws, reply) = Client::open(connect(running.local_addr()), "/late", "");
    assert_eq!(reply.status, 101);
    let message = vec![b'm'; 1024];
    for _ in 0..100 {
        ws.frame(true, BINARY, &message);
    }
    let mut echoed = 0;
    while echoed < 100 {
        let (_, opcode, payload) = ws.read();
        match opcode {
            PING => ws.frame(true, PONG, &payload),
            BINARY => {
                assert_eq!(payload, message);
                echoed += 1;
            }
            _ => panic!("opcode {opcode} after {echoed} echoes: {payload:?}"),
        }
    }
}

#[test]
fn a_close_the_client_does_not_answer_ends_the_connection_after_a_short_wait() {
    // The idle timeout is 60 s: the end comes from the close's own wait (2 s).
    let mut ws = open("/bye");
    assert_eq!(ws.read_close(), Some(4000));
    let started = std::time::Instant::now();
    assert!(ws.ends(), "still open after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn send_waits_while_the_client_reads_nothing_and_resumes_when_it_reads() {
    let sent = Arc::new(AtomicU64::new(0));
    let mut config = test_config();
    config.websocket.write_buffer = 16 * 1024;
    let counter = sent.clone();
    let running = Server::new(config)
        .routes(move |router: &mut Router, _: &Rc<ShardCtx>| {
            let sent = counter.clone();
            router.websocket("/flood", move |_: Request, ws: WebSocket| {
                let sent = sent.clone();
                async move {
                    let chunk = bytes::Bytes::from(vec![7u8; 1024]);
                    while ws.send(Message::Binary(chunk.clone())).await.is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        })
        .start()
        .unwrap();
    let (mut ws, reply) = Client::open(connect(running.local_addr()), "/flood", "");
    assert_eq!(reply.status, 101);
    // Without backpressure the handler would queue messages for ever; with it, the
    // count settles once the socket buffers and `write_buffer` are full.
    let settled = |sent: &AtomicU64| {
        let mut last = u64::MAX;
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(200));
            let now = sent.load(Ordering::Relaxed);
            if now == last {
                return now;
            }
            last = now;
        }
        panic!("the sender never waited: {last} messages queued");
    };
    let stalled = settled(&sent);
    assert!(stalled > 0 && stalled < 64 * 1024, "{stalled} KiB queued");
    for _ in 0..stalled {
        assert_eq!(ws.read().1, BINARY);
    }
    assert!(settled(&sent) > stalled, "reading let the sender go on");
}

/// A server whose only WebSocket handler is the fallback: it accepts an upgrade on any
/// path with the path in a header of the 101 (and two headers the handshake owns, which
/// must not get through), then sends "hi".
fn fallback_server() -> SocketAddr {
    static SERVER: OnceLock<SocketAddr> = OnceLock::new();
    *SERVER.get_or_init(|| {
        let routes = |router: &mut Router, _: &Rc<ShardCtx>| {
            router.get("/page", |_: Request| Response::text("page"));
            router.websocket_fallback(|request: Request, upgrade: Upgrade| async move {
                let headers = vec![
                    ("X-Path".into(), request.path().to_owned().into()),
                    ("Connection".into(), "close".into()),
                    ("Sec-WebSocket-Accept".into(), "forged".into()),
                ];
                let ws = upgrade.accept_with_headers(None, headers);
                let _ = ws.send(Message::Text("hi".into())).await;
                while ws.recv().await.is_some() {}
            });
        };
        let running = Server::new(test_config()).routes(routes).start().unwrap();
        let addr = running.local_addr();
        std::mem::forget(running);
        addr
    })
}

#[test]
fn the_websocket_fallback_takes_upgrades_on_any_path_and_nothing_else() {
    let addr = fallback_server();
    for path in ["/any/path?x=1", "/page", "/"] {
        let (mut ws, reply) = Client::open(connect(addr), path, "");
        assert_eq!(reply.status, 101, "{path}: {reply:?}");
        assert_eq!(
            reply.header("x-path"),
            Some(path.split('?').next().unwrap())
        );
        let owned = |name: &str| {
            reply
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .count()
        };
        assert_eq!(
            (owned("connection"), owned("sec-websocket-accept")),
            (1, 1),
            "{reply:?}"
        );
        assert_eq!(reply.header("connection"), Some("Upgrade"));
        assert_eq!(ws.read_text(), "hi");
    }
    let (reply, _) = exchange(addr, get("/page").as_bytes());
    assert_eq!(
        (reply.status, &reply.body[..]),
        (200, &b"page"[..]),
        "a plain GET is not an upgrade"
    );
    let (reply, _) = exchange(addr, get("/nowhere").as_bytes());
    assert_eq!(reply.status, 404);
}

/// A client that sends frames without pause, to a handler that takes each as it comes,
/// must not hold its shard: glommio is cooperative, and while the client's frames keep
/// arriving the socket's reads never find it not ready, so the WebSocket's driver would
/// never wait.
#[test]
fn a_client_sending_frames_without_pause_lets_its_shard_serve_others() {
    let received: Arc<Vec<AtomicU64>> = Arc::new((0..2).map(|_| AtomicU64::new(0)).collect());
    let counters = received.clone();
    let running = Server::new(test_config())
        .routes(move |router: &mut Router, shard: &Rc<ShardCtx>| {
            test_routes(router, shard);
            let (id, counters) = (shard.id(), counters.clone());
            // Each message costs 1 ms of work (standing for a handler's real work), so
            // the server, not the client, is the slower side: the client's frames are
            // always waiting in the socket.
            router.websocket("/sink", move |_: Request, ws: WebSocket| {
                let counters = counters.clone();
                async move {
                    while ws.recv().await.is_some() {
                        let worked = std::time::Instant::now() + Duration::from_millis(1);
                        while std::time::Instant::now() < worked {
                            std::hint::spin_loop();
                        }
                        counters[id].fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        })
        .start()
        .unwrap();
    let addr = running.local_addr();
    assert_eq!(running.shards(), received.len());
    let pairs = two_on_every_shard(addr, running.shards());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Small frames: a 64 KiB read holds 3 s of the handler's work, so the socket's
    // queue stays over a read's worth. A short read marks the socket drained, and the
    // driver then waits for its next readiness event, which releases the shard with or
    // without the yield: with 1 KiB frames this test passed without it (3 of 3).
    let batch = frame(true, BINARY, &[7u8; 16], true).repeat(2048);
    let mut writers = Vec::new();
    let mut probes = Vec::new();
    for (flood, probe) in pairs {
        let (ws, reply) = Client::open(flood.into_inner(), "/sink", "");
        assert_eq!(reply.status, 101, "{reply:?}");
        writers.push(write_without_pause(
            ws.io.into_inner(),
            batch.clone(),
            stop.clone(),
        ));
        probes.push(probe);
    }
    // Every flood is being taken...
    wait_for_floods("a flood", || {
        received.iter().all(|n| n.load(Ordering::Relaxed) >= 16)
    });
    // ...and a request on the same shard is answered meanwhile.
    for (shard, probe) in probes.iter_mut().enumerate() {
        assert_shard_answers(probe, shard, "flooded with frames", || {
            received[shard].load(Ordering::Relaxed)
        });
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    running.stop();
    running.join().unwrap();
}

#[test]
fn a_handler_that_takes_no_messages_stops_the_reading_of_any_flood() {
    let running = hoarding_server();
    let addr = running.local_addr();
    assert!(running.shards() >= 2);
    // Empty messages (nothing to count by their payload), and 1-byte ones each followed
    // by 64 KiB of pongs (which the server drops, but which share a read buffer with
    // the message before them).
    let pongs = frame(true, PONG, &[0u8; 125], true).repeat(64 * 1024 / 131);
    let floods = [
        (
            "empty binary messages",
            frame(true, BINARY, &[], true).repeat(10_000),
        ),
        (
            "1-byte messages between pongs",
            [frame(true, BINARY, &[1], true), pongs].concat(),
        ),
    ];
    const FLOOD: usize = 32 << 20;
    for (what, batch) in floods {
        let bytes_in = || stats(addr)["total"]["bytes_in"].as_u64().unwrap();
        let before = bytes_in();
        let (ws, reply) = Client::open(connect(addr), "/hoard", "");
        assert_eq!(reply.status, 101, "{reply:?}");
        let mut socket = ws.io.into_inner();
        socket
            .set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        // Writes until the server stops taking them (no progress for 1 s) or FLOOD
        // bytes are out; partial writes go on where they stopped.
        let (mut sent, mut at) = (0, 0);
        let mut progress_at = std::time::Instant::now();
        while sent < FLOOD && progress_at.elapsed() < Duration::from_secs(1) {
            use std::io::Write;
            match socket.write(&batch[at..]) {
                Ok(n) => {
                    (sent, at) = (sent + n, (at + n) % batch.len());
                    progress_at = std::time::Instant::now();
                }
                Err(e) if timed_out(&e) => {}
                Err(e) => panic!("{what}: the server failed the connection: {e}"),
            }
        }
        let read = bytes_in() - before;
        assert!(
            sent < FLOOD && read < 1 << 20,
            "{what}: the server read {read} bytes of the {sent} sent, the handler taking none"
        );
    }
    running.stop();
    running.join().unwrap();
}

/// A server whose `/hoard` takes no message until the connection closes.
fn hoarding_server() -> haywire::RunningServer {
    Server::new(test_config())
        .routes(|router: &mut Router, shard: &Rc<ShardCtx>| {
            test_routes(router, shard);
            router.websocket("/hoard", |_: Request, ws: WebSocket| async move {
                while ws.is_open() {
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                }
            });
        })
        .start()
        .unwrap()
}

#[test]
fn compressed_messages_a_handler_does_not_take_count_inflated() {
    // 64 KiB messages of zeros, about 70 bytes each compressed: counted by the bytes
    // read, a 64 KiB window would queue about a thousand of them (64 MiB).
    let running = hoarding_server();
    let addr = running.local_addr();
    let taken = || {
        stats(addr)["total"]["websocket"]["messages_in"]
            .as_u64()
            .unwrap()
    };
    let before = taken();
    let (mut ws, reply) = Client::open(connect(addr), "/hoard", DEFLATE_OFFER);
    assert_eq!(reply.status, 101);
    ws.raw(&deflated_frame(BINARY, &[0u8; 64 * 1024]).repeat(2000));
    let (mut last, mut still) = (u64::MAX, 0);
    while still < 3 {
        std::thread::sleep(Duration::from_millis(300));
        let now = taken();
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    assert!(
        last - before <= 4,
        "{} messages of 64 KiB queued",
        last - before
    );
    running.stop();
    running.join().unwrap();
}
