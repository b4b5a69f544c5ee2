//! `Request`: the decoded request, owning its bytes without copying them.
//!
//! The head is a `Bytes` slice of the connection's read buffer; methods, path, query and
//! headers are offsets into it. Nothing here allocates per request.

use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;

use crate::http::response::{HeaderText, ResponseMode};

/// Most headers a request may carry; more is answered with 431.
pub const MAX_HEADERS: usize = 64;
/// Most `:name` parameters a route may capture.
pub const MAX_PARAMS: usize = 8;

/// The request method. Uncommon ones keep their text in [`Request::method_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// PATCH
    Patch,
    /// OPTIONS
    Options,
    /// Any other token (CONNECT, TRACE, extensions).
    Other,
}

impl Method {
    /// Classifies a method token.
    pub fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }

    /// The method's token, `None` for [`Method::Other`].
    pub fn as_str(self) -> Option<&'static str> {
        Some(match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Options => "OPTIONS",
            Method::Other => return None,
        })
    }
}

/// The protocol version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
}

/// A byte range inside the request head.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u16,
    pub len: u16,
}

impl Span {
    pub(crate) fn of(base: &[u8], part: &[u8]) -> Span {
        // Offsets come from pointer distance: `part` must be a subslice of `base`.
        let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
        debug_assert!(
            start <= base.len() && part.len() <= base.len() - start,
            "a span outside its buffer"
        );
        Span {
            start: start as u16,
            len: part.len() as u16,
        }
    }

    fn get(self, bytes: &[u8]) -> &[u8] {
        &bytes[self.start as usize..self.start as usize + self.len as usize]
    }
}

/// Headers kept inside the request itself; more spill to the heap. Browsers send
/// about a dozen; keeping the request small keeps moving it cheap.
const INLINE_HEADERS: usize = 16;

/// The request's headers: names and values as spans of the head.
#[derive(Clone)]
pub struct Headers {
    head: Bytes,
    len: u8,
    inline: [(Span, Span); INLINE_HEADERS],
    spilled: Vec<(Span, Span)>,
}

impl Headers {
    pub(crate) fn new(head: Bytes) -> Headers {
        Headers {
            head,
            len: 0,
            inline: [(Span::default(), Span::default()); INLINE_HEADERS],
            spilled: Vec::new(),
        }
    }

    pub(crate) fn set_head(&mut self, head: Bytes) {
        self.head = head;
    }

    /// The whole head: the access log keeps it (a reference, not a copy) until the
    /// response is encoded.
    pub(crate) fn head(&self) -> &Bytes {
        &self.head
    }

    pub(crate) fn push(&mut self, name: Span, value: Span) {
        match self.inline.get_mut(self.len as usize) {
            Some(slot) => *slot = (name, value),
            None => self.spilled.push((name, value)),
        }
        self.len += 1;
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every header as `(name, value)`, in arrival order, repeats included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.iter_bytes().map(|(name, value)| {
            // Names were validated as tokens by the parser, so they are ASCII.
            (std::str::from_utf8(name).unwrap_or(""), value)
        })
    }

    /// [`Headers::iter`] with the names as bytes, as they came: for a reader that
    /// compares or copies them (checking each name as UTF-8 first cost more than a
    /// comparison).
    pub fn iter_bytes(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let inline = &self.inline[..(self.len as usize).min(INLINE_HEADERS)];
        inline
            .iter()
            .chain(&self.spilled)
            .map(|(name, value)| (name.get(&self.head), value.get(&self.head)))
    }

    /// The first value of header `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter_bytes()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The first value of header `name` as text, if it is valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of header `name` (case-insensitive), in arrival order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter_bytes()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(n, v)| (n, String::from_utf8_lossy(v))))
            .finish()
    }
}

/// Values captured by a route's `:name` segments.
#[derive(Clone, Default)]
pub(crate) struct Params {
    names: Option<Rc<[Box<str>]>>,
    values: [Span; MAX_PARAMS],
}

/// A decoded HTTP request, handed to a handler by value.
#[derive(Clone)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) method_span: Span,
    pub(crate) path: Span,
    pub(crate) query: Option<Span>,
    pub(crate) version: Version,
    pub(crate) headers: Headers,
    pub(crate) body: Bytes,
    pub(crate) keep_alive: bool,
    pub(crate) params: Params,
    pub(crate) shard: usize,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) secure: bool,
    pub(crate) tls: Option<TlsSession>,
}

/// What the requests of a TLS connection know of it, shared by them: behind a thin
/// pointer, so it costs a request one word.
pub type TlsSession = Rc<TlsInfo>;

