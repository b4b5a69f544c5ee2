//! `Response`: a builder the connection encodes straight into its write buffer.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::pin::Pin;
use std::rc::Rc;

use bytes::{BufMut, Bytes, BytesMut};
use futures_lite::Stream;

use crate::http::date::DATE_LEN;
use crate::http::file::FileBody;
use crate::http::token::is_token;

/// An HTTP status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusCode(u16);

impl StatusCode {
    /// 100 Continue
    pub const CONTINUE: StatusCode = StatusCode(100);
    /// 200 OK
    pub const OK: StatusCode = StatusCode(200);
    /// 201 Created
    pub const CREATED: StatusCode = StatusCode(201);
    /// 202 Accepted
    pub const ACCEPTED: StatusCode = StatusCode(202);
    /// 204 No Content
    pub const NO_CONTENT: StatusCode = StatusCode(204);
    /// 304 Not Modified
    pub const NOT_MODIFIED: StatusCode = StatusCode(304);
    /// 400 Bad Request
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    /// 401 Unauthorized
    pub const UNAUTHORIZED: StatusCode = StatusCode(401);
    /// 403 Forbidden
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    /// 404 Not Found
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    /// 405 Method Not Allowed
    pub const METHOD_NOT_ALLOWED: StatusCode = StatusCode(405);
    /// 408 Request Timeout
    pub const REQUEST_TIMEOUT: StatusCode = StatusCode(408);
    /// 413 Content Too Large
    pub const PAYLOAD_TOO_LARGE: StatusCode = StatusCode(413);
    /// 414 URI Too Long
    pub const URI_TOO_LONG: StatusCode = StatusCode(414);
    /// 415 Unsupported Media Type
    pub const UNSUPPORTED_MEDIA_TYPE: StatusCode = StatusCode(415);
    /// 422 Unprocessable Content
    pub const UNPROCESSABLE_ENTITY: StatusCode = StatusCode(422);
    /// 431 Request Header Fields Too Large
    pub const HEADER_FIELDS_TOO_LARGE: StatusCode = StatusCode(431);
    /// 426 Upgrade Required
    pub const UPGRADE_REQUIRED: StatusCode = StatusCode(426);
    /// 500 Internal Server Error
    pub const INTERNAL_SERVER_ERROR: StatusCode = StatusCode(500);
    /// 501 Not Implemented
    pub const NOT_IMPLEMENTED: StatusCode = StatusCode(501);
    /// 503 Service Unavailable
    pub const SERVICE_UNAVAILABLE: StatusCode = StatusCode(503);
    /// 504 Gateway Timeout
    pub const GATEWAY_TIMEOUT: StatusCode = StatusCode(504);
    /// 505 HTTP Version Not Supported
    pub const HTTP_VERSION_NOT_SUPPORTED: StatusCode = StatusCode(505);

    /// A status from its number; `None` outside 100..=999.
    pub fn from_u16(code: u16) -> Option<StatusCode> {
        (100..=999).contains(&code).then_some(StatusCode(code))
    }

    /// The number.
    pub fn as_u16(self) -> u16 {
        self.0
    }

    /// The reason phrase: IANA's HTTP Status Code Registry (RFC 9110's names), and 418
    /// as RFC 2324 and Python's `http.HTTPStatus` name it; empty for other codes.
    pub fn reason(self) -> &'static str {
        match self.0 {
            100 => "Continue",
            101 => "Switching Protocols",
            102 => "Processing",
            103 => "Early Hints",
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            203 => "Non-Authoritative Information",
            204 => "No Content",
            205 => "Reset Content",
            206 => "Partial Content",
            207 => "Multi-Status",
            208 => "Already Reported",
            226 => "IM Used",
            300 => "Multiple Choices",
            301 => "Moved Permanently",
            302 => "Found",
            303 => "See Other",
            304 => "Not Modified",
            305 => "Use Proxy",
            307 => "Temporary Redirect",
            308 => "Permanent Redirect",
            400 => "Bad Request",
            401 => "Unauthorized",
            402 => "Payment Required",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            407 => "Proxy Authentication Required",
            408 => "Request Timeout",
            409 => "Conflict",
            410 => "Gone",
            411 => "Length Required",
            412 => "Precondition Failed",
            413 => "Content Too Large",
            414 => "URI Too Long",
            415 => "Unsupported Media Type",
            416 => "Range Not Satisfiable",
            417 => "Expectation Failed",
            418 => "I'm a teapot",
            421 => "Misdirected Request",
            422 => "Unprocessable Content",
            423 => "Locked",
            424 => "Failed Dependency",
            425 => "Too Early",
            426 => "Upgrade Required",
            428 => "Precondition Required",
            429 => "Too Many Requests",
            431 => "Request Header Fields Too Large",
            451 => "Unavailable For Legal Reasons",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            505 => "HTTP Version Not Supported",
            506 => "Variant Also Negotiates",
            507 => "Insufficient Storage",
            508 => "Loop Detected",
            510 => "Not Extended",
            511 => "Network Authentication Required",
            _ => "",
        }
    }

    /// Whether a response with this status never carries a body (1xx, 204, 304).
    pub fn forbids_body(self) -> bool {
        self.0 < 200 || self.0 == 204 || self.0 == 304
    }
}

