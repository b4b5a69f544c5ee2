//! ASGI's per-request `receive` and `send`, in Rust where they finish at once: the whole
//! request body in one event, `http.response.start`, and a body sent in one event. Made
//! per request in Python, the two closures and the seven cells they shared, and a
//! coroutine per call, cost about as much as a hello-world app's own work. What must
//! wait (a streamed request body, a streamed response, `http.disconnect` before the
//! response is done) and `http.response.pathsend` go to the worker's Python functions,
//! which read and set the exchange's state.

use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyInt, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use crate::{asgi_scope, method_text, PyRequest};

/// One request's ASGI conversation: `receive` and `send` for the app, and what the
/// worker learns of it afterwards.
#[pyclass(module = "haywire._haywire")]
pub struct Exchange {
    /// The request.
    #[pyo3(get)]
    request: Py<PyRequest>,
    /// `receive_slow(exchange)`: a coroutine for what `receive` cannot answer at once.
    receive_slow: Py<PyAny>,
    /// `send_slow(exchange, message)`: a coroutine for what `send` cannot do at once.
    send_slow: Py<PyAny>,
    /// The request body was delivered whole (or its end, or the disconnect, was told).
    #[pyo3(get, set)]
    body_done: bool,
    /// `http.response.start`'s status.
    #[pyo3(get)]
    status: Option<u16>,
    /// `http.response.start`'s headers.
    #[pyo3(get)]
    headers: Option<Py<PyAny>>,
    /// The body is sent in more than one event.
    #[pyo3(get, set)]
    streaming: bool,
    /// The streamed body ended.
    #[pyo3(get, set)]
    complete: bool,
    /// A future set when the response is complete (or the app has returned): made
    /// only when `receive` waits for `http.disconnect`.
    #[pyo3(get, set)]
    done: Option<Py<PyAny>>,
    /// The task last told `http.disconnect` after the response.
    #[pyo3(get, set)]
    told: Option<Py<PyAny>>,
}

/// `Request.asgi_start`'s work: the HTTP scope (`base` plus the request's keys) and the
/// request's [`Exchange`].
pub fn start<'py>(
    request: &Bound<'py, PyRequest>,
    base: &Bound<'py, PyDict>,
    receive_slow: &Bound<'py, PyAny>,
    send_slow: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, Exchange>)> {
    let py = request.py();
    let this = request.get();
    let scope = asgi_scope(py, &this.job, &this.site, base)?;
    scope.set_item(intern!(py, "method"), method_text(py, &this.job.method))?;
    let exchange = Exchange {
        request: request.clone().unbind(),
        receive_slow: receive_slow.clone().unbind(),
        send_slow: send_slow.clone().unbind(),
        body_done: false,
        status: None,
        headers: None,
        streaming: false,
        complete: false,
        done: None,
        told: None,
    };
    Ok((scope, Bound::new(py, exchange)?))
}

#[pymethods]
impl Exchange {
    // The exchange can sit in a cycle (a task waiting on `done` holds the coroutine
    // that holds the exchange): the collector must see through it.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.request)?;
        visit.call(&self.receive_slow)?;
        visit.call(&self.send_slow)?;
        for held in [&self.headers, &self.done, &self.told]
            .into_iter()
            .flatten()
        {
            visit.call(held)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.headers = None;
        self.done = None;
        self.told = None;
    }

