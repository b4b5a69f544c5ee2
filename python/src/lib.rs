//! `haywire._haywire`: the Rust half of the Python package.
//!
//! One worker process runs one Haywire shard (HTTP parsing, keep-alive, pipelining and
//! writes stay in Rust) and one Python thread, the process's main thread, which stays
//! attached to the interpreter for its life and releases the GIL only while it waits
//! for requests. See `bridge.rs` for how requests and responses cross between them.

mod asgi;
mod bridge;
mod common_headers;
mod environ;
mod forwarded;
mod header_join;
mod listen;
mod overrides;
mod stall;
mod stats;
mod tls;
mod websocket;
mod wsgi;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use haywire::config::RouteConfig;
use haywire::{Config, Method, Request, Router, Server, ShardCtx, StatusCode};
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::bridge::{
    Answer, BodyEnd, Job, Mailbox, Out, PyRoute, PyStreamRoute, ResponsePipe, ShardBridge, Taken,
    FALLBACK,
};
use crate::forwarded::Trusted;
use crate::stats::StatsDir;

create_exception!(
    _haywire,
    ClientDisconnected,
    pyo3::exceptions::PyConnectionError,
    "The client is gone: a streamed response cannot be sent."
);

create_exception!(
    _haywire,
    ConfigError,
    PyValueError,
    "A configuration problem; the message names the key."
);

/// What the supervisor needs from a validated config.
#[pyclass(module = "haywire._haywire", frozen, get_all)]
struct ConfigSummary {
    /// `server.address`, normalized.
    address: String,
    /// `server.port` (0: pick one).
    port: u16,
    /// `server.shards`: worker processes, 0 = one per allowed CPU.
    shards: usize,
    /// `server.placement == "pinned"`: pin worker k to its CPU.
    pinned: bool,
    /// `server.cpus`: with `pinned`, worker k on `cpus[k]`; empty = the allowed set.
    cpus: Vec<usize>,
    /// Paths of the stock routes (answered in Rust).
    routes: Vec<String>,
    /// `server.shutdown_grace` in seconds: how long a stopping worker drains.
    shutdown_grace: f64,
    /// Whether the listener speaks HTTPS.
    tls: bool,
    /// `server.unix`: the Unix socket path to serve on instead of TCP; empty: TCP.
    unix: String,
    /// `server.unix_mode`: the socket file's permission bits (0: the umask's).
    unix_mode: u32,
    /// `server.backlog`: the listen backlog.
    backlog: u32,
}

/// The cipher suites `tls.ciphers` can name, strongest first within each version, TLS
/// 1.3's first: `(IANA's name, OpenSSL's name, is TLS 1.3)` (for `--ssl-ciphers`).
#[pyfunction]
fn cipher_suites() -> Vec<(&'static str, &'static str, bool)> {
    haywire::cipher_suites()
        .into_iter()
        .map(|suite| (suite.iana, suite.openssl, suite.tls13))
        .collect()
}

/// Validates a configuration (`path`, or the defaults when `None`, with `overrides`:
/// dotted config keys to values) and summarizes it for the supervisor. Raises
/// `ConfigError` naming the key.
#[pyfunction]
#[pyo3(signature = (path=None, overrides=None))]
fn check_config(
    path: Option<&str>,
    overrides: Option<&Bound<'_, PyDict>>,
) -> PyResult<ConfigSummary> {
    let config = overrides::load_config(path, overrides)?;
    let ip: IpAddr = config
        .server
        .address
        .parse()
        .map_err(|_| ConfigError::new_err("key `server.address`: not an IP address"))?;
    Ok(ConfigSummary {
        address: ip.to_string(),
        port: config.server.port,
        shards: config.server.shards,
        pinned: config.server.placement == haywire::config::PlacementKind::Pinned,
        cpus: config.server.cpus.clone(),
        routes: config.routes.iter().map(|r| r.path().to_owned()).collect(),
        shutdown_grace: config.server.shutdown_grace,
        tls: config.tls.enabled(),
        unix: config.server.unix.clone(),
        unix_mode: config.server.unix_mode,
        backlog: config.server.backlog,
    })
}

/// One request handed to Python. Answer it exactly once with [`PyRequest::respond`];
/// one dropped unanswered is answered 500.
#[pyclass(module = "haywire._haywire", name = "Request", frozen)]
struct PyRequest {
    job: Job,
    outbox: Arc<Mailbox<(u64, Out)>>,
    site: Arc<Site>,
    responded: AtomicBool,
    /// A streamed response's window, once started.
    stream: Mutex<Option<Arc<ResponsePipe>>>,
    /// The streamed body was ended.
    ended: AtomicBool,
    /// A streamed request body read whole (`body`, `text`, `json`).
    whole: Mutex<Option<Bytes>>,
}

/// How this worker is reached: what every request's client and paths are judged by.
struct Site {
    /// Proxies whose `Forwarded`/`X-Forwarded-*` headers are believed.
    trusted: Trusted,
    /// The prefix the app is mounted at (`--root-path`), without a trailing `/`.
    root_path: String,
    /// The server's certificate (PEM) under TLS, for the ASGI TLS extension.
    server_cert: Option<String>,
    /// With `stall_timeout`: how far the app is behind (see `stall`).
    progress: Option<Arc<stall::Progress>>,
}

impl Site {
    /// The app begins a request (for `--stall-timeout`).
    fn begin(&self) {
        if let Some(progress) = &self.progress {
            progress.begun();
        }
    }
}

fn build_response(status: u16, headers: Vec<(Bytes, Bytes)>, body: Bytes) -> PyResult<Answer> {
    if (100..200).contains(&status) {
        // An informational status is not a final response: sent as one, the client
        // would wait for the real answer on a connection that never brings it.
        return Err(PyValueError::new_err(format!(
            "status {status} is informational (1xx); an application must send a final status (200-999)"
        )));
    }
    let status = StatusCode::from_u16(status)
        .ok_or_else(|| PyValueError::new_err(format!("invalid status {status}")))?;
    let mut answer = Answer {
        status,
        content_type: None,
        headers: Vec::with_capacity(headers.len()),
        body,
        close: false,
    };
    // Framing and these are Haywire's own (an app's `Server` replaces the server's).
    const OWN: [&[u8]; 6] = [
        b"content-length",
        b"transfer-encoding",
        b"date",
        b"keep-alive",
        b"upgrade",
        b"trailer",
    ];
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(b"content-type") {
            answer.content_type = Some(value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            answer.close |= value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        } else if !OWN.iter().any(|own| name.eq_ignore_ascii_case(own)) {
            answer.headers.push((name, value));
        }
    }
    Ok(answer)
}