/// Text of a header name or value. Cloning is cheap (a reference count), so a handler
/// can keep a configured value and attach it to every response without allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderText {
    text: Bytes,
    /// Holds no CR, LF or NUL: judged once when made, not at every response.
    safe: bool,
}

/// Appends `name: value` and its CRLF, unless either holds CR, LF or NUL (such a header
/// could smuggle another one) or the name is not a token (empty, or with a space, a
/// colon, a quote...: a strict client would refuse the whole response): it is dropped.
pub(crate) fn put_header(out: &mut BytesMut, name: &HeaderText, value: &HeaderText) {
    if name.safe && value.safe && is_token(&name.text) {
        out.put_slice(&name.text);
        out.put_slice(b": ");
        out.put_slice(&value.text);
        out.put_slice(b"\r\n");
    }
}

impl HeaderText {
    fn new(text: Bytes) -> Self {
        let safe = !text.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0);
        HeaderText { text, safe }
    }

    /// Text already known to be UTF-8, shared rather than copied.
    pub(crate) fn shared(text: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&text).is_ok());
        HeaderText::new(text)
    }

    /// Header bytes sent exactly as given, for values that are not UTF-8 (Latin-1
    /// text from a WSGI or ASGI application). A name or value holding CR, LF or NUL,
    /// or a name that is not a token, is still dropped when the response is encoded.
    pub fn from_bytes(bytes: Bytes) -> Self {
        HeaderText::new(bytes)
    }

    /// The text; empty for bytes that are not UTF-8 (see [`HeaderText::from_bytes`]).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text).unwrap_or("")
    }
}

impl From<&'static str> for HeaderText {
    fn from(text: &'static str) -> Self {
        HeaderText::new(Bytes::from_static(text.as_bytes()))
    }
}

impl From<String> for HeaderText {
    fn from(text: String) -> Self {
        HeaderText::new(Bytes::from(text))
    }
}

impl From<Cow<'static, str>> for HeaderText {
    fn from(text: Cow<'static, str>) -> Self {
        match text {
            Cow::Borrowed(text) => text.into(),
            Cow::Owned(text) => text.into(),
        }
    }
}

/// A response: status, headers and body. Build it with the helpers and `with_*`.
#[derive(Debug, Clone)]
pub struct Response {
    status: StatusCode,
    content_type: Option<HeaderText>,
    headers: Vec<(HeaderText, HeaderText)>,
    body: Bytes,
    /// A body sent piece by piece instead of `body`.
    stream: Option<BodyStream>,
    close: bool,
    /// A `Server` header is among `headers`: the shard's (`server.server_header`) is
    /// not written.
    own_server: bool,
}

/// The pieces of a streamed body, in order.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Bytes>>>;

/// A response body produced piece by piece (see [`Response::stream`]). The connection
/// asks for the next piece only once the previous ones are written (or buffered within
/// a bound), so a client that reads slowly slows the producer, and holds no more than
/// that bound in memory. Cloning shares the stream: only one response can send it.
#[derive(Clone)]
pub struct BodyStream {
    pieces: Rc<RefCell<Option<ChunkStream>>>,
    /// `Content-Length`, when known; otherwise the body is sent chunked.
    len: Option<u64>,
    /// The file slice the pieces read, when the body is one: a plain connection sends
    /// it by the kernel instead of taking the pieces.
    file: Option<Rc<FileBody>>,
}

impl fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyStream")
            .field("len", &self.len)
            .finish()
    }
}

