//! The handler API: a handler turns a `Request` into a `Response`, now or later.

use std::future::Future;
use std::pin::Pin;

use crate::body::RequestBody;
use crate::http::{Request, Response};

/// A response still being computed by an asynchronous handler.
pub type ResponseFuture = Pin<Box<dyn Future<Output = Response>>>;

/// What a handler returns: a response at once (the fast path: no allocation), or a
/// future that yields one.
pub enum Reply {
    /// The response is ready.
    Ready(Response),
    /// The response will come from this future.
    Pending(ResponseFuture),
}

/// Anything a handler function may return: a `Response`, or a future of one.
pub trait IntoReply {
    /// Wraps `self` as a `Reply`.
    fn into_reply(self) -> Reply;
}

impl IntoReply for Response {
    fn into_reply(self) -> Reply {
        Reply::Ready(self)
    }
}

impl<F: Future<Output = Response> + 'static> IntoReply for F {
    fn into_reply(self) -> Reply {
        Reply::Pending(Box::pin(self))
    }
}

/// A request handler. It lives on one shard, so it may hold `Rc` and `Cell` state.
/// Plain closures `Fn(Request) -> Response` and `Fn(Request) -> impl Future<Output =
/// Response>` are handlers.
pub trait Handler: 'static {
    /// Handles one request.
    fn call(&self, request: Request) -> Reply;
}

impl<F, R> Handler for F
where
    F: Fn(Request) -> R + 'static,
    R: IntoReply,
{
    fn call(&self, request: Request) -> Reply {
        self(request).into_reply()
    }
}

/// A handler that reads its request's body as it arrives (see
/// `Router::post_streaming`): `Fn(Request, RequestBody) -> Response` or a future of one.
pub trait BodyHandler: 'static {
    /// Handles one request; its `body()` is empty, the body comes through `body`.
    fn call(&self, request: Request, body: RequestBody) -> Reply;
}

impl<F, R> BodyHandler for F
where
    F: Fn(Request, RequestBody) -> R + 'static,
    R: IntoReply,
{
    fn call(&self, request: Request, body: RequestBody) -> Reply {
        self(request, body).into_reply()
    }
}
