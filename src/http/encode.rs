//! Response body framing, sans-I/O: what goes on the wire around the pieces of a body
//! that follows its head (a stream, or a large body written from where it is). The
//! connection loop moves the bytes; this decides them.

use bytes::{Bytes, BytesMut};

/// Frames a body's pieces after its head: under a `Content-Length` (pieces past it are
/// cut off, so they cannot corrupt the next response), chunked, or unframed to the
/// close (HTTP/1.0 with no length).
#[derive(Debug, Clone, Copy)]
pub struct BodyEncoder {
    /// Bytes still due under a `Content-Length`; `None`: chunked, or to the close.
    left: Option<u64>,
    chunked: bool,
}

/// A body ended before its announced length: the framing is broken, and the
/// connection must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortBody;

impl BodyEncoder {
    /// For a body of `len` bytes, or of unknown length (`None`: chunked, unless the
    /// request was HTTP/1.0).
    pub fn new(len: Option<u64>, http10: bool) -> BodyEncoder {
        BodyEncoder {
            left: len,
            chunked: len.is_none() && !http10,
        }
    }

    /// Takes the next piece: cuts it to what is still due, and puts what goes before
    /// it (a chunk's size line) into `out`. `None`: nothing of it is sent (an empty
    /// piece would end a chunked body).
    pub fn begin_piece(&mut self, mut piece: Bytes, out: &mut BytesMut) -> Option<Bytes> {
        if let Some(left) = &mut self.left {
            piece.truncate(usize::try_from(*left).unwrap_or(usize::MAX));
            *left -= piece.len() as u64;
        }
        if piece.is_empty() {
            return None;
        }
        if self.chunked {
            let mut size = [0u8; 16];
            out.extend_from_slice(hex(piece.len(), &mut size));
            out.extend_from_slice(b"\r\n");
        }
        Some(piece)
    }

    /// What follows a piece sent after `begin_piece` (a chunk's closing CRLF): bytes
    /// to append, or to write with the piece where it is.
    pub fn after_piece(&self) -> &'static [u8] {
        if self.chunked {
            b"\r\n"
        } else {
            b""
        }
    }

    /// Whether the announced length is all sent: no more pieces are wanted.
    pub fn complete(&self) -> bool {
        self.left == Some(0)
    }

    /// What ends the body after its last piece (the last chunk; nothing under a
    /// `Content-Length` or to the close), or `ShortBody` when fewer bytes came than
    /// announced.
    pub fn end(&self) -> Result<&'static [u8], ShortBody> {
        match self.left {
            Some(left) if left > 0 => Err(ShortBody),
            _ if self.chunked => Ok(b"0\r\n\r\n"),
            _ => Ok(b""),
        }
    }
}

/// `n` in lowercase hexadecimal, as a chunk size.
fn hex(mut n: usize, buf: &mut [u8; 16]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            return &buf[at..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire bytes of `pieces` framed by `encoder`, and how it ended.
    fn frame(
        mut encoder: BodyEncoder,
        pieces: &[&'static [u8]],
    ) -> (Vec<u8>, Result<(), ShortBody>) {
        let mut out = BytesMut::new();
        for piece in pieces {
            if encoder.complete() {
                break;
            }
            if let Some(piece) = encoder.begin_piece(Bytes::from_static(piece), &mut out) {
                out.extend_from_slice(&piece);
                out.extend_from_slice(encoder.after_piece());
            }
        }
        let end = encoder.end().map(|end| out.extend_from_slice(end));
        (out.to_vec(), end)
    }

    #[test]
    fn chunked_pieces_get_hex_sizes_and_the_last_chunk() {
        let encoder = BodyEncoder::new(None, false);
        let (wire, end) = frame(encoder, &[b"hello", b"", &[b'x'; 26]]);
        let mut expected = b"5\r\nhello\r\n1a\r\n".to_vec();
        expected.extend_from_slice(&[b'x'; 26]);
        expected.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(wire, expected);
        assert_eq!(end, Ok(()));
    }

    #[test]
    fn a_content_length_cuts_off_what_is_past_it_and_stops() {
        let encoder = BodyEncoder::new(Some(7), false);
        let (wire, end) = frame(encoder, &[b"hello", b"world", b"more"]);
        assert_eq!((wire, end), (b"hellowo".to_vec(), Ok(())));
    }

    #[test]
    fn a_body_shorter_than_its_length_is_short() {
        let encoder = BodyEncoder::new(Some(10), false);
        let (wire, end) = frame(encoder, &[b"abc"]);
        assert_eq!((wire, end), (b"abc".to_vec(), Err(ShortBody)));
    }

    #[test]
    fn http10_without_a_length_is_unframed() {
        let encoder = BodyEncoder::new(None, true);
        let (wire, end) = frame(encoder, &[b"line 0\n", b"", b"line 1\n"]);
        assert_eq!((wire, end), (b"line 0\nline 1\n".to_vec(), Ok(())));
    }

    #[test]
    fn hex_sizes() {
        let mut buf = [0u8; 16];
        assert_eq!(hex(0, &mut buf), b"0");
        assert_eq!(hex(255, &mut buf), b"ff");
        assert_eq!(hex(usize::MAX, &mut buf), b"ffffffffffffffff");
    }
}