impl BodyStream {
    /// The stream, once: `None` after the first call (a clone already took it).
    pub(crate) fn take(&self) -> Option<ChunkStream> {
        self.pieces.borrow_mut().take()
    }

    /// The announced length, `None` for a chunked body.
    pub(crate) fn len(&self) -> Option<u64> {
        self.len
    }

    /// The file slice the stream reads, when it is one.
    pub(crate) fn file(&self) -> Option<&Rc<FileBody>> {
        self.file.as_ref()
    }
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Bytes::new(),
            stream: None,
            close: false,
            own_server: false,
        }
    }

    /// 200 with a body sent as `stream` yields it, with chunked transfer encoding (to
    /// an HTTP/1.0 client: unframed, then the connection closes). For server-sent
    /// events, a download produced on the fly, a file read piece by piece.
    pub fn stream(
        content_type: impl Into<HeaderText>,
        stream: impl Stream<Item = Bytes> + 'static,
    ) -> Response {
        Response::new(StatusCode::OK).with_stream(content_type, None, stream)
    }

    /// Sets a streamed body (replacing any other), announced with `Content-Length: len`
    /// when `len` is given (the stream must then yield exactly `len` bytes: more are
    /// cut off and fewer end the connection, since the framing is already sent), else
    /// chunked.
    pub fn with_stream(
        mut self,
        content_type: impl Into<HeaderText>,
        len: Option<u64>,
        stream: impl Stream<Item = Bytes> + 'static,
    ) -> Response {
        self.content_type = Some(content_type.into());
        self.body = Bytes::new();
        self.stream = Some(BodyStream {
            pieces: Rc::new(RefCell::new(Some(Box::pin(stream)))),
            len,
            file: None,
        });
        self
    }

    /// Sets a body of `len` bytes of `file` from `offset` (replacing any other): on a
    /// plain connection the kernel sends it (`sendfile`), elsewhere it is streamed in
    /// positional reads. A file cut short meanwhile ends the connection.
    pub fn with_file(
        self,
        content_type: impl Into<HeaderText>,
        file: std::fs::File,
        offset: u64,
        len: u64,
    ) -> Response {
        let (file, pieces) = FileBody::new(file, offset, len);
        let mut response = self.with_stream(content_type, Some(len), pieces);
        if let Some(stream) = response.stream.as_mut() {
            stream.file = Some(Rc::new(file));
        }
        response
    }

    /// Replaces the body, keeping the content type (a layer re-encoding it).
    pub(crate) fn replace_body(&mut self, body: Bytes) {
        self.body = body;
        self.stream = None;
    }

    /// Replaces the body with `stream`, of unknown length (sent chunked), keeping the
    /// content type.
    pub(crate) fn replace_stream(&mut self, stream: impl Stream<Item = Bytes> + 'static) {
        self.body = Bytes::new();
        self.stream = Some(BodyStream {
            pieces: Rc::new(RefCell::new(Some(Box::pin(stream)))),
            len: None,
            file: None,
        });
    }

    /// The streamed body, if the response has one.
    pub fn body_stream(&self) -> Option<&BodyStream> {
        self.stream.as_ref()
    }

    /// 200 with a `text/plain` body. A `&'static str` is sent without copying.
    pub fn text(body: impl Into<Bytes>) -> Response {
        Response::new(StatusCode::OK).with_body("text/plain; charset=utf-8", body)
    }

    /// 200 with an `application/octet-stream` body.
    pub fn bytes(body: impl Into<Bytes>) -> Response {
        Response::new(StatusCode::OK).with_body("application/octet-stream", body)
    }

    /// 200 with an `application/json` body (already serialized).
    pub fn json(body: impl Into<Bytes>) -> Response {
        Response::new(StatusCode::OK).with_body("application/json", body)
    }

    /// Sets the status.
    pub fn with_status(mut self, status: StatusCode) -> Response {
        self.status = status;
        self
    }

    /// Sets the body and its content type.
    pub fn with_body(
        mut self,
        content_type: impl Into<HeaderText>,
        body: impl Into<Bytes>,
    ) -> Response {
        self.content_type = Some(content_type.into());
        self.body = body.into();
        self
    }

    /// Adds a header. A name or value holding CR, LF or NUL would split the response,
    /// and a name that is not a token makes it invalid: such a header is dropped when
    /// the response is encoded.
    ///
    /// The response owns its framing: `Content-Length`, `Transfer-Encoding` and `Date`
    /// are written from the body and the shard's clock, so such a header is ignored
    /// (written next to the computed one it would contradict it). `Connection: close`
    /// closes the connection after the response ([`Response::with_close`]); other
    /// `Connection` values are ignored, as keep-alive is the server's to decide. A
    /// `Server` header replaces the server's own (`server.server_header`).
    pub fn with_header(
        mut self,
        name: impl Into<HeaderText>,
        value: impl Into<HeaderText>,
    ) -> Response {
        let (name, value) = (name.into(), value.into());
        match framing_header(&name.text) {
            Some(Framing::Computed) => {}
            Some(Framing::Connection) => self.close |= has_token(&value.text, b"close"),
            None => {
                self.own_server |= name.text.eq_ignore_ascii_case(b"server");
                self.headers.push((name, value));
            }
        }
        self
    }

    /// Closes the connection after this response.
    pub fn with_close(mut self) -> Response {
        self.close = true;
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The `Content-Type`, when a body set one.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_ref().map(HeaderText::as_str)
    }

    /// The first value of a user header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the connection closes after this response.
    pub fn closes(&self) -> bool {
        self.close
    }

    /// Whether the connection must close after this response under `mode`: asked for,
    /// or a streamed body of unknown length to an HTTP/1.0 client (no chunked there,
    /// so the end of the body is the end of the connection).
    pub(crate) fn closes_in(&self, mode: ResponseMode) -> bool {
        self.close
            || !mode.keep_alive
            || (mode.http10 && self.stream.as_ref().is_some_and(|s| s.len.is_none()))
    }
}

