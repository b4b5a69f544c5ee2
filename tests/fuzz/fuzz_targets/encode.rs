//! The response encoder's framing on arbitrary responses: a ready body under every
//! request mode (HEAD, HTTP/1.0, keep-alive or not) gets exactly one framing header
//! that matches what follows; a streamed body's pieces, framed by `BodyEncoder` under a
//! length, chunked or to the close, read back as exactly the bytes announced.
#![no_main]

use bytes::{Bytes, BytesMut};
use haywire::internals::{BodyEncoder, ResponseMode, ServerHeaders, ShortBody, Stamp};
use haywire::Response;
use libfuzzer_sys::fuzz_target;

const DATE: &[u8; 29] = b"Sun, 06 Nov 1994 08:49:37 GMT";

/// The head's lines (without the status line) and what follows the blank line.
fn split(wire: &[u8]) -> (Vec<String>, &[u8]) {
    let end = wire.windows(4).position(|w| w == b"\r\n\r\n").expect("a head");
    let head = String::from_utf8(wire[..end].to_vec()).expect("an ASCII head");
    let lines = head.split("\r\n").skip(1).map(str::to_owned).collect();
    (lines, &wire[end + 4..])
}

fn values<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|l| l.split_once(": "))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

/// Reads a chunked body back; `None` if the framing is broken.
fn unchunk(mut wire: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = wire.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&wire[..line]).ok()?, 16).ok()?;
        wire = &wire[line + 2..];
        if size == 0 {
            return (wire == b"\r\n").then_some(body);
        }
        body.extend_from_slice(wire.get(..size)?);
        wire = wire.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let mode = ResponseMode {
        head_only: flags & 1 != 0,
        keep_alive: flags & 2 != 0,
        http10: flags & 4 != 0,
    };
    // A ready body, possibly with framing headers a user set (the computed ones win).
    let mut response = Response::bytes(Bytes::copy_from_slice(data));
    if flags & 8 != 0 {
        response = response
            .with_header("Content-Length", "7")
            .with_header("Transfer-Encoding", "chunked")
            .with_header("Connection", "keep-alive")
            .with_header("Server", "fuzz");
    }
    let mut wire = BytesMut::new();
    let headers = ServerHeaders::default();
    let stamp = Stamp {
        date: DATE,
        headers: &headers,
    };
    response.encode(mode, stamp, &mut wire);
    let (lines, body) = split(&wire);
    assert_eq!(values(&lines, "content-length"), [data.len().to_string()]);
    assert!(values(&lines, "transfer-encoding").is_empty());
    assert_eq!(values(&lines, "date").len(), 1);
    let server = if flags & 8 != 0 { "fuzz" } else { "haywire" };
    assert_eq!(values(&lines, "server"), [server]);
    let connection = values(&lines, "connection");
    if !mode.keep_alive {
        assert_eq!(connection, ["close"]);
    } else if mode.http10 {
        assert_eq!(connection, ["keep-alive"]);
    } else {
        assert!(connection.is_empty());
    }
    assert_eq!(body, if mode.head_only { &[][..] } else { data });

    // A streamed body: the rest of the input cut into pieces at the 0xff bytes, under
    // a length (flags 16: the second byte's worth), chunked, or to the close.
    let len = (flags & 16 != 0).then(|| u64::from(data.first().copied().unwrap_or(0)));
    let mut encoder = BodyEncoder::new(len, mode.http10);
    let mut framed = BytesMut::new();
    let mut sent = Vec::new();
    for piece in data.split(|&b| b == 0xff) {
        if encoder.complete() {
            break;
        }
        if let Some(piece) = encoder.begin_piece(Bytes::copy_from_slice(piece), &mut framed) {
            assert!(!piece.is_empty());
            framed.extend_from_slice(&piece);
            sent.extend_from_slice(&piece);
            framed.extend_from_slice(encoder.after_piece());
        }
    }
    let end = encoder.end().map(|end| framed.extend_from_slice(end));
    let given: Vec<u8> = data.split(|&b| b == 0xff).flatten().copied().collect();
    match len {
        Some(len) => {
            let len = len as usize;
            assert_eq!(&framed[..], &given[..given.len().min(len)]);
            assert_eq!(end == Err(ShortBody), given.len() < len);
        }
        None if mode.http10 => assert_eq!((&framed[..], end), (&given[..], Ok(()))),
        None => {
            assert_eq!(unchunk(&framed).as_deref(), Some(&given[..]));
            assert_eq!(end, Ok(()));
        }
    }
    // Only what the framing carried went out, never more than announced.
    assert!(len.is_none_or(|len| sent.len() as u64 <= len));
});