/// A TLS connection's negotiated parameters and client certificate.
#[derive(Debug)]
pub struct TlsInfo {
    /// The protocol version's wire code: `0x0304` for TLS 1.3, `0x0303` for 1.2.
    pub version: u16,
    /// The cipher suite's IANA code (`0x1301`: `TLS_AES_128_GCM_SHA256`).
    pub cipher_suite: u16,
    /// The client's certificate (DER, the leaf), verified against `tls.client_ca`.
    pub client_cert: Option<Box<[u8]>>,
    /// That certificate's subject as RFC 4514 text (`CN=alice,O=Example`), read once
    /// per connection.
    pub client_subject: Option<Box<str>>,
}

impl TlsInfo {
    /// The version as OpenSSL and mod_ssl name it (`TLSv1.3`, `TLSv1.2`).
    pub fn version_name(&self) -> &'static str {
        match self.version {
            0x0304 => "TLSv1.3",
            0x0303 => "TLSv1.2",
            _ => "unknown",
        }
    }
}

impl Request {
    /// What this request asks of its response: no body for HEAD, the connection kept
    /// as it says, keep-alive announced to HTTP/1.0.
    #[inline]
    pub(crate) fn response_mode(&self) -> ResponseMode {
        ResponseMode {
            head_only: self.method() == Method::Head,
            keep_alive: self.keep_alive(),
            http10: self.version() == Version::Http10,
        }
    }
}

impl Request {
    fn text(&self, span: Span) -> &str {
        // The parser only accepts requests whose method and target are ASCII.
        std::str::from_utf8(span.get(&self.headers.head)).unwrap_or("")
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The method token as sent, e.g. `GET` or `PROPFIND`.
    pub fn method_str(&self) -> &str {
        self.text(self.method_span)
    }

    /// The path part of the request target, without the query; `/` for an
    /// absolute-form target with an empty path (`GET http://host HTTP/1.1`).
    pub fn path(&self) -> &str {
        match self.text(self.path) {
            "" => "/",
            path => path,
        }
    }

    /// The query string after `?`, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.query.map(|span| self.text(span))
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The first value of header `name` as text (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get_str(name)
    }

    /// The first value of header `name` as a [`HeaderText`] sharing the request's
    /// bytes (no copy), e.g. to send it back in a response. `None` when absent or not
    /// UTF-8.
    pub fn header_bytes(&self, name: &str) -> Option<HeaderText> {
        let value = self.header(name)?;
        Some(HeaderText::shared(
            self.headers.head.slice_ref(value.as_bytes()),
        ))
    }

    /// The body, de-chunked. Empty when the request had none.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Whether the connection stays open after this request's response.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// The shard serving this request.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// The client's address as the connection was accepted: the peer of the TCP
    /// connection, so a proxy's address when one sits in front. `None` over a Unix
    /// socket (`server.unix`: its peers have no address) and for a request built
    /// without a connection.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Whether the request arrived over TLS (`https`).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The certificate the client presented in the TLS handshake (DER, the leaf),
    /// verified against `tls.client_ca`; `None` without one (plaintext, no
    /// `tls.client_ca`, or `tls.client_auth = "optional"` and the client sent none).
    pub fn client_certificate(&self) -> Option<&[u8]> {
        self.tls.as_deref()?.client_cert.as_deref()
    }

    /// The TLS connection's version, cipher suite and client certificate; `None` over
    /// plaintext.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_deref()
    }

    /// The value captured by the route's `:name` segment.
    pub fn param(&self, name: &str) -> Option<&str> {
        let names = self.params.names.as_ref()?;
        let index = names.iter().position(|n| &**n == name)?;
        Some(self.text(self.params.values[index]))
    }

    /// Every `:name` capture as `(name, value)`, in route order, values as sent
    /// (still percent-encoded; the `Path` extractor decodes them).
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let names = self.params.names.as_deref().unwrap_or(&[]);
        names
            .iter()
            .zip(&self.params.values)
            .map(|(name, value)| (&**name, self.text(*value)))
    }

    /// The raw head bytes every span points into.
    pub(crate) fn head(&self) -> &[u8] {
        &self.headers.head
    }

    pub(crate) fn set_params(&mut self, names: &Rc<[Box<str>]>, values: &[Span]) {
        self.params.names = Some(names.clone());
        self.params.values[..values.len()].copy_from_slice(values);
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method_str())
            .field("path", &self.path())
            .field("query", &self.query())
            .field("version", &self.version)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}
