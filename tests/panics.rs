//! Panics on a shard: contained where they can be (the connection ends, the shard goes
//! on), and where one still ends a shard's executor, the whole server stops and says so
//! rather than serving on without that shard.

mod common;

use std::io::{BufReader, Write};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use haywire::{Request, RequestBody, Response, Router, ShardCtx};

/// A response body of one piece whose `Drop` panics: user code that runs in the
/// connection task after the handler, outside the handler's own `catch_unwind`.
struct PanicsOnDrop(Option<Bytes>);

impl futures_lite::Stream for PanicsOnDrop {
    type Item = Bytes;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Bytes>> {
        Poll::Ready(self.0.take())
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("a response stream that panics when dropped, on purpose");
    }
}

fn routes(router: &mut Router, _: &Rc<ShardCtx>) {
    router.get("/drop-panics", |_: Request| {
        Response::stream(
            "text/plain",
            PanicsOnDrop(Some(Bytes::from_static(b"piece"))),
        )
    });
    // A user task on the shard that panics later: glommio lets it unwind out of the
    // executor. (glommio polls a new task once inside `spawn_local`, so a panic there
    // would be the handler's, answered 500.)
    router.get("/kill-shard", |_: Request| {
        glommio::spawn_local(async {
            glommio::timer::sleep(Duration::from_millis(5)).await;
            panic!("a detached shard task panics, on purpose")
        })
        .detach();
        Response::text("spawned")
    });
    // A streaming route: its body check runs inside the decoder.
    router.post_streaming("/", |_: Request, body: RequestBody| async move {
        match body.collect(1024).await {
            Ok(bytes) => Response::bytes(bytes),
            Err(e) => Response::text(e.to_string()),
        }
    });
}

fn start() -> haywire::RunningServer {
    haywire::Server::new(test_config())
        .routes(test_routes)
        .routes(routes)
        .start()
        .expect("server starts")
}

#[test]
fn a_panic_in_a_connection_task_outside_the_handler_ends_only_that_connection() {
    let server = start();
    let addr = server.local_addr();
    for shard in [0, 1] {
        let mut reader = connect_to_shard(addr, shard);
        reader
            .get_mut()
            .write_all(get("/drop-panics").as_bytes())
            .unwrap();
        // The head and the one piece went out before the panic; then the connection ends.
        assert!(is_closed_after_head(&mut reader), "shard {shard}");
        // The shard that panicked serves again.
        let mut again = connect_to_shard(addr, shard);
        again.get_mut().write_all(get("/").as_bytes()).unwrap();
        assert_eq!(read_reply(&mut again, false).text(), "hello world");
    }
    // Counted, and the connections closed: only the `/stats` request's own stays open
    // once the server has seen the test's clients go.
    let mut report = stats(addr);
    for _ in 0..50 {
        if report["total"]["connections"]["active"].as_u64() == Some(1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        report = stats(addr);
    }
    assert_eq!(
        report["total"]["handler_panics"].as_u64(),
        Some(2),
        "{report}"
    );
    assert_eq!(
        report["total"]["connections"]["active"].as_u64(),
        Some(1),
        "{report}"
    );
    server.stop();
    server.join().unwrap();
}

/// Reads the chunked response's head, then expects the connection to end.
fn is_closed_after_head(reader: &mut BufReader<std::net::TcpStream>) -> bool {
    use std::io::BufRead;
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line:?}");
    let mut rest = Vec::new();
    // Bounded by the client's 10 s read timeout: an open connection fails here.
    match std::io::Read::read_to_end(reader, &mut rest) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

#[test]
fn a_shard_whose_executor_dies_stops_the_whole_server() {
    let server = start();
    let addr = server.local_addr();
    let mut reader = connect_to_shard(addr, 1);
    reader
        .get_mut()
        .write_all(get("/kill-shard").as_bytes())
        .unwrap();
    let (done, joined) = mpsc::channel();
    std::thread::spawn(move || done.send(server.join()));
    // The other shard stops too (gracefully: grace is 10 s by default, and nothing is
    // in flight there), and `join` reports the dead shard.
    let result = joined
        .recv_timeout(Duration::from_secs(30))
        .expect("the server kept running with a dead shard");
    let error = result.expect_err("a dead shard is an error");
    assert!(error.to_string().contains("shard 1"), "{error}");
}

#[test]
fn absolute_form_targets_with_an_empty_path_are_served_as_the_root() {
    let server = start();
    let addr = server.local_addr();
    for shard in [0, 1] {
        let mut reader = connect_to_shard(addr, shard);
        let wire = "GET http://a HTTP/1.1\r\nHost: a\r\n\r\n\
             GET HTTP://a?x=1 HTTP/1.1\r\nHost: a\r\n\r\n\
             POST http://a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
        reader.get_mut().write_all(wire.as_bytes()).unwrap();
        for want in ["hello world", "hello world", "hello"] {
            let reply = read_reply(&mut reader, false);
            assert_eq!((reply.status, reply.text().as_str()), (200, want));
        }
        // And the shard is still there.
        let mut again = connect_to_shard(addr, shard);
        again.get_mut().write_all(get("/").as_bytes()).unwrap();
        assert_eq!(read_reply(&mut again, false).status, 200);
    }
    server.stop();
    server.join().unwrap();
}