/// The client of `job` as `site` judges it: the peer, or what a trusted proxy says.
fn client_info(job: &Job, site: &Site) -> forwarded::Client {
    forwarded::client(
        job.peer,
        job.tls.is_some(),
        job.headers.iter_bytes(),
        &site.trusted,
    )
}

/// An ASGI scope for `job` (HTTP, or the handshake of a WebSocket): a copy of `base`
/// (type, asgi, server, ...) plus http_version, scheme and client (see
/// `client_info`), root_path, path (percent-decoded UTF-8, under the root path as
/// uvicorn gives it), raw_path, query_string and headers (lower-case names, bytes).
fn asgi_scope<'py>(
    py: Python<'py>,
    job: &Job,
    site: &Site,
    base: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    let scope = base.copy()?;
    let version = match job.version {
        "HTTP/1.0" => intern!(py, "1.0"),
        _ => intern!(py, "1.1"),
    };
    scope.set_item(intern!(py, "http_version"), version)?;
    let client = client_info(job, site);
    if let Some(addr) = client.addr {
        scope.set_item(intern!(py, "client"), addr)?;
    }
    scope.set_item(intern!(py, "scheme"), scheme_text(py, client.scheme))?;
    let root = &site.root_path;
    if !root.is_empty() {
        scope.set_item(intern!(py, "root_path"), root)?;
    } else {
        scope.set_item(intern!(py, "root_path"), intern!(py, ""))?;
    }
    let decoded = percent_decode(job.path.as_bytes());
    let decoded = String::from_utf8_lossy(&decoded);
    let under_root = decoded
        .strip_prefix(root.as_str())
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if root.is_empty() || under_root {
        scope.set_item(intern!(py, "path"), decoded)?;
    } else {
        scope.set_item(intern!(py, "path"), format!("{root}{decoded}"))?;
    }
    scope.set_item(
        intern!(py, "raw_path"),
        PyBytes::new(py, job.path.as_bytes()),
    )?;
    scope.set_item(
        intern!(py, "query_string"),
        PyBytes::new(py, job.query.as_bytes()),
    )?;
    let headers = PyList::empty(py);
    for (name, value) in job.headers.iter_bytes() {
        let name = common_headers::asgi_name(py, name)?;
        headers.append((name, PyBytes::new(py, value)))?;
    }
    scope.set_item(intern!(py, "headers"), headers)?;
    if let Some(tls) = &job.tls {
        tls::add_tls_extension(py, &scope, tls, site.server_cert.as_deref())?;
    }
    Ok(scope)
}

impl PyRequest {
    /// A PEP 3333 environ: a copy of `base` (the server's constant keys) plus this
    /// request's CGI keys: REQUEST_METHOD, SCRIPT_NAME (the root path) and PATH_INFO
    /// (percent-decoded, Latin-1, the root path removed), QUERY_STRING,
    /// SERVER_PROTOCOL, REMOTE_ADDR/REMOTE_PORT and `wsgi.url_scheme` (see
    /// `client`), CONTENT_TYPE and CONTENT_LENGTH (the de-chunked body's length)
    /// without `HTTP_`, every other header as `HTTP_*` (repeats joined with `,`; names
    /// holding `_` dropped). `wsgi.input` is left to the caller.
    fn wsgi_environ<'py>(
        &self,
        py: Python<'py>,
        base: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let env = base.copy()?;
        env.set_item(
            intern!(py, "REQUEST_METHOD"),
            method_text(py, &self.job.method),
        )?;
        let path = percent_decode(self.job.path.as_bytes());
        let root = self.site.root_path.as_bytes();
        let path = match path.strip_prefix(root) {
            Some(rest) if !root.is_empty() && (rest.is_empty() || rest[0] == b'/') => rest,
            _ => &path[..],
        };
        env.set_item(intern!(py, "SCRIPT_NAME"), &self.site.root_path)?;
        env.set_item(intern!(py, "PATH_INFO"), latin1_text(py, path))?;
        let client = self.client_info();
        if let Some((host, port)) = client.addr {
            env.set_item(intern!(py, "REMOTE_ADDR"), host)?;
            env.set_item(
                intern!(py, "REMOTE_PORT"),
                PyString::new(py, itoa::Buffer::new().format(port)),
            )?;
        }
        env.set_item(
            intern!(py, "wsgi.url_scheme"),
            scheme_text(py, client.scheme),
        )?;
        if let Some(tls) = &self.job.tls {
            tls::add_wsgi_variables(py, &env, tls)?;
        }
        let query = match self.job.query.as_str() {
            "" => intern!(py, "").clone(),
            query => PyString::new(py, query),
        };
        env.set_item(intern!(py, "QUERY_STRING"), query)?;
        let protocol = match self.job.version {
            "HTTP/1.0" => intern!(py, "HTTP/1.0"),
            _ => intern!(py, "HTTP/1.1"),
        };
        env.set_item(intern!(py, "SERVER_PROTOCOL"), protocol)?;
        let has_length = environ::add_headers(py, &env, &self.job.headers)?;
        let length = match &self.job.stream {
            // A chunked body has no length: `wsgi.input_terminated` says read to its end.
            Some(pipe) => pipe.length,
            None => (has_length || !self.job.body.is_empty()).then_some(self.job.body.len() as u64),
        };
        if let Some(length) = length {
            env.set_item(intern!(py, "CONTENT_LENGTH"), length.to_string())?;
        }
        Ok(env)
    }

    fn client_info(&self) -> forwarded::Client {
        client_info(&self.job, &self.site)
    }

    fn send(&self, answer: Answer) -> bool {
        if self.responded.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.outbox.post((self.job.token, Out::Whole(answer)));
        true
    }

    /// [`PyRequest::send`], an error when a response was already sent.
    fn send_once(&self, answer: Answer) -> PyResult<()> {
        if self.send(answer) {
            Ok(())
        } else {
            Err(PyRuntimeError::new_err("response already sent"))
        }
    }

    /// Sends `answer` (its body empty) as the head of a streamed response whose body
    /// follows through `send_piece` (`length`: the app's Content-Length; else chunked).
    fn begin_stream(&self, answer: Answer, length: Option<u64>) -> PyResult<()> {
        if self.responded.swap(true, Ordering::AcqRel) {
            return Err(PyRuntimeError::new_err("response already sent"));
        }
        let pipe = Arc::new(ResponsePipe::default());
        *self.stream.lock().unwrap_or_else(|p| p.into_inner()) = Some(pipe.clone());
        self.outbox.post((
            self.job.token,
            Out::Start {
                answer,
                len: length,
                pipe,
            },
        ));
        Ok(())
    }

    fn response_pipe(&self) -> PyResult<Arc<ResponsePipe>> {
        if self.ended.load(Ordering::Acquire) {
            return Err(PyRuntimeError::new_err("the streamed response has ended"));
        }
        self.stream
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| PyRuntimeError::new_err("no streamed response started"))
    }

    /// The whole request body: a streamed one is read to its end first (waiting
    /// with the GIL released) and kept.
    fn whole_body(&self, py: Python<'_>) -> PyResult<Bytes> {
        let Some(pipe) = &self.job.stream else {
            return Ok(self.job.body.clone());
        };
        let mut whole = self.whole.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(body) = &*whole {
            return Ok(body.clone());
        }
        let mut all = bytes::BytesMut::new();
        loop {
            match self.take_body(py, pipe, usize::MAX, true)? {
                Some(piece) if piece.is_empty() => break,
                Some(piece) => all.extend_from_slice(&piece),
                None => unreachable!("a blocking read returns something"),
            }
        }
        let body = all.freeze();
        *whole = Some(body.clone());
        Ok(body)
    }

    /// Up to `max` bytes of the streamed body: empty at its end, `None` when nothing
    /// is there yet and not `block`. Raises `ClientDisconnected` when it cannot end.
    fn take_body(
        &self,
        py: Python<'_>,
        pipe: &bridge::BodyPipe,
        max: usize,
        block: bool,
    ) -> PyResult<Option<Bytes>> {
        loop {
            match pipe.take(max) {
                Taken::Piece(piece, tell) => {
                    if tell {
                        self.outbox.post((self.job.token, Out::BodyTaken));
                    }
                    return Ok(Some(piece));
                }
                Taken::End(BodyEnd::Complete) => return Ok(Some(Bytes::new())),
                Taken::End(BodyEnd::Gone) => {
                    return Err(ClientDisconnected::new_err(
                        "the client left before the request body ended",
                    ))
                }
                Taken::End(BodyEnd::TooLarge) => {
                    return Err(ClientDisconnected::new_err(
                        "the request body is over --max-body-size (the client was answered 413)",
                    ))
                }
                Taken::Empty if block => py.detach(|| pipe.wait()),
                Taken::Empty => return Ok(None),
            }
        }
    }

    /// Answers 500 unless a response was sent.
    fn fail(&self) {
        self.send(Answer::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal server error\n",
        ));
    }
}

