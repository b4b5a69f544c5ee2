//! Messages (RFC 6455 §5.4–5.6), sans-I/O: frames from a client reassembled into
//! messages with every rule checked (fragmentation, UTF-8 of text across fragments,
//! close payloads, size limits), and messages encoded into a server's frames.

use bytes::{Buf, Bytes, BytesMut};

use super::deflate;
use super::frame::{self, CloseCode, OpCode, ProtocolError};

/// A WebSocket message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8).
    Text(String),
    /// A binary message.
    Binary(Bytes),
    /// A ping; received ones are answered by the server, so handlers may ignore them.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The peer's close (its code and reason, if it gave one); sending one starts the
    /// closing handshake.
    Close(Option<CloseFrame>),
}

/// The code and reason of a close frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code (see [`CloseCode`]).
    pub code: CloseCode,
    /// Why, in at most 123 bytes of UTF-8.
    pub reason: String,
}

impl Message {
    /// Appends this message as one unmasked frame, as a server sends it. A close
    /// reason, and a ping or pong payload, are cut to fit a control frame's 125 bytes.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Message::Text(text) => {
                frame::encode_frame(out, true, OpCode::Text, text.as_bytes(), None)
            }
            Message::Binary(data) => frame::encode_frame(out, true, OpCode::Binary, data, None),
            Message::Ping(data) => {
                frame::encode_frame(out, true, OpCode::Ping, control(data), None)
            }
            Message::Pong(data) => {
                frame::encode_frame(out, true, OpCode::Pong, control(data), None)
            }
            Message::Close(None) => frame::encode_frame(out, true, OpCode::Close, &[], None),
            Message::Close(Some(close)) => {
                let reason = cut_utf8(&close.reason, frame::MAX_CONTROL_PAYLOAD - 2);
                frame::encode_header(out, true, OpCode::Close, 2 + reason.len(), None);
                out.extend_from_slice(&close.code.0.to_be_bytes());
                out.extend_from_slice(reason.as_bytes());
            }
        }
    }

    /// [`Message::encode`] for a connection that negotiated permessage-deflate: a text
    /// or binary payload of at least [`deflate::MIN_SIZE`] bytes goes out compressed
    /// (RSV1 set) when that makes it shorter.
    pub(crate) fn encode_compressed(&self, out: &mut BytesMut) {
        let (opcode, payload) = match self {
            Message::Text(text) => (OpCode::Text, text.as_bytes()),
            Message::Binary(data) => (OpCode::Binary, &data[..]),
            _ => return self.encode(out),
        };
        let compressed = (payload.len() >= deflate::MIN_SIZE)
            .then(|| deflate::compress(payload))
            .flatten();
        let Some(compressed) = compressed else {
            return self.encode(out);
        };
        let head = out.len();
        frame::encode_header(out, true, opcode, compressed.len(), None);
        out[head] |= frame::RSV1;
        out.extend_from_slice(&compressed);
    }

    /// The payload size, for counting bytes and bounding queues.
    pub fn len(&self) -> usize {
        match self {
            Message::Text(text) => text.len(),
            Message::Binary(data) | Message::Ping(data) | Message::Pong(data) => data.len(),
            Message::Close(close) => close.as_ref().map_or(0, |c| 2 + c.reason.len()),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A control frame's payload: at most 125 bytes.
fn control(payload: &[u8]) -> &[u8] {
    &payload[..payload.len().min(frame::MAX_CONTROL_PAYLOAD)]
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character.
fn cut_utf8(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Size limits on what a client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest frame payload accepted (1009 beyond).
    pub max_frame: usize,
    /// The largest message accepted, all fragments together (1009 beyond).
    pub max_message: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: 16 << 20,
            max_message: 16 << 20,
        }
    }
}

/// The most room the reader reserves ahead of the bytes received for a frame not yet
/// complete: what one read of the socket brings (the shard's 64 KiB scratch buffer).
const RESERVE_AHEAD: usize = 64 * 1024;

/// A fragmented message being reassembled.
struct Partial {
    text: bool,
    /// Compressed (permessage-deflate): inflated once complete.
    compressed: bool,
    data: BytesMut,
    /// How much of `data` is known to be valid UTF-8 (text only).
    checked: usize,
}

/// Reassembles a client's frames into messages.
pub struct Reader {
    limits: Limits,
    partial: Option<Partial>,
    /// permessage-deflate was negotiated: compressed messages (RSV1) are accepted.
    deflate: bool,
}

impl Reader {
    /// A reader that enforces `limits`.
    pub fn new(limits: Limits) -> Reader {
        Reader {
            limits,
            partial: None,
            deflate: false,
        }
    }

    /// Accepts compressed messages from now on (permessage-deflate was negotiated);
    /// their size limit applies to them inflated.
    pub fn accept_compressed(&mut self) {
        self.deflate = true;
    }

    /// Takes the frames at the front of `buf` until one completes a message (returned)
    /// or `buf` holds no complete frame (`Ok(None)`: read more). Control frames come
    /// out as they arrive, between the fragments of a message. An error names the
    /// close code the connection must end with; the reader is not usable after one.
    pub fn read(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        loop {
            let Some((header, head_len)) = frame::decode_header(buf, true)? else {
                return Ok(None);
            };
            if header.len > self.limits.max_frame as u64 {
                return Err(ProtocolError::new(CloseCode::TOO_BIG, "frame too large"));
            }
            let len = header.len as usize;
            match (header.opcode, &self.partial) {
                (OpCode::Continuation, None) => {
                    return Err(ProtocolError::new(
                        CloseCode::PROTOCOL,
                        "continuation without a message",
                    ))
                }
                (OpCode::Text | OpCode::Binary, Some(_)) => {
                    return Err(ProtocolError::new(
                        CloseCode::PROTOCOL,
                        "new message inside a fragmented one",
                    ))
                }
                (OpCode::Continuation, Some(partial))
                    if partial.data.len() + len > self.limits.max_message =>
                {
                    return Err(ProtocolError::new(CloseCode::TOO_BIG, "message too large"));
                }
                (OpCode::Text | OpCode::Binary, None) if len > self.limits.max_message => {
                    return Err(ProtocolError::new(CloseCode::TOO_BIG, "message too large"));
                }
                _ => {}
            }
            if header.compressed && !self.deflate {
                return Err(ProtocolError::new(
                    CloseCode::PROTOCOL,
                    "RSV1 without an extension",
                ));
            }
            if buf.len() < head_len + len {
                // Room for what the next read can bring of the frame, so that it
                // arrives without regrowing: a small frame's rest all at once. Never
                // the whole of a large frame's announced length, which a client sends
                // in a header of a few bytes: it would make every connection that sends
                // one such header and no payload hold up to `max_frame`. Past a read's
                // worth, the buffer grows with the bytes that arrive (doubling).
                buf.reserve((head_len + len - buf.len()).min(RESERVE_AHEAD));
                return Ok(None);
            }
            buf.advance(head_len);
            let mut payload = buf.split_to(len);
            if let Some(key) = header.mask {
                frame::apply_mask(&mut payload, key);
            }
            let message = match header.opcode {
                OpCode::Ping => Message::Ping(payload.freeze()),
                OpCode::Pong => Message::Pong(payload.freeze()),
                OpCode::Close => Message::Close(close_payload(&payload)?),
                OpCode::Text | OpCode::Binary if header.fin && header.compressed => {
                    let data = deflate::inflate(&payload, self.limits.max_message)?;
                    whole(header.opcode == OpCode::Text, data)?
                }
                OpCode::Text if header.fin => Message::Text(text(payload.to_vec())?),
                OpCode::Binary if header.fin => Message::Binary(payload.freeze()),
                OpCode::Text | OpCode::Binary => {
                    let mut partial = Partial {
                        text: header.opcode == OpCode::Text,
                        compressed: header.compressed,
                        data: payload,
                        checked: 0,
                    };
                    check_prefix(&mut partial)?;
                    self.partial = Some(partial);
                    continue;
                }
                OpCode::Continuation => {
                    let partial = self.partial.as_mut().expect("checked above");
                    partial.data.extend_from_slice(&payload);
                    check_prefix(partial)?;
                    if !header.fin {
                        continue;
                    }
                    let partial = self.partial.take().expect("checked above");
                    if partial.compressed {
                        let data = deflate::inflate(&partial.data, self.limits.max_message)?;
                        whole(partial.text, data)?
                    } else if partial.text {
                        Message::Text(text(partial.data.to_vec())?)
                    } else {
                        Message::Binary(partial.data.freeze())
                    }
                }
            };
            return Ok(Some(message));
        }
    }
}

fn invalid_utf8() -> ProtocolError {
    ProtocolError::new(CloseCode::INVALID_DATA, "text is not UTF-8")
}

fn text(bytes: Vec<u8>) -> Result<String, ProtocolError> {
    String::from_utf8(bytes).map_err(|_| invalid_utf8())
}

/// An inflated message's payload as its message.
fn whole(is_text: bool, data: Vec<u8>) -> Result<Message, ProtocolError> {
    Ok(if is_text {
        Message::Text(text(data)?)
    } else {
        Message::Binary(data.into())
    })
}

/// Fails a fragmented text message as soon as its bytes so far cannot begin valid
/// UTF-8 (a sequence cut at a fragment's end is fine until the final fragment).
fn check_prefix(partial: &mut Partial) -> Result<(), ProtocolError> {
    if !partial.text || partial.compressed {
        return Ok(());
    }
    match std::str::from_utf8(&partial.data[partial.checked..]) {
        Ok(_) => partial.checked = partial.data.len(),
        Err(e) if e.error_len().is_some() => return Err(invalid_utf8()),
        Err(e) => partial.checked += e.valid_up_to(),
    }
    Ok(())
}

/// A close frame's payload: empty, or a valid code and a UTF-8 reason (§5.5.1).
fn close_payload(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::new(
            CloseCode::PROTOCOL,
            "one-byte close payload",
        )),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(ProtocolError::new(
                    CloseCode::PROTOCOL,
                    "invalid close code",
                ));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| invalid_utf8())?;
            Ok(Some(CloseFrame {
                code,
                reason: reason.to_owned(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

    fn client_frame(out: &mut BytesMut, fin: bool, opcode: OpCode, payload: &[u8]) {
        frame::encode_frame(out, fin, opcode, payload, Some(KEY));
    }

    /// Every message `wire` decodes to, fed one byte at a time, then the error if any.
    fn decode_bytewise(wire: &[u8], limits: Limits) -> (Vec<Message>, Option<ProtocolError>) {
        let mut reader = Reader::new(limits);
        let mut buf = BytesMut::new();
        let mut messages = Vec::new();
        for byte in wire {
            buf.extend_from_slice(&[*byte]);
            loop {
                match reader.read(&mut buf) {
                    Ok(Some(m)) => messages.push(m),
                    Ok(None) => break,
                    Err(e) => return (messages, Some(e)),
                }
            }
        }
        (messages, None)
    }

    fn error_code(wire: &[u8]) -> u16 {
        decode_bytewise(wire, Limits::default())
            .1
            .expect("an error")
            .code
            .0
    }

    #[test]
    fn reassembles_fragments_with_controls_between_them() {
        let mut wire = BytesMut::new();
        client_frame(&mut wire, false, OpCode::Text, "héllo ".as_bytes());
        client_frame(&mut wire, true, OpCode::Ping, b"p");
        client_frame(&mut wire, false, OpCode::Continuation, b"wor");
        client_frame(&mut wire, true, OpCode::Continuation, b"ld");
        client_frame(&mut wire, true, OpCode::Binary, &[0, 255]);
        client_frame(
            &mut wire,
            true,
            OpCode::Close,
            &[0x03, 0xE8, b'b', b'y', b'e'],
        );
        let (messages, error) = decode_bytewise(&wire, Limits::default());
        assert_eq!(error, None);
        assert_eq!(
            messages,
            vec![
                Message::Ping(Bytes::from_static(b"p")),
                Message::Text("héllo world".into()),
                Message::Binary(Bytes::from_static(&[0, 255])),
                Message::Close(Some(CloseFrame {
                    code: CloseCode::NORMAL,
                    reason: "bye".into()
                })),
            ]
        );
    }

    #[test]
    fn utf8_split_across_fragments_is_accepted_and_invalid_text_fails_fast() {
        let euro = "€".as_bytes();
        let mut wire = BytesMut::new();
        client_frame(&mut wire, false, OpCode::Text, &euro[..1]);
        client_frame(&mut wire, true, OpCode::Continuation, &euro[1..]);
        let (messages, error) = decode_bytewise(&wire, Limits::default());
        assert_eq!((messages, error), (vec![Message::Text("€".into())], None));

        let mut wire = BytesMut::new();
        client_frame(&mut wire, true, OpCode::Text, &[0xC0, 0xAF]);
        assert_eq!(error_code(&wire), 1007, "an overlong encoding");
        // The first fragment is already impossible: refused before the message ends.
        let mut wire = BytesMut::new();
        client_frame(&mut wire, false, OpCode::Text, &[b'a', 0xFF]);
        assert_eq!(error_code(&wire), 1007);
        let mut wire = BytesMut::new();
        client_frame(&mut wire, false, OpCode::Text, &euro[..2]);
        client_frame(&mut wire, true, OpCode::Continuation, b"");
        assert_eq!(
            error_code(&wire),
            1007,
            "a sequence cut by the message's end"
        );
        let mut wire = BytesMut::new();
        client_frame(&mut wire, true, OpCode::Close, &[0x03, 0xE8, 0xFF]);
        assert_eq!(error_code(&wire), 1007, "a close reason that is not UTF-8");
    }

    #[test]
    fn fragmentation_rules_are_enforced_with_1002() {
        let mut wire = BytesMut::new();
        client_frame(&mut wire, true, OpCode::Continuation, b"x");
        assert_eq!(
            error_code(&wire),
            1002,
            "a continuation with nothing to continue"
        );
        let mut wire = BytesMut::new();
        client_frame(&mut wire, false, OpCode::Binary, b"x");
        client_frame(&mut wire, true, OpCode::Text, b"y");
        assert_eq!(
            error_code(&wire),
            1002,
            "a new message inside a fragmented one"
        );
    }

    #[test]
    fn close_payloads_are_checked() {
        for (payload, code) in [
            (&[0x03][..], 1002),
            (&[0x03, 0xEC][..], 1002), // 1004
            (&[0x03, 0xED][..], 1002), // 1005
            (&[0x03, 0xEE][..], 1002), // 1006
            (&[0x03, 0xF7][..], 1002), // 1015
            (&[0x00, 0x00][..], 1002),
            (&[0x13, 0x88][..], 1002), // 5000
        ] {
            let mut wire = BytesMut::new();
            client_frame(&mut wire, true, OpCode::Close, payload);
            assert_eq!(error_code(&wire), code, "{payload:?}");
        }
        let mut wire = BytesMut::new();
        client_frame(&mut wire, true, OpCode::Close, &[]);
        client_frame(&mut wire, true, OpCode::Close, &[0x0F, 0xA0]); // 4000
        let (messages, error) = decode_bytewise(&wire, Limits::default());
        assert_eq!(error, None);
        assert_eq!(messages[0], Message::Close(None));
        assert_eq!(
            messages[1],
            Message::Close(Some(CloseFrame {
                code: CloseCode(4000),
                reason: String::new()
            }))
        );
    }

    #[test]
    fn size_limits_answer_1009_before_the_payload_arrives() {
        let limits = Limits {
            max_frame: 100,
            max_message: 150,
        };
        let mut reader = Reader::new(limits);
        // Only the header of a 101-byte frame: refused at once, nothing buffered.
        let mut head = BytesMut::new();
        frame::encode_header(&mut head, true, OpCode::Binary, 101, Some(KEY));
        assert_eq!(reader.read(&mut head).unwrap_err().code, CloseCode::TOO_BIG);
        let mut wire = BytesMut::new();
        client_frame(&mut wire, false, OpCode::Binary, &[1; 100]);
        client_frame(&mut wire, true, OpCode::Continuation, &[1; 51]);
        assert_eq!(
            decode_bytewise(&wire, limits).1.unwrap().code,
            CloseCode::TOO_BIG
        );
        // A 2^62 length is over any limit.
        let mut reader = Reader::new(Limits::default());
        let mut wire = BytesMut::from(&[0x82, 0xFF][..]);
        wire.extend_from_slice(&(1u64 << 62).to_be_bytes());
        wire.extend_from_slice(&KEY);
        assert_eq!(reader.read(&mut wire).unwrap_err().code, CloseCode::TOO_BIG);
    }

    #[test]
    fn a_large_frames_room_grows_with_the_bytes_received() {
        // Only the header of a frame of the largest size allowed: room for one read,
        // not for the 16 MiB it announces.
        let mut reader = Reader::new(Limits::default());
        let mut encoded = BytesMut::new();
        frame::encode_header(&mut encoded, true, OpCode::Binary, 16 << 20, Some(KEY));
        let mut head = BytesMut::from(&encoded[..]);
        assert!(reader.read(&mut head).unwrap().is_none());
        assert!(
            head.capacity() <= 14 + RESERVE_AHEAD,
            "{} bytes reserved for a header",
            head.capacity()
        );
        // A 1 MiB frame arriving a read at a time: the room stays within twice what
        // arrived, and the frame decodes whole.
        let payload: Vec<u8> = (0..1 << 20).map(|i| i as u8).collect();
        let mut wire = BytesMut::new();
        client_frame(&mut wire, true, OpCode::Binary, &payload);
        let mut buf = BytesMut::new();
        let mut message = None;
        for piece in wire.chunks(RESERVE_AHEAD) {
            assert_eq!(message, None);
            buf.extend_from_slice(piece);
            let received = buf.len();
            message = reader.read(&mut buf).unwrap();
            assert!(
                buf.capacity() <= 2 * (received + RESERVE_AHEAD),
                "{} bytes reserved for {received} received",
                buf.capacity()
            );
        }
        assert_eq!(message, Some(Message::Binary(payload.into())));
    }

    /// Frames from arbitrary parts, valid or not (any opcode, fin, mask, payload).
    fn arbitrary_frames() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        // Mostly valid opcodes and masked frames, so that sequences get past the first.
        let opcode = prop_oneof![
            3 => prop_oneof![Just(0x0u8), Just(0x1), Just(0x2), Just(0x8), Just(0x9), Just(0xA)],
            1 => any::<u8>(),
        ];
        let payload =
            proptest::collection::vec(prop_oneof![3 => b'a'..=b'z', 1 => any::<u8>()], 0..300);
        let frame = (
            opcode,
            any::<bool>(),
            proptest::bool::weighted(0.9),
            payload,
        );
        proptest::collection::vec(frame, 0..8).prop_map(|frames| {
            let mut wire = BytesMut::new();
            for (bits, fin, masked, payload) in frames {
                let b0 = if fin { 0x80 } else { 0 } | (bits & 0x7F);
                let mut one = BytesMut::new();
                let mask = masked.then_some(KEY);
                frame::encode_frame(&mut one, true, OpCode::Binary, &payload, mask);
                one[0] = b0;
                wire.extend_from_slice(&one);
            }
            wire.to_vec()
        })
    }

    proptest::proptest! {
        /// The fuzz target's property, run in `cargo test`: however the input is cut,
        /// the reader decides the same way, and every error is 1002, 1007 or 1009.
        #[test]
        fn the_outcome_does_not_depend_on_how_input_is_cut(wire in arbitrary_frames(), step in 1usize..64) {
            let limits = Limits { max_frame: 200, max_message: 400 };
            let mut whole = Reader::new(limits);
            let mut buf = BytesMut::from(&wire[..]);
            let mut expected = (Vec::new(), None);
            loop {
                match whole.read(&mut buf) {
                    Ok(Some(m)) => expected.0.push(m),
                    Ok(None) => break,
                    Err(e) => { expected.1 = Some(e); break; }
                }
            }
            let mut pieces = Reader::new(limits);
            let mut buf = BytesMut::new();
            let mut got = (Vec::new(), None);
            'feed: for piece in wire.chunks(step) {
                buf.extend_from_slice(piece);
                loop {
                    match pieces.read(&mut buf) {
                        Ok(Some(m)) => got.0.push(m),
                        Ok(None) => break,
                        Err(e) => { got.1 = Some(e); break 'feed; }
                    }
                }
            }
            proptest::prop_assert_eq!(&got, &expected);
            if let Some(error) = expected.1 {
                proptest::prop_assert!(matches!(error.code.0, 1002 | 1007 | 1009));
            }
        }
    }

    #[test]
    fn a_server_close_is_encoded_with_its_code_and_a_cut_reason() {
        let mut out = BytesMut::new();
        Message::Close(Some(CloseFrame {
            code: CloseCode::GOING_AWAY,
            reason: "é".repeat(100),
        }))
        .encode(&mut out);
        let (header, n) = frame::decode_header(&out, false).unwrap().unwrap();
        assert_eq!(header.opcode, OpCode::Close);
        assert!(header.len <= 125);
        assert_eq!(&out[n..n + 2], &[0x03, 0xE9]);
        assert!(
            std::str::from_utf8(&out[n + 2..]).is_ok(),
            "cut on a character"
        );
    }

    /// A client's compressed frame: `payload` deflated, RSV1 on the first fragment.
    fn compressed_frames(text: bool, payload: &[u8], pieces: usize) -> BytesMut {
        let deflated = deflate::compress(payload).expect("compressible");
        let mut out = BytesMut::new();
        let step = deflated.len().div_ceil(pieces);
        for (i, piece) in deflated.chunks(step).enumerate() {
            let opcode = match (i, text) {
                (0, true) => OpCode::Text,
                (0, false) => OpCode::Binary,
                _ => OpCode::Continuation,
            };
            let head = out.len();
            client_frame(&mut out, (i + 1) * step >= deflated.len(), opcode, piece);
            if i == 0 {
                out[head] |= frame::RSV1;
            }
        }
        out
    }

    #[test]
    fn compressed_messages_are_inflated_once_negotiated_and_refused_before() {
        let text = "compressible text, ".repeat(200);
        for pieces in [1, 3] {
            let wire = compressed_frames(true, text.as_bytes(), pieces);
            let mut reader = Reader::new(Limits::default());
            let mut buf = wire.clone();
            assert_eq!(reader.read(&mut buf).unwrap_err().code, CloseCode::PROTOCOL);
            reader = Reader::new(Limits::default());
            reader.accept_compressed();
            let mut buf = wire;
            assert_eq!(
                reader.read(&mut buf).unwrap(),
                Some(Message::Text(text.clone()))
            );
            assert!(buf.is_empty());
        }
        let binary = vec![3u8; 5000];
        let mut reader = Reader::new(Limits::default());
        reader.accept_compressed();
        let mut buf = compressed_frames(false, &binary, 2);
        assert_eq!(
            reader.read(&mut buf).unwrap(),
            Some(Message::Binary(binary.into()))
        );
    }

    #[test]
    fn a_compressed_message_is_held_to_the_limit_inflated_and_checked_as_text() {
        let limits = Limits {
            max_frame: 64 * 1024,
            max_message: 64 * 1024,
        };
        let mut reader = Reader::new(limits);
        reader.accept_compressed();
        // A megabyte in about 10 KiB: refused, not inflated whole.
        let mut buf = compressed_frames(false, &vec![0u8; 1 << 20], 1);
        assert!(buf.len() < 16 * 1024);
        assert_eq!(reader.read(&mut buf).unwrap_err().code, CloseCode::TOO_BIG);
        let mut reader = Reader::new(limits);
        reader.accept_compressed();
        let mut buf = compressed_frames(true, &[0xFFu8; 300], 1);
        assert_eq!(
            reader.read(&mut buf).unwrap_err().code,
            CloseCode::INVALID_DATA
        );
    }

    #[test]
    fn messages_go_out_compressed_only_when_large_enough_and_smaller() {
        let text = "a JSON-ish payload {\"k\": 1} ".repeat(40);
        let mut out = BytesMut::new();
        Message::Text(text.clone()).encode_compressed(&mut out);
        let (header, n) = frame::decode_header(&out, false).unwrap().unwrap();
        assert!(header.compressed && header.opcode == OpCode::Text);
        assert_eq!(
            deflate::inflate(&out[n..], usize::MAX - 1).unwrap(),
            text.as_bytes()
        );
        for small in [
            Message::Text("hi".into()),
            Message::Ping(Bytes::from_static(b"p")),
        ] {
            let mut out = BytesMut::new();
            small.encode_compressed(&mut out);
            let (header, _) = frame::decode_header(&out, false).unwrap().unwrap();
            assert!(!header.compressed, "{small:?}");
        }
    }
}
