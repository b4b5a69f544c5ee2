//! `Compression`: response bodies in gzip, brotli or zstd, as `Accept-Encoding` asks.
//!
//! A body of up to [`EAGER_MAX`] bytes is compressed at once and keeps a
//! `Content-Length`. A larger one, and every streamed body, is compressed as it is
//! sent: the encoder takes the body [`PIECE`] bytes at a time and hands on whatever
//! output it has, so neither the whole compressed body nor a second copy of the body
//! is ever held. A streamed body's pieces are flushed one by one, so a server-sent
//! event reaches the client when it is produced.

use std::io::{self, Write};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_lite::Stream;

use super::Layer;
use crate::config::{CompressionConfig, EncodingName};
use crate::handler::{Handler, Reply};
use crate::http::{ChunkStream, Request, Response};

/// Bodies up to this size are compressed in one go.
const EAGER_MAX: usize = 64 * 1024;
/// Bytes of a large buffered body fed to the encoder at a time.
const PIECE: usize = 16 * 1024;
/// Brotli's window (2^20 bytes): its default of 2^22 costs 4 MiB per response.
const BROTLI_WINDOW: u32 = 20;

/// A content coding the layer can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `gzip` (flate2).
    Gzip,
    /// `br` (brotli).
    Brotli,
    /// `zstd`.
    Zstd,
}

impl Encoding {
    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
        }
    }
}

/// Compresses response bodies with the best coding the client accepts.
///
/// `Accept-Encoding` is read with its q-values: the coding with the highest q wins,
/// ties going to the earlier coding in the layer's list (brotli, zstd, gzip by
/// default); `*` stands for codings not named; `q=0` refuses one; when `identity` is
/// given a higher q than every coding, the body is sent as it is. Responses that could be
/// compressed carry `Vary: Accept-Encoding` either way. Skipped: bodies smaller than
/// `min_size` (1 KiB by default), bodies already encoded (`Content-Encoding` set),
/// partial content (`Content-Range`), and media that is compressed already (images
/// other than SVG, audio, video, archives, woff2 fonts).
#[derive(Debug, Clone)]
pub struct Compression {
    encodings: Vec<Encoding>,
    level: u32,
    min_size: usize,
}

impl Default for Compression {
    fn default() -> Compression {
        Compression::new()
    }
}

impl Compression {
    /// Brotli, zstd and gzip at level 4, for bodies from 1 KiB.
    pub fn new() -> Compression {
        Compression {
            encodings: vec![Encoding::Brotli, Encoding::Zstd, Encoding::Gzip],
            level: 4,
            min_size: 1024,
        }
    }

    /// Only these codings, preferred in this order on equal q-values.
    pub fn encodings(mut self, encodings: &[Encoding]) -> Compression {
        self.encodings = encodings.to_vec();
        self
    }

    /// Effort from 1 (fastest) to 9 (smallest): gzip's level, brotli's quality and
    /// zstd's level all take it as it is.
    pub fn level(mut self, level: u32) -> Compression {
        self.level = level.clamp(1, 9);
        self
    }

    /// The smallest body worth compressing.
    pub fn min_size(mut self, bytes: usize) -> Compression {
        self.min_size = bytes;
        self
    }

    /// The layer `[compression]` describes.
    pub(crate) fn from_config(config: &CompressionConfig) -> Compression {
        let encodings: Vec<Encoding> = config
            .encodings
            .iter()
            .map(|name| match name {
                EncodingName::Br => Encoding::Brotli,
                EncodingName::Zstd => Encoding::Zstd,
                EncodingName::Gzip => Encoding::Gzip,
            })
            .collect();
        Compression::new()
            .encodings(&encodings)
            .level(config.level)
            .min_size(config.min_size)
    }