impl Drop for PyRequest {
    fn drop(&mut self) {
        self.fail();
        // The rest of a streamed request body is unwanted: the shard stops reading it.
        if self.job.stream.as_ref().is_some_and(|pipe| pipe.leave()) {
            self.outbox.post((self.job.token, Out::BodyTaken));
        }
        // A stream the app did not end is cut short, never left open.
        let pipe = self.stream.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(pipe) = pipe {
            if !self.ended.swap(true, Ordering::AcqRel) && pipe.finish(true) {
                self.outbox.post((self.job.token, Out::More));
            }
        }
    }
}

/// A body from Python: `bytes`, or any buffer (bytearray, memoryview) through `bytes()`.
fn body_bytes(body: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(bytes) = body.cast::<PyBytes>() {
        return Ok(share_bytes(bytes));
    }
    let builtins = body.py().import("builtins")?;
    let bytes = builtins.getattr("bytes")?.call1((body,))?;
    Ok(share_bytes(bytes.cast::<PyBytes>()?))
}

/// `bytes` at least this large are sent from the Python object itself, not copied: the
/// core writes pieces this large from where they are (its `DIRECT_PIECE`), so such a
/// piece is then never copied in user space. Smaller ones are copied: cheaper than a
/// reference and its deferred release, and the core copies them into its buffer anyway.
const SHARE_AT: usize = 16 * 1024;

/// The contents of `bytes` for the shard: shared with the Python object when large.
fn share_bytes(bytes: &Bound<'_, PyBytes>) -> Bytes {
    let data = bytes.as_bytes();
    if data.len() < SHARE_AT {
        return Bytes::copy_from_slice(data);
    }
    Bytes::from_owner(SharedBytes {
        data: data.as_ptr(),
        len: data.len(),
        _object: bytes.clone().unbind(),
    })
}

/// A Python `bytes` object's buffer, kept alive by a reference to the object. Dropped
/// on the shard's thread, which is never attached to the interpreter, the reference
/// goes to pyo3's pool of deferred decrefs, which the Python thread empties at its next
/// call into the extension (every `send_piece` is one).
struct SharedBytes {
    data: *const u8,
    len: usize,
    _object: Py<PyBytes>,
}

// SAFETY: `data` and `len` describe the buffer of the `bytes` object that `_object`
// keeps alive. A `bytes` object's buffer is part of the object: it neither moves nor
// changes while the object lives (CPython resizes or writes one in place only while a
// single reference to it exists, and this is a second), so reading it from any thread,
// without the GIL, is sound. `Py<PyBytes>` is itself `Send`.
unsafe impl Send for SharedBytes {}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: see `impl Send`: `len` immutable bytes at `data` live as long as
        // `_object`, so as long as `self`.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

/// The pieces of a body (bytes or other buffers) as one: a single piece as it is.
fn joined(chunks: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    // `first` holds the body while it is one piece (no second copy); a second
    // non-empty piece moves it into `all`.
    let mut first: Option<Bytes> = None;
    let mut all = bytes::BytesMut::new();
    for chunk in chunks.try_iter()? {
        let chunk = chunk?;
        if let Some(first) = first.take() {
            all.extend_from_slice(&first);
        }
        match chunk.cast::<PyBytes>() {
            Ok(piece) if all.is_empty() => first = Some(share_bytes(piece)),
            Ok(piece) => all.extend_from_slice(piece.as_bytes()),
            Err(_) if all.is_empty() => first = Some(body_bytes(&chunk)?),
            Err(_) => all.extend_from_slice(&body_bytes(&chunk)?),
        }
    }
    Ok(first.unwrap_or_else(|| all.freeze()))
}

