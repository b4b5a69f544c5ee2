//! RFC 9110's tokens: header names, transfer codings, methods.

/// Whether `text` is a token: not empty, and every byte a `tchar`.
pub(crate) fn is_token(text: &[u8]) -> bool {
    !text.is_empty() && text.iter().all(|&b| is_token_byte(b))
}

/// Whether `b` may appear in a token: RFC 9110's `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
