//! WSGI's per-request objects in Rust: the environ with its `wsgi.input`, and the
//! `start_response` callable with the `write` it returns. Made in Python per request,
//! the pair of closures and the four cells they shared, the status parse and the input's
//! choice cost about as much as a hello-world app's own work.

use bytes::Bytes;
use pyo3::exceptions::{PyAssertionError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::{build_response, header_pairs, joined, PyRequest};

/// PEP 3333's `start_response` for one request: remembers the status's code and the
/// app's header list (read when the response goes out, as PEP 3333 allows); the
/// `write` it returns streams the body.
#[pyclass(module = "haywire._haywire")]
pub struct StartResponse {
    request: Py<PyRequest>,
    code: Option<u16>,
    headers: Option<Py<PyAny>>,
    /// Body bytes went out (an `exc_info` then re-raises).
    sent: bool,
    /// The response was started as a stream (by `write`).
    streaming: bool,
}

/// `Request.wsgi_start`'s work: the environ (`base`, whose `wsgi.input` serves a
/// request without a body, plus the request's CGI keys; `wsgi.input` from
/// `make_input(request)` when there is a body) and its [`StartResponse`].
pub fn start<'py>(
    request: &Bound<'py, PyRequest>,
    base: &Bound<'py, PyDict>,
    make_input: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, StartResponse>)> {
    let py = request.py();
    let this = request.get();
    let environ = this.wsgi_environ(py, base)?;
    if this.job.stream.is_some() || !this.job.body.is_empty() {
        environ.set_item(intern!(py, "wsgi.input"), make_input.call1((request,))?)?;
    }
    let start = StartResponse {
        request: request.clone().unbind(),
        code: None,
        headers: None,
        sent: false,
        streaming: false,
    };
    Ok((environ, Bound::new(py, start)?))
}

#[pymethods]
impl StartResponse {
    /// `start_response(status, response_headers, exc_info=None)`: a second call needs
    /// `exc_info`, and re-raises it once body bytes went out. Returns `write`.
    #[pyo3(signature = (status, response_headers, exc_info=None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        response_headers: Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        let info = exc_info.filter(|info| info.is_truthy().unwrap_or(true));
        match info {
            Some(info) if this.sent => {
                let error = info
                    .get_item(1)?
                    .call_method1(intern!(py, "with_traceback"), (info.get_item(2)?,))?;
                return Err(PyErr::from_value(error));
            }
            None if this.code.is_some() => {
                return Err(PyAssertionError::new_err(
                    "start_response() called twice without exc_info",
                ))
            }
            _ => {}
        }
        this.code = Some(status_code(status)?);
        this.headers = Some(response_headers.unbind());
        drop(this);
        slf.getattr(intern!(py, "write"))
    }

    /// PEP 3333's `write(data)`: streams `data`, starting the streamed response first
    /// (chunked, or with the app's Content-Length); waits, GIL released, while the
    /// client is 512 KiB behind.
    fn write(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        let Some(code) = this.code else {
            return Err(PyAssertionError::new_err("write() before start_response()"));
        };
        if !data.is_truthy()? {
            return Ok(());
        }
        this.sent = true;
        let begin = !std::mem::replace(&mut this.streaming, true);
        let request = this.request.clone_ref(py);
        let headers = this.headers.as_ref().map(|h| h.clone_ref(py));
        // Not borrowed while the piece waits for room with the GIL released: another
        // thread of the app may call this object meanwhile.
        drop(this);
        let request = request.get();
        if begin {
            let headers =
                header_pairs(headers.as_ref().map_or(&PyList::empty(py), |h| h.bind(py)))?;
            let length = declared_length(&headers);
            request.begin_stream(build_response(code, headers, Bytes::new())?, length)?;
        }
        request.send_piece(py, data, true)?;
        Ok(())
    }

    /// Sends `result`, the app's return value, as one response with a Content-Length
    /// when it is the whole body: a list or tuple (of bytes-likes, joined), the
    /// response started and not streamed. The app's Content-Length is honoured: a
    /// longer body is cut to it, a shorter one is sent with its real length and a
    /// warning on stderr. False, sending nothing, otherwise.
    fn respond_whole(&self, py: Python<'_>, result: &Bound<'_, PyAny>) -> PyResult<bool> {
        let (Some(code), Some(headers)) = (self.code, &self.headers) else {
            return Ok(false);
        };
        if self.streaming
            || !(result.is_exact_instance_of::<PyList>()
                || result.is_exact_instance_of::<PyTuple>())
        {
            return Ok(false);
        }
        let headers = header_pairs(headers.bind(py))?;
        let mut body = joined(result)?;
        match declared_length(&headers) {
            Some(declared) if body.len() as u64 > declared => body.truncate(declared as usize),
            Some(declared) if (body.len() as u64) < declared => eprintln!(
                "haywire: WSGI app sent {} of {declared} bytes (Content-Length)",
                body.len()
            ),
            _ => {}
        }
        self.request
            .get()
            .send_once(build_response(code, headers, body)?)?;
        Ok(true)
    }

    /// The status's code once `start_response` was called.
    #[getter]
    fn code(&self) -> Option<u16> {
        self.code
    }

    /// The app's header list once `start_response` was called.
    #[getter]
    fn headers(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.headers.as_ref().map(|h| h.clone_ref(py))
    }

    /// The app's valid Content-Length, if it set one.
    #[getter]
    fn content_length(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        match &self.headers {
            Some(headers) => Ok(declared_length(&header_pairs(headers.bind(py))?)),
            None => Ok(None),
        }
    }

    /// Whether the response was started as a stream (by `write`).
    #[getter]
    fn streaming(&self) -> bool {
        self.streaming
    }
}

/// The code of a PEP 3333 status line (`"200 OK"`): three digits and a space.
fn status_code(status: &Bound<'_, PyAny>) -> PyResult<u16> {
    if let Ok(text) = status.cast::<PyString>() {
        if let Ok(&[a, b, c, b' ', ..]) = text.to_str().map(str::as_bytes) {
            if [a, b, c].iter().all(u8::is_ascii_digit) {
                let digit = |d: u8| u16::from(d - b'0');
                return Ok(digit(a) * 100 + digit(b) * 10 + digit(c));
            }
        }
    }
    Err(PyValueError::new_err(format!(
        "invalid WSGI status {}",
        status.repr()?
    )))
}

/// The first Content-Length among `headers` when it is a valid length (surrounding
/// blanks allowed, as `int()` does).
fn declared_length(headers: &[(Bytes, Bytes)]) -> Option<u64> {
    let (_, value) = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(b"content-length"))?;
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_length_takes_the_first_valid_content_length() {
        let pair = |n: &'static str, v: &'static str| (Bytes::from(n), Bytes::from(v));
        assert_eq!(declared_length(&[pair("Content-Length", " 12 ")]), Some(12));
        assert_eq!(declared_length(&[pair("content-length", "-1")]), None);
        assert_eq!(
            declared_length(&[pair("X", "1"), pair("CONTENT-LENGTH", "x")]),
            None
        );
        assert_eq!(declared_length(&[]), None);
    }
}
