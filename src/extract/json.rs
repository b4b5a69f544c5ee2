//! `Json<T>` as an argument: the request body parsed as JSON.

use serde::de::DeserializeOwned;
use serde_json::error::Category;

use super::{FromRequestParts, States};
use crate::http::{Request, StatusCode};
use crate::respond::{Error, Json};

/// Whether `request` says its body is `media` (or a `+json`-style suffix of it), by the
/// `Content-Type` before any parameters.
pub(super) fn has_type(request: &Request, media: &str, suffix: Option<&str>) -> bool {
    let Some(value) = request.header("content-type") else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case(media)
        || suffix.is_some_and(|suffix| {
            essence.len() > suffix.len()
                && essence[essence.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        })
}

/// The body parsed as JSON into `T`. Without `Content-Type: application/json` (or a
/// `+json` type) it answers 415; malformed JSON answers 400; JSON of the wrong shape
/// for `T` answers 422, each with serde's reason.
impl<T: DeserializeOwned> FromRequestParts for Json<T> {
    fn from_request_parts(request: &Request, _: &States) -> Result<Self, Error> {
        if !has_type(request, "application/json", Some("+json")) {
            return Err(Error::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected Content-Type: application/json",
            ));
        }
        serde_json::from_slice(request.body())
            .map(Json)
            .map_err(|e| {
                let status = match e.classify() {
                    Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
                    Category::Syntax | Category::Eof | Category::Io => StatusCode::BAD_REQUEST,
                };
                Error::new(status, format!("invalid JSON body: {e}"))
            })
    }
}
