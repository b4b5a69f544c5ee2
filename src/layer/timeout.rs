//! `Timeout`: answers 504 when a handler takes too long.

use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;

use super::Layer;
use crate::handler::{Handler, Reply};
use crate::http::{Request, Response, StatusCode};

/// Answers `504 handler timed out` when the wrapped handler has not answered within
/// the duration, and drops its future (cancelling whatever it awaited). A handler
/// that answers at once is never timed (it cannot be interrupted anyway).
#[derive(Debug, Clone, Copy)]
pub struct Timeout {
    after: Duration,
}

impl Timeout {
    /// Handlers get `after` to answer.
    pub fn new(after: Duration) -> Timeout {
        Timeout { after }
    }
}

struct Timed {
    inner: Rc<dyn Handler>,
    after: Duration,
}

impl Handler for Timed {
    fn call(&self, request: Request) -> Reply {
        match self.inner.call(request) {
            Reply::Ready(response) => Reply::Ready(response),
            Reply::Pending(answer) => {
                let after = self.after;
                Reply::Pending(Box::pin(future::or(answer, async move {
                    glommio::timer::sleep(after).await;
                    Response::new(StatusCode::GATEWAY_TIMEOUT)
                        .with_body("text/plain; charset=utf-8", "handler timed out\n")
                })))
            }
        }
    }
}

impl Layer for Timeout {
    fn layer(&self, inner: Rc<dyn Handler>) -> Rc<dyn Handler> {
        Rc::new(Timed {
            inner,
            after: self.after,
        })
    }
}
