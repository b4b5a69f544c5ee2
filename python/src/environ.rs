//! The request headers of a WSGI environ: `CONTENT_TYPE` and the `HTTP_*` keys.

use haywire::Headers;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::header_join::repeated;
use crate::latin1_text;

/// Adds `headers` to `env` as PEP 3333 has them: Content-Type as `CONTENT_TYPE` (the
/// last, if repeated), every other header as `HTTP_` and its name upper-cased with `-`
/// as `_`, a repeated name's values joined with `,` in the order sent. Left out:
/// Content-Length (the caller sets `CONTENT_LENGTH`, the de-chunked body's length),
/// Transfer-Encoding (the body is de-chunked) and names holding `_`. Returns whether a
/// Content-Length came.
pub fn add_headers(py: Python<'_>, env: &Bound<'_, PyDict>, headers: &Headers) -> PyResult<bool> {
    let mut has_length = false;
    let before = env.len();
    let mut set = 0;
    for (name, value) in headers.iter() {
        if name.eq_ignore_ascii_case("content-length") {
            has_length = true;
        }
        if has_key(name) {
            env.set_item(environ_key(py, name), latin1_text(py, value))?;
            set += 1;
        }
    }
    // A repeated name replaced its earlier value, leaving fewer keys than were set: only
    // then are the repeats found and joined. Looking for an earlier one at each header
    // cost a comparison per pair of names, and the joined text grew one copy per repeat.
    if env.len() < before + set {
        join_repeats(py, env, headers)?;
    }
    Ok(has_length)
}

/// Whether header `name` has an environ key. A name with `_` would map to the same key
/// as its `-` twin and could spoof it: as gunicorn and nginx do, such headers are
/// dropped.
fn has_key(name: &str) -> bool {
    !(name.eq_ignore_ascii_case("content-length")
        || name.eq_ignore_ascii_case("transfer-encoding")
        || name.contains('_'))
}

/// Sets the key of every name sent more than once (but Content-Type, whose last value
/// stands) to its values joined with `,`.
fn join_repeats(py: Python<'_>, env: &Bound<'_, PyDict>, headers: &Headers) -> PyResult<()> {
    let joined = headers
        .iter()
        .filter(|(name, _)| has_key(name) && !name.eq_ignore_ascii_case("content-type"));
    for (name, text) in repeated(joined, ",") {
        env.set_item(environ_key(py, &name), text)?;
    }
    Ok(())
}

/// The environ key of header `name` (`CONTENT_TYPE`, else `HTTP_` and the name upper-cased
/// with `-` as `_`); the keys of the headers browsers and clients send on nearly
/// every request are interned, so neither made nor hashed per request. They are looked
/// for among those of the name's first letter only: a browser's fifteen headers, each
/// compared with all twenty-three names, cost more than making the keys of the rest.
fn environ_key<'py>(py: Python<'py>, name: &str) -> Bound<'py, PyString> {
    macro_rules! common {
        ($($header:literal => $key:literal),* $(,)?) => {{
            $(if name.eq_ignore_ascii_case($header) {
                return intern!(py, $key).clone();
            })*
        }};
    }
    match name.as_bytes().first().map(u8::to_ascii_lowercase) {
        Some(b'a') => common! {
            "accept" => "HTTP_ACCEPT",
            "accept-encoding" => "HTTP_ACCEPT_ENCODING",
            "accept-language" => "HTTP_ACCEPT_LANGUAGE",
            "authorization" => "HTTP_AUTHORIZATION",
        },
        Some(b'c') => common! {
            "connection" => "HTTP_CONNECTION",
            "cookie" => "HTTP_COOKIE",
            "content-type" => "CONTENT_TYPE",
            "cache-control" => "HTTP_CACHE_CONTROL",
        },
        Some(b'h') => common! { "host" => "HTTP_HOST" },
        Some(b'i') => common! {
            "if-none-match" => "HTTP_IF_NONE_MATCH",
            "if-modified-since" => "HTTP_IF_MODIFIED_SINCE",
        },
        Some(b'o') => common! { "origin" => "HTTP_ORIGIN" },
        Some(b'p') => common! { "priority" => "HTTP_PRIORITY" },
        Some(b'r') => common! { "referer" => "HTTP_REFERER" },
        Some(b's') => common! {
            "sec-fetch-dest" => "HTTP_SEC_FETCH_DEST",
            "sec-fetch-mode" => "HTTP_SEC_FETCH_MODE",
            "sec-fetch-site" => "HTTP_SEC_FETCH_SITE",
            "sec-fetch-user" => "HTTP_SEC_FETCH_USER",
        },
        Some(b'u') => common! {
            "user-agent" => "HTTP_USER_AGENT",
            "upgrade-insecure-requests" => "HTTP_UPGRADE_INSECURE_REQUESTS",
        },
        Some(b'x') => common! {
            "x-forwarded-for" => "HTTP_X_FORWARDED_FOR",
            "x-forwarded-proto" => "HTTP_X_FORWARDED_PROTO",
            "x-requested-with" => "HTTP_X_REQUESTED_WITH",
        },
        _ => {}
    }
    let mut key = String::with_capacity(name.len() + 5);
    key.push_str("HTTP_");
    key.extend(name.chars().map(|c| match c {
        '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    PyString::new(py, &key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_names_get_the_keys_any_name_gets() {
        Python::initialize();
        Python::attach(|py| {
            let names = [
                "Accept",
                "ACCEPT-ENCODING",
                "accept-language",
                "Authorization",
                "Connection",
                "Cookie",
                "Cache-Control",
                "Host",
                "If-None-Match",
                "If-Modified-Since",
                "Origin",
                "Priority",
                "Referer",
                "Sec-Fetch-Dest",
                "Sec-Fetch-Mode",
                "Sec-Fetch-Site",
                "Sec-Fetch-User",
                "User-Agent",
                "Upgrade-Insecure-Requests",
                "X-Forwarded-For",
                "X-Forwarded-Proto",
                "X-Requested-With",
                "X-Other",
                "Accept-Charset",
                "a",
                "9-z",
            ];
            for name in names {
                let key = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
                assert_eq!(environ_key(py, name).to_str().unwrap(), key);
            }
            assert_eq!(
                environ_key(py, "content-TYPE").to_str().unwrap(),
                "CONTENT_TYPE"
            );
        });
    }
}
