//! HTTP/1.1 behaviour against a real 2-shard server, over raw TCP.

mod common;

use std::io::{BufReader, Write};

use common::*;

#[test]
fn hello_world() {
    let (reply, _) = exchange(shared_server(), get("/").as_bytes());
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "hello world");
    assert_eq!(reply.header("server"), Some("haywire"));
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(reply.header("content-length"), Some("11"));
    let date = reply.header("date").expect("Date header");
    assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
}

#[test]
fn hundred_pipelined_gets_answer_in_order() {
    let mut stream = connect(shared_server());
    let wire: String = (0..100).map(|i| get(&format!("/items/{i}"))).collect();
    stream.write_all(wire.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    for i in 0..100 {
        let reply = read_reply(&mut reader, false);
        assert_eq!((reply.status, reply.text()), (200, i.to_string()));
    }
}

#[test]
fn pipelined_large_bodies_and_small_answers_arrive_whole_and_in_order() {
    // Large bodies are written from where they are and the pipeline is dispatched a
    // few at a time under the output cap: every answer still arrives whole, in order.
    let mut stream = connect(shared_server());
    let round = |i: usize| {
        [
            get("/big"),
            get(&format!("/items/{i}")),
            "HEAD /big HTTP/1.1\r\nHost: test\r\n\r\n".to_string(),
            get(&format!("/slow/{}", i % 2)),
        ]
        .concat()
    };
    let wire: String = (0..40).map(round).collect();
    stream.write_all(wire.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    for i in 0..40 {
        let big = read_reply(&mut reader, false);
        assert_eq!((big.status, big.body.len()), (200, BIG.len()));
        assert!(big.body.iter().all(|&b| b == b'x'));
        assert_eq!(read_reply(&mut reader, false).text(), i.to_string());
        let head = read_reply(&mut reader, true);
        assert_eq!(head.header("content-length"), Some("65536"));
        assert_eq!(
            read_reply(&mut reader, false).text(),
            format!("slept {}", i % 2)
        );
    }
}

#[test]
fn pipelined_async_handlers_answer_in_request_order() {
    let mut stream = connect(shared_server());
    // The first finishes last; responses must still come back in request order.
    let wire = [
        get("/slow/200"),
        get("/slow/0"),
        get("/items/x"),
        get("/slow/50"),
    ]
    .concat();
    stream.write_all(wire.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let texts: Vec<String> = (0..4)
        .map(|_| read_reply(&mut reader, false).text())
        .collect();
    assert_eq!(texts, ["slept 200", "slept 0", "x", "slept 50"]);
}

#[test]
fn keep_alive_reuses_the_connection() {
    let mut stream = connect(shared_server());
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for _ in 0..5 {
        stream.write_all(get("/").as_bytes()).unwrap();
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("connection"), None);
    }
}

#[test]
fn connection_close_is_honoured() {
    let wire =
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let (reply, mut reader) = exchange(shared_server(), wire);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(
        is_closed(&mut reader),
        "the pipelined request after close was answered"
    );
}

/// `server.keep_alive = false`: each connection carries one response, whatever the
/// client asks (HTTP/1.0's keep-alive included), and a pipelined request after it is
/// not answered.
#[test]
fn keep_alive_off_closes_after_every_response() {
    let mut config = test_config();
    config.server.keep_alive = false;
    let server = start_server(config);
    for wire in [
        &b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ] {
        let (reply, mut reader) = exchange(server.local_addr(), wire);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("connection"), Some("close"));
        assert!(is_closed(&mut reader), "a second response came");
    }
    server.stop();
    server.join().unwrap();
}

#[test]
fn http10_closes_unless_keep_alive() {
    let (reply, mut reader) = exchange(shared_server(), b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(is_closed(&mut reader));

    let mut stream = connect(shared_server());
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for _ in 0..2 {
        stream
            .write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.header("connection"), Some("keep-alive"));
    }
}

#[test]
fn head_has_get_headers_and_no_body() {
    let mut stream = connect(shared_server());
    stream
        .write_all(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    stream.write_all(get("/items/after").as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let head = read_reply(&mut reader, true);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("11"));
    // No body bytes: the next response starts right away.
    let next = read_reply(&mut reader, false);
    assert_eq!(next.text(), "after");
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let mut stream = connect(shared_server());
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        )
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let interim = read_reply(&mut reader, true);
    assert_eq!(interim.status, 100);
    stream.write_all(b"hello").unwrap();
    let reply = read_reply(&mut reader, false);
    assert_eq!((reply.status, reply.text()), (200, "hello".into()));
}

#[test]
fn echo_content_length_and_chunked_bodies() {
    let (reply, _) = exchange(
        shared_server(),
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/x-test\r\nContent-Length: 11\r\n\r\nhello world",
    );
    assert_eq!((reply.status, reply.text()), (200, "hello world".into()));
    assert_eq!(reply.header("content-type"), Some("text/x-test"));

    let mut stream = connect(shared_server());
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    // Sent in pieces, split inside sizes and data, with a trailer.
    for part in [
        &b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r"[..],
        b"\nhel",
        b"lo\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n",
        b"\r\n",
    ] {
        stream.write_all(part).unwrap();
        stream.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let reply = read_reply(&mut reader, false);
    assert_eq!((reply.status, reply.text()), (200, "hello world".into()));
}

#[test]
fn each_bad_request_gets_its_status_and_the_connection_closes() {
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(2000));
    let big_head = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(5000)
    );
    let big_body = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n".to_string();
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"NOT A REQUEST\r\n\r\n".to_vec(), 400),
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), 400),
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n".to_vec(), 400),
        (long_uri.into_bytes(), 414),
        (big_head.into_bytes(), 431),
        (big_body.into_bytes(), 413),
        (b"GET / HTTP/3.0\r\nHost: t\r\n\r\n".to_vec(), 505),
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(), 501),
        (b"GET / HTTP/1.1\r\nHost: user@t\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\nHost: t/path\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\nHost: t:http\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n".to_vec(), 400),
        (b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 400),
        (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 400),
        ("\r\n".repeat(20).into_bytes(), 400),
    ];
    for (wire, status) in cases {
        // A valid request after the bad one must never be answered.
        let mut wire = wire;
        wire.extend_from_slice(get("/").as_bytes());
        let (reply, mut reader) = exchange(shared_server(), &wire);
        let shown = String::from_utf8_lossy(&wire[..wire.len().min(60)]).into_owned();
        assert_eq!(reply.status, status, "{shown}");
        assert_eq!(reply.header("connection"), Some("close"), "{shown}");
        assert!(is_closed(&mut reader), "{shown}: connection left open");
    }
}

