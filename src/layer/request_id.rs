//! `RequestId`: every response carries an id to find the request by in logs.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Layer;
use crate::handler::{Handler, Reply};
use crate::http::{HeaderText, Request};

/// Longest id taken from a client; a longer or odd one is replaced.
const MAX_ID_LEN: usize = 128;

/// Sets `X-Request-Id` (or another header) on every response: the client's own id
/// when it sent a sane one (1 to 128 visible ASCII characters), else a new id
/// `PREFIX-SHARD-N` unique within the process (`PREFIX` is the layer's creation time,
/// so ids also differ across restarts).
pub struct RequestId {
    header: HeaderText,
    prefix: Rc<str>,
    next: Rc<Cell<u64>>,
}

impl Default for RequestId {
    fn default() -> RequestId {
        RequestId::new()
    }
}

impl RequestId {
    /// Ids in `X-Request-Id`.
    pub fn new() -> RequestId {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| t.as_micros());
        RequestId {
            header: HeaderText::from("X-Request-Id"),
            prefix: format!("{micros:x}").into(),
            next: Rc::new(Cell::new(0)),
        }
    }

    /// Ids in the header `name` instead.
    pub fn header(mut self, name: &'static str) -> RequestId {
        self.header = HeaderText::from(name);
        self
    }
}

struct Identify {
    inner: Rc<dyn Handler>,
    header: HeaderText,
    prefix: Rc<str>,
    next: Rc<Cell<u64>>,
}

fn sane(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

impl Handler for Identify {
    fn call(&self, request: Request) -> Reply {
        let id = match request.header_bytes(self.header.as_str()) {
            Some(id) if sane(id.as_str()) => id,
            _ => {
                let n = self.next.get();
                self.next.set(n + 1);
                HeaderText::from(format!("{}-{}-{n}", self.prefix, request.shard()))
            }
        };
        let header = self.header.clone();
        self.inner
            .call(request)
            .map(move |response| response.with_header(header, id))
    }
}

impl Layer for RequestId {
    fn layer(&self, inner: Rc<dyn Handler>) -> Rc<dyn Handler> {
        Rc::new(Identify {
            inner,
            header: self.header.clone(),
            prefix: self.prefix.clone(),
            next: self.next.clone(),
        })
    }
}
