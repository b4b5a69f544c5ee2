//! The WebSocket frame layer (RFC 6455 §5), sans-I/O: frame headers decoded from and
//! encoded into byte buffers, and payload masking. Nothing here touches a socket.

use bytes::{BufMut, BytesMut};

/// The largest payload a control frame may carry (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The first header byte's RSV1 bit: permessage-deflate's "compressed" (RFC 7692).
pub(crate) const RSV1: u8 = 0x40;

/// A frame's opcode (§5.2); the reserved ones are refused when decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCode {
    /// The next fragment of a message.
    Continuation,
    /// The first (or only) frame of a text message.
    Text,
    /// The first (or only) frame of a binary message.
    Binary,
    /// Starts or answers the closing handshake.
    Close,
    /// Asks for a pong.
    Ping,
    /// Answers a ping (or is a unidirectional heartbeat).
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, ping and pong: never fragmented, at most 125 bytes.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A status code carried by a close frame (§7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the server is going down, or the connection sat idle too long.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL: CloseCode = CloseCode(1002);
    /// 1003: a kind of data the endpoint cannot accept.
    pub const UNSUPPORTED: CloseCode = CloseCode(1003);
    /// 1007: a text message (or close reason) that is not UTF-8.
    pub const INVALID_DATA: CloseCode = CloseCode(1007);
    /// 1008: a message that violates the endpoint's policy.
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a frame or message over the size limit.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1011: the server met an unexpected condition (a handler panicked).
    pub const INTERNAL: CloseCode = CloseCode(1011);

    /// Whether the code may appear in a close frame on the wire: the registered codes
    /// other than 1004–1006 and 1015 (reserved for local use), and 3000–4999 (for
    /// libraries and applications). Anything else in a peer's close is a protocol error.
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// Why a peer's input broke the protocol, with the close code that answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    /// The code the server's close frame carries.
    pub code: CloseCode,
    /// A short reason, sent as the close frame's reason.
    pub reason: &'static str,
}

impl ProtocolError {
    pub(crate) const fn new(code: CloseCode, reason: &'static str) -> ProtocolError {
        ProtocolError { code, reason }
    }

    const fn protocol(reason: &'static str) -> ProtocolError {
        ProtocolError::new(CloseCode::PROTOCOL, reason)
    }
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The last frame of its message.
    pub fin: bool,
    /// RSV1, set on the first frame of a message compressed with permessage-deflate.
    pub compressed: bool,
    /// What the frame carries.
    pub opcode: OpCode,
    /// The masking key; a client's frames always have one.
    pub mask: Option<[u8; 4]>,
    /// The payload length, below 2^63.
    pub len: u64,
}