fn header_pairs(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(Bytes, Bytes)>> {
    let mut pairs = Vec::new();
    for item in headers.try_iter()? {
        let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        pairs.push((header_bytes(&name)?, header_bytes(&value)?));
    }
    Ok(pairs)
}

#[pymethods]
impl PyRequest {
    /// The method token, e.g. `GET`.
    #[getter]
    fn method(&self) -> &str {
        &self.job.method
    }

    /// The path, still percent-encoded, without the query.
    #[getter]
    fn path(&self) -> &str {
        &self.job.path
    }

    /// The query string without `?` (empty when none).
    #[getter]
    fn query(&self) -> &str {
        &self.job.query
    }

    /// `HTTP/1.1` or `HTTP/1.0`.
    #[getter]
    fn http_version(&self) -> &str {
        self.job.version
    }

    /// Index of the native route that matched (`-1` for the fallback).
    #[getter]
    fn route(&self) -> i64 {
        if self.job.route == FALLBACK {
            -1
        } else {
            self.job.route as i64
        }
    }

    /// The de-chunked body (a streamed one is read whole first).
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.whole_body(py)?))
    }

    /// Whether the body arrives as it is read (`read_body`) rather than whole.
    #[getter]
    fn streamed(&self) -> bool {
        self.job.stream.is_some()
    }

    /// The next bytes of a streamed body, at most `max` (`-1`: a whole piece as it
    /// arrived); `b""` at its end. Waits with the GIL released, or with `block` false
    /// returns `None` when nothing has arrived (then `watch_body`). Raises
    /// `ClientDisconnected` when the body cannot end (the client left, or it went
    /// past `--max-body-size`). A body that is not streamed (see `streamed`) reads
    /// `b""`: it is `body`.
    #[pyo3(signature = (max=-1, block=true))]
    fn read_body<'py>(
        &self,
        py: Python<'py>,
        max: isize,
        block: bool,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        let piece = match &self.job.stream {
            Some(pipe) => self.take_body(py, pipe, max.max(1), block)?,
            None => Some(Bytes::new()),
        };
        Ok(piece.map(|piece| PyBytes::new(py, &piece)))
    }

    /// For an event loop, which must not block: True when `read_body` has nothing
    /// yet, and then `token` will come from the worker's `take_ready` once a piece,
    /// the end or the client's leaving arrives; False when `read_body` may be tried at
    /// once. No thread waits (an executor thread per upload would starve the loop's
    /// other executor users and cost a thread hand-off each way).
    fn watch_body(&self) -> bool {
        self.job
            .stream
            .as_ref()
            .is_some_and(|pipe| pipe.watch(self.job.token))
    }

    /// Whether the whole body has been read (`read_body` has nothing more).
    #[getter]
    fn body_complete(&self) -> bool {
        self.job.stream.as_ref().is_none_or(|pipe| pipe.complete())
    }

    /// Headers in order as `(name, value)`: names as sent, values as bytes.
    #[getter]
    fn raw_headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items: Vec<Bound<'py, PyTuple>> = self
            .job
            .headers
            .iter()
            .map(|(n, v)| {
                PyTuple::new(
                    py,
                    [
                        n.into_pyobject(py)?.into_any(),
                        PyBytes::new(py, v).into_any(),
                    ],
                )
            })
            .collect::<PyResult<_>>()?;
        PyList::new(py, items)
    }

    /// Headers as a dict of lower-case name to value (Latin-1 text; repeated headers
    /// joined with `, `).
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (name, value) in self.job.headers.iter() {
            dict.set_item(name.to_ascii_lowercase(), latin1_text(py, value))?;
        }
        // A repeat replaced the value before it: only then are they joined.
        if dict.len() < self.job.headers.len() {
            for (name, text) in header_join::repeated(self.job.headers.iter(), ", ") {
                dict.set_item(name, text)?;
            }
        }
        Ok(dict)
    }

    /// The first value of header `name` (case-insensitive), or `None`.
    fn header(&self, name: &str) -> Option<String> {
        self.job
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| latin1(v).into_owned())
    }

    /// The body decoded as UTF-8 (invalid bytes replaced).
    #[getter]
    fn text(&self, py: Python<'_>) -> PyResult<String> {
        Ok(String::from_utf8_lossy(&self.whole_body(py)?).into_owned())
    }

    /// The body parsed as JSON.
    fn json<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let body = self.whole_body(py)?;
        py.import("json")?
            .call_method1("loads", (PyBytes::new(py, &body),))
    }

    /// The client as `(host, port, scheme)`: the peer, or what a trusted proxy says;
    /// `None` on a Unix socket (`--uds`) unless a trusted proxy named the client.
    #[getter]
    fn client(&self) -> Option<(String, u16, &'static str)> {
        let client = self.client_info();
        let scheme = client.scheme;
        client.addr.map(|(host, port)| (host, port, scheme))
    }

    /// PEP 3333's environ and `start_response` for this request (see
    /// `wsgi::start`): `base` is copied, its `wsgi.input` kept for a request without a
    /// body, else replaced by `make_input(request)`.
    fn wsgi_start<'py>(
        slf: &Bound<'py, Self>,
        base: &Bound<'py, PyDict>,
        make_input: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyDict>, Bound<'py, wsgi::StartResponse>)> {
        wsgi::start(slf, base, make_input)
    }

    /// An ASGI HTTP scope (`base` plus the request's keys) and the request's
    /// `Exchange`, whose `receive` and `send` call `receive_slow(exchange)` and
    /// `send_slow(exchange, message)` for what they cannot do at once (see `asgi`).
    fn asgi_start<'py>(
        slf: &Bound<'py, Self>,
        base: &Bound<'py, PyDict>,
        receive_slow: &Bound<'py, PyAny>,
        send_slow: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyDict>, Bound<'py, asgi::Exchange>)> {
        // The request's task runs now: it has begun (for `--stall-timeout`), where a
        // request taken with it waits for the loop's next round.
        slf.get().site.begin();
        asgi::start(slf, base, receive_slow, send_slow)
    }

    /// The app begins this request now (for `--stall-timeout`); `asgi_start` does
    /// this itself.
    fn begin(&self) {
        self.site.begin();
    }

    /// Route parameters (`:name` captures) as a dict.
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (name, value) in &self.job.params {
            dict.set_item(name, value)?;
        }
        Ok(dict)
    }

    /// Whether a response was sent.
    #[getter]
    fn responded(&self) -> bool {
        self.responded.load(Ordering::Acquire)
    }

    /// Sends the response: status (a 1xx raises `ValueError`), `(name, value)`
    /// headers (`bytes` sent unchanged, `str` as Latin-1), body. Content-Length,
    /// Transfer-Encoding, Date, Server, Keep-Alive, Upgrade and Trailer are Haywire's;
    /// `Connection: close` closes after the response.
    #[pyo3(signature = (status, headers, body))]
    fn respond(
        &self,
        status: u16,
        headers: &Bound<'_, PyAny>,
        body: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.send_once(build_response(
            status,
            header_pairs(headers)?,
            body_bytes(body)?,
        )?)
    }

    /// Sends the response with a file as its body: status and headers as for
    /// `respond`; `length` bytes of `file` (an open binary file object) from `offset`
    /// (`None`: to the end of the file), with a Content-Length. The server reads the
    /// file as it serves static files (`sendfile` on a plain connection): the app's thread is free
    /// at once. The server keeps its own descriptor; the caller may close `file`.
    /// Returns False, sending nothing, when `file` is not a regular file (then send
    /// its contents another way).
    #[pyo3(signature = (status, headers, file, offset=0, length=None))]
    fn send_file(
        &self,
        status: u16,
        headers: &Bound<'_, PyAny>,
        file: &Bound<'_, PyAny>,
        offset: u64,
        length: Option<u64>,
    ) -> PyResult<bool> {
        let fd: i32 = file.call_method0(intern!(file.py(), "fileno"))?.extract()?;
        if fd < 0 {
            return Ok(false);
        }
        // SAFETY: `fd` is `file`'s open descriptor and stays open during the borrow:
        // `file` is referenced here and the GIL is held throughout (no Python code runs
        // between `fileno()` and the duplication that could close it). Python hands
        // files over only as descriptor numbers, so there is no safe conversion.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let file = std::fs::File::from(borrowed.try_clone_to_owned().map_err(io_error)?);
        let size = match file.metadata() {
            Ok(meta) if meta.is_file() => meta.len(),
            _ => return Ok(false),
        };
        let len = size.saturating_sub(offset).min(length.unwrap_or(u64::MAX));
        let answer = build_response(status, header_pairs(headers)?, Bytes::new())?;
        if self.responded.swap(true, Ordering::AcqRel) {
            return Err(PyRuntimeError::new_err("response already sent"));
        }
        let out = Out::File {
            answer,
            file,
            start: offset,
            len,
        };
        self.outbox.post((self.job.token, out));
        Ok(true)
    }

    /// Starts a streamed response: status and headers as for `respond`; `length` is
    /// the app's Content-Length (the body must then have exactly that many bytes),
    /// else the body is chunked. Send the body with `send_piece`, then `end_stream`.
    #[pyo3(signature = (status, headers, length=None))]
    fn start_stream(
        &self,
        status: u16,
        headers: &Bound<'_, PyAny>,
        length: Option<u64>,
    ) -> PyResult<()> {
        self.begin_stream(
            build_response(status, header_pairs(headers)?, Bytes::new())?,
            length,
        )
    }

    /// Sends the next piece of a streamed body. While 512 KiB are already waiting for
    /// the client, waits with the GIL released (`block`), or returns False having sent
    /// nothing. Raises `ClientDisconnected` once the client is gone.
    #[pyo3(signature = (data, block=true))]
    fn send_piece(&self, py: Python<'_>, data: &Bound<'_, PyAny>, block: bool) -> PyResult<bool> {
        let pipe = self.response_pipe()?;
        let data = body_bytes(data)?;
        let room = match pipe.has_room() {
            Some(false) if block => py.detach(|| pipe.wait_room()),
            Some(room) => room,
            None => false,
        };
        if pipe.has_room().is_none() {
            return Err(ClientDisconnected::new_err("the client is gone"));
        }
        if !room {
            return Ok(false);
        }
        if !data.is_empty() && pipe.post(data) {
            self.outbox.post((self.job.token, Out::More));
        }
        Ok(true)
    }

    /// For an event loop, which must not block: True when the window is full, and
    /// then `token` will come from the worker's `take_ready` once there is room or the
    /// client is gone; False when `send_piece` may be tried at once. No thread waits
    /// (a thread blocked in `send_piece` for the loop would cost a hand-off each way).
    fn watch_room(&self) -> PyResult<bool> {
        Ok(self.response_pipe()?.watch(self.job.token))
    }

    /// This request's number on its worker, as `take_ready` gives it.
    #[getter]
    fn token(&self) -> u64 {
        self.job.token
    }

    /// Ends a streamed body; with `abort` (the app failed) the connection closes
    /// without completing it, so the client sees it cut short.
    #[pyo3(signature = (abort=false))]
    fn end_stream(&self, abort: bool) -> PyResult<()> {
        let pipe = self.response_pipe()?;
        if !self.ended.swap(true, Ordering::AcqRel) && pipe.finish(abort) {
            self.outbox.post((self.job.token, Out::More));
        }
        Ok(())
    }
}

