//! Request decoding: head parsing with httparse, the framing decision, and body
//! assembly, incremental across reads and over pipelined requests.

use std::mem::MaybeUninit;
use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};

use crate::http::body::ChunkedDecoder;
use crate::http::error::ParseError;
use crate::http::request::{
    Headers, Method, Params, Request, Span, TlsSession, Version, MAX_HEADERS,
};
use crate::http::token::is_token;

/// Size limits applied while decoding, named after their `[limits]` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head (request line and headers), at most [`MAX_HEAD_SIZE`].
    pub max_head_size: usize,
    /// Longest request target.
    pub max_uri_length: usize,
    /// Largest body, after de-chunking.
    pub max_request_size: usize,
}

/// The largest head limit: offsets into a head are kept in 16 bits.
pub const MAX_HEAD_SIZE: usize = u16::MAX as usize;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_size: 16 * 1024,
            max_uri_length: 8 * 1024,
            max_request_size: 1024 * 1024,
        }
    }
}

/// What the decoder produced from the buffered input.
// Boxing the request would allocate once per request on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Event {
    /// A complete request, body included.
    Request(Request),
    /// The client expects `100 Continue` before it sends the body: send it, then call
    /// `decode` again.
    Continue,
    /// More input is needed.
    NeedMore,
    /// A request whose route reads its body as it arrives (see
    /// [`Decoder::decode_routed`]); take the body with [`Decoder::body_piece`] until
    /// it ends, before decoding again.
    Streamed {
        /// The request, with an empty `body`.
        request: Request,
        /// The client waits for `100 Continue` before sending the body.
        expect_continue: bool,
    },
}

/// A piece of a streamed request body.
#[derive(Debug)]
pub enum BodyPiece {
    /// Body bytes, de-chunked.
    Data(Bytes),
    /// The buffered input holds no more of the body.
    NeedMore,
    /// The body is complete.
    End,
}

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFraming {
    Length(usize),
    Chunked,
}

/// A request whose body is still arriving waits boxed: the decoder lives inside every
/// connection's task, idle ones included, and a request inline would triple its size.
/// A body that is already in the buffer when its head is decoded never waits.
#[derive(Debug)]
enum State {
    Head,
    Length(Box<Request>, usize),
    Chunked(Box<Request>, ChunkedDecoder, BytesMut),
    /// A streamed body: bytes still due under Content-Length.
    StreamedLength(u64),
    /// A streamed chunked body.
    StreamedChunked(ChunkedDecoder),
}

/// Decodes the requests of one connection, in order, from its read buffer.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    shard: usize,
    /// The connection's client and whether it speaks TLS, copied into each request.
    peer: Option<SocketAddr>,
    secure: bool,
    /// The certificate the TLS client presented (DER), shared with each request.
    tls: Option<TlsSession>,
    state: State,
    /// Empty lines skipped before the request line now expected.
    empty_lines: u8,
}

/// Empty lines tolerated before a request line; more is answered 400.
const MAX_EMPTY_LINES: u8 = 8;

impl Decoder {
    /// A decoder for a connection served by `shard`.
    ///
    /// # Panics
    /// If `limits.max_head_size` exceeds [`MAX_HEAD_SIZE`]: offsets into the head are
    /// 16-bit, so a larger head would be misread (the config refuses such a value).
    pub fn new(limits: Limits, shard: usize) -> Decoder {
        let mut decoder = Decoder {
            limits,
            shard,
            peer: None,
            secure: false,
            tls: None,
            state: State::Head,
            empty_lines: 0,
        };
        decoder.set_limits(limits);
        decoder
    }

    /// Says which client the connection serves (`peer`) and whether over TLS, for
    /// [`Request::peer_addr`] and [`Request::is_secure`].
    pub fn set_connection(&mut self, peer: Option<SocketAddr>, secure: bool) {
        self.peer = peer;
        self.secure = secure;
    }

    /// The TLS connection's parameters, for [`Request::tls`].
    pub fn set_tls_session(&mut self, tls: Option<TlsSession>) {
        self.tls = tls;
    }

    /// Replaces the limits for the requests that follow. Panics as [`Decoder::new`].
    pub fn set_limits(&mut self, limits: Limits) {
        assert!(
            limits.max_head_size <= MAX_HEAD_SIZE,
            "max_head_size {} is above {MAX_HEAD_SIZE}",
            limits.max_head_size
        );
        self.limits = limits;
    }

