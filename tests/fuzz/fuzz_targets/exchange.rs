//! Arbitrary bytes in arbitrary splits through what a connection does with them, without
//! a socket: decode each piece as it arrives, route every request, encode every response.
//! The first byte of the input chooses how the rest is cut.
#![no_main]

use bytes::BytesMut;
use haywire::internals::{Decoder, Event, Limits, ResponseMode, ServerHeaders, Stamp};
use haywire::{Method, Request, Response, Version};
use haywire::{Reply, Router};
use libfuzzer_sys::fuzz_target;

fn router() -> Router {
    let mut router = Router::new();
    router.get("/", |_: Request| Response::text("hello world"));
    router.post("/echo", |r: Request| Response::bytes(r.body().clone()));
    router.get("/items/:id", |r: Request| Response::text(r.param("id").unwrap_or("").to_owned()));
    router.get("/users/*", |r: Request| Response::text(r.path().to_owned()));
    router
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let router = router();
    let mut decoder = Decoder::new(Limits::default(), 0);
    let mut input = BytesMut::new();
    let mut output = BytesMut::new();
    let date = [b'x'; 29];
    let headers = ServerHeaders::default();
    let stamp = Stamp {
        date: &date,
        headers: &headers,
    };
    'feed: for piece in rest.chunks(step) {
        input.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut input) {
                Ok(Event::Request(request)) => {
                    let mode = ResponseMode {
                        head_only: request.method() == Method::Head,
                        keep_alive: request.keep_alive(),
                        http10: request.version() == Version::Http10,
                    };
                    if let Reply::Ready(response) = router.dispatch(request) {
                        response.encode(mode, stamp, &mut output);
                    }
                    if !mode.keep_alive {
                        break 'feed;
                    }
                }
                Ok(Event::Continue) => output.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n"),
                Ok(Event::Streamed { .. }) => unreachable!("`decode` never streams"),
                Ok(Event::NeedMore) => break,
                Err(error) => {
                    let mode = ResponseMode {
                        head_only: false,
                        keep_alive: false,
                        http10: false,
                    };
                    Response::new(error.status()).encode(mode, stamp, &mut output);
                    break 'feed;
                }
            }
        }
    }
    // Every response written is well-formed at its start.
    assert!(output.is_empty() || output.starts_with(b"HTTP/1.1 "));
});