/// A header the response writes itself.
enum Framing {
    /// `Content-Length`, `Transfer-Encoding`, `Date`: computed when encoded.
    Computed,
    /// `Connection`: only its `close` is taken.
    Connection,
}

fn framing_header(name: &[u8]) -> Option<Framing> {
    let is = |framing: &str| name.eq_ignore_ascii_case(framing.as_bytes());
    if is("content-length") || is("transfer-encoding") || is("date") {
        Some(Framing::Computed)
    } else if is("connection") {
        Some(Framing::Connection)
    } else {
        None
    }
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// What the shard writes into every response head besides the response's own
/// headers.
#[derive(Debug, Clone, Copy)]
pub struct Stamp<'a> {
    /// The cached `Date` value.
    pub date: &'a [u8; DATE_LEN],
    /// The `Server` header and `server.headers`.
    pub headers: &'a ServerHeaders,
}

/// The headers a server writes into every response: `Server` (`server.server_header`)
/// and `server.headers`, rendered once rather than per response.
#[derive(Debug)]
pub struct ServerHeaders {
    /// A 200's head up to its date: status line, `Server` line, `Date: `, one write.
    ok_head: Box<[u8]>,
    /// `Server: <value>\r\n`, or nothing.
    server_line: Box<[u8]>,
    /// For every response that has none of the same name.
    extra: Box<[(HeaderText, HeaderText)]>,
}

impl ServerHeaders {
    /// `Server: server` (none when empty, or when it holds CR, LF or NUL) and `extra`.
    pub fn new(
        server: &str,
        extra: impl IntoIterator<Item = (HeaderText, HeaderText)>,
    ) -> ServerHeaders {
        let value = HeaderText::from(server.to_owned());
        let server_line = match value.safe && !server.is_empty() {
            true => format!("Server: {server}\r\n").into_bytes(),
            false => Vec::new(),
        };
        let mut ok_head = b"HTTP/1.1 200 OK\r\n".to_vec();
        ok_head.extend_from_slice(&server_line);
        ok_head.extend_from_slice(b"Date: ");
        ServerHeaders {
            ok_head: ok_head.into(),
            server_line: server_line.into(),
            extra: extra.into_iter().collect(),
        }
    }
}

impl ServerHeaders {
    /// Appends the `Server` line, then `Date: date`: for a head other than a plain
    /// 200's. `own_server`: the response has a `Server` header of its own.
    pub(crate) fn put_server_and_date(&self, own_server: bool, date: &[u8], out: &mut BytesMut) {
        if !own_server {
            out.put_slice(&self.server_line);
        }
        out.put_slice(b"Date: ");
        out.put_slice(date);
        out.put_slice(b"\r\n");
    }