    /// Whether a request head has been decoded and its body is still arriving.
    pub fn in_body(&self) -> bool {
        !matches!(self.state, State::Head)
    }

    /// Decodes the next event from `buf`, consuming the bytes it used. After an error
    /// the connection must be closed: nothing after the bad bytes can be trusted.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Event, ParseError> {
        self.decode_routed(buf, &|_| false)
    }

    /// Like [`Decoder::decode`], and a request with a body for which `streams` says
    /// yes comes out as [`Event::Streamed`] at once, its body left to
    /// [`Decoder::body_piece`] and free of `max_request_size`. `streams` is asked only
    /// about requests that have a body.
    pub fn decode_routed(
        &mut self,
        buf: &mut BytesMut,
        streams: &dyn Fn(&Request) -> bool,
    ) -> Result<Event, ParseError> {
        // The common case first, without moving the state (a whole request) out.
        if let State::Head = self.state {
            return self.decode_head(buf, streams);
        }
        match std::mem::replace(&mut self.state, State::Head) {
            State::Head => self.decode_head(buf, streams),
            state @ (State::StreamedLength(_) | State::StreamedChunked(_)) => {
                // The connection reads a streamed body with `body_piece` first.
                self.state = state;
                Err(bad("request decoded inside a streamed body"))
            }
            State::Length(request, len) => {
                if buf.len() < len {
                    self.state = State::Length(request, len);
                    return Ok(Event::NeedMore);
                }
                Ok(finish_length(*request, len, buf))
            }
            State::Chunked(mut request, mut decoder, mut body) => {
                if decoder.decode(buf, &mut body, self.limits.max_request_size)? {
                    request.body = body.freeze();
                    return Ok(Event::Request(*request));
                }
                self.state = State::Chunked(request, decoder, body);
                Ok(Event::NeedMore)
            }
        }
    }

    /// A streamed body of at most `max` bytes that is all in `buf` already (under
    /// Content-Length, or chunked up to its last chunk and trailers): taken off `buf`
    /// whole, and the decoder goes on to the next head. `None` (nothing taken) for a
    /// longer body, one still arriving, or chunked framing in error (which then fails
    /// as the body is streamed).
    pub fn whole_body(&mut self, buf: &mut BytesMut, max: usize) -> Option<Bytes> {
        match &self.state {
            State::StreamedLength(left) => {
                let len = usize::try_from(*left)
                    .ok()
                    .filter(|&len| len <= max.min(buf.len()))?;
                self.state = State::Head;
                Some(buf.split_to(len).freeze())
            }
            State::StreamedChunked(decoder) => {
                // Tried on a copy of the decoder, over the buffer left as it is: a body
                // not all here streams from where it began.
                let mut out = BytesMut::new();
                let (used, done) = decoder.clone().decode_slice(buf, &mut out, max);
                if !matches!(done, Ok(true)) {
                    return None;
                }
                buf.advance(used);
                self.state = State::Head;
                Some(out.freeze())
            }
            _ => None,
        }
    }

    /// The next piece of a streamed body from `buf`.
    pub fn body_piece(&mut self, buf: &mut BytesMut) -> Result<BodyPiece, ParseError> {
        match &mut self.state {
            State::StreamedLength(0) => {
                self.state = State::Head;
                Ok(BodyPiece::End)
            }
            State::StreamedLength(left) => {
                if buf.is_empty() {
                    return Ok(BodyPiece::NeedMore);
                }
                let take = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                *left -= take as u64;
                Ok(BodyPiece::Data(buf.split_to(take).freeze()))
            }
            State::StreamedChunked(decoder) => {
                let mut out = BytesMut::new();
                let done = decoder.decode(buf, &mut out, usize::MAX)?;
                if !out.is_empty() {
                    return Ok(BodyPiece::Data(out.freeze()));
                }
                if done {
                    self.state = State::Head;
                    return Ok(BodyPiece::End);
                }
                Ok(BodyPiece::NeedMore)
            }
            _ => Ok(BodyPiece::End),
        }
    }

    // One instance, not one per caller's closure: the head parser stays inlined here,
    // and `streams` is called only for requests with a body.
    fn decode_head(
        &mut self,
        buf: &mut BytesMut,
        streams: &dyn Fn(&Request) -> bool,
    ) -> Result<Event, ParseError> {
        // The headers are parsed straight into the request: it is large, and moving
        // it costs a copy.
        let mut request = Request {
            method: Method::Get,
            method_span: Span::default(),
            path: Span::default(),
            query: None,
            version: Version::Http11,
            headers: Headers::new(Bytes::new()),
            body: Bytes::new(),
            keep_alive: true,
            params: Params::default(),
            shard: self.shard,
            peer: self.peer,
            secure: self.secure,
            tls: self.tls.clone(),
        };
        if buf.first().is_some_and(|&b| b == b'\r' || b == b'\n') {
            self.skip_empty_lines(buf)?;
        }
        let Some((head_len, parsed)) = parse_head(buf, &self.limits, &mut request.headers)? else {
            return Ok(Event::NeedMore);
        };
        self.empty_lines = 0;
        request.headers.set_head(buf.split_to(head_len).freeze());
        request.method = parsed.method;
        request.method_span = parsed.method_span;
        request.path = parsed.path;
        request.query = parsed.query;
        request.version = parsed.version;
        request.keep_alive = parsed.keep_alive;
        match parsed.framing {
            None => Ok(Event::Request(request)),
            Some(framing) if streams(&request) => {
                self.state = match framing {
                    BodyFraming::Length(len) => State::StreamedLength(len as u64),
                    BodyFraming::Chunked => State::StreamedChunked(ChunkedDecoder::default()),
                };
                Ok(Event::Streamed {
                    request,
                    expect_continue: parsed.expect_continue && buf.is_empty(),
                })
            }
            Some(framing) => {
                if let BodyFraming::Length(len) = framing {
                    if len > self.limits.max_request_size {
                        return Err(ParseError::BodyTooLarge);
                    }
                }
                match framing {
                    BodyFraming::Length(len) if buf.len() >= len => {
                        Ok(finish_length(request, len, buf))
                    }
                    BodyFraming::Length(len) => {
                        self.state = State::Length(Box::new(request), len);
                        self.waiting(parsed.expect_continue, buf)
                    }
                    BodyFraming::Chunked => {
                        let decoder = ChunkedDecoder::default();
                        self.state = State::Chunked(Box::new(request), decoder, BytesMut::new());
                        self.waiting(parsed.expect_continue, buf)
                    }
                }
            }
        }
    }

    /// Consumes empty lines before a request line (RFC 9112 §2.2 asks servers to
    /// ignore at least one), up to [`MAX_EMPTY_LINES`] per request.
    fn skip_empty_lines(&mut self, buf: &mut BytesMut) -> Result<(), ParseError> {
        loop {
            let line = match &buf[..] {
                [b'\r', b'\n', ..] => 2,
                [b'\n', ..] => 1,
                _ => return Ok(()),
            };
            self.empty_lines += 1;
            if self.empty_lines > MAX_EMPTY_LINES {
                return Err(bad("too many empty lines before the request line"));
            }
            buf.advance(line);
        }
    }

    /// A head whose body is not (all) in the buffer yet: `100 Continue` when the client
    /// waits for it, else what of the body is there.
    fn waiting(&mut self, expect_continue: bool, buf: &mut BytesMut) -> Result<Event, ParseError> {
        if expect_continue && buf.is_empty() {
            return Ok(Event::Continue);
        }
        self.decode(buf)
    }
}