/// A header name or value from Python as the bytes to send: `bytes` unchanged, `str`
/// as Latin-1 (PEP 3333's native strings; a character past U+00FF is an error).
fn header_bytes(value: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(Bytes::copy_from_slice(bytes.as_bytes()));
    }
    let text = value.extract::<std::borrow::Cow<'_, str>>()?;
    if text.is_ascii() {
        return Ok(Bytes::copy_from_slice(text.as_bytes()));
    }
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .map(Bytes::from)
        .ok_or_else(|| {
            PyValueError::new_err(format!("header text {text:?} is not Latin-1 (send bytes)"))
        })
}

/// A worker: one single-shard Haywire server whose unrouted paths (or native routes)
/// are answered by this process's Python thread.
#[pyclass(module = "haywire._haywire")]
struct Worker {
    config: Config,
    index: usize,
    stats_dir: Option<PathBuf>,
    max_in_flight: usize,
    routes: Vec<(String, String)>,
    fallback: bool,
    inbox: Arc<Mailbox<Job>>,
    inbox_door: UnixStream,
    /// The buffer `take` drains the inbox into (see [`Mailbox::drain_with`]).
    taken: Mutex<VecDeque<Job>>,
    outbox: Arc<Mailbox<(u64, Out)>>,
    outbox_door: Arc<Mutex<Option<UnixStream>>>,
    /// Tokens of requests an event loop may go on with (see `watch_body`, `watch_room`).
    ready: Arc<Mailbox<u64>>,
    ready_door: UnixStream,
    /// `take_ready`'s buffer, as `taken` is `take`'s.
    ready_taken: Mutex<VecDeque<u64>>,
    site: Arc<Site>,
    started: AtomicBool,
    /// With `websocket`: upgrades go to the app (ASGI).
    websocket: Option<websocket::Channels>,
    /// The stats directory in use once started.
    used_stats_dir: Mutex<Option<PathBuf>>,
    /// A socket bound by the supervisor (`--uds`) to serve instead of binding one.
    listener: Mutex<Option<OwnedFd>>,
    /// Stops the server once started (`stop`).
    stop: Mutex<Option<haywire::StopHandle>>,
    /// The shard thread's id, sent by the shard as it starts (0 before).
    shard_thread: AtomicI32,
    /// With `stall_timeout`: the timeout (how far the app is behind is `site.progress`).
    stall_timeout: Option<Duration>,
}

fn io_error(e: std::io::Error) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