    /// ASGI's `receive()`: the whole body as one `http.request` event at once, when it
    /// came with the request; otherwise `receive_slow`'s coroutine.
    fn receive<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        let request = this.request.clone_ref(py);
        let request = request.get();
        if this.body_done || request.job.stream.is_some() {
            let slow = this.receive_slow.clone_ref(py);
            drop(this);
            return slow.bind(py).call1((slf,));
        }
        this.body_done = true;
        let event = PyDict::new(py);
        event.set_item(intern!(py, "type"), intern!(py, "http.request"))?;
        event.set_item(intern!(py, "body"), PyBytes::new(py, &request.job.body))?;
        event.set_item(intern!(py, "more_body"), false)?;
        Ready::awaitable(py, Some(event.into_any().unbind()))
    }

    /// ASGI's `send(message)`: `http.response.start` is kept, a body in one event is
    /// sent with a Content-Length, at once; anything else is `send_slow`'s coroutine.
    fn send<'py>(
        slf: &Bound<'py, Self>,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        let request = this.request.clone_ref(py);
        let request = request.get();
        let kind = message.get_item(intern!(py, "type"))?;
        if this.complete || (request.responded() && !this.streaming) {
            return Err(PyRuntimeError::new_err("response already complete"));
        }
        if kind.eq(intern!(py, "http.response.start"))? {
            if this.status.is_some() {
                return Err(PyRuntimeError::new_err("http.response.start sent twice"));
            }
            let status = message.get_item(intern!(py, "status"))?;
            // An int (HTTPStatus among them) as it is; anything else as `int()` makes it.
            let status = match status.cast::<PyInt>() {
                Ok(status) => status.clone().into_any(),
                Err(_) => py.get_type::<PyInt>().call1((status,))?,
            };
            this.status = Some(status.extract()?);
            this.headers = Some(match field(message, intern!(py, "headers"))? {
                Some(headers) => headers.unbind(),
                None => PyTuple::empty(py).into_any().unbind(),
            });
            return Ready::awaitable(py, None);
        }
        if kind.eq(intern!(py, "http.response.body"))? {
            let Some(status) = this.status else {
                return Err(PyRuntimeError::new_err(
                    "http.response.body before http.response.start",
                ));
            };
            let more = match field(message, intern!(py, "more_body"))? {
                Some(more) => more.is_truthy()?,
                None => false,
            };
            if !this.streaming && !more {
                let body = match field(message, intern!(py, "body"))? {
                    Some(body) => body,
                    None => PyBytes::new(py, b"").into_any(),
                };
                let headers = this.headers.as_ref().map(|h| h.bind(py).clone());
                let headers = headers.unwrap_or_else(|| PyTuple::empty(py).into_any());
                request.respond(status, &headers, &body)?;
                if let Some(done) = &this.done {
                    done.bind(py)
                        .call_method1(intern!(py, "set_result"), (py.None(),))?;
                }
                return Ready::awaitable(py, None);
            }
        }
        let slow = this.send_slow.clone_ref(py);
        drop(this);
        slow.bind(py).call1((slf, message))
    }
}

/// `message[key]` for a dict, `message.get(key)` for another mapping; `None` when
/// absent.
fn field<'py>(
    message: &Bound<'py, PyAny>,
    key: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Ok(dict) = message.cast::<PyDict>() {
        return dict.get_item(key);
    }
    let value = message.call_method1(intern!(message.py(), "get"), (key,))?;
    Ok((!value.is_none()).then_some(value))
}

/// An awaitable that is already done: awaiting it gives its value without suspending
/// (a coroutine per call costs a frame and its object).
#[pyclass(module = "haywire._haywire")]
pub struct Ready {
    value: Option<Py<PyAny>>,
}

impl Ready {
    /// An awaitable giving `value` (`None`: Python's None) without suspending.
    fn awaitable(py: Python<'_>, value: Option<Py<PyAny>>) -> PyResult<Bound<'_, PyAny>> {
        if value.is_none() {
            // It holds nothing to take, so one object serves every `send`: two
            // allocations fewer per request.
            static NONE: PyOnceLock<Py<Ready>> = PyOnceLock::new();
            let none = NONE.get_or_try_init(py, || Py::new(py, Ready { value: None }))?;
            return Ok(none.bind(py).clone().into_any());
        }
        Ok(Bound::new(py, Ready { value })?.into_any())
    }
}

#[pymethods]
impl Ready {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Ends at once: StopIteration carries the value (once).
    fn __next__(&mut self) -> PyResult<Option<Py<PyAny>>> {
        match self.value.take() {
            Some(value) => Err(PyStopIteration::new_err((value,))),
            None => Ok(None),
        }
    }
}