    /// Appends the configured headers that `own` (the response's headers) has none of.
    #[inline]
    pub(crate) fn put_extra(&self, own: &[(HeaderText, HeaderText)], out: &mut BytesMut) {
        for (name, value) in self.extra.iter() {
            if !own
                .iter()
                .any(|(mine, _)| mine.text.eq_ignore_ascii_case(&name.text))
            {
                put_header(out, name, value);
            }
        }
    }
}

impl Default for ServerHeaders {
    /// `Server: haywire`, nothing more.
    fn default() -> ServerHeaders {
        ServerHeaders::new("haywire", [])
    }
}

/// What the request asks of its response's encoding: body or not, keep-alive, version.
#[derive(Debug, Clone, Copy)]
pub struct ResponseMode {
    /// The request was HEAD: headers of the GET answer, no body.
    pub head_only: bool,
    /// The connection stays open afterwards.
    pub keep_alive: bool,
    /// The request was HTTP/1.0 (keep-alive must then be announced).
    pub http10: bool,
}

impl ResponseMode {
    /// For an answer the connection closes after, whatever the request asked (an
    /// error, a refusal): a full HTTP/1.1 response with `Connection: close`.
    pub(crate) const CLOSE: ResponseMode = ResponseMode {
        head_only: false,
        keep_alive: false,
        http10: false,
    };
}

impl Response {
    /// Appends the encoded response to `out`.
    pub fn encode(&self, mode: ResponseMode, stamp: Stamp<'_>, out: &mut BytesMut) {
        let body_allowed = !self.status.forbids_body();
        let body_len = if body_allowed { self.body.len() } else { 0 };
        out.reserve(160 + body_len);
        self.encode_head(mode, stamp, out);
        if body_allowed && !mode.head_only {
            out.put_slice(&self.body);
        }
    }

    /// Appends the encoded head alone: the connection writes a large body from where it
    /// is.
    #[inline]
    pub(crate) fn encode_head(&self, mode: ResponseMode, stamp: Stamp<'_>, out: &mut BytesMut) {
        let status = self.status;
        let body_allowed = !status.forbids_body();
        let heads = stamp.headers;
        if status.0 == 200 && !self.own_server {
            out.put_slice(&heads.ok_head);
            out.put_slice(stamp.date);
            out.put_slice(b"\r\n");
        } else {
            let mut code = itoa::Buffer::new();
            out.put_slice(b"HTTP/1.1 ");
            out.put_slice(code.format(status.0).as_bytes());
            out.put_u8(b' ');
            out.put_slice(status.reason().as_bytes());
            out.put_slice(b"\r\n");
            heads.put_server_and_date(self.own_server, stamp.date, out);
        }
        if body_allowed {
            if let Some(ct) = self.content_type.as_ref().filter(|ct| ct.safe) {
                out.put_slice(b"Content-Type: ");
                out.put_slice(&ct.text);
                out.put_slice(b"\r\n");
            }
            let mut len = itoa::Buffer::new();
            match &self.stream {
                None => {
                    out.put_slice(b"Content-Length: ");
                    out.put_slice(len.format(self.body.len()).as_bytes());
                    out.put_slice(b"\r\n");
                }
                Some(BodyStream { len: Some(n), .. }) => {
                    out.put_slice(b"Content-Length: ");
                    out.put_slice(len.format(*n).as_bytes());
                    out.put_slice(b"\r\n");
                }
                Some(_) if mode.http10 => {}
                Some(_) => out.put_slice(b"Transfer-Encoding: chunked\r\n"),
            }
        }
        for (name, value) in &self.headers {
            put_header(out, name, value);
        }
        heads.put_extra(&self.headers, out);
        if self.closes_in(mode) {
            out.put_slice(b"Connection: close\r\n");
        } else if mode.http10 {
            out.put_slice(b"Connection: keep-alive\r\n");
        }
        out.put_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8; DATE_LEN] = b"Sun, 06 Nov 1994 08:49:37 GMT";
    const KEEP: ResponseMode = ResponseMode {
        head_only: false,
        keep_alive: true,
        http10: false,
    };

    fn encode(response: &Response, mode: ResponseMode) -> String {
        encode_as(response, mode, "haywire")
    }