#[pymethods]
impl Worker {
    /// A worker for the config at `path` (defaults when `None`) with `overrides`
    /// (dotted config keys to values, as the supervisor's flags set them).
    /// `routes` are native `(method, path)` routes answered by Python with their index;
    /// with `fallback`, every path no route matches goes to Python.
    /// `forwarded_allow_ips`: the proxies whose forwarding headers are believed
    /// (addresses and CIDR networks, comma-separated; `*` any); `root_path`: the
    /// prefix the app is mounted at. With `stall_timeout` (seconds), the shard aborts
    /// the process once requests have waited that long without the app beginning one.
    /// With `websocket`, WebSocket upgrades on any path go to the app
    /// (`websocket_fileno`, `take_websocket`); without, they reach it as plain
    /// requests, which it refuses; each connection leaves at most `ws_max_queue`
    /// received messages unread (and 64 KiB). `listener`, a listening socket object (the
    /// supervisor's `--uds` or `--fd` socket), is served instead of binding one.
    #[new]
    #[pyo3(signature = (path=None, overrides=None, index=0, stats_dir=None, max_in_flight=2048, routes=Vec::new(), fallback=true, forwarded_allow_ips="", root_path="", stall_timeout=None, websocket=false, ws_max_queue=None, listener=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        path: Option<&str>,
        overrides: Option<&Bound<'_, PyDict>>,
        index: usize,
        stats_dir: Option<PathBuf>,
        max_in_flight: usize,
        routes: Vec<(String, String)>,
        fallback: bool,
        forwarded_allow_ips: &str,
        root_path: &str,
        stall_timeout: Option<f64>,
        websocket: bool,
        ws_max_queue: Option<usize>,
        listener: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Worker> {
        let listener = listener.map(listen::adopt).transpose()?;
        let trusted = Trusted::parse(forwarded_allow_ips).map_err(PyValueError::new_err)?;
        let stall_timeout = stall_timeout
            .filter(|&t| t > 0.0)
            .map(Duration::from_secs_f64);
        let root_path = root_path.trim_end_matches('/').to_owned();
        if !root_path.is_empty() && !root_path.starts_with('/') {
            return Err(PyValueError::new_err(format!(
                "--root-path {root_path:?} must start with '/'"
            )));
        }
        let mut config = overrides::load_config(path, overrides)?;
        config.server.shards = 1;
        // The process is pinned by the supervisor: the shard inherits its CPU.
        config.server.placement = haywire::config::PlacementKind::Unbound;
        for (method, route) in &routes {
            if !route.starts_with('/') {
                return Err(PyValueError::new_err(format!(
                    "route {route:?} ({method}) must start with '/'"
                )));
            }
        }
        let server_cert = tls::server_certificate(&config.tls);
        let (inbox, inbox_door) = Mailbox::new().map_err(io_error)?;
        let (outbox, outbox_door) = Mailbox::new().map_err(io_error)?;
        let (ready, ready_door) = Mailbox::new().map_err(io_error)?;
        Ok(Worker {
            config,
            index,
            stats_dir,
            max_in_flight,
            routes,
            fallback,
            inbox,
            inbox_door,
            taken: Mutex::default(),
            outbox,
            outbox_door: Arc::new(Mutex::new(Some(outbox_door))),
            ready,
            ready_door,
            ready_taken: Mutex::default(),
            site: Arc::new(Site {
                trusted,
                root_path,
                server_cert,
                progress: stall_timeout.is_some().then(Arc::default),
            }),
            started: AtomicBool::new(false),
            websocket: websocket
                .then(|| websocket::Channels::new(ws_max_queue.unwrap_or(usize::MAX)))
                .transpose()
                .map_err(io_error)?,
            used_stats_dir: Mutex::new(None),
            shard_thread: AtomicI32::new(0),
            stop: Mutex::new(None),
            listener: Mutex::new(listener),
            stall_timeout,
        })
    }

