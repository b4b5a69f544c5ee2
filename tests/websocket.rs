//! WebSocket against a 2-shard server running the `websocket` example's routes, with a
//! raw client that masks its frames: echo, fragmentation, ping/pong, the close
//! handshake, every protocol error's close code, refused handshakes, a chat message
//! crossing shards, and `/stats`.

mod common;

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/websocket.rs"]
mod websocket;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::OnceLock;

use common::*;
use haywire::ws::{CloseCode, Message, Upgrade, WebSocket};
use haywire::{Request, Response, Router, Server, ShardCtx, StatusCode};

const KEY: [u8; 4] = [0x12, 0x34, 0x56, 0x78];
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONT: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

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

fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

/// A client over any byte stream (plain TCP or TLS).
struct Client<S: Read + Write> {
    io: BufReader<S>,
}

impl<S: Read + Write> Client<S> {
    /// Sends the upgrade for `path` and reads the 101.
    fn open(stream: S, path: &str, extra: &str) -> (Client<S>, Reply) {
        let mut io = BufReader::new(stream);
        io.get_mut()
            .write_all(upgrade_request(path, extra).as_bytes())
            .unwrap();
        let reply = read_reply(&mut io, false);
        (Client { io }, reply)
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).unwrap();
        self.io.get_mut().flush().unwrap();
    }

    /// Sends one masked frame.
    fn frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        self.raw(&frame(fin, opcode, payload, true));
    }

    /// Reads one frame: (fin, opcode, payload). Server frames are never masked.
    fn read(&mut self) -> (bool, u8, Vec<u8>) {
        let mut head = [0u8; 2];
        self.io.read_exact(&mut head).expect("a frame header");
        assert_eq!(head[1] & 0x80, 0, "a server frame is unmasked");
        let len = match head[1] & 0x7F {
            126 => {
                let mut b = [0u8; 2];
                self.io.read_exact(&mut b).unwrap();
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                self.io.read_exact(&mut b).unwrap();
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0; len as usize];
        self.io.read_exact(&mut payload).unwrap();
        (head[0] & 0x80 != 0, head[0] & 0x0F, payload)
    }

    fn read_text(&mut self) -> String {
        let (fin, opcode, payload) = self.read();
        assert_eq!((fin, opcode), (true, TEXT), "{payload:?}");
        String::from_utf8(payload).unwrap()
    }

    /// Reads a close frame; its code (None for an empty one).
    fn read_close(&mut self) -> Option<u16> {
        let (_, opcode, payload) = self.read();
        assert_eq!(opcode, CLOSE, "expected a close, got {payload:?}");
        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
    }

    /// Whether the server then closed the connection.
    fn ends(&mut self) -> bool {
        is_closed(&mut self.io)
    }
}

fn frame(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&KEY);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
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
