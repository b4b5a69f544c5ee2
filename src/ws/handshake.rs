//! The opening handshake (RFC 6455 §4.2), sans-I/O: a request checked, the 101 head
//! encoded. Nothing here touches a socket.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::{BufMut, BytesMut};
use sha1::{Digest, Sha1};

use super::deflate;
use crate::http::response::Stamp;
use crate::http::{put_header, HeaderText, Method, Request, Response, StatusCode, Version};

/// Appended to the client's key before hashing (§1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A valid upgrade request, ready to be answered with 101.
#[derive(Debug)]
pub(crate) struct Handshake {
    /// `Sec-WebSocket-Accept`.
    accept: String,
    /// The subprotocols the client offered, in its order of preference.
    pub(crate) protocols: Vec<String>,
    /// The client offered permessage-deflate in a form the server accepts; the 101
    /// then accepts it (cleared where `websocket.compression` is off).
    pub(crate) deflate: bool,
}

/// Whether a comma-separated header has `token` (case-insensitively).
pub(crate) fn has_token(request: &Request, name: &str, token: &str) -> bool {
    request
        .headers()
        .get_all(name)
        .flat_map(|value| value.split(|&b| b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// A refusal with a short reason and `headers`; boxed, as a `Response` would make
/// every `Result` here large.
fn refuse(
    status: StatusCode,
    why: &str,
    headers: &[(&'static str, &'static str)],
) -> Box<Response> {
    let mut response = Response::new(status).with_body("text/plain", format!("{why}\n"));
    for (name, value) in headers {
        response = response.with_header(*name, *value);
    }
    Box::new(response)
}

/// `Sec-WebSocket-Accept` for a client's key.
pub(crate) fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    BASE64.encode(sha.finalize())
}

impl Handshake {
    /// Checks `request` as a WebSocket upgrade. Not an upgrade at all (no `Upgrade:
    /// websocket`) or another protocol version: 426 naming what is required; another
    /// method: 405; a malformed upgrade (no `Connection: upgrade`, a key that is not 16
    /// bytes of base64, HTTP/1.0): 400.
    pub(crate) fn check(request: &Request) -> Result<Handshake, Box<Response>> {
        if request.method() != Method::Get {
            let allow = [("Allow", "GET")];
            return Err(refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "WebSocket needs GET",
                &allow,
            ));
        }
        if !has_token(request, "upgrade", "websocket") {
            let required = [("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")];
            let why = "WebSocket upgrade required";
            return Err(refuse(StatusCode::UPGRADE_REQUIRED, why, &required));
        }
        if request.version() != Version::Http11 || !has_token(request, "connection", "upgrade") {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "bad WebSocket upgrade",
                &[],
            ));
        }
        if request.header("sec-websocket-version").map(str::trim) != Some("13") {
            let required = [("Sec-WebSocket-Version", "13")];
            let why = "WebSocket version 13 required";
            return Err(refuse(StatusCode::UPGRADE_REQUIRED, why, &required));
        }
        let key = request
            .header("sec-websocket-key")
            .map(str::trim)
            .filter(|key| BASE64.decode(key).is_ok_and(|k| k.len() == 16))
            .ok_or_else(|| refuse(StatusCode::BAD_REQUEST, "bad Sec-WebSocket-Key", &[]))?;
        let protocols = request
            .headers()
            .get_all("sec-websocket-protocol")
            .flat_map(|value| value.split(|&b| b == b','))
            .filter_map(|p| std::str::from_utf8(p.trim_ascii()).ok())
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Handshake {
            accept: accept_key(key.as_bytes()),
            protocols,
            deflate: deflate::offered(request.headers().get_all("sec-websocket-extensions")),
        })
    }

    /// Appends the 101 response, with the chosen subprotocol (one the client offered),
    /// `headers` (the caller has removed those the handshake owns) and what the server
    /// writes into every response (`Server` unless `headers` has one, `Date`,
    /// `server.headers`).
    pub(crate) fn encode_accept(
        &self,
        protocol: Option<&str>,
        headers: &[(HeaderText, HeaderText)],
        stamp: Stamp<'_>,
        out: &mut BytesMut,
    ) {
        out.put_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
        let own_server = headers
            .iter()
            .any(|(name, _)| name.as_str().eq_ignore_ascii_case("server"));
        stamp
            .headers
            .put_server_and_date(own_server, stamp.date, out);
        out.put_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
        out.put_slice(self.accept.as_bytes());
        out.put_slice(b"\r\n");
        if let Some(protocol) = protocol {
            out.put_slice(b"Sec-WebSocket-Protocol: ");
            out.put_slice(protocol.as_bytes());
            out.put_slice(b"\r\n");
        }
        if self.deflate {
            out.put_slice(b"Sec-WebSocket-Extensions: ");
            out.put_slice(deflate::ACCEPTED.as_bytes());
            out.put_slice(b"\r\n");
        }
        for (name, value) in headers {
            put_header(out, name, value);
        }
        stamp.headers.put_extra(headers, out);
        out.put_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::ServerHeaders;
    use crate::http::{Decoder, Event, Limits};

    fn request(wire: &str) -> Request {
        let mut buf = BytesMut::from(wire.as_bytes());
        match Decoder::new(Limits::default(), 0).decode(&mut buf) {
            Ok(Event::Request(request)) => request,
            other => panic!("{wire:?} did not decode: {other:?}"),
        }
    }

    fn upgrade(extra: &str) -> String {
        format!(
            "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    fn status(wire: &str) -> u16 {
        Handshake::check(&request(wire))
            .unwrap_err()
            .status()
            .as_u16()
    }

    #[test]
    fn the_rfc_sample_key_gets_the_rfc_accept() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let wire = upgrade("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: chat, superchat\r\n");
        let handshake = Handshake::check(&request(&wire)).unwrap();
        assert_eq!(handshake.protocols, ["chat", "superchat"]);
        let mut out = BytesMut::new();
        let cookie = [
            ("Set-Cookie".into(), "a=1".into()),
            ("X-Bad".into(), "1\r\nX-Smuggled: 1".into()),
        ];
        let headers = ServerHeaders::default();
        handshake.encode_accept(Some("chat"), &cookie, stamp(&headers), &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.ends_with("Sec-WebSocket-Protocol: chat\r\nSet-Cookie: a=1\r\n\r\n"));
    }

    fn stamp(headers: &ServerHeaders) -> Stamp<'_> {
        Stamp {
            date: DATE,
            headers,
        }
    }

    const DATE: &[u8; crate::http::date::DATE_LEN] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    /// The 101 carries what every response does: `Server` (the app's own instead, if
    /// it gave one), `Date` and `server.headers` the app's headers do not replace.
    #[test]
    fn the_101_has_the_servers_headers_unless_the_app_gave_its_own() {
        let wire = upgrade("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
        let handshake = Handshake::check(&request(&wire)).unwrap();
        let headers = ServerHeaders::new(
            "edge",
            [
                ("X-Frame-Options".into(), "DENY".into()),
                ("Set-Cookie".into(), "server=1".into()),
            ],
        );
        let mut out = BytesMut::new();
        handshake.encode_accept(None, &[], stamp(&headers), &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\nServer: edge\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"), "{text}");
        assert!(
            text.ends_with("X-Frame-Options: DENY\r\nSet-Cookie: server=1\r\n\r\n"),
            "{text}"
        );

        let own = [
            ("Server".into(), "app".into()),
            ("set-cookie".into(), "app=1".into()),
        ];
        let mut out = BytesMut::new();
        handshake.encode_accept(None, &own, stamp(&headers), &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(!text.contains("edge"), "{text}");
        assert!(!text.contains("server=1"), "{text}");
        assert!(
            text.ends_with("Server: app\r\nset-cookie: app=1\r\nX-Frame-Options: DENY\r\n\r\n"),
            "{text}"
        );
    }

    #[test]
    fn bad_upgrades_get_400_405_or_426() {
        let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        assert_eq!(
            status("GET /ws HTTP/1.1\r\nHost: t\r\n\r\n"),
            426,
            "a plain GET"
        );
        assert_eq!(status(&upgrade("")), 400, "no key");
        assert_eq!(
            status(&upgrade("Sec-WebSocket-Key: c2hvcnQ=\r\n")),
            400,
            "a key of 5 bytes"
        );
        assert_eq!(
            status(&upgrade("Sec-WebSocket-Key: !!!\r\n")),
            400,
            "a key not base64"
        );
        let v8 = upgrade(key).replace("Version: 13", "Version: 8");
        let response = Handshake::check(&request(&v8)).unwrap_err();
        assert_eq!(response.status().as_u16(), 426);
        assert_eq!(response.header("sec-websocket-version"), Some("13"));
        assert_eq!(
            status(&upgrade(key).replace("keep-alive, Upgrade", "keep-alive")),
            400
        );
        assert_eq!(status(&upgrade(key).replace("HTTP/1.1", "HTTP/1.0")), 400);
        assert_eq!(status(&upgrade(key).replace("GET", "POST")), 405);
    }
}
