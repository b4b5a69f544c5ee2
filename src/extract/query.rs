//! `Query<T>`: the query string decoded into `T` (`serde_urlencoded`).

use serde::de::DeserializeOwned;

use super::{FromRequestParts, States};
use crate::http::Request;
use crate::respond::Error;

/// The query string (`?a=1&b=x`) decoded into `T`; a missing query decodes as an
/// empty one. A query `T` cannot hold answers 400 with the reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts for Query<T> {
    fn from_request_parts(request: &Request, _: &States) -> Result<Self, Error> {
        serde_urlencoded::from_str(request.query().unwrap_or(""))
            .map(Query)
            .map_err(|e| Error::bad_request(format!("invalid query: {e}")))
    }
}
