//! Layers: code that runs around handlers, before and after, able to answer in their
//! place. One built-in per file: compression, CORS, request ids, timeouts.
//!
//! A layer wraps a handler in another handler. It lives on one shard like the
//! handlers it wraps, so it may hold `Rc` and `Cell` state. Wrap a whole router
//! (`Router::layer`), a group of routes (`Router::group`, `Router::nest`) or one
//! handler ([`HandlerExt::with`]). [`from_fn`] makes a layer of a function:
//!
//! ```rust
//! use haywire::{layer::{from_fn, Next}, Request, Response, Router, StatusCode};
//! let mut router = Router::new();
//! router.get("/admin", |_: Request| "secret\n");
//! router.layer(from_fn(|request: Request, next: Next| {
//!     if request.header("authorization") != Some("Bearer let-me-in") {
//!         return Response::new(StatusCode::UNAUTHORIZED).into(); // short-circuit
//!     }
//!     next.run(request).map(|r| r.with_header("X-Checked", "yes")) // after
//! }));
//! ```

use std::marker::PhantomData;
use std::rc::Rc;

use crate::extract::States;
use crate::handler::{Handler, IntoHandler, IntoReply, Reply};
use crate::http::{Request, Response};

mod compression;
mod cors;
mod request_id;
mod timeout;

pub use compression::{Compression, Encoding};
pub use cors::Cors;
pub use request_id::RequestId;
pub use timeout::Timeout;

/// Something that wraps a handler in another.
pub trait Layer: 'static {
    /// `inner` wrapped: the returned handler decides whether and how to call it.
    fn layer(&self, inner: Rc<dyn Handler>) -> Rc<dyn Handler>;
}

/// The rest of the chain, for a [`from_fn`] layer: the wrapped handler.
#[derive(Clone)]
pub struct Next {
    inner: Rc<dyn Handler>,
}

impl Next {
    /// Calls the wrapped handler. The [`Reply`] can be mapped (`.map(...)`) or awaited.
    pub fn run(self, request: Request) -> Reply {
        self.inner.call(request)
    }
}

impl From<Response> for Reply {
    fn from(response: Response) -> Reply {
        Reply::Ready(response)
    }
}

/// A layer made of `f(request, next)`: see [`from_fn`].
pub struct FromFn<F, R> {
    f: Rc<F>,
    marker: PhantomData<fn() -> R>,
}

/// A layer of a function `Fn(Request, Next) -> R` where `R` is a `Response`, a
/// [`Reply`] (`next.run(request)`, mapped or not) or a future of a `Response` (to
/// await `next.run(request)` and more).
pub fn from_fn<F, R>(f: F) -> FromFn<F, R>
where
    F: Fn(Request, Next) -> R + 'static,
    R: IntoReply + 'static,
{
    FromFn {
        f: Rc::new(f),
        marker: PhantomData,
    }
}

struct FnHandler<F, R> {
    f: Rc<F>,
    next: Next,
    marker: PhantomData<fn() -> R>,
}

impl<F, R> Handler for FnHandler<F, R>
where
    F: Fn(Request, Next) -> R + 'static,
    R: IntoReply + 'static,
{
    fn call(&self, request: Request) -> Reply {
        (self.f)(request, self.next.clone()).into_reply()
    }
}

impl<F, R> Layer for FromFn<F, R>
where
    F: Fn(Request, Next) -> R + 'static,
    R: IntoReply + 'static,
{
    fn layer(&self, inner: Rc<dyn Handler>) -> Rc<dyn Handler> {
        Rc::new(FnHandler {
            f: self.f.clone(),
            next: Next { inner },
            marker: PhantomData,
        })
    }
}

/// Wraps one handler in a layer before it is routed.
pub trait HandlerExt<M>: IntoHandler<M> + Sized {
    /// This handler wrapped in `layer` (`router.get("/x", handler.with(layer))`).
    fn with<L: Layer>(self, layer: L) -> Layered<Self, L, M> {
        Layered {
            handler: self,
            layer,
            marker: PhantomData,
        }
    }
}

impl<H: IntoHandler<M>, M> HandlerExt<M> for H {}

/// A handler wrapped in a layer: see [`HandlerExt::with`].
pub struct Layered<H, L, M> {
    handler: H,
    layer: L,
    marker: PhantomData<fn() -> M>,
}

/// Marks a [`Layered`] handler.
pub struct IsLayered<M>(PhantomData<M>);

impl<H, L, M> IntoHandler<IsLayered<M>> for Layered<H, L, M>
where
    H: IntoHandler<M>,
    L: Layer,
    M: 'static,
{
    fn into_handler(self, states: &Rc<States>) -> Rc<dyn Handler> {
        self.layer.layer(self.handler.into_handler(states))
    }
}
