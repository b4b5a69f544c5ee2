//! The WebSocket frame reader on arbitrary bytes, with and without permessage-deflate
//! (compressed messages inflated): it must never panic, must decide the same way
//! whether the input arrives whole or in pieces, and every message it yields must
//! respect the limits (inflated too) and encode back to a frame of the same size.
#![no_main]

use bytes::BytesMut;
use haywire::internals::ws::{decode_header, Limits, Message, ProtocolError, Reader};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_frame: 1024,
    max_message: 4096,
};

/// Feeds `data` in pieces of `step` bytes; every message, then the error if any.
fn read_all(data: &[u8], step: usize, deflate: bool) -> (Vec<Message>, Option<ProtocolError>) {
    let mut reader = Reader::new(LIMITS);
    if deflate {
        reader.accept_compressed();
    }
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    for piece in data.chunks(step) {
        buf.extend_from_slice(piece);
        loop {
            match reader.read(&mut buf) {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(error) => return (messages, Some(error)),
            }
        }
    }
    (messages, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let deflate = split & 0x80 != 0;
    let whole = read_all(data, data.len().max(1), deflate);
    let pieces = read_all(data, usize::from(split % 16) + 1, deflate);
    assert_eq!(whole, pieces, "the outcome depends on how the input was cut");
    if let Some(error) = whole.1 {
        assert!(matches!(error.code.0, 1002 | 1007 | 1009), "{error:?}");
    }
    for message in &whole.0 {
        match message {
            Message::Ping(p) | Message::Pong(p) => assert!(p.len() <= 125),
            Message::Close(Some(close)) => assert!(close.code.is_valid_on_wire()),
            other => assert!(other.len() <= LIMITS.max_message),
        }
        let mut out = BytesMut::new();
        message.encode(&mut out);
        let (header, at) = decode_header(&out, false)
            .expect("a server frame decodes")
            .expect("a whole frame");
        assert_eq!(at as u64 + header.len, out.len() as u64);
    }
});
