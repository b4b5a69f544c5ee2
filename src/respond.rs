//! What a handler may return: anything that converts into a [`Response`].
//!
//! Strings and bytes become `200` bodies, a `StatusCode` pairs with any of them,
//! header arrays add headers, [`Json`] serialises straight into the body buffer, and a
//! `Result` answers with whichever side it holds, so handlers use `?` with [`Error`].

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::http::{HeaderText, Response, StatusCode};

/// Converts a handler's return value into a response.
pub trait IntoResponse {
    /// The response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    #[inline]
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for Cow<'static, str> {
    fn into_response(self) -> Response {
        match self {
            Cow::Borrowed(text) => text.into_response(),
            Cow::Owned(text) => text.into_response(),
        }
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        Response::bytes(self)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        Response::bytes(self)
    }
}

impl IntoResponse for &'static [u8] {
    fn into_response(self) -> Response {
        Response::bytes(self)
    }
}

/// An empty `200`.
impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::new(StatusCode::OK)
    }
}

/// An empty response with this status.
impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

/// `body`'s response with `status` instead of its own.
impl<T: IntoResponse> IntoResponse for (StatusCode, T) {
    fn into_response(self) -> Response {
        self.1.into_response().with_status(self.0)
    }
}

/// `body`'s response with these headers added.
impl<K, V, T, const N: usize> IntoResponse for ([(K, V); N], T)
where
    K: Into<HeaderText>,
    V: Into<HeaderText>,
    T: IntoResponse,
{
    fn into_response(self) -> Response {
        with_headers(self.1.into_response(), self.0)
    }
}

/// `body`'s response with `status` and these headers.
impl<K, V, T, const N: usize> IntoResponse for (StatusCode, [(K, V); N], T)
where
    K: Into<HeaderText>,
    V: Into<HeaderText>,
    T: IntoResponse,
{
    fn into_response(self) -> Response {
        with_headers(self.2.into_response().with_status(self.0), self.1)
    }
}

fn with_headers<K, V, const N: usize>(response: Response, headers: [(K, V); N]) -> Response
where
    K: Into<HeaderText>,
    V: Into<HeaderText>,
{
    headers
        .into_iter()
        .fold(response, |response, (name, value)| {
            response.with_header(name, value)
        })
}

/// Whichever side the result holds.
impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(value) => value.into_response(),
            Err(error) => error.into_response(),
        }
    }
}

/// A JSON body: as a handler argument, the request body parsed (see
/// [`crate::extract`]); as a return value, `value` serialised straight into the
/// response's body buffer with `Content-Type: application/json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

/// Bytes reserved for a JSON body before serialising: most API answers fit.
const JSON_START: usize = 128;

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = BytesMut::with_capacity(JSON_START).writer();
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => Response::json(body.into_inner().freeze()),
            Err(error) => {
                Error::internal(format!("cannot serialise the response: {error}")).into_response()
            }
        }
    }
}

/// A handler's error: a status and a short reason sent as a `text/plain` body.
/// Extractors reject with it; handlers return `Result<T, Error>` and use `?` on I/O and
/// JSON errors (both answer 500 unless mapped to something better first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    status: StatusCode,
    message: Cow<'static, str>,
}

impl Error {
    /// An error answering `status` with `message`.
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Error {
        Error {
            status,
            message: message.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(StatusCode::NOT_FOUND, message)
    }

    /// 500 Internal Server Error.
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reason sent in the body.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Error {
        Error::internal(error.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Error {
        Error::internal(error.to_string())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut body = String::with_capacity(self.message.len() + 1);
        body.push_str(&self.message);
        body.push('\n');
        Response::new(self.status).with_body("text/plain; charset=utf-8", body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_set_status_type_headers_and_body() {
        let r = "hi".into_response();
        assert_eq!((r.status(), &r.body()[..]), (StatusCode::OK, &b"hi"[..]));
        assert_eq!(r.content_type(), Some("text/plain; charset=utf-8"));
        let r = (StatusCode::CREATED, vec![1u8, 2]).into_response();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.content_type(), Some("application/octet-stream"));
        let r = (StatusCode::ACCEPTED, [("X-A", "1"), ("X-B", "2")], "x").into_response();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!((r.header("x-a"), r.header("x-b")), (Some("1"), Some("2")));
        let r = ([("Cache-Control", "no-store")], String::from("y")).into_response();
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(
            StatusCode::NO_CONTENT.into_response().status().as_u16(),
            204
        );
    }

    #[test]
    fn json_serialises_into_the_body_and_results_pick_their_side() {
        let r = Json(serde_json::json!({"a": [1, 2]})).into_response();
        assert_eq!(&r.body()[..], br#"{"a":[1,2]}"#);
        assert_eq!(r.content_type(), Some("application/json"));
        let ok: Result<&str, Error> = Ok("fine");
        assert_eq!(&ok.into_response().body()[..], b"fine");
        let err: Result<&str, Error> = Err(Error::not_found("no such item"));
        let r = err.into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(&r.body()[..], b"no such item\n");
    }

    #[test]
    fn a_value_json_cannot_hold_answers_500() {
        let mut map = std::collections::HashMap::new();
        map.insert((1, 2), "tuple keys are not JSON");
        let r = Json(map).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
