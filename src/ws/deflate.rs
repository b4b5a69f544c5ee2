//! permessage-deflate (RFC 7692), sans-I/O: the offer a client makes checked, and
//! message payloads compressed and inflated.
//!
//! The server always answers with `server_no_context_takeover` and
//! `client_no_context_takeover`: each message is compressed on its own, both ways, so
//! a connection keeps no compression state between messages, and one compressor and
//! one inflater per shard thread serve all its connections. With context takeover
//! each connection would hold a compressor's and an inflater's window and tables
//! (about 300 KiB with zlib's defaults): 10,000 idle connections, 3 GiB.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::frame::{CloseCode, ProtocolError};

/// The `Sec-WebSocket-Extensions` value of a 101 that accepts the extension.
pub(crate) const ACCEPTED: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// What a compressed block ends with once flushed (§7.2.1): removed before sending,
/// added back before inflating.
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// Payloads shorter than this go out uncompressed: deflate's block overhead leaves
/// little to gain, for a compressor pass per message.
pub(crate) const MIN_SIZE: usize = 64;

/// deflate's effort: the fastest, as most of what a payload of text or JSON saves
/// comes at level 1, at a fraction of the default level's time.
const LEVEL: u32 = 1;

thread_local! {
    // One per shard thread (raw deflate, a 15-bit window), reset for each message.
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::new(LEVEL), false));
    static INFLATER: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// Whether the client's `Sec-WebSocket-Extensions` values offer permessage-deflate in
/// a form the server can accept: an offer with no parameter other than the two
/// `*_no_context_takeover`, `client_max_window_bits` (any window inflates with ours)
/// and `server_max_window_bits=15` (ours is always 15: a smaller one cannot be
/// honoured, so such an offer is declined), none repeated. Several offers may be
/// listed; any acceptable one will do.
pub(crate) fn offered<'a>(values: impl Iterator<Item = &'a [u8]>) -> bool {
    values
        .flat_map(|value| value.split(|&b| b == b','))
        .any(acceptable)
}