/// The request with its `len`-byte body, split off the front of `buf`.
fn finish_length(mut request: Request, len: usize, buf: &mut BytesMut) -> Event {
    request.body = buf.split_to(len).freeze();
    Event::Request(request)
}

struct ParsedHead {
    method: Method,
    method_span: Span,
    path: Span,
    query: Option<Span>,
    version: Version,
    keep_alive: bool,
    expect_continue: bool,
    framing: Option<BodyFraming>,
}

fn bad(why: &'static str) -> ParseError {
    ParseError::BadRequest(why)
}

/// Parses one request head at the start of `buf`: `None` while it is incomplete.
fn parse_head(
    buf: &[u8],
    limits: &Limits,
    headers: &mut Headers,
) -> Result<Option<(usize, ParsedHead)>, ParseError> {
    // Uninitialized slots: zeroing 64 headers per request cost more than parsing them.
    let mut slots = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return incomplete(buf, limits),
        Err(e) => return Err(map_httparse_error(e, buf)),
    };
    if head_len > limits.max_head_size {
        return Err(ParseError::HeadTooLarge);
    }
    let method_text = req.method.unwrap_or("");
    let target = req.path.unwrap_or("");
    if target.len() > limits.max_uri_length {
        return Err(ParseError::UriTooLong);
    }
    // httparse lets bytes above 0x7f through (for UTF-8 paths); a request target is
    // visible ASCII only (RFC 9112 §3.2, RFC 3986: anything else is percent-encoded).
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("invalid byte in request target"));
    }
    let method = Method::from_token(method_text);
    let path_text = origin_path(method, target)?;
    let version = match req.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    let (path_text, query) = match path_text.bytes().position(|b| b == b'?') {
        Some(q) => (
            &path_text[..q],
            Some(Span::of(buf, &path_text.as_bytes()[q + 1..])),
        ),
        None => (path_text, None),
    };

    let mut hosts = 0;
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    for header in req.headers.iter() {
        headers.push(
            Span::of(buf, header.name.as_bytes()),
            Span::of(buf, header.value),
        );
        let name = header.name;
        let value = header.value;
        if name.eq_ignore_ascii_case("content-length") {
            let len = parse_content_length(value)?;
            if content_length.is_some_and(|seen| seen != len) {
                return Err(bad("conflicting Content-Length headers"));
            }
            content_length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            chunked = parse_transfer_encoding(value, chunked)?;
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if !valid_host(value) {
                return Err(bad("invalid Host header"));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in tokens(value) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            // Other expectations are ignored (RFC 9110 §10.1.1 allows 417, not requires).
            expect_continue |=
                version == Version::Http11 && trim(value).eq_ignore_ascii_case(b"100-continue");
        }
    }
    if version == Version::Http11 && hosts != 1 {
        return Err(bad(if hosts == 0 {
            "missing Host header"
        } else {
            "more than one Host header"
        }));
    }
    let framing = match (transfer_encoding, content_length) {
        (true, Some(_)) => return Err(bad("both Content-Length and Transfer-Encoding")),
        (true, None) if version == Version::Http10 => {
            return Err(bad("Transfer-Encoding in an HTTP/1.0 request"))
        }
        (true, None) if !chunked => return Err(bad("Transfer-Encoding does not end in chunked")),
        (true, None) => Some(BodyFraming::Chunked),
        (false, Some(0)) | (false, None) => None,
        (false, Some(len)) => Some(BodyFraming::Length(len)),
    };
    let keep_alive = match version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive_token && !close,
    };
    let parsed = ParsedHead {
        method,
        method_span: Span::of(buf, method_text.as_bytes()),
        path: Span::of(buf, path_text.as_bytes()),
        query,
        version,
        keep_alive,
        expect_continue,
        framing,
    };
    Ok(Some((head_len, parsed)))
}