    fn encode_as(response: &Response, mode: ResponseMode, server: &str) -> String {
        let mut out = BytesMut::new();
        let headers = ServerHeaders::new(server, []);
        let stamp = Stamp {
            date: DATE,
            headers: &headers,
        };
        response.encode(mode, stamp, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn the_status_line_names_every_registered_code() {
        for (code, line) in [
            (410, "HTTP/1.1 410 Gone\r\n"),
            (412, "HTTP/1.1 412 Precondition Failed\r\n"),
            (418, "HTTP/1.1 418 I'm a teapot\r\n"),
            (451, "HTTP/1.1 451 Unavailable For Legal Reasons\r\n"),
            (511, "HTTP/1.1 511 Network Authentication Required\r\n"),
            (299, "HTTP/1.1 299 \r\n"),
        ] {
            let status = StatusCode::from_u16(code).unwrap();
            let text = encode(&Response::new(status), KEEP);
            assert!(text.starts_with(line), "{text}");
        }
        // Every code IANA registers (and 418) has its phrase.
        let registered = [
            100..=103,
            200..=208,
            226..=226,
            300..=305,
            307..=308,
            400..=418,
            421..=426,
            428..=429,
            431..=431,
            451..=451,
            500..=508,
            510..=511,
        ];
        for code in registered.into_iter().flatten() {
            let reason = StatusCode::from_u16(code).unwrap().reason();
            assert!(!reason.is_empty(), "{code} has no reason phrase");
        }
    }

    #[test]
    fn the_server_header_is_the_configured_one_or_none() {
        let text = encode_as(&Response::new(StatusCode::NOT_FOUND), KEEP, "edge/2.1");
        assert!(
            text.starts_with("HTTP/1.1 404 Not Found\r\nServer: edge/2.1\r\nDate: Sun, 06 Nov"),
            "{text}"
        );
        let text = encode_as(&Response::text("x"), KEEP, "");
        assert!(!text.to_ascii_lowercase().contains("server:"), "{text}");
        // A value that would split the head is not written.
        let text = encode_as(&Response::text("x"), KEEP, "a\r\nX-Evil: 1");
        assert!(!text.to_ascii_lowercase().contains("server:"), "{text}");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nDate: "), "{text}");
    }

    #[test]
    fn extra_headers_go_on_every_response_unless_it_has_its_own() {
        let extra = [
            (
                HeaderText::from("X-Frame-Options"),
                HeaderText::from("DENY"),
            ),
            (
                HeaderText::from("Strict-Transport-Security"),
                HeaderText::from("max-age=600"),
            ),
        ];
        let headers = ServerHeaders::new("haywire", extra);
        let stamp = Stamp {
            date: DATE,
            headers: &headers,
        };
        let mut out = BytesMut::new();
        let own = Response::text("x").with_header("x-frame-options", "SAMEORIGIN");
        own.encode(KEEP, stamp, &mut out);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.contains("x-frame-options: SAMEORIGIN\r\n"), "{text}");
        assert!(!text.contains("DENY"), "{text}");
        assert!(
            text.contains("Strict-Transport-Security: max-age=600\r\n"),
            "{text}"
        );
        out.clear();
        Response::new(StatusCode::NOT_FOUND).encode(KEEP, stamp, &mut out);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(
            text.contains("X-Frame-Options: DENY\r\nStrict-Transport-Security"),
            "{text}"
        );
    }

    #[test]
    fn a_handlers_server_header_replaces_the_servers() {
        let response = Response::text("x").with_header("SERVER", "my-app");
        let text = encode(&response, KEEP);
        assert_eq!(
            text.to_ascii_lowercase().matches("server: ").count(),
            1,
            "{text}"
        );
        assert!(text.contains("SERVER: my-app\r\n"), "{text}");
    }

    #[test]
    fn encodes_text_with_length_type_date_and_server() {
        let text = encode(&Response::text("hello world"), KEEP);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nServer: haywire\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 11\r\n\r\nhello world"
        );
    }