fn acceptable(offer: &[u8]) -> bool {
    let mut parts = offer.split(|&b| b == b';').map(<[u8]>::trim_ascii);
    if !parts
        .next()
        .is_some_and(|name| name.eq_ignore_ascii_case(b"permessage-deflate"))
    {
        return false;
    }
    let mut seen: Vec<&[u8]> = Vec::new();
    for param in parts {
        let (name, value) = match param.iter().position(|&b| b == b'=') {
            Some(at) => (
                param[..at].trim_ascii(),
                Some(unquote(param[at + 1..].trim_ascii())),
            ),
            None => (param, None),
        };
        if seen.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            return false;
        }
        seen.push(name);
        let name = name.to_ascii_lowercase();
        let ok = match (name.as_slice(), value) {
            (b"server_no_context_takeover" | b"client_no_context_takeover", None) => true,
            (b"client_max_window_bits", None) => true,
            (b"client_max_window_bits", Some(bits)) => window_bits(bits).is_some(),
            (b"server_max_window_bits", Some(bits)) => window_bits(bits) == Some(15),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

fn unquote(value: &[u8]) -> &[u8] {
    value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(value)
}

/// A window size parameter: 8 to 15, digits only.
fn window_bits(value: &[u8]) -> Option<u8> {
    if value.is_empty() || value.len() > 2 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let bits = std::str::from_utf8(value).ok()?.parse().ok()?;
    (8..=15).contains(&bits).then_some(bits)
}

/// `payload` compressed, without the flushed block's tail; `None` when that would not
/// be shorter.
pub(crate) fn compress(payload: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR.with_borrow_mut(|compressor| {
        compressor.reset();
        let mut out = Vec::with_capacity(payload.len() / 2 + 64);
        loop {
            let (in_before, out_before) = (compressor.total_in(), out.len());
            let consumed = in_before as usize;
            compressor
                .compress_vec(&payload[consumed..], &mut out, FlushCompress::Sync)
                .expect("deflate does not fail on input in memory");
            let all_in = compressor.total_in() as usize == payload.len();
            // Flushed once it stopped short of the room it had.
            if all_in && out.len() < out.capacity() {
                break;
            }
            if out.len() >= payload.len() + TAIL.len() {
                return None;
            }
            if compressor.total_in() == in_before && out.len() == out_before {
                return None;
            }
            out.reserve(out.capacity().max(64));
        }
        out.truncate(out.strip_suffix(&TAIL)?.len());
        (out.len() < payload.len()).then_some(out)
    })
}

/// Inflates a compressed message's payload; a result over `max` bytes fails with 1009
/// as soon as it gets there (a small message must not inflate into a large one
/// unchecked), a stream that is not deflate with 1007.
pub(crate) fn inflate(payload: &[u8], max: usize) -> Result<Vec<u8>, ProtocolError> {
    let too_big = ProtocolError::new(CloseCode::TOO_BIG, "message too large");
    let bad = ProtocolError::new(CloseCode::INVALID_DATA, "bad compressed data");
    INFLATER.with_borrow_mut(|inflater| {
        inflater.reset(false);
        let mut out = Vec::with_capacity(payload.len().saturating_mul(2).min(max) + 1);
        for input in [payload, &TAIL[..]] {
            let mut at = 0;
            loop {
                if out.len() == out.capacity() {
                    // Room for at most one byte past the limit: reaching it fails.
                    out.reserve_exact(
                        out.capacity()
                            .max(1024)
                            .min((max - out.len()).saturating_add(1)),
                    );
                }
                let (in_before, out_before) = (inflater.total_in(), out.len());
                let status = inflater
                    .decompress_vec(&input[at..], &mut out, FlushDecompress::Sync)
                    .map_err(|_| bad)?;
                if out.len() > max {
                    return Err(too_big);
                }
                at += (inflater.total_in() - in_before) as usize;
                let stalled = at == input.len() && out.len() < out.capacity();
                let no_progress = inflater.total_in() == in_before && out.len() == out_before;
                if status == Status::StreamEnd || stalled || no_progress {
                    break;
                }
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(value: &str) -> bool {
        offered(std::iter::once(value.as_bytes()))
    }

    #[test]
    fn offers_are_accepted_only_when_every_parameter_can_be_honoured() {
        assert!(offer("permessage-deflate"));
        assert!(offer("permessage-deflate; client_max_window_bits"));
        assert!(offer(
            "Permessage-Deflate; Client_Max_Window_Bits=10; server_no_context_takeover"
        ));
        assert!(offer("permessage-deflate; server_max_window_bits=\"15\""));
        assert!(offer(
            "x-other, permessage-deflate; server_max_window_bits=10, permessage-deflate"
        ));
        assert!(!offer("permessage-deflate; server_max_window_bits=10"));
        assert!(!offer("permessage-deflate; server_max_window_bits"));
        assert!(!offer("permessage-deflate; client_max_window_bits=16"));
        assert!(!offer("permessage-deflate; client_max_window_bits=7"));
        assert!(!offer("permessage-deflate; client_max_window_bits=+9"));
        assert!(!offer(
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover"
        ));
        assert!(!offer("permessage-deflate; server_no_context_takeover=1"));
        assert!(!offer("permessage-deflate; unknown"));
        assert!(!offer("x-webkit-deflate-frame"));
        assert!(!offered(std::iter::empty()));
    }

    #[test]
    fn what_is_compressed_inflates_back_and_nothing_else_is_kept() {
        let text = "{\"message\": \"Hello, World!\"} ".repeat(100);
        let compressed = compress(text.as_bytes()).unwrap();
        assert!(
            compressed.len() < text.len() / 10,
            "{} bytes",
            compressed.len()
        );
        assert_eq!(inflate(&compressed, text.len()).unwrap(), text.as_bytes());
        // Each message stands alone: the same payload compresses the same again.
        assert_eq!(compress(text.as_bytes()).unwrap(), compressed);
    }

    #[test]
    fn incompressible_payloads_are_left_alone() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                // xorshift64: bytes deflate finds nothing in.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        assert_eq!(compress(&noise), None);
    }

    #[test]
    fn inflating_stops_at_the_limit_and_refuses_what_is_not_deflate() {
        // 1 MiB of zeros in about 10 KiB: refused at the limit, not inflated whole.
        let zeros = vec![0u8; 1 << 20];
        let bomb = compress(&zeros).unwrap();
        assert!(bomb.len() < 16 * 1024, "{}", bomb.len());
        let error = inflate(&bomb, 64 * 1024).unwrap_err();
        assert_eq!(error.code, CloseCode::TOO_BIG);
        assert_eq!(inflate(&bomb, 1 << 20).unwrap().len(), 1 << 20);
        assert_eq!(
            inflate(&bomb, (1 << 20) - 1).unwrap_err().code,
            CloseCode::TOO_BIG
        );
        // Block type 3 is reserved: not deflate.
        assert_eq!(
            inflate(&[0xFF, 0xFF, 0xFF], 1024).unwrap_err().code,
            CloseCode::INVALID_DATA
        );
        // An empty message is an empty stored block, or nothing at all.
        assert_eq!(inflate(&[0x00], 1024).unwrap(), b"");
        assert_eq!(inflate(&[], 1024).unwrap(), b"");
    }
}
