//! Micro-benchmarks of the request path's pure parts, in ns per operation: decoding a
//! request, routing it, and encoding a response, for wrk's minimal request and for a
//! browser-like one (~450 bytes of headers).

use std::rc::Rc;

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use haywire::internals::{Decoder, Event, Limits, ResponseMode, ServerHeaders, Stamp};
use haywire::{Request, Response, Router};

const SMALL: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost:8000\r\n\r\n";

const BROWSER: &[u8] = b"GET /users/42/profile?tab=posts HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/users/42\r\n\
Connection: keep-alive\r\n\
Cookie: session=4f2a9c1e8b7d6a5f3e2c1b0a9f8e7d6c; theme=dark\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\r\n";

fn decode_one(decoder: &mut Decoder, wire: &[u8], buf: &mut BytesMut) -> Request {
    buf.clear();
    buf.extend_from_slice(wire);
    match decoder.decode(buf) {
        Ok(Event::Request(request)) => request,
        other => panic!("not a request: {other:?}"),
    }
}

fn router() -> Router {
    let mut router = Router::new();
    router.get("/", |_: Request| Response::text("hello world"));
    router.get("/health", |_: Request| Response::text("ok"));
    router.get("/static/*", |_: Request| Response::text("file"));
    router.get("/users/:id", |_: Request| Response::text("user"));
    router.get("/users/:id/profile", |_: Request| Response::text("profile"));
    router.post("/echo", |r: Request| Response::bytes(r.body().clone()));
    router
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, wire) in [("small", SMALL), ("browser", BROWSER)] {
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(name, |b| {
            let mut decoder = Decoder::new(Limits::default(), 0);
            let mut buf = BytesMut::with_capacity(4096);
            b.iter(|| black_box(decode_one(&mut decoder, black_box(wire), &mut buf)));
        });
    }
    group.finish();

    let router = Rc::new(router());
    let mut group = c.benchmark_group("route");
    for (name, wire) in [("exact", SMALL), ("param", BROWSER)] {
        let mut decoder = Decoder::new(Limits::default(), 0);
        let mut buf = BytesMut::with_capacity(4096);
        let request = decode_one(&mut decoder, wire, &mut buf);
        group.bench_function(name, |b| {
            b.iter(|| black_box(router.dispatch(black_box(request.clone()))));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("encode");
    let mode = ResponseMode {
        head_only: false,
        keep_alive: true,
        http10: false,
    };
    let date = *b"Sat, 28 Nov 2026 05:00:00 GMT";
    let headers = ServerHeaders::default();
    let stamp = Stamp {
        date: &date,
        headers: &headers,
    };
    let small = Response::text("hello world");
    let with_headers = Response::json(&b"{\"id\":42,\"name\":\"haywire\"}"[..])
        .with_header("Cache-Control", "no-store")
        .with_header("X-Request-Id", "4f2a9c1e8b7d6a5f");
    for (name, response) in [("text", &small), ("json_with_headers", &with_headers)] {
        group.bench_function(name, |b| {
            let mut out = BytesMut::with_capacity(4096);
            b.iter(|| {
                out.clear();
                black_box(response).encode(mode, stamp, &mut out);
                black_box(out.len())
            });
        });
    }
    group.finish();
}

criterion_group!(micro, benches);
criterion_main!(micro);