/// Decides between "wait for more" and a limit error for an incomplete head.
fn incomplete<T>(buf: &[u8], limits: &Limits) -> Result<Option<T>, ParseError> {
    let line_done = buf.contains(&b'\n');
    // Method, spaces and version take at most this much beyond the target.
    if !line_done && buf.len() > limits.max_uri_length + 32 {
        return Err(ParseError::UriTooLong);
    }
    if buf.len() >= limits.max_head_size {
        return Err(if line_done {
            ParseError::HeadTooLarge
        } else {
            ParseError::UriTooLong
        });
    }
    Ok(None)
}

fn map_httparse_error(error: httparse::Error, buf: &[u8]) -> ParseError {
    match error {
        httparse::Error::TooManyHeaders => ParseError::HeadTooLarge,
        httparse::Error::Version if looks_like_other_version(buf) => {
            ParseError::VersionNotSupported
        }
        httparse::Error::Version => bad("malformed HTTP version"),
        httparse::Error::HeaderName => bad("invalid header name"),
        httparse::Error::HeaderValue => bad("invalid header value"),
        httparse::Error::NewLine => bad("invalid line ending"),
        httparse::Error::Token => bad("invalid token in request line"),
        _ => bad("malformed request"),
    }
}

/// Whether the request line is three parts, the last a well-formed `HTTP/x.y` that is
/// not 1.0 or 1.1. (A space inside the target makes four parts: a malformed line.)
fn looks_like_other_version(buf: &[u8]) -> bool {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(buf);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(_method), Some(_target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    matches!(version, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
        if major.is_ascii_digit() && minor.is_ascii_digit())
}

/// Whether a Host value is `uri-host [ ":" port ]` (RFC 9112 §3.2, RFC 3986 §3.2.2):
/// a reg-name or IPv4 address, or a bracketed IPv6 literal, then optional digits. Empty
/// is allowed (a target without an authority). Userinfo, paths, spaces, lists (commas)
/// and anything else are not. Runs on every request: one table lookup per byte.
fn valid_host(value: &[u8]) -> bool {
    let value = trim(value);
    if let [b'[', literal @ ..] = value {
        return match literal.iter().position(|&b| b == b']') {
            Some(end) => valid_ipv6(&literal[..end]) && valid_port(&literal[end + 1..]),
            None => false,
        };
    }
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b if REG_NAME[usize::from(b)] => i += 1,
            b'%' if value
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
            {
                i += 3
            }
            b':' if i > 0 => return valid_port(&value[i..]),
            _ => return false,
        }
    }
    true
}

