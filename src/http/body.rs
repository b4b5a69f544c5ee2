//! The chunked transfer-coding decoder, incremental across reads.
//!
//! Framing is strict: every line ends in CRLF, sizes are 1 to 16 hex digits with no
//! sign or leading space, and chunk data must be followed by CRLF. Extensions and
//! trailers are read past and dropped, within a byte budget.

use bytes::{Buf, BytesMut};

use crate::http::error::ParseError;

/// Bytes of chunk extensions and trailers tolerated per body.
const MAX_METADATA: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    SizeSpace,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    FinalLf,
    Done,
}

/// Decodes one chunked body. Feed it the connection's buffered input; it consumes what
/// it understands and appends the data to `out`.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    digits: u8,
    metadata: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            digits: 0,
            metadata: 0,
        }
    }
}

fn bad(why: &'static str) -> ParseError {
    ParseError::BadRequest(why)
}

impl ChunkedDecoder {
    /// Consumes from `input`, appending data to `out` (never beyond `max_body` bytes).
    /// Returns `Ok(true)` once the last chunk and trailers are read; `Ok(false)` when it
    /// needs more input.
    pub fn decode(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
        max_body: usize,
    ) -> Result<bool, ParseError> {
        let (used, result) = self.decode_slice(input, out, max_body);
        input.advance(used);
        result
    }

    /// [`ChunkedDecoder::decode`] from a slice, which it leaves as it is: how many of
    /// its bytes were used, and the result.
    pub fn decode_slice(
        &mut self,
        input: &[u8],
        out: &mut BytesMut,
        max_body: usize,
    ) -> (usize, Result<bool, ParseError>) {
        let mut i = 0;
        let result = loop {
            if self.state == State::Done {
                break Ok(true);
            }
            if i >= input.len() {
                break Ok(false);
            }
            if self.state == State::Data {
                let take = (input.len() - i).min(self.size as usize);
                out.extend_from_slice(&input[i..i + take]);
                i += take;
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let byte = input[i];
            i += 1;
            if let Err(e) = self.step(byte, out.len(), max_body) {
                break Err(e);
            }
        };
        (i, result)
    }

    fn step(&mut self, byte: u8, have: usize, max_body: usize) -> Result<(), ParseError> {
        self.state = match self.state {
            State::Size => match byte {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    let digit = (byte as char).to_digit(16).unwrap_or(0) as u64;
                    self.digits += 1;
                    if self.digits > 16 {
                        return Err(bad("chunk size overflows"));
                    }
                    self.size = self.size << 4 | digit;
                    State::Size
                }
                b' ' | b'\t' if self.digits > 0 => {
                    self.count_metadata()?;
                    State::SizeSpace
                }
                b';' if self.digits > 0 => State::Extension,
                b'\r' if self.digits > 0 => State::SizeLf,
                _ => return Err(bad("invalid chunk size")),
            },
            // Whitespace after the size counts as metadata: unbounded, it would let a
            // client hold the connection and the decoder busy for ever.
            State::SizeSpace => match byte {
                b' ' | b'\t' => {
                    self.count_metadata()?;
                    State::SizeSpace
                }
                b';' => State::Extension,
                _ => return Err(bad("invalid chunk size")),
            },
            State::Extension => {
                self.count_metadata()?;
                match byte {
                    b'\r' => State::SizeLf,
                    b'\t' | b' '..=b'~' | 0x80..=0xff => State::Extension,
                    _ => return Err(bad("invalid chunk extension")),
                }
            }
            State::SizeLf => {
                if byte != b'\n' {
                    return Err(bad("chunk size line not ended by CRLF"));
                }
                self.digits = 0;
                if self.size == 0 {
                    State::TrailerStart
                } else if self.size > max_body.saturating_sub(have) as u64 {
                    // Saturating: a reload may lower the limit below what a body in
                    // progress already holds.
                    return Err(ParseError::BodyTooLarge);
                } else {
                    State::Data
                }
            }
            State::Data => unreachable!("data is copied in bulk"),
            State::DataCr if byte == b'\r' => State::DataLf,
            State::DataLf if byte == b'\n' => State::Size,
            State::DataCr | State::DataLf => return Err(bad("chunk data not followed by CRLF")),
            State::TrailerStart => match byte {
                b'\r' => State::FinalLf,
                b'\n' => return Err(bad("bare LF in chunked trailer")),
                _ => {
                    self.count_metadata()?;
                    State::TrailerLine
                }
            },
            State::TrailerLine => {
                self.count_metadata()?;
                match byte {
                    b'\r' => State::TrailerLf,
                    b'\n' | 0 => return Err(bad("invalid trailer line")),
                    _ => State::TrailerLine,
                }
            }
            State::TrailerLf if byte == b'\n' => State::TrailerStart,
            State::TrailerLf => return Err(bad("trailer line not ended by CRLF")),
            State::FinalLf if byte == b'\n' => State::Done,
            State::FinalLf => return Err(bad("last chunk not ended by CRLF")),
            State::Done => State::Done,
        };
        Ok(())
    }

