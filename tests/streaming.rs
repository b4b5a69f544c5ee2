//! Streamed response bodies over raw TCP: chunked and sized, pipelined behind and ahead
//! of other responses, HEAD and HTTP/1.0, a client that stops reading, a producer that
//! panics.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::{stream, StreamExt};
use haywire::{Request, RequestBody, Response, Router, RunningServer, Server, ShardCtx};

use common::*;

/// Bytes the endless stream has produced, over all shards.
static PRODUCED: AtomicU64 = AtomicU64::new(0);

/// Where `/upload` stores bodies: one file per upload, named by the `X-Name` header.
fn upload_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("haywire-upload-{}", std::process::id()))
}

/// Pieces `/hold` has taken, over all shards.
static HELD: AtomicU64 = AtomicU64::new(0);

/// Request body pieces `/sink` has taken, by shard.
static SUNK: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

fn routes(router: &mut Router, shard: &Rc<ShardCtx>) {
    // Takes a streamed body piece by piece, each after 1 ms of work (standing for
    // parsing or storing it): a client that sends without pause is always ahead, so
    // the connection never waits for its reads.
    let id = shard.id();
    router.post_streaming(
        "/sink",
        move |_: Request, mut body: RequestBody| async move {
            while let Some(Ok(_)) = body.chunk().await {
                let worked = Instant::now() + Duration::from_millis(1);
                while Instant::now() < worked {
                    std::hint::spin_loop();
                }
                SUNK[id].fetch_add(1, Ordering::Relaxed);
            }
            Response::text("sunk")
        },
    );
    // Streams the body to a file, never holding it whole.
    router.post_streaming(
        "/upload",
        |req: Request, mut body: RequestBody| async move {
            let name = req.header("x-name").unwrap_or("unnamed").to_owned();
            let mut file = std::fs::File::create(upload_dir().join(&name)).unwrap();
            let (mut total, mut pieces, mut largest) = (0usize, 0usize, 0usize);
            while let Some(piece) = body.chunk().await {
                match piece {
                    Ok(piece) => {
                        file.write_all(&piece).unwrap();
                        total += piece.len();
                        pieces += 1;
                        largest = largest.max(piece.len());
                    }
                    Err(e) => {
                        return Response::new(haywire::StatusCode::BAD_REQUEST)
                            .with_body("text/plain", format!("body failed: {:?}", e.kind()));
                    }
                }
            }
            Response::text(format!(
                "stored {total} bytes in {pieces} pieces, largest {largest}"
            ))
        },
    );
    // Takes one piece, then stops reading for 2 s: past `timeouts.body` (1 s).
    router.post_streaming("/hold", |_: Request, mut body: RequestBody| async move {
        let _ = body.chunk().await;
        HELD.fetch_add(1, Ordering::Relaxed);
        glommio::timer::sleep(Duration::from_secs(2)).await;
        while let Some(piece) = body.chunk().await {
            if let Err(e) = piece {
                return Response::new(haywire::StatusCode::REQUEST_TIMEOUT)
                    .with_body("text/plain", format!("{:?}", e.kind()));
            }
        }
        Response::text("complete")
    });
    // Says whether the body was complete, in one piece, when the handler was called
    // (looked at in the call, not in the future: as a handler that hands the request
    // on to another thread at once does).
    router.post_streaming("/whole", |_: Request, mut body: RequestBody| {
        let whole = body.take_whole();
        async move {
            if let Some(whole) = whole {
                return Response::text(format!("whole {}", whole.len()));
            }
            match body.collect(usize::MAX).await {
                Ok(all) => Response::text(format!("streamed {}", all.len())),
                Err(e) => Response::text(format!("failed {:?}", e.kind())),
            }
        }
    });
    // Refuses without reading the body.
    router.post_streaming("/refuse", |_: Request, _: RequestBody| {
        Response::new(haywire::StatusCode::from_u16(401).unwrap()).with_body("text/plain", "no\n")
    });
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
    // Endless 64 KiB pieces, every one ready when asked for, each after 1 ms of work
    // (standing for rendering or compressing it): the producer never makes the
    // connection wait, and a client that reads keeps up with it, so its socket never
    // fills and makes it wait either.
    router.get("/flood", |_: Request| {
        let piece = Bytes::from(vec![b'f'; 64 * 1024]);
        Response::stream(
            "application/octet-stream",
            stream::repeat_with(move || {
                let worked = Instant::now() + Duration::from_millis(1);
                while Instant::now() < worked {
                    std::hint::spin_loop();
                }
                piece.clone()
            }),
        )
    });
    // `n` pieces of 64 KiB (piece i all `b'a' + i`), every one ready at once (and the
    // body's end by the time its last piece is written); `/ready-short/:n` announces
    // one byte more than it has.
    router.get("/ready/:n", |req: Request| {
        Response::stream("application/octet-stream", ready_pieces(&req).1)
    });
    router.get("/ready-short/:n", |req: Request| {
        let (n, pieces) = ready_pieces(&req);
        let len = 1 + 64 * 1024 * u64::from(n);
        Response::new(haywire::StatusCode::OK).with_stream(
            "application/octet-stream",
            Some(len),
            pieces,
        )
    });
    // `n` pieces of 64 KiB (piece i all `b'a' + i`), the producer yielding before
    // each, so the connection waits for every one.
    router.get("/pieces/:n", |req: Request| {
        let n: u8 = req.param("n").and_then(|n| n.parse().ok()).unwrap_or(0);
        let pieces = stream::unfold(0u8, move |i| async move {
            futures_lite::future::yield_now().await;
            (i < n).then(|| (Bytes::from(vec![b'a' + i; 64 * 1024]), i + 1))
        });
        Response::stream("application/octet-stream", pieces)
    });
    // Pattern routes stream too: the captures are there for the handler.
    router.put_streaming(
        "/buckets/:bucket/*",
        |req: Request, mut body: RequestBody| async move {
            let bucket = req.param("bucket").unwrap_or("?").to_owned();
            let mut total = 0;
            while let Some(Ok(piece)) = body.chunk().await {
                total += piece.len();
            }
            Response::text(format!("{bucket} {} {total}", req.path()))
        },
    );
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

/// `:n`, and the `n` pieces of 64 KiB of `/ready/:n`, all ready.
fn ready_pieces(req: &Request) -> (u8, impl futures_lite::Stream<Item = Bytes>) {
    let n: u8 = req.param("n").and_then(|n| n.parse().ok()).unwrap_or(0);
    let pieces = stream::iter((0..n).map(|i| Bytes::from(vec![b'a' + i; 64 * 1024])));
    (n, pieces)
}

fn start() -> RunningServer {
    let mut config = test_config();
    config.timeouts.write = 0.5;
    config.timeouts.body = 1.0;
    std::fs::create_dir_all(upload_dir()).unwrap();
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
    let all = String::from_utf8(read_to_close(&mut short)).unwrap();
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

/// A stream whose pieces are always ready, to a client that reads as fast as it can,
/// must not hold its shard: glommio is cooperative, and the socket's writes complete
/// at once while the client keeps up, so the connection's task would never wait.
#[test]
fn an_always_ready_stream_to_a_fast_client_lets_its_shard_serve_others() {
    let server = start();
    let addr = server.local_addr();
    // On every shard, one connection that will stream and one that asks meanwhile.
    let pairs = two_on_every_shard(addr, server.shards());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut drains = Vec::new();
    let mut probes = Vec::new();
    for (flood, probe) in pairs {
        let mut flood = flood.into_inner();
        flood.write_all(get("/flood").as_bytes()).unwrap();
        let read = std::sync::Arc::new(AtomicU64::new(0));
        let (stop, counted) = (stop.clone(), read.clone());
        drains.push(std::thread::spawn(move || {
            let mut sink = vec![0u8; 1 << 20];
            while !stop.load(Ordering::Relaxed) {
                match flood.read(&mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => counted.fetch_add(n as u64, Ordering::Relaxed),
                };
            }
        }));
        probes.push((probe, read));
    }
    // Every stream is flowing (its shard is past the head and into the body)...
    wait_for_floods("a stream", || {
        probes
            .iter()
            .all(|(_, read)| read.load(Ordering::Relaxed) >= 1 << 20)
    });
    // ...and a request on the same shard is answered meanwhile (the stream's work: a
    // 64 KiB piece per 1 ms).
    for (shard, (probe, read)) in probes.iter_mut().enumerate() {
        assert_shard_answers(probe, shard, "streaming", || {
            read.load(Ordering::Relaxed) >> 16
        });
    }
    stop.store(true, Ordering::Relaxed);
    for drain in drains {
        drain.join().unwrap();
    }
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_client_uploading_without_pause_lets_its_shard_serve_others() {
    let server = start();
    let addr = server.local_addr();
    assert_eq!(server.shards(), SUNK.len());
    let pairs = two_on_every_shard(addr, server.shards());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // 1 KiB chunks, a piece of work each: a 64 KiB read holds 64 ms of work, and the
    // socket's buffers seconds of it, so the upload never runs short of data (which
    // would let the shard wait, and pass this test without the yield) even when the
    // machine leaves the writing thread unscheduled for a while.
    let chunk = [b"400\r\n".as_slice(), &[b'u'; 1024], b"\r\n"].concat();
    let batch = chunk.repeat(1024);
    let mut writers = Vec::new();
    let mut probes = Vec::new();
    for (flood, probe) in pairs {
        let mut flood = flood.into_inner();
        flood
            .write_all(b"POST /sink HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        writers.push(write_without_pause(flood, batch.clone(), stop.clone()));
        probes.push(probe);
    }
    // Every upload is being taken...
    wait_for_floods("an upload", || {
        SUNK.iter().all(|n| n.load(Ordering::Relaxed) >= 16)
    });
    // ...and a request on the same shard is answered meanwhile.
    for (shard, probe) in probes.iter_mut().enumerate() {
        assert_shard_answers(probe, shard, "uploaded to without pause", || {
            SUNK[shard].load(Ordering::Relaxed)
        });
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_producer_that_panics_ends_only_its_connection() {
    let server = start();
    let addr = server.local_addr();
    let (reply, mut reader) = exchange(addr, get("/panics").as_bytes());
    assert_eq!(reply.status, 200);
    let rest = read_to_close(&mut reader);
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

/// GETs `path` (8 chunked pieces of 64 KiB: `a`s, `b`s, ...), checks the body, and
/// returns the writes the server made meanwhile (the first /stats answer included) and
/// the connection.
fn writes_for_eight_pieces(addr: SocketAddr, path: &str) -> (u64, BufReader<TcpStream>) {
    let writes = || stats(addr)["total"]["writes"].as_u64().unwrap();
    let before = writes();
    let (reply, mut reader) = exchange(addr, get(path).as_bytes());
    assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
    let body = read_chunked(&mut reader);
    let expected: Vec<u8> = (0..8u8).flat_map(|i| [b'a' + i; 64 * 1024]).collect();
    assert!(
        body == expected,
        "{} bytes, not the 8 pieces in order",
        body.len()
    );
    (writes() - before, reader)
}

#[test]
fn each_large_piece_goes_out_in_one_write_with_its_framing() {
    let server = start();
    let (written, _) = writes_for_eight_pieces(server.local_addr(), "/pieces/8");
    // The head (out alone while the first piece is made), one write per piece (its
    // size line, the piece from where it is, its CRLF), the last chunk, and the first
    // /stats answer. Sent apart, the three parts of each piece took three writes.
    assert!(written <= 8 + 3, "{written} writes for 8 pieces");
    server.stop();
    server.join().unwrap();
}

#[test]
fn large_pieces_ready_together_go_out_in_one_write_with_the_end() {
    let server = start();
    let addr = server.local_addr();
    let (written, mut reader) = writes_for_eight_pieces(addr, "/ready/8");
    // 256 KiB of ready pieces per write, each with its framing (the head with the
    // first, the last chunk with the last), and the first /stats answer: 3. A write
    // per piece made 9, and 10 with the last chunk alone.
    assert!(written <= 2 + 1, "{written} writes for 8 pieces");
    // The body was complete: the connection goes on.
    reader
        .get_mut()
        .write_all(get("/ready/1").as_bytes())
        .unwrap();
    assert_eq!(read_reply(&mut reader, false).status, 200);
    assert!(
        read_chunked(&mut reader) == [b'a'; 64 * 1024],
        "not the one piece"
    );
    // Ended short of its Content-Length: the pieces, then the connection ends.
    let mut short = connect(addr);
    short.write_all(get("/ready-short/2").as_bytes()).unwrap();
    let all = read_to_close(&mut short);
    let head = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head_text = String::from_utf8_lossy(&all[..head]);
    assert!(
        head_text.contains("Content-Length: 131073\r\n"),
        "{head_text}"
    );
    assert_eq!(all.len() - head, 2 * 64 * 1024);
    server.stop();
    server.join().unwrap();
}

#[test]
fn an_upload_larger_than_max_request_size_streams_to_a_file() {
    let server = start();
    let addr = server.local_addr();
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    // Content-Length, then chunked, each followed by a pipelined GET.
    let mut stream = connect(addr);
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: t\r\nX-Name: sized\r\nContent-Length: {}\r\n\r\n",
        data.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&data).unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nX-Name: chunked\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    for piece in data.chunks(70_000) {
        stream
            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .unwrap();
        stream.write_all(piece).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    stream.write_all(get("/").as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    for name in ["sized", "chunked"] {
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert!(
            reply.text().starts_with("stored 5000000 bytes"),
            "{}",
            reply.text()
        );
        // No piece is larger than one read.
        let largest: usize = reply.text().rsplit(' ').next().unwrap().parse().unwrap();
        assert!(largest <= 64 * 1024, "{}", reply.text());
        assert!(std::fs::read(upload_dir().join(name)).unwrap() == data);
    }
    assert_eq!(read_reply(&mut reader, false).text(), "hello world");
    // A whole-body route keeps its limit.
    let big = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        1 << 20
    );
    let (reply, _) = exchange(addr, big.as_bytes());
    assert_eq!(reply.status, 413);
    // Expect: 100-continue: the interim answer first, then the body.
    let mut stream = connect(addr);
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nX-Name: cont\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    assert_eq!(read_reply(&mut reader, false).status, 100);
    reader.get_mut().write_all(b"xyz").unwrap();
    assert_eq!(
        read_reply(&mut reader, false).text(),
        "stored 3 bytes in 1 pieces, largest 3"
    );
    // No body: an empty, complete one.
    let (reply, _) = exchange(
        addr,
        b"POST /upload HTTP/1.1\r\nHost: t\r\nX-Name: empty\r\n\r\n",
    );
    assert_eq!(reply.text(), "stored 0 bytes in 0 pieces, largest 0");
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_handler_that_stops_reading_stops_the_connection_reading() {
    let server = start();
    let addr = server.local_addr();
    let mut stream = connect(addr);
    stream
        .write_all(b"POST /hold HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\n")
        .unwrap();
    stream.set_nonblocking(true).unwrap();
    // The client can push only what the kernel buffers plus the handler's window.
    let piece = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    let started = Instant::now();
    let mut stalled_since = Instant::now();
    while stalled_since.elapsed() < Duration::from_millis(300) {
        match stream.write(&piece) {
            Ok(n) => {
                sent += n;
                stalled_since = Instant::now();
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => break,
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    assert!(
        sent < 64 << 20,
        "{sent} bytes accepted by a handler that stopped reading"
    );
    assert_eq!(HELD.load(Ordering::Relaxed), 1);
    // Other connections are served meanwhile.
    let (reply, _) = exchange(addr, get("/").as_bytes());
    assert_eq!(reply.status, 200);
    // After `timeouts.body` (1 s) without room the body fails: the handler answers,
    // and the connection closes.
    stream.set_nonblocking(false).unwrap();
    let mut reader = BufReader::new(stream);
    let reply = read_reply(&mut reader, false);
    assert_eq!((reply.status, reply.text()), (408, "TimedOut".into()));
    assert_eq!(reply.header("connection"), Some("close"));
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_handler_that_refuses_early_closes_and_bad_framing_fails_the_body() {
    let server = start();
    let addr = server.local_addr();
    let (reply, mut reader) = exchange(
        addr,
        b"POST /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\nabcde",
    );
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(is_closed(&mut reader));
    // A body already complete when the handler lets go: the connection goes on.
    let mut stream = connect(addr);
    let wire =
        "POST /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde".to_owned() + &get("/");
    stream.write_all(wire.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    assert_eq!(read_reply(&mut reader, false).status, 401);
    assert_eq!(read_reply(&mut reader, false).text(), "hello world");
    let (reply, mut reader) = exchange(
        addr,
        b"POST /upload HTTP/1.1\r\nHost: t\r\nX-Name: bad\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXYZ",
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.text(), "body failed: InvalidData");
    assert!(is_closed(&mut reader));
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_small_body_that_came_with_its_head_is_complete_when_the_handler_starts() {
    let server = start();
    let addr = server.local_addr();
    // Two pipelined POSTs of 1 KiB and a GET in one write: both bodies whole, in order.
    let post = |n: usize| {
        format!(
            "POST /whole HTTP/1.1\r\nHost: t\r\nContent-Length: {n}\r\n\r\n{}",
            "b".repeat(n)
        )
    };
    let mut stream = connect(addr);
    let wire = post(1024) + &post(1000) + &get("/");
    stream.write_all(wire.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    assert_eq!(read_reply(&mut reader, false).text(), "whole 1024");
    assert_eq!(read_reply(&mut reader, false).text(), "whole 1000");
    assert_eq!(read_reply(&mut reader, false).text(), "hello world");
    // The body after its head: it streams (the handler starts before it arrives).
    let wire = post(1024);
    let (head, body) = wire.split_at(wire.len() - 1024);
    reader.get_mut().write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    reader.get_mut().write_all(body.as_bytes()).unwrap();
    assert_eq!(read_reply(&mut reader, false).text(), "streamed 1024");
    // Past the 64 KiB window: streamed whatever the reads.
    reader
        .get_mut()
        .write_all(post(64 * 1024 + 1).as_bytes())
        .unwrap();
    assert_eq!(read_reply(&mut reader, false).text(), "streamed 65537");
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_small_chunked_body_that_came_with_its_head_is_complete_when_the_handler_starts() {
    let server = start();
    let addr = server.local_addr();
    let head = "POST /whole HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    let chunk = |n: usize| format!("{n:x}\r\n{}\r\n", "c".repeat(n));
    let body = chunk(24) + &chunk(1000) + "0\r\nX-Trailer: t\r\n\r\n";
    // Pipelined with a GET in one write: whole (its data only), then the GET.
    let mut stream = connect(addr);
    let wire = format!("{head}{body}{}", get("/"));
    stream.write_all(wire.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    assert_eq!(read_reply(&mut reader, false).text(), "whole 1024");
    assert_eq!(read_reply(&mut reader, false).text(), "hello world");
    // Its last chunk still due: it streams.
    let (first, rest) = body.split_at(body.len() - 5);
    let wire = format!("{head}{first}");
    reader.get_mut().write_all(wire.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    reader.get_mut().write_all(rest.as_bytes()).unwrap();
    assert_eq!(read_reply(&mut reader, false).text(), "streamed 1024");
    // Past the 64 KiB window: streamed though all of it came at once.
    let wire = format!("{head}{}0\r\n\r\n", chunk(64 * 1024 + 1));
    reader.get_mut().write_all(wire.as_bytes()).unwrap();
    assert_eq!(read_reply(&mut reader, false).text(), "streamed 65537");
    // Bad framing is not taken whole: it fails as the body is read.
    let wire = format!("{head}{}zz\r\n\r\n", chunk(10));
    reader.get_mut().write_all(wire.as_bytes()).unwrap();
    assert_eq!(read_reply(&mut reader, false).text(), "failed InvalidData");
    server.stop();
    server.join().unwrap();
}

/// Reads until the server ends the connection (its close, or a reset). A connection
/// left open fails at the read timeout instead of passing with what came before.
fn read_to_close(reader: &mut impl Read) -> Vec<u8> {
    let mut all = Vec::new();
    match reader.read_to_end(&mut all) {
        Ok(_) => all,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => all,
        Err(e) => panic!(
            "the connection was left open ({e}) after {} bytes",
            all.len()
        ),
    }
}

#[test]
fn a_pattern_route_streams_bodies_past_max_request_size_with_its_captures() {
    let server = start();
    let addr = server.local_addr();
    // Twice `max_request_size`: a buffered route would answer 413.
    let size = 2 * test_config().limits.max_request_size;
    let mut stream = connect(addr);
    let head = format!(
        "PUT /buckets/photos/2026/cat.jpg HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&vec![b'p'; size]).unwrap();
    // Another method on the pattern is not a streaming route.
    stream
        .write_all(b"POST /buckets/photos/x HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let reply = read_reply(&mut reader, false);
    assert_eq!(
        (reply.status, reply.text()),
        (200, format!("photos /buckets/photos/2026/cat.jpg {size}"))
    );
    let other = read_reply(&mut reader, false).status;
    assert!(matches!(other, 404 | 405), "POST answered {other}");
    server.stop();
    server.join().unwrap();
}