    /// Binds the listener (or takes the one given) and starts the shard; returns the
    /// bound port (0 on a Unix socket). SIGINT and SIGTERM stop it gracefully from
    /// then on; `serve`/`take` end when it has stopped.
    fn start(&self, py: Python<'_>) -> PyResult<u16> {
        if self.started.swap(true, Ordering::AcqRel) {
            return Err(PyRuntimeError::new_err("worker already started"));
        }
        let mut config = self.config.clone();
        let mut stats_path = Vec::new();
        let mut metrics_path = Vec::new();
        config.routes.retain(|route| match route {
            RouteConfig::Stats { path } => {
                stats_path.push(path.clone());
                false
            }
            RouteConfig::Metrics { path } => {
                metrics_path.push(path.clone());
                false
            }
            _ => true,
        });
        let stats_dir = StatsDir {
            dir: match &self.stats_dir {
                Some(dir) => stats::check_private(dir).map_err(io_error)?,
                None => stats::private_dir().map_err(io_error)?,
            },
            worker: self.index,
        };
        *self
            .used_stats_dir
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(stats_dir.dir.clone());
        // A directory this worker made for itself goes with it (the supervisor's own
        // is the supervisor's to remove).
        let own_dir = self.stats_dir.is_none().then(|| stats_dir.dir.clone());
        let inbox = self.inbox.clone();
        let ready = self.ready.clone();
        let outbox = self.outbox.clone();
        let outbox_door = self.outbox_door.clone();
        let routes = self.routes.clone();
        let fallback = self.fallback;
        let max_in_flight = self.max_in_flight;
        let websocket = self.websocket.as_ref().map(websocket::Channels::mount);
        let body_limit = self.config.limits.max_request_size as u64;
        let index = self.index;
        let stall = (self.site.progress.clone()).zip(self.stall_timeout);
        let (thread_tx, thread_rx) = std::sync::mpsc::sync_channel(1);
        let server = Server::new(config).routes(move |router: &mut Router, ctx: &Rc<ShardCtx>| {
            let _ = thread_tx.try_send(rustix::thread::gettid().as_raw_nonzero().get());
            let progress = stall.as_ref().map(|(progress, _)| progress.clone());
            let bridge = ShardBridge::new(inbox.clone(), ready.clone(), max_in_flight, progress);
            if let Some((progress, timeout)) = &stall {
                glommio::spawn_local(stall::watch(progress.clone(), *timeout, index)).detach();
            }
            if let Some(door) = outbox_door.lock().unwrap_or_else(|p| p.into_inner()).take() {
                glommio::spawn_local(bridge.clone().serve(outbox.clone(), door)).detach();
            }
            glommio::spawn_local(stats_dir.clone().run(ctx.clone())).detach();
            for path in &stats_path {
                let (dir, ctx) = (stats_dir.clone(), ctx.clone());
                router.get(path, move |r: Request| stats::stats(&dir, &ctx, r));
            }
            for path in &metrics_path {
                let (dir, ctx) = (stats_dir.clone(), ctx.clone());
                router.get(path, move |r: Request| stats::metrics(&dir, &ctx, r));
            }
            if let Some(websocket) = &websocket {
                websocket.on(router);
            }
            bridge::set_param_names(&routes);
            for (index, (method, path)) in routes.iter().enumerate() {
                let handler = PyRoute {
                    bridge: bridge.clone(),
                    route: index,
                };
                router.route(Method::from_token(method), path, handler);
            }
            if fallback {
                router.fallback_streaming(PyStreamRoute {
                    bridge,
                    limit: body_limit,
                });
            }
        });
        let server = match self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            Some(fd) => server.listener(fd),
            None => server,
        };
        let running = py.detach(|| server.start()).map_err(io_error)?;
        // The shard builds its routes as it starts, maybe after `start` has returned.
        let shard_thread = py.detach(move || thread_rx.recv_timeout(Duration::from_secs(10)));
        self.shard_thread
            .store(shard_thread.unwrap_or(0), Ordering::Release);
        let port = running.local_addr().port();
        stop_on_signals(running.stop_handle()).map_err(io_error)?;
        *self.stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(running.stop_handle());
        let inbox = self.inbox.clone();
        std::thread::Builder::new()
            .name("haywire-join".into())
            .spawn(move || {
                if let Err(e) = running.join() {
                    eprintln!("haywire: worker: {e}");
                }
                if let Some(dir) = own_dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
                inbox.close();
            })
            .map_err(io_error)?;
        Ok(port)
    }

    /// Runs `handler(request)` for every request on this thread until the server has
    /// stopped. The handler must call `request.respond(...)`; one that raises or
    /// returns without answering gets a 500. The GIL is released only while waiting.
    /// A signal that interrupts the wait runs the app's Python handlers at once; what
    /// one raises is raised here, and calling `serve` again carries on.
    fn serve(&self, py: Python<'_>, handler: Bound<'_, PyAny>) -> PyResult<()> {
        // Waiting is then one blocking read (no poll, no EAGAIN read); `take` is not
        // used alongside `serve`.
        self.inbox_door.set_nonblocking(false).map_err(io_error)?;
        let mut jobs = VecDeque::new();
        loop {
            self.inbox.drain_into(&mut jobs);
            if jobs.is_empty() {
                if self.inbox.is_closed() {
                    return Ok(());
                }
                let door = &self.inbox_door;
                if py.detach(|| bridge::wait_ring(door)) {
                    // A signal: Python runs the app's own handlers only on this thread,
                    // when asked. What one raises ends `serve` (the caller decides).
                    py.check_signals()?;
                }
                continue;
            }
            for job in jobs.drain(..) {
                self.site.begin();
                let request = Bound::new(py, self.request(job))?;
                if let Err(e) = handler.call1((&request,)) {
                    e.display(py);
                }
                request.get().fail();
            }
        }
    }

    /// Stops the server gracefully, as SIGTERM does: queued and in-flight requests are
    /// answered, then `serve` returns and `take` gives `None`. Nothing before `start`.
    fn stop(&self) {
        if let Some(stop) = &*self.stop.lock().unwrap_or_else(|p| p.into_inner()) {
            stop.stop();
        }
    }

    /// The shard thread's id (`None` before `start`), for the worker to set its
    /// scheduling policy.
    #[getter]
    fn shard_thread_id(&self) -> Option<i32> {
        Some(self.shard_thread.load(Ordering::Acquire)).filter(|&id| id != 0)
    }

    /// The directory this worker publishes its counters in (`None` before `start`).
    #[getter]
    fn stats_dir(&self) -> Option<PathBuf> {
        self.used_stats_dir
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The doorbell to watch for readability (an event loop's `add_reader`); then call
    /// [`Worker::take`].
    fn fileno(&self) -> i32 {
        self.inbox_door.as_raw_fd()
    }

    /// The doorbell of requests an event loop may go on with (body bytes, or room for
    /// the response): watch it for readability, then call [`Worker::take_ready`].
    fn ready_fileno(&self) -> i32 {
        self.ready_door.as_raw_fd()
    }

    /// The tokens of the requests whose `watch_body` or `watch_room` has been answered
    /// since the last call (body bytes, room, or the client is gone), without blocking.
    fn take_ready(&self) -> Vec<u64> {
        bridge::consume_rings(&self.ready_door);
        self.ready
            .drain_with(&self.ready_taken, |tokens| tokens.collect())
    }

    /// The doorbell of WebSocket events (with `websocket`; else -1): watch it for
    /// readability, then call [`Worker::take_websocket`].
    fn websocket_fileno(&self) -> i32 {
        self.websocket
            .as_ref()
            .map_or(-1, websocket::Channels::fileno)
    }

    /// The WebSocket events waiting now, without blocking (see `websocket.rs`).
    fn take_websocket<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        match &self.websocket {
            Some(channels) => channels.take(py, &self.site),
            None => Ok(PyList::empty(py)),
        }
    }

    /// The requests waiting now (maybe none), without blocking; `None` once the server
    /// has stopped and nothing is left. None has begun yet (`--stall-timeout`): each
    /// does when its handler runs (`Request.begin`, or `asgi_start`).
    fn take(&self, py: Python<'_>) -> PyResult<Option<Vec<Py<PyRequest>>>> {
        bridge::consume_rings(&self.inbox_door);
        self.inbox.drain_with(&self.taken, |jobs| {
            if jobs.len() == 0 && self.inbox.is_closed() {
                return Ok(None);
            }
            jobs.map(|job| Py::new(py, self.request(job)))
                .collect::<PyResult<_>>()
                .map(Some)
        })
    }
}

/// Every SIGTERM or SIGINT stops the shard gracefully: the supervisor and a service
/// manager that signals every process of the unit (systemd) may both send one, and a
/// second must not cut in-flight requests short (the supervisor's kill timeout bounds a
/// hung app). SIGHUP is the supervisor's (a graceful restart); a worker ignores it.
fn stop_on_signals(stop: haywire::StopHandle) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("haywire-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if signal != SIGHUP {
                    stop.stop();
                }
            }
        })?;
    Ok(())
}

impl Worker {
    fn request(&self, job: Job) -> PyRequest {
        PyRequest {
            job,
            outbox: self.outbox.clone(),
            site: self.site.clone(),
            responded: AtomicBool::new(false),
            stream: Mutex::new(None),
            ended: AtomicBool::new(false),
            whole: Mutex::new(None),
        }
    }
}