/// Bytes a reg-name holds as they are: unreserved characters and sub-delims, less the
/// comma (which in a Host header only ever means a list).
const REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b';'
                    | b'='
            );
        i += 1;
    }
    table
};

/// An empty rest, or `:` and up to five digits.
fn valid_port(rest: &[u8]) -> bool {
    match rest {
        [] => true,
        [b':', port @ ..] => port.len() <= 5 && port.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

fn valid_ipv6(literal: &[u8]) -> bool {
    std::str::from_utf8(literal).is_ok_and(|text| text.parse::<std::net::Ipv6Addr>().is_ok())
}

/// The path and query of an origin-form (`/a?b`), asterisk-form (`OPTIONS *`) or
/// absolute-form (`http://host/a?b`) request target, as a subslice of `target`: the
/// request's spans are offsets into the read buffer. An absolute-form target with an
/// empty path (`http://host`, `http://host?q`) yields an empty path, which
/// [`Request::path`] reads as `/` (RFC 9112 §3.2.2, RFC 3986 §6.2.3).
fn origin_path(method: Method, target: &str) -> Result<&str, ParseError> {
    if target.starts_with('/') || (target == "*" && method == Method::Options) {
        return Ok(target);
    }
    // The scheme is case-insensitive (RFC 3986 §3.1).
    let scheme = ["http://", "https://"]
        .into_iter()
        .find(|scheme| {
            target
                .get(..scheme.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
        })
        .ok_or(bad("invalid request target"))?;
    let rest = &target[scheme.len()..];
    let authority = rest.find(['/', '?']).unwrap_or(rest.len());
    // An http(s) URI with an empty host is invalid (RFC 9110 §4.2.1).
    if authority == 0 {
        return Err(bad("request target has no host"));
    }
    Ok(&rest[authority..])
}

fn trim(value: &[u8]) -> &[u8] {
    value.trim_ascii()
}

fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim)
}

/// A Content-Length value: ASCII digits only, no sign, no spaces inside, no overflow.
fn parse_content_length(value: &[u8]) -> Result<usize, ParseError> {
    let digits = trim(value);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad("invalid Content-Length"));
    }
    digits.iter().try_fold(0usize, |acc, &d| {
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(usize::from(d - b'0')))
            .ok_or(bad("Content-Length overflows"))
    })
}

/// Folds one Transfer-Encoding line into "chunked is the final coding so far".
/// `chunked` must come last, once; any other coding is one we do not implement. Empty
/// list elements are ignored (RFC 9110 §5.6.1).
fn parse_transfer_encoding(value: &[u8], mut chunked: bool) -> Result<bool, ParseError> {
    for coding in tokens(value).filter(|coding| !coding.is_empty()) {
        if chunked {
            return Err(bad("Transfer-Encoding has a coding after chunked"));
        }
        if coding.eq_ignore_ascii_case(b"chunked") {
            chunked = true;
        } else if !is_token(coding) {
            return Err(bad("invalid Transfer-Encoding"));
        } else {
            return Err(ParseError::UnsupportedTransferCoding);
        }
    }
    Ok(chunked)
}

#[cfg(test)]
mod tests;
