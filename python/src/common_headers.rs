//! The header names browsers and clients send on nearly every request, and the Python
//! objects that stand for them: a WSGI environ key, an ASGI name. Each is made once per
//! interpreter and shared by every request, so neither allocated, filled nor hashed
//! per header.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString};

/// The common names, lower-case, grouped by first letter (see `candidates`).
const NAMES: [&str; 23] = [
    "accept",
    "accept-encoding",
    "accept-language",
    "authorization",
    "cache-control",
    "connection",
    "content-type",
    "cookie",
    "host",
    "if-modified-since",
    "if-none-match",
    "origin",
    "priority",
    "referer",
    "sec-fetch-dest",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-user",
    "upgrade-insecure-requests",
    "user-agent",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-requested-with",
];

/// Where header `name` (any case) stands in `NAMES`, if it is one of them. Only the
/// names of its first letter are compared: a browser's fifteen headers, each compared
/// with all of them, cost more than making the objects of the rest.
fn index(name: &[u8]) -> Option<usize> {
    candidates(*name.first()?).find(|&i| NAMES[i].as_bytes().eq_ignore_ascii_case(name))
}

/// The range of `NAMES` that starts with letter `first` (any case).
fn candidates(first: u8) -> std::ops::Range<usize> {
    match first.to_ascii_lowercase() {
        b'a' => 0..4,
        b'c' => 4..8,
        b'h' => 8..9,
        b'i' => 9..11,
        b'o' => 11..12,
        b'p' => 12..13,
        b'r' => 13..14,
        b's' => 14..18,
        b'u' => 18..20,
        b'x' => 20..23,
        _ => 0..0,
    }
}

/// The environ key of header `name`: `CONTENT_TYPE`, else `HTTP_` and the name
/// upper-cased with `-` as `_`.
pub fn environ_key<'py>(py: Python<'py>, name: &[u8]) -> Bound<'py, PyString> {
    static KEYS: PyOnceLock<Vec<Py<PyString>>> = PyOnceLock::new();
    if let Some(i) = index(name) {
        let keys = KEYS.get_or_init(py, || {
            NAMES
                .iter()
                .map(|name| PyString::intern(py, &key_text(name.as_bytes())).unbind())
                .collect()
        });
        return keys[i].bind(py).clone();
    }
    PyString::new(py, &key_text(name))
}

fn key_text(name: &[u8]) -> String {
    if name.eq_ignore_ascii_case(b"content-type") {
        return "CONTENT_TYPE".to_owned();
    }
    let mut key = String::with_capacity(name.len() + 5);
    key.push_str("HTTP_");
    key.extend(name.iter().map(|&b| match b {
        b'-' => '_',
        b => char::from(b.to_ascii_uppercase()),
    }));
    key
}

/// The ASGI name of header `name`: its bytes lower-cased.
pub fn asgi_name<'py>(py: Python<'py>, name: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    static BYTES: PyOnceLock<Vec<Py<PyBytes>>> = PyOnceLock::new();
    if let Some(i) = index(name) {
        let names = BYTES.get_or_init(py, || {
            NAMES
                .iter()
                .map(|name| PyBytes::new(py, name.as_bytes()).unbind())
                .collect()
        });
        return Ok(names[i].bind(py).clone());
    }
    // Lower-cased in the bytes object itself (a lower-cased copy first was an
    // allocation per header).
    PyBytes::new_with(py, name.len(), |bytes| {
        bytes.copy_from_slice(name);
        bytes.make_ascii_lowercase();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_are_lower_case_and_grouped_by_first_letter() {
        for (i, name) in NAMES.iter().enumerate() {
            assert_eq!(*name, name.to_ascii_lowercase());
            assert!(candidates(name.as_bytes()[0]).contains(&i), "{name}");
            assert_eq!(index(name.to_ascii_uppercase().as_bytes()), Some(i));
        }
        assert_eq!(index(b"x-other"), None);
        assert_eq!(index(b""), None);
    }

    #[test]
    fn common_names_get_the_objects_any_name_gets() {
        Python::initialize();
        Python::attach(|py| {
            let upper = NAMES.map(str::to_ascii_uppercase);
            let others = ["X-Other", "Accept-Charset", "a", "9-z"];
            let names = NAMES
                .iter()
                .copied()
                .chain(upper.iter().map(String::as_str));
            for name in names.chain(others) {
                let key = match name.eq_ignore_ascii_case("content-type") {
                    true => "CONTENT_TYPE".to_owned(),
                    false => format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_")),
                };
                let bytes = name.as_bytes();
                assert_eq!(environ_key(py, bytes).to_str().unwrap(), key);
                let lower = name.to_ascii_lowercase();
                assert_eq!(asgi_name(py, bytes).unwrap().as_bytes(), lower.as_bytes());
            }
            // A common name's objects are made once and shared; another's per call.
            assert!(environ_key(py, b"Host").is(environ_key(py, b"HOST")));
            assert!(asgi_name(py, b"Host")
                .unwrap()
                .is(asgi_name(py, b"host").unwrap()));
            let other = asgi_name(py, b"X-Other").unwrap();
            assert!(!other.is(asgi_name(py, b"X-Other").unwrap()));
        });
    }
}