    fn count_metadata(&mut self) -> Result<(), ParseError> {
        self.metadata += 1;
        if self.metadata > MAX_METADATA {
            return Err(ParseError::HeadTooLarge);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ParseError> {
        let mut input = BytesMut::from(input);
        let mut out = BytesMut::new();
        let done = ChunkedDecoder::default().decode(&mut input, &mut out, 1 << 20)?;
        assert!(done, "incomplete");
        Ok((out.to_vec(), input.to_vec()))
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let (body, rest) =
            decode_all(b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT").unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(rest, b"NEXT");
    }

    #[test]
    fn every_split_decodes_the_same() {
        let wire = b"4\r\nWiki\r\nA\r\npedia in\r\n\r\n0\r\n\r\n";
        for split in 0..=wire.len() {
            let mut decoder = ChunkedDecoder::default();
            let mut out = BytesMut::new();
            let mut input = BytesMut::from(&wire[..split]);
            let early = decoder.decode(&mut input, &mut out, 1 << 20).unwrap();
            assert!(!early || split == wire.len());
            input.extend_from_slice(&wire[split..]);
            assert!(decoder.decode(&mut input, &mut out, 1 << 20).unwrap());
            assert_eq!(&out[..], b"Wikipedia in\r\n");
        }
    }

    #[test]
    fn rejects_bad_framing() {
        for wire in [
            &b"-5\r\nhello\r\n0\r\n\r\n"[..],
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"11111111111111111\r\n",
            b"0\r\nX\n",
            b"0\r\n\rX",
            b"g\r\n",
        ] {
            assert!(
                matches!(decode_all(wire), Err(ParseError::BadRequest(_))),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn whitespace_after_a_chunk_size_counts_toward_the_metadata_limit() {
        let mut wire = b"5".to_vec();
        wire.extend(std::iter::repeat_n(b' ', MAX_METADATA / 2));
        wire.extend(std::iter::repeat_n(b'\t', MAX_METADATA / 2 + 1));
        wire.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        assert_eq!(decode_all(&wire), Err(ParseError::HeadTooLarge));
        // Within the limit, it is allowed (RFC 9112 §7.1.1 tolerates BWS before `;`).
        let (body, _) = decode_all(b"5 \t ;x\r\nhello\r\n0\r\n\r\n").unwrap();
        assert_eq!(body, b"hello");
    }

    #[test]
    fn a_limit_lowered_below_what_a_body_holds_refuses_the_next_chunk() {
        // A reload can lower `max_request_size` while a body is in progress.
        let mut decoder = ChunkedDecoder::default();
        let mut out = BytesMut::new();
        let mut input = BytesMut::from(&b"a\r\n0123456789\r\n"[..]);
        assert!(!decoder.decode(&mut input, &mut out, 100).unwrap());
        let mut input = BytesMut::from(&b"1\r\nx\r\n0\r\n\r\n"[..]);
        assert_eq!(
            decoder.decode(&mut input, &mut out, 8),
            Err(ParseError::BodyTooLarge)
        );
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn body_limit_applies_across_chunks() {
        let mut input = BytesMut::from(&b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"[..]);
        let mut out = BytesMut::new();
        let err = ChunkedDecoder::default().decode(&mut input, &mut out, 8);
        assert_eq!(err, Err(ParseError::BodyTooLarge));
    }
}