#[test]
fn lenient_where_the_rfcs_say_so() {
    // Empty lines before a request line, and empty list elements, are ignored.
    let wire = b"\r\n\r\nPOST /echo HTTP/1.1\r\nHost: [::1]:80\r\n\
                 Transfer-Encoding: , chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    let (reply, _) = exchange(shared_server(), wire);
    assert_eq!((reply.status, reply.text()), (200, "ok".into()));
}

#[test]
fn unknown_path_is_404_and_wrong_method_is_405_with_allow() {
    let (reply, _) = exchange(shared_server(), get("/nowhere").as_bytes());
    assert_eq!(reply.status, 404);
    let (reply, _) = exchange(shared_server(), b"DELETE /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST, PUT"));
    let (reply, _) = exchange(
        shared_server(),
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
}

#[test]
fn wildcards_and_params_route() {
    let cases = [
        ("/users/42", 200, "user /users/42"),
        ("/users/42/posts", 200, "user /users/42/posts"),
        ("/users/", 404, ""),
        ("/items/abc?x=1", 200, "abc"),
        ("/items/abc/def", 404, ""),
        ("/files/docs/a/b", 200, "dir docs"),
    ];
    for (path, status, text) in cases {
        let (reply, _) = exchange(shared_server(), get(path).as_bytes());
        assert_eq!(reply.status, status, "{path}");
        if status == 200 {
            assert_eq!(reply.text(), text, "{path}");
        }
    }
}