/// The extension module.
#[pymodule]
fn _haywire(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ConfigError", m.py().get_type::<ConfigError>())?;
    m.add(
        "ClientDisconnected",
        m.py().get_type::<ClientDisconnected>(),
    )?;
    m.add_function(wrap_pyfunction!(check_config, m)?)?;
    m.add_function(wrap_pyfunction!(cipher_suites, m)?)?;
    m.add_function(wrap_pyfunction!(listen::bind_unix, m)?)?;
    m.add_function(wrap_pyfunction!(stats::metrics_text, m)?)?;
    m.add("METRICS_CONTENT_TYPE", haywire::metrics::CONTENT_TYPE)?;
    m.add_class::<listen::UnixSocket>()?;
    m.add_class::<Worker>()?;
    m.add_class::<PyRequest>()?;
    m.add_class::<wsgi::StartResponse>()?;
    m.add_class::<asgi::Exchange>()?;
    m.add_class::<asgi::Ready>()?;
    m.add_class::<ConfigSummary>()?;
    m.add_class::<websocket::PyWebSocket>()?;
    Ok(())
}

/// Bytes as Latin-1 text (every byte one character), as WSGI and HTTP/1.1 read them:
/// borrowed when they are ASCII (nearly always), where Latin-1 and UTF-8 agree.
fn latin1(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.is_ascii() => Cow::Borrowed(text),
        _ => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// [`latin1`] as a Python string.
fn latin1_text<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    PyString::new(py, &latin1(bytes))
}

/// A client's scheme (`http` or `https`) as an interned Python string.
fn scheme_text<'py>(py: Python<'py>, scheme: &str) -> Bound<'py, PyString> {
    match scheme {
        "https" => intern!(py, "https").clone(),
        _ => intern!(py, "http").clone(),
    }
}

/// The method as a Python string, the common ones interned (no allocation).
fn method_text<'py>(py: Python<'py>, method: &str) -> Bound<'py, PyString> {
    match method {
        "GET" => intern!(py, "GET").clone(),
        "POST" => intern!(py, "POST").clone(),
        "HEAD" => intern!(py, "HEAD").clone(),
        method => PyString::new(py, method),
    }
}

/// Decodes `%XX` escapes (an invalid escape is kept as is).
fn percent_decode(input: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !input.contains(&b'%') {
        return std::borrow::Cow::Borrowed(input);
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_keeps_invalid_escapes() {
        assert_eq!(&*percent_decode(b"/a%20b"), b"/a b");
        assert_eq!(&*percent_decode(b"/%C3%A9"), "/é".as_bytes());
        assert_eq!(&*percent_decode(b"/%zz%2"), b"/%zz%2");
        assert_eq!(&*percent_decode(b"/plain"), b"/plain");
    }

    #[test]
    fn latin1_maps_every_byte_to_one_char() {
        assert_eq!(latin1(b"caf\xe9"), "café");
    }

    #[test]
    fn responses_keep_framing_to_haywire() {
        let response = build_response(
            201,
            vec![
                ("Content-Type".into(), "text/x".into()),
                ("Content-Length".into(), "999".into()),
                ("Transfer-Encoding".into(), "chunked".into()),
                ("Connection".into(), "keep-alive, Close".into()),
                ("X-A".into(), "1".into()),
            ],
            Bytes::from_static(b"abc"),
        )
        .unwrap()
        .into_response();
        assert_eq!(response.status().as_u16(), 201);
        assert_eq!(response.header("x-a"), Some("1"));
        assert_eq!(response.header("content-length"), None);
        assert!(response.closes());
        assert_eq!(&response.body()[..], b"abc");
        assert_eq!(response.header("transfer-encoding"), None);
        assert!(build_response(42, vec![], Bytes::new()).is_err());
        assert!(build_response(103, vec![], Bytes::new()).is_err());
    }

    /// `object`'s reference count as `sys.getrefcount` sees it.
    fn refcount(object: &Bound<'_, PyAny>) -> isize {
        let sys = object.py().import("sys").unwrap();
        let count = sys
            .getattr("getrefcount")
            .unwrap()
            .call1((object,))
            .unwrap();
        count.extract().unwrap()
    }

    #[test]
    fn large_bytes_are_shared_and_released_from_another_thread() {
        Python::initialize();
        let (object, alone, shared) = Python::attach(|py| {
            let object = PyBytes::new(py, &[7; SHARE_AT]);
            let alone = refcount(object.as_any());
            let shared = body_bytes(object.as_any()).unwrap();
            // The piece is the object's own buffer, not a copy, and holds a reference.
            assert_eq!(shared.as_ptr(), object.as_bytes().as_ptr());
            assert_eq!(refcount(object.as_any()), alone + 1);
            // A WSGI body of one large piece too.
            let list = PyList::new(py, [&object]).unwrap();
            let whole = joined(list.as_any()).unwrap();
            assert_eq!(whole.as_ptr(), object.as_bytes().as_ptr());
            drop((whole, list));
            // A small one is copied.
            let small = PyBytes::new(py, &[7; SHARE_AT - 1]);
            let copied = body_bytes(small.as_any()).unwrap();
            assert_ne!(copied.as_ptr(), small.as_bytes().as_ptr());
            (object.unbind(), alone, shared)
        });
        // Dropped on a thread never attached, as on the shard: the reference is released
        // at the next attach, not leaked.
        std::thread::spawn(move || drop(shared)).join().unwrap();
        Python::attach(|py| assert_eq!(refcount(object.bind(py).as_any()), alone));
    }

    #[test]
    fn take_ready_hands_the_mailbox_a_buffer_with_room() {
        let worker = Worker::new(
            None,
            None,
            0,
            None,
            2048,
            Vec::new(),
            true,
            "",
            "",
            None,
            false,
            None,
            None,
        )
        .unwrap();
        for round in 0..2 {
            (0..64).for_each(|token| worker.ready.post(token));
            assert_eq!(worker.take_ready(), (0..64).collect::<Vec<_>>(), "{round}");
        }
        // The two buffers go round: the one the first batch grew is the queue again, so
        // the shard posts the next batch without growing one from nothing.
        assert!(worker.ready.capacity() >= 64, "{}", worker.ready.capacity());
    }

    #[test]
    fn mailbox_rings_once_per_drain_and_wakes_on_close() {
        let (mailbox, door) = Mailbox::<u32>::new().unwrap();
        mailbox.post(1);
        mailbox.post(2);
        let mut buf = [0u8; 8];
        assert_eq!(std::io::Read::read(&mut &door, &mut buf).unwrap(), 1);
        assert_eq!(mailbox.drain(), [1, 2]);
        assert!(!mailbox.is_closed());
        mailbox.close();
        assert_eq!(std::io::Read::read(&mut &door, &mut buf).unwrap(), 1);
        assert!(mailbox.is_closed() && mailbox.drain().is_empty());
    }
}
