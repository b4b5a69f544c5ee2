//! `--uds`: the supervisor binds the Unix socket once (a path cannot be bound twice)
//! and passes it to every worker, which serves it through `Server::listener`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;

use haywire::UnixSocketFile;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

/// A listening Unix socket bound by [`bind_unix`]; `close` closes it and removes its
/// file.
#[pyclass(module = "haywire._haywire", frozen)]
pub struct UnixSocket {
    fd: Mutex<Option<OwnedFd>>,
    file: UnixSocketFile,
}

#[pymethods]
impl UnixSocket {
    /// The descriptor, to pass to the workers; -1 once closed.
    fn fileno(&self) -> i32 {
        self.fd
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(-1, |fd| fd.as_raw_fd())
    }

    /// Closes this process's descriptor (workers keep theirs, and accept what is
    /// queued until they stop) and removes the socket file if it is still the one
    /// bound here, so new clients are refused from now on. Repeating it is harmless.
    fn close(&self) {
        if self
            .fd
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .is_some()
        {
            self.file.remove();
        }
    }
}

/// Binds a listening Unix socket at `path` with permission bits `mode` (0: as the
/// umask makes them) and listen `backlog`: a stale socket file is replaced, a live one
/// or any other file is an `OSError` naming the key `server.unix`.
#[pyfunction]
pub fn bind_unix(path: &str, mode: u32, backlog: u32) -> PyResult<UnixSocket> {
    let (fd, file) = UnixSocketFile::bind(Path::new(path), mode, backlog)
        .map_err(|e| PyOSError::new_err(e.to_string()))?;
    Ok(UnixSocket {
        fd: Mutex::new(Some(fd)),
        file,
    })
}

/// A descriptor of its own for the Python socket object `socket` (a duplicate: the
/// object may be closed afterwards).
pub fn adopt(socket: &Bound<'_, PyAny>) -> PyResult<OwnedFd> {
    let fd: i32 = socket
        .call_method0(pyo3::intern!(socket.py(), "fileno"))?
        .extract()?;
    if fd < 0 {
        return Err(PyOSError::new_err("the listener is closed"));
    }
    // SAFETY: `fd` is `socket`'s open descriptor and stays open during the borrow:
    // `socket` is referenced here and the GIL is held throughout (no Python code runs
    // between `fileno()` and the duplication that could close it). Python hands
    // sockets over only as descriptor numbers, so there is no safe conversion.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    borrowed
        .try_clone_to_owned()
        .map_err(|e| PyOSError::new_err(e.to_string()))
}