    /// The coding to use for a request with this `Accept-Encoding`, `None` for the
    /// body as it is.
    pub fn negotiate(&self, accept: Option<&str>) -> Option<Encoding> {
        let accept = accept?;
        let mut star = None;
        let mut identity = None;
        let mut named = [None; 3];
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let token = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| {
                    let (key, value) = p.split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case("q")
                        .then(|| parse_q(value.trim()))
                })
                .unwrap_or(Some(1000));
            let Some(q) = q else { continue };
            let slot = match token.to_ascii_lowercase().as_str() {
                "gzip" | "x-gzip" => &mut named[0],
                "br" => &mut named[1],
                "zstd" => &mut named[2],
                "identity" => &mut identity,
                "*" => &mut star,
                _ => continue,
            };
            *slot = Some(q);
        }
        let q_of = |encoding: Encoding| {
            let index = match encoding {
                Encoding::Gzip => 0,
                Encoding::Brotli => 1,
                Encoding::Zstd => 2,
            };
            named[index].or(star).unwrap_or(0)
        };
        let mut best: Option<(Encoding, u16)> = None;
        for &encoding in &self.encodings {
            let q = q_of(encoding);
            if q > 0 && best.is_none_or(|(_, have)| q > have) {
                best = Some((encoding, q));
            }
        }
        let (encoding, q) = best?;
        // Identity is always acceptable, but outranks a coding only when the client
        // gave it the higher q itself.
        let identity = identity.or(star).unwrap_or(0);
        (q >= identity).then_some(encoding)
    }

    /// Whether `response`'s body may be compressed at all.
    fn worth(&self, response: &Response) -> bool {
        if response.status().forbids_body()
            || response.header("content-encoding").is_some()
            || response.header("content-range").is_some()
            || response.content_type().is_some_and(already_compressed)
        {
            return false;
        }
        match response.body_stream() {
            Some(stream) => stream.len().is_none_or(|n| n >= self.min_size as u64),
            None => response.body().len() >= self.min_size,
        }
    }

    fn compress(&self, mut response: Response, encoding: Option<Encoding>) -> Response {
        if !self.worth(&response) {
            return response;
        }
        response = response.with_header("Vary", "Accept-Encoding");
        let Some(encoding) = encoding else {
            return response;
        };
        // The encoder first: if it cannot start, the body is still there to send as is.
        let codec = match Codec::new(encoding, self.level) {
            Ok(codec) => codec,
            Err(error) => {
                tracing::warn!("cannot start a {} encoder: {error}", encoding.token());
                return response;
            }
        };
        let source = match response.body_stream() {
            Some(stream) => match stream.take() {
                Some(stream) => Source::Streamed(stream),
                None => return response,
            },
            None => Source::Buffered(response.body().clone()),
        };
        match source {
            Source::Buffered(body) if body.len() <= EAGER_MAX => match codec.all_at_once(&body) {
                Ok(compressed) => response.replace_body(compressed.into()),
                Err(error) => {
                    tracing::warn!("{} encoding failed: {error}", encoding.token());
                    return response;
                }
            },
            source => response.replace_stream(Compressing {
                source,
                codec: Some(codec),
            }),
        }
        response.with_header("Content-Encoding", encoding.token())
    }
}

/// A q-value in thousandths; `None` when malformed (the item is then ignored).
fn parse_q(text: &str) -> Option<u16> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = match int {
        "0" => frac
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0u16, |n, b| n * 10 + u16::from(b - b'0')),
        "1" if frac.bytes().all(|b| b == b'0') => 1000,
        _ => return None,
    };
    Some(thousandths)
}

/// Media types whose bodies are compressed already.
fn already_compressed(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let essence = essence.to_ascii_lowercase();
    (essence.starts_with("image/") && essence != "image/svg+xml")
        || essence.starts_with("audio/")
        || essence.starts_with("video/")
        || matches!(
            essence.as_str(),
            "application/zip"
                | "application/gzip"
                | "application/x-gzip"
                | "application/zstd"
                | "application/x-7z-compressed"
                | "application/x-rar-compressed"
                | "application/x-bzip2"
                | "application/x-xz"
                | "font/woff"
                | "font/woff2"
        )
}

