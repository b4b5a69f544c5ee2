//! Streamed response bodies over raw TCP: chunked and sized, pipelined behind and ahead
//! of other responses, HEAD and HTTP/1.0, a client that stops reading, a producer that
//! panics.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::{stream, StreamExt};
use haywire::{Request, Response, Router, RunningServer, Server, ShardCtx};

use common::*;

/// Bytes the endless stream has produced, over all shards.
static PRODUCED: AtomicU64 = AtomicU64::new(0);

fn routes(router: &mut Router, _: &Rc<ShardCtx>) {
    router.get("/count/:n", |req: Request| {
        let n: u32 = req.param("n").and_then(|n| n.parse().ok()).unwrap_or(0);
        Response::stream(
            "text/plain",
            stream::iter((0..n).map(|i| Bytes::from(format!("line {i}\n")))),
        )
    });
    router.get("/slow", |_: Request| {
        let pieces = stream::unfold(0u32, |n| async move {
            if n == 3 {
                return None;
            }
            glommio::timer::sleep(Duration::from_millis(30)).await;
            Some((Bytes::from(format!("piece {n};")), n + 1))
        });
        Response::stream("text/plain", pieces)
    });
    router.get("/sized", |_: Request| {
        let pieces = stream::iter(
            ["abc", "", "defg", "hij"].map(|s: &'static str| Bytes::from_static(s.as_bytes())),
        );
        Response::new(haywire::StatusCode::OK).with_stream("text/plain", Some(10), pieces)
    });
    router.get("/short", |_: Request| {
        let pieces = stream::iter(["abc"].map(|s: &'static str| Bytes::from_static(s.as_bytes())));
        Response::new(haywire::StatusCode::OK).with_stream("text/plain", Some(10), pieces)
    });
    router.get("/endless", |_: Request| {
        let piece = Bytes::from(vec![b'z'; 64 * 1024]);
        Response::stream(
            "application/octet-stream",
            stream::repeat_with(move || {
                PRODUCED.fetch_add(piece.len() as u64, Ordering::Relaxed);
                piece.clone()
            }),
        )
    });
    router.get("/panics", |_: Request| {
        let pieces = stream::iter(0..3).map(|i| {
            if i == 1 {
                panic!("producer failure on purpose");
            }
            Bytes::from_static(b"first")
        });
        Response::stream("text/plain", pieces)
    });
}

fn start() -> RunningServer {
    let mut config = test_config();
    config.timeouts.write = 0.5;
    Server::new(config)
        .routes(test_routes)
        .routes(routes)
        .start()
        .unwrap()
}

/// Reads a chunked body: the pieces, after the head has been read.
fn read_chunked<R: BufRead>(reader: &mut R) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let size = usize::from_str_radix(line.trim_end(), 16).expect("chunk size");
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).unwrap();
        assert_eq!(&chunk[size..], b"\r\n");
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

#[test]
fn chunked_and_sized_streams_keep_their_place_among_pipelined_responses() {
    let server = start();
    let mut stream = connect(server.local_addr());
    let wire = [
        get("/count/3"),
        get("/"),
        get("/slow"),
        get("/sized"),
        get("/"),
    ]
    .concat();
    stream.write_all(wire.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let counted = read_reply(&mut reader, false);
    assert_eq!(counted.header("transfer-encoding"), Some("chunked"));
    assert_eq!(counted.header("content-length"), None);
    assert_eq!(read_chunked(&mut reader), b"line 0\nline 1\nline 2\n");
    assert_eq!(read_reply(&mut reader, false).text(), "hello world");
    let slow = read_reply(&mut reader, false);
    assert_eq!(slow.header("transfer-encoding"), Some("chunked"));
    assert_eq!(read_chunked(&mut reader), b"piece 0;piece 1;piece 2;");
    let sized = read_reply(&mut reader, false);
    assert_eq!(sized.header("transfer-encoding"), None);
    assert_eq!(sized.text(), "abcdefghij");
    assert_eq!(read_reply(&mut reader, false).text(), "hello world");
    server.stop();
    server.join().unwrap();
}

#[test]
fn head_and_http10_and_a_short_stream() {
    let server = start();
    let addr = server.local_addr();
    // HEAD: the head of the GET answer, no body; the connection goes on.
    let mut stream = connect(addr);
    let wire = "HEAD /count/3 HTTP/1.1\r\nHost: t\r\n\r\n".to_owned() + &get("/");
    stream.write_all(wire.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let head = read_reply(&mut reader, true);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(read_reply(&mut reader, false).text(), "hello world");
    // HTTP/1.0 has no chunked encoding: the body runs to the close.
    let mut stream = connect(addr);
    stream
        .write_all(b"GET /count/2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let reply = read_reply(&mut reader, false);
    assert_eq!(reply.header("transfer-encoding"), None);
    assert_eq!(reply.header("connection"), Some("close"));
    let mut body = String::new();
    reader.read_to_string(&mut body).unwrap();
    assert_eq!(body, "line 0\nline 1\n");
    // A stream shorter than its Content-Length ends the connection.
    let mut short = connect(addr);
    short.write_all(get("/short").as_bytes()).unwrap();
    let mut all = Vec::new();
    let _ = short.read_to_end(&mut all);
    let all = String::from_utf8(all).unwrap();
    assert!(all.contains("Content-Length: 10\r\n"), "{all}");
    assert!(all.ends_with("\r\n\r\nabc"), "{all}");
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_client_that_stops_reading_stalls_only_its_stream_until_the_write_timeout() {
    let server = start();
    let addr = server.local_addr();
    let mut stuck = connect(addr);
    stuck.write_all(get("/endless").as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // Other connections, on either shard, are served meanwhile.
    for _ in 0..8 {
        let started = Instant::now();
        let (reply, _) = exchange(addr, get("/").as_bytes());
        assert_eq!(reply.status, 200);
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    // The kernel takes a few MB before the socket stays full; then `timeouts.write`
    // (0.5 s) ends the connection.
    let started = Instant::now();
    while stats(addr)["total"]["timeouts"] == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no write timeout"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The producer was held back by the unread socket, not run without bound.
    let produced = PRODUCED.load(Ordering::Relaxed);
    assert!(
        produced < 64 << 20,
        "{produced} bytes produced for an unread stream"
    );
    // What the kernel buffered can be read; then the connection ends.
    let mut sink = vec![0u8; 1 << 16];
    let mut read = 0u64;
    loop {
        match stuck.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n as u64,
        }
    }
    assert!(
        read <= produced + 1024,
        "{read} bytes read of {produced} produced"
    );
    assert_eq!(
        PRODUCED.load(Ordering::Relaxed),
        produced,
        "produced after the close"
    );
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_producer_that_panics_ends_only_its_connection() {
    let server = start();
    let addr = server.local_addr();
    let (reply, mut reader) = exchange(addr, get("/panics").as_bytes());
    assert_eq!(reply.status, 200);
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    assert!(
        !rest.ends_with(b"0\r\n\r\n"),
        "the body must not look complete"
    );
    assert_eq!(stats(addr)["total"]["handler_panics"], 1);
    let (reply, _) = exchange(addr, get("/").as_bytes());
    assert_eq!(reply.status, 200);
    server.stop();
    server.join().unwrap();
}

#[test]
fn the_stream_is_sent_over_many_writes_when_large() {
    let server = start();
    let (reply, mut reader) = exchange(server.local_addr(), get("/count/100000").as_bytes());
    assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
    let body = read_chunked(&mut reader);
    let expected: String = (0..100000).map(|i| format!("line {i}\n")).collect();
    assert_eq!(body.len(), expected.len());
    assert!(body == expected.as_bytes());
    server.stop();
    server.join().unwrap();
}