/// Decodes the frame header at the start of `buf`: `Ok(None)` until it is complete,
/// else the header and its length in bytes. `from_client`: unmasked frames are refused
/// (§5.1). RSV2 and RSV3 (no extension uses them), RSV1 anywhere but on a message's
/// first frame (permessage-deflate's bit; whether it was negotiated is the caller's to
/// check), reserved opcodes, a 64-bit length with its top bit set, and control frames
/// that are fragmented or over 125 bytes are protocol errors.
pub fn decode_header(
    buf: &[u8],
    from_client: bool,
) -> Result<Option<(Header, usize)>, ProtocolError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x30 != 0 {
        return Err(ProtocolError::protocol("reserved bits set"));
    }
    let opcode = OpCode::from_bits(b0 & 0x0F).ok_or(ProtocolError::protocol("reserved opcode"))?;
    let compressed = b0 & RSV1 != 0;
    if compressed && !matches!(opcode, OpCode::Text | OpCode::Binary) {
        return Err(ProtocolError::protocol(
            "RSV1 set on a frame that cannot carry it",
        ));
    }
    let fin = b0 & 0x80 != 0;
    let masked = b1 & 0x80 != 0;
    if from_client && !masked {
        return Err(ProtocolError::protocol("client frames must be masked"));
    }
    let (len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let len = u64::from_be_bytes(b.try_into().expect("eight bytes"));
                if len >> 63 != 0 {
                    return Err(ProtocolError::protocol(
                        "64-bit length with its top bit set",
                    ));
                }
                (len, 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if opcode.is_control() {
        if !fin {
            return Err(ProtocolError::protocol("fragmented control frame"));
        }
        if len > MAX_CONTROL_PAYLOAD as u64 {
            return Err(ProtocolError::protocol("control frame over 125 bytes"));
        }
    }
    let mask = if masked {
        let Some(key) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        at += 4;
        Some(key.try_into().expect("four bytes"))
    } else {
        None
    };
    Ok(Some((
        Header {
            fin,
            compressed,
            opcode,
            mask,
            len,
        },
        at,
    )))
}

/// XORs `payload` with `key` (§5.3); applying it twice restores the input.
pub fn apply_mask(payload: &mut [u8], key: [u8; 4]) {
    // Eight bytes at a time: the compiler turns this into vector XORs.
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes((&*chunk).try_into().expect("eight bytes")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    // Each chunk is eight bytes, so the tail starts at key index 0.
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

/// Appends a frame header for a `len`-byte payload; with `mask`, the caller masks the
/// payload it appends (clients mask, a server never does).
pub fn encode_header(
    out: &mut BytesMut,
    fin: bool,
    opcode: OpCode,
    len: usize,
    mask: Option<[u8; 4]>,
) {
    let b0 = if fin { 0x80 } else { 0 } | opcode.bits();
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.reserve(14 + len);
    out.put_u8(b0);
    match len {
        0..=125 => out.put_u8(mask_bit | len as u8),
        126..=0xFFFF => {
            out.put_u8(mask_bit | 126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(mask_bit | 127);
            out.put_u64(len as u64);
        }
    }
    if let Some(key) = mask {
        out.put_slice(&key);
    }
}

/// Appends a whole frame: its header, then `payload` (masked with `mask` if given).
pub fn encode_frame(
    out: &mut BytesMut,
    fin: bool,
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    encode_header(out, fin, opcode, payload.len(), mask);
    let start = out.len();
    out.put_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(bytes: &[u8]) -> Result<Option<(Header, usize)>, ProtocolError> {
        decode_header(bytes, true)
    }

    fn code(bytes: &[u8]) -> u16 {
        header(bytes).expect_err("refused").code.0
    }

    #[test]
    fn decodes_the_three_length_forms_and_the_mask() {
        let (h, n) = header(&[0x81, 0x85, 1, 2, 3, 4]).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.len, h.mask, n),
            (true, OpCode::Text, 5, Some([1, 2, 3, 4]), 6)
        );
        let (h, n) = header(&[0x02, 0xFE, 0x01, 0x00, 0, 0, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!((h.fin, h.opcode, h.len, n), (false, OpCode::Binary, 256, 8));
        let mut long = vec![0x82, 0xFF];
        long.extend_from_slice(&(1u64 << 40).to_be_bytes());
        long.extend_from_slice(&[9, 9, 9, 9]);
        let (h, n) = header(&long).unwrap().unwrap();
        assert_eq!((h.len, n), (1 << 40, 14));
    }

    #[test]
    fn waits_for_every_byte_of_the_header() {
        let mut whole = vec![0x82, 0xFF];
        whole.extend_from_slice(&70_000u64.to_be_bytes());
        whole.extend_from_slice(&[1, 2, 3, 4]);
        for cut in 0..whole.len() {
            assert_eq!(header(&whole[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(header(&whole).unwrap().is_some());
    }

    #[test]
    fn refuses_what_the_rfc_refuses_with_1002() {
        assert_eq!(
            code(&[0x83, 0x80, 0, 0, 0, 0]),
            1002,
            "reserved data opcode"
        );
        assert_eq!(
            code(&[0x8B, 0x80, 0, 0, 0, 0]),
            1002,
            "reserved control opcode"
        );
        assert_eq!(code(&[0xA1, 0x80, 0, 0, 0, 0]), 1002, "RSV2");
        assert_eq!(code(&[0x91, 0x80, 0, 0, 0, 0]), 1002, "RSV3");
        assert_eq!(code(&[0xC9, 0x80, 0, 0, 0, 0]), 1002, "RSV1 on a ping");
        assert_eq!(
            code(&[0x40, 0x80, 0, 0, 0, 0]),
            1002,
            "RSV1 on a continuation"
        );
        let (header, _) = decode_header(&[0xC1, 0x80, 0, 0, 0, 0], true)
            .unwrap()
            .unwrap();
        assert!(
            header.compressed,
            "RSV1 on a text frame is for the reader to judge"
        );
        assert_eq!(code(&[0x81, 0x05]), 1002, "an unmasked client frame");
        assert_eq!(code(&[0x09, 0x80, 0, 0, 0, 0]), 1002, "a fragmented ping");
        assert_eq!(code(&[0x89, 0xFE, 0x00, 0x7E]), 1002, "a 126-byte ping");
        let mut huge = vec![0x82, 0xFF];
        huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(code(&huge), 1002, "a 2^63 length");
        assert!(
            decode_header(&[0x81, 0x05], false).unwrap().is_some(),
            "a client reads unmasked frames"
        );
    }

    #[test]
    fn masking_round_trips_at_every_length() {
        let key = [0xA1, 0x02, 0xF3, 0x44];
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).collect();
            let mut masked = data.clone();
            apply_mask(&mut masked, key);
            for (i, (m, d)) in masked.iter().zip(&data).enumerate() {
                assert_eq!(*m, d ^ key[i % 4]);
            }
            apply_mask(&mut masked, key);
            assert_eq!(masked, data);
        }
    }

    #[test]
    fn encoded_frames_decode_back() {
        for len in [0, 125, 126, 65_535, 65_536] {
            let payload = vec![7u8; len];
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut out = BytesMut::new();
                encode_frame(&mut out, true, OpCode::Binary, &payload, mask);
                let (h, n) = decode_header(&out, false).unwrap().unwrap();
                assert_eq!(
                    (h.len, h.mask, h.opcode, h.fin),
                    (len as u64, mask, OpCode::Binary, true)
                );
                let mut body = out[n..].to_vec();
                if let Some(key) = mask {
                    apply_mask(&mut body, key);
                }
                assert_eq!(body, payload);
            }
        }
    }

    #[test]
    fn close_codes_valid_on_the_wire() {
        for ok in [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert!(CloseCode(ok).is_valid_on_wire(), "{ok}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            assert!(!CloseCode(bad).is_valid_on_wire(), "{bad}");
        }
    }
}