#[test]
fn a_panicking_handler_gets_500_and_the_shard_keeps_serving() {
    let addr = shared_server();
    for path in ["/panic", "/panic-async"] {
        // Each shard panics in turn, and then serves again: a dead shard would fail
        // `connect_to_shard`, which no other shard can satisfy.
        for shard in [0, 1] {
            let mut reader = connect_to_shard(addr, shard);
            let mut wire = get(path).into_bytes();
            wire.extend_from_slice(get("/").as_bytes());
            reader.get_mut().write_all(&wire).unwrap();
            let reply = read_reply(&mut reader, false);
            assert_eq!(reply.status, 500, "{path}");
            assert_eq!(reply.header("connection"), Some("close"));
            assert!(is_closed(&mut reader));
            let mut again = connect_to_shard(addr, shard);
            again.get_mut().write_all(get("/").as_bytes()).unwrap();
            assert_eq!(read_reply(&mut again, false).text(), "hello world");
        }
    }
}

#[test]
fn hundreds_of_concurrent_connections_are_all_answered_as_they_come_and_go() {
    // More ready sockets than one epoll harvest takes (64), on each shard; then half
    // close and new ones take their places (and their poller slots).
    let addr = shared_server();
    let mut readers: Vec<_> = (0..300).map(|_| BufReader::new(connect(addr))).collect();
    for round in 0..3 {
        for (i, reader) in readers.iter_mut().enumerate() {
            let wire = get(&format!("/items/{}", round * 1000 + i));
            reader.get_mut().write_all(wire.as_bytes()).unwrap();
        }
        for (i, reader) in readers.iter_mut().enumerate() {
            let reply = read_reply(reader, false);
            assert_eq!(
                (reply.status, reply.text()),
                (200, (round * 1000 + i).to_string())
            );
        }
        for reader in readers.iter_mut().step_by(2) {
            *reader = BufReader::new(connect(addr));
        }
    }
}

/// `server.server_header` names the server in every response, or is left out when
/// empty; a handler's own `Server` header replaces it rather than adding a second.
#[test]
fn the_server_header_is_configurable_and_a_handlers_own_replaces_it() {
    for (configured, expected) in [("edge/1.2 (test)", Some("edge/1.2 (test)")), ("", None)] {
        let mut config = test_config();
        config.server.server_header = configured.into();
        let running = start_with_own_header(config, "server", "app/2");
        let addr = running.local_addr();
        for path in ["/", "/missing"] {
            let (reply, _) = exchange(addr, get(path).as_bytes());
            let expected: Vec<_> = expected.into_iter().collect();
            assert_eq!(values(&reply, "server"), expected, "{path}");
            assert!(reply.header("date").is_some());
        }
        let (reply, _) = exchange(addr, get("/own").as_bytes());
        assert_eq!(values(&reply, "server"), ["app/2"]);
        running.stop();
        running.join().expect("clean stop");
    }
}

/// A test server whose `/own` answers with the header `name: value` of its own.
fn start_with_own_header(
    config: haywire::Config,
    name: &'static str,
    value: &'static str,
) -> haywire::RunningServer {
    haywire::Server::new(config)
        .routes(test_routes)
        .routes(move |router, _| {
            router.get("/own", move |_: haywire::Request| {
                haywire::Response::text("x").with_header(name, value)
            });
        })
        .start()
        .expect("server starts")
}

/// Every value of the header `name` in `reply`, in order.
fn values<'a>(reply: &'a Reply, name: &str) -> Vec<&'a str> {
    reply
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// `server.headers` go on every response without its own of that name: a handler's, a
/// stock route's, and the server's answer to a malformed request.
#[test]
fn configured_headers_reach_every_response_without_its_own() {
    let mut config = test_config();
    for (name, value) in [
        ("X-Frame-Options", "DENY"),
        ("Strict-Transport-Security", "max-age=600"),
    ] {
        config.server.headers.insert(name.into(), value.into());
    }
    let running = start_with_own_header(config, "x-frame-options", "SAMEORIGIN");
    let addr = running.local_addr();
    let malformed = "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n";
    for (wire, status) in [
        (get("/"), 200),
        (get("/shard"), 200),
        (malformed.into(), 400),
    ] {
        let (reply, _) = exchange(addr, wire.as_bytes());
        assert_eq!(reply.status, status, "{wire:?}");
        assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{wire:?}");
        assert_eq!(
            reply.header("strict-transport-security"),
            Some("max-age=600")
        );
    }
    let (reply, _) = exchange(addr, get("/own").as_bytes());
    assert_eq!(values(&reply, "x-frame-options"), ["SAMEORIGIN"]);
    assert_eq!(
        reply.header("strict-transport-security"),
        Some("max-age=600")
    );
    running.stop();
    running.join().expect("clean stop");
}
