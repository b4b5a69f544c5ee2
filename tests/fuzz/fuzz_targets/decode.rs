//! The request decoder (head, framing, chunked body) on arbitrary bytes: it must never
//! panic, and every request it yields must be internally consistent.
#![no_main]

use bytes::BytesMut;
use haywire::internals::{Decoder, Event, Limits, ResponseMode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_head: 2048,
        max_uri: 512,
        max_body: 4096,
    };
    let mut decoder = Decoder::new(limits, 0);
    let mut buf = BytesMut::from(data);
    loop {
        match decoder.decode(&mut buf) {
            Ok(Event::Request(request)) => {
                assert!(request.path().starts_with('/') || request.path() == "*");
                assert!(request.body().len() <= limits.max_body);
                for (name, _) in request.headers().iter() {
                    assert!(!name.is_empty());
                }
            }
            Ok(Event::Continue) => {}
            Ok(Event::NeedMore) | Err(_) => break,
        }
    }
});
