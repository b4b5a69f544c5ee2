//! Why a request could not be decoded, and the status each reason answers with.

use std::fmt;

use crate::http::response::{Response, StatusCode};

/// A request the server refuses to process. After any of these the connection is
/// closed: the framing of whatever follows cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Malformed syntax or framing; the text says what (400).
    BadRequest(&'static str),
    /// The request head exceeds the head size limit or has too many headers (431).
    HeadTooLarge,
    /// The request target exceeds the URI length limit (414).
    UriTooLong,
    /// The body exceeds `max_request_size` (413).
    BodyTooLarge,
    /// An HTTP version other than 1.0 or 1.1 (505).
    VersionNotSupported,
    /// A transfer coding other than `chunked` (501).
    UnsupportedTransferCoding,
}

impl ParseError {
    /// The status that answers this error.
    pub fn status(self) -> StatusCode {
        match self {
            ParseError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ParseError::HeadTooLarge => StatusCode::HEADER_FIELDS_TOO_LARGE,
            ParseError::UriTooLong => StatusCode::URI_TOO_LONG,
            ParseError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ParseError::VersionNotSupported => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            ParseError::UnsupportedTransferCoding => StatusCode::NOT_IMPLEMENTED,
        }
    }

    /// A short explanation for the response body.
    pub fn reason(self) -> &'static str {
        match self {
            ParseError::BadRequest(why) => why,
            ParseError::HeadTooLarge => "request head too large",
            ParseError::UriTooLong => "request target too long",
            ParseError::BodyTooLarge => "request body too large",
            ParseError::VersionNotSupported => "HTTP version not supported",
            ParseError::UnsupportedTransferCoding => "transfer coding not supported",
        }
    }
}

impl ParseError {
    /// The answer to this error: its status, and its reason as a plain-text body.
    pub(crate) fn response(self) -> Response {
        Response::new(self.status()).with_body("text/plain", format!("{}\n", self.reason()))
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason(), self.status().as_u16())
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_carries_the_status_and_the_reason() {
        let response = ParseError::UriTooLong.response();
        assert_eq!(response.status(), StatusCode::URI_TOO_LONG);
        assert_eq!(&response.body()[..], b"request target too long\n");
        let bad = ParseError::BadRequest("bad chunk size").response();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert_eq!(&bad.body()[..], b"bad chunk size\n");
    }
}
