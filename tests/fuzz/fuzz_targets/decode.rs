//! The request decoder (head, framing, chunked body) on arbitrary bytes: it must never
//! panic, and every request it yields must be internally consistent. The first byte
//! chooses whether requests for `/` stream their bodies (`decode_routed` and
//! `body_piece`, the path streaming routes take) or are buffered whole.
#![no_main]

use bytes::BytesMut;
use haywire::internals::{BodyPiece, Decoder, Event, Limits};
use haywire::Request;
use libfuzzer_sys::fuzz_target;

fn check(request: &Request, limits: &Limits) {
    assert!(request.path().starts_with('/') || request.path() == "*");
    assert!(request.body().len() <= limits.max_request_size);
    for (name, _) in request.headers().iter() {
        assert!(!name.is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let stream_root = mode & 1 == 1;
    let limits = Limits {
        max_head_size: 2048,
        max_uri_length: 512,
        max_request_size: 4096,
    };
    let mut decoder = Decoder::new(limits, 0);
    let mut buf = BytesMut::from(data);
    let streams = |request: &Request| stream_root && request.path() == "/";
    // A streamed body is read with `body_piece` until its end, as the connection does.
    let mut streaming = false;
    loop {
        if streaming {
            match decoder.body_piece(&mut buf) {
                Ok(BodyPiece::Data(piece)) => assert!(!piece.is_empty()),
                Ok(BodyPiece::End) => streaming = false,
                Ok(BodyPiece::NeedMore) | Err(_) => break,
            }
            continue;
        }
        match decoder.decode_routed(&mut buf, &streams) {
            Ok(Event::Request(request)) => check(&request, &limits),
            Ok(Event::Streamed { request, .. }) => {
                check(&request, &limits);
                assert!(request.body().is_empty());
                assert!(decoder.in_body());
                streaming = true;
            }
            Ok(Event::Continue) => {}
            Ok(Event::NeedMore) | Err(_) => break,
        }
    }
});