/// The body being compressed.
enum Source {
    /// A buffered body, fed to the encoder a piece at a time.
    Buffered(Bytes),
    /// A streamed body, each piece flushed through.
    Streamed(ChunkStream),
}

/// An encoder writing into a `Vec` the stream drains.
enum Codec {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Codec {
    fn new(encoding: Encoding, level: u32) -> io::Result<Codec> {
        Ok(match encoding {
            Encoding::Gzip => Codec::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(level),
            )),
            Encoding::Brotli => Codec::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                PIECE,
                level,
                BROTLI_WINDOW,
            ))),
            Encoding::Zstd => {
                Codec::Zstd(zstd::stream::write::Encoder::new(Vec::new(), level as i32)?)
            }
        })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Codec::Gzip(w) => w,
            Codec::Brotli(w) => &mut **w,
            Codec::Zstd(w) => w,
        }
    }

    /// The output so far, taken out.
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(match self {
            Codec::Gzip(w) => w.get_mut(),
            Codec::Brotli(w) => w.get_mut(),
            Codec::Zstd(w) => w.get_mut(),
        })
    }

    /// Ends the stream: the rest of the output.
    fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            Codec::Gzip(w) => w.finish(),
            Codec::Brotli(w) => Ok(w.into_inner()),
            Codec::Zstd(w) => w.finish(),
        }
    }

    fn all_at_once(mut self, body: &[u8]) -> io::Result<Vec<u8>> {
        self.writer().write_all(body)?;
        self.finish()
    }
}

/// A compressed body produced as it is sent.
struct Compressing {
    source: Source,
    /// `None` once finished.
    codec: Option<Codec>,
}

impl Compressing {
    /// Feeds `piece` to the encoder and takes its output (flushed when `flush`).
    fn feed(&mut self, piece: &[u8], flush: bool) -> io::Result<Vec<u8>> {
        let Some(codec) = self.codec.as_mut() else {
            return Ok(Vec::new());
        };
        codec.writer().write_all(piece)?;
        if flush {
            codec.writer().flush()?;
        }
        Ok(codec.take())
    }
}

impl Stream for Compressing {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = self.get_mut();
        loop {
            if this.codec.is_none() {
                return Poll::Ready(None);
            }
            let fed = match &mut this.source {
                Source::Buffered(rest) if !rest.is_empty() => {
                    let piece = rest.split_to(rest.len().min(PIECE));
                    this.feed(&piece, false)
                }
                Source::Streamed(stream) => match stream.as_mut().poll_next(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(piece)) => this.feed(&piece, true),
                    Poll::Ready(None) => finish(&mut this.codec),
                },
                Source::Buffered(_) => finish(&mut this.codec),
            };
            match fed {
                Ok(out) if out.is_empty() => continue,
                Ok(out) => return Poll::Ready(Some(out.into())),
                Err(error) => {
                    // The framing is sent: ending early is all that is left to do.
                    tracing::warn!("response compression failed: {error}");
                    this.codec = None;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

fn finish(codec: &mut Option<Codec>) -> io::Result<Vec<u8>> {
    codec.take().map_or(Ok(Vec::new()), Codec::finish)
}

struct Compressed {
    inner: Rc<dyn Handler>,
    settings: Rc<Compression>,
}

impl Handler for Compressed {
    fn call(&self, request: Request) -> Reply {
        let encoding = self.settings.negotiate(request.header("accept-encoding"));
        let settings = self.settings.clone();
        self.inner
            .call(request)
            .map(move |response| settings.compress(response, encoding))
    }
}

impl Layer for Compression {
    fn layer(&self, inner: Rc<dyn Handler>) -> Rc<dyn Handler> {
        Rc::new(Compressed {
            inner,
            settings: Rc::new(self.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values_parse_strictly() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("0"), Some(0));
        for bad in ["1.5", "2", "0.1234", "-1", "x", "0.a"] {
            assert_eq!(parse_q(bad), None, "{bad}");
        }
    }
}
