//! `Form<T>`: an `application/x-www-form-urlencoded` body decoded into `T`.

use serde::de::DeserializeOwned;

use super::json::has_type;
use super::{FromRequestParts, States};
use crate::http::{Request, StatusCode};
use crate::respond::Error;

/// The body decoded as an HTML form into `T`. Another `Content-Type` answers 415; a
/// form `T` cannot hold answers 422 with the reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Form<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts for Form<T> {
    fn from_request_parts(request: &Request, _: &States) -> Result<Self, Error> {
        if !has_type(request, "application/x-www-form-urlencoded", None) {
            return Err(Error::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected Content-Type: application/x-www-form-urlencoded",
            ));
        }
        serde_urlencoded::from_bytes(request.body())
            .map(Form)
            .map_err(|e| {
                Error::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("invalid form: {e}"),
                )
            })
    }
}