    #[test]
    fn framing_headers_set_by_the_user_are_replaced_by_the_computed_ones() {
        let response = Response::text("hello world")
            .with_header("Content-Length", "999")
            .with_header("transfer-encoding", "chunked")
            .with_header("DATE", "Thu, 01 Jan 1970 00:00:00 GMT")
            .with_header("Connection", "keep-alive")
            .with_header("X-Kept", "yes");
        let text = encode(&response, KEEP);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nServer: haywire\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 11\r\nX-Kept: yes\r\n\r\n\
             hello world"
        );
        assert!(!response.closes());
        // A streamed body keeps its own framing too.
        let streamed = Response::stream("text/plain", futures_lite::stream::empty())
            .with_header("Content-Length", "5");
        let text = encode(&streamed, KEEP);
        assert!(text.contains("Transfer-Encoding: chunked\r\n"), "{text}");
        assert!(!text.contains("Content-Length"), "{text}");
    }

    #[test]
    fn a_user_connection_close_closes_and_is_written_once() {
        let response = Response::text("bye").with_header("connection", "Upgrade, Close");
        assert!(response.closes());
        let text = encode(&response, KEEP);
        assert_eq!(text.matches("Connection").count(), 1, "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert_eq!(response.header("connection"), None);
    }

    #[test]
    fn head_keeps_length_but_drops_body() {
        let mode = ResponseMode {
            head_only: true,
            ..KEEP
        };
        let text = encode(&Response::text("hello world"), mode);
        assert!(text.contains("Content-Length: 11\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn no_content_has_no_length_and_no_body() {
        let response = Response::new(StatusCode::NO_CONTENT).with_body("text/plain", "x");
        let text = encode(&response, KEEP);
        assert!(text.starts_with("HTTP/1.1 204 No Content\r\n"));
        assert!(!text.contains("Content-Length"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn close_and_http10_keep_alive_are_announced() {
        let closing = ResponseMode {
            keep_alive: false,
            ..KEEP
        };
        assert!(encode(&Response::text("x"), closing).contains("Connection: close\r\n"));
        let http10 = ResponseMode {
            http10: true,
            ..KEEP
        };
        assert!(encode(&Response::text("x"), http10).contains("Connection: keep-alive\r\n"));
    }

    #[test]
    fn the_mode_follows_the_request() {
        let mut decoder = crate::http::Decoder::new(
            crate::http::Limits {
                max_head_size: 1024,
                max_uri_length: 256,
                max_request_size: 1024,
            },
            0,
        );
        let mut mode = |wire: &[u8]| {
            let mut buf = BytesMut::from(wire);
            match decoder.decode(&mut buf) {
                Ok(crate::http::Event::Request(request)) => request.response_mode(),
                other => panic!("{other:?}"),
            }
        };
        let get = mode(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(!get.head_only && get.keep_alive && !get.http10);
        let head = mode(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(head.head_only && head.keep_alive && !head.http10);
        let closing = mode(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        assert!(!closing.keep_alive && !closing.http10);
        let old = mode(b"GET / HTTP/1.0\r\n\r\n");
        assert!(!old.keep_alive && old.http10);
        let old_kept = mode(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(old_kept.keep_alive && old_kept.http10);
        let close = encode(&Response::text("x"), ResponseMode::CLOSE);
        assert!(close.starts_with("HTTP/1.1 200 OK\r\n"), "{close}");
        assert!(close.contains("Connection: close\r\n") && close.ends_with("\r\n\r\nx"));
    }

    #[test]
    fn header_injection_is_dropped() {
        let response = Response::text("x")
            .with_header("X-Ok", "fine")
            .with_header("X-Bad", "a\r\nSet-Cookie: evil=1");
        let text = encode(&response, KEEP);
        assert!(text.contains("X-Ok: fine\r\n"));
        assert!(!text.contains("evil"));
        // A name that is not a token is dropped; the value may hold what a token may not.
        let names = [
            "bad name",
            "",
            "X:Y",
            "X\"Q",
            "X(1)",
            "Tab\tbed",
            "Caf\u{e9}",
        ]
        .into_iter()
        .fold(Response::text("x"), |r, name| r.with_header(name, "v"))
        .with_header("X-Fine!#$%&'*+.^_`|~", "a value, \"quoted\" (with: colons)");
        let text = encode(&names, KEEP);
        assert_eq!(text.matches(": v\r\n").count(), 0, "{text}");
        assert!(
            text.contains("X-Fine!#$%&'*+.^_`|~: a value, \"quoted\" (with: colons)\r\n"),
            "{text}"
        );
        let bad_type = Response::new(StatusCode::OK)
            .with_body(String::from("text/plain\r\nSet-Cookie: evil=1"), "x");
        let text = encode(&bad_type, KEEP);
        assert!(!text.contains("evil") && !text.contains("Content-Type"));
    }
}
