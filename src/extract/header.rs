//! `Header<H>`: one request header, typed.

use super::{FromRequestParts, States};
use crate::http::{HeaderText, Request};
use crate::respond::Error;

/// A header a handler can ask for by type: its name and how to read its value.
///
/// ```rust
/// use haywire::extract::NamedHeader;
/// /// `X-Tenant: 42`
/// struct Tenant(u32);
/// impl NamedHeader for Tenant {
///     const NAME: &'static str = "x-tenant";
///     fn decode(value: &haywire::HeaderText) -> Option<Self> {
///         value.as_str().trim().parse().ok().map(Tenant)
///     }
/// }
/// ```
pub trait NamedHeader: Sized {
    /// The header's name (matched case-insensitively).
    const NAME: &'static str;
    /// Reads the value; `None` when it is malformed.
    fn decode(value: &HeaderText) -> Option<Self>;
}

/// The request's header `H::NAME`, decoded. A missing header answers 400 `missing
/// header NAME`, a malformed one 400 `invalid header NAME`; take `Option<Header<H>>`
/// when the header is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<H>(pub H);

impl<H: NamedHeader> FromRequestParts for Header<H> {
    fn from_request_parts(request: &Request, _: &States) -> Result<Self, Error> {
        let value = request
            .header_bytes(H::NAME)
            .ok_or_else(|| Error::bad_request(format!("missing header {}", H::NAME)))?;
        H::decode(&value)
            .map(Header)
            .ok_or_else(|| Error::bad_request(format!("invalid header {}", H::NAME)))
    }
}

/// `Authorization`, as sent (e.g. `Bearer abc`); [`Authorization::bearer`] takes the
/// token out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization(pub HeaderText);

impl Authorization {
    /// The token of a `Bearer` credential.
    pub fn bearer(&self) -> Option<&str> {
        let value = self.0.as_str();
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|token| !token.is_empty())
    }
}

impl NamedHeader for Authorization {
    const NAME: &'static str = "authorization";
    fn decode(value: &HeaderText) -> Option<Self> {
        Some(Authorization(value.clone()))
    }
}

/// `User-Agent`, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgent(pub HeaderText);

impl NamedHeader for UserAgent {
    const NAME: &'static str = "user-agent";
    fn decode(value: &HeaderText) -> Option<Self> {
        Some(UserAgent(value.clone()))
    }
}
