//! The request headers of a WSGI environ: `CONTENT_TYPE` and the `HTTP_*` keys.

use haywire::Headers;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::common_headers::environ_key;
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
            env.set_item(environ_key(py, name.as_bytes()), latin1_text(py, value))?;
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
        env.set_item(environ_key(py, name.as_bytes()), text)?;
    }
    Ok(())
}
