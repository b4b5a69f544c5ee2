//! The handler API: a handler turns a `Request` into a `Response`, now or later.
//!
//! What the router stores is a [`Handler`]. Functions become one through
//! [`IntoHandler`]: `Fn(Request) -> R` and `Fn(Request) -> impl Future<Output = R>`
//! where `R: IntoResponse` (the plain path: nothing is extracted, nothing allocated
//! when the reply is ready at once), and functions of up to six extractors (see
//! [`crate::extract`]).

use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::body::RequestBody;
use crate::extract::{FromRequest, FromRequestParts, States};
use crate::http::{Request, Response};
use crate::respond::IntoResponse;

/// A response still being computed by an asynchronous handler.
pub type ResponseFuture = Pin<Box<dyn Future<Output = Response>>>;

/// What a handler returns: a response at once (the fast path: no allocation), or a
/// future that yields one. `.await` it (in a layer) to get the response either way.
pub enum Reply {
    /// The response is ready.
    Ready(Response),
    /// The response will come from this future.
    Pending(ResponseFuture),
}

impl Reply {
    /// The reply with `f` applied to its response, at once when it is ready (no
    /// allocation), else when the future yields it.
    pub fn map(self, f: impl FnOnce(Response) -> Response + 'static) -> Reply {
        match self {
            Reply::Ready(response) => Reply::Ready(f(response)),
            Reply::Pending(future) => Reply::Pending(Box::pin(async move { f(future.await) })),
        }
    }
}

/// A [`Reply`] being awaited.
pub struct ReplyFuture(Option<Reply>);

impl Future for ReplyFuture {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        match self.0.take() {
            Some(Reply::Ready(response)) => Poll::Ready(response),
            Some(Reply::Pending(mut future)) => match future.as_mut().poll(cx) {
                Poll::Ready(response) => Poll::Ready(response),
                Poll::Pending => {
                    self.0 = Some(Reply::Pending(future));
                    Poll::Pending
                }
            },
            None => panic!("a reply polled after it completed"),
        }
    }
}

impl IntoFuture for Reply {
    type Output = Response;
    type IntoFuture = ReplyFuture;

    fn into_future(self) -> ReplyFuture {
        ReplyFuture(Some(self))
    }
}

/// Anything a streaming handler ([`BodyHandler`]) or a layer function may return: a
/// `Response`, a [`Reply`], or a future of a response.
pub trait IntoReply {
    /// Wraps `self` as a `Reply`.
    fn into_reply(self) -> Reply;
}

impl IntoReply for Response {
    fn into_reply(self) -> Reply {
        Reply::Ready(self)
    }
}

impl IntoReply for Reply {
    fn into_reply(self) -> Reply {
        self
    }
}

impl<F: Future<Output = Response> + 'static> IntoReply for F {
    fn into_reply(self) -> Reply {
        Reply::Pending(Box::pin(self))
    }
}

/// A request handler as the router stores it. It lives on one shard, so it may hold
/// `Rc` and `Cell` state. Implement it for a type of your own, or let
/// [`IntoHandler`] make one from a function.
pub trait Handler: 'static {
    /// Handles one request.
    fn call(&self, request: Request) -> Reply;
}

impl Handler for Rc<dyn Handler> {
    fn call(&self, request: Request) -> Reply {
        (**self).call(request)
    }
}

/// What `Router::get` and friends accept: a [`Handler`], or a function of a
/// `Request` or of extractors returning anything [`IntoResponse`] (or a future of
/// it). `M` only tells the implementations apart; it is inferred.
pub trait IntoHandler<M>: 'static {
    /// The handler; `states` is the router's state, for the `State` extractor.
    fn into_handler(self, states: &Rc<States>) -> Rc<dyn Handler>;
}

/// Marks a type that implements [`Handler`] itself.
pub struct IsHandler;

impl<H: Handler> IntoHandler<IsHandler> for H {
    fn into_handler(self, _: &Rc<States>) -> Rc<dyn Handler> {
        Rc::new(self)
    }
}

/// Marks a function of a `Request` answering at once.
pub struct Plain<R>(PhantomData<R>);
/// Marks a function of a `Request` answering with a future.
pub struct PlainLater<Fut>(PhantomData<Fut>);
/// Marks a function of the extractors `Args` answering at once.
pub struct Now<Args, R>(PhantomData<(Args, R)>);
/// Marks a function of the extractors `Args` answering with a future.
pub struct Later<Args, Fut>(PhantomData<(Args, Fut)>);

/// `Fn(Request) -> R`: no extraction; for `R = Response`, exactly the old cost.
struct PlainFn<F>(F);

impl<F, R> Handler for PlainFn<F>
where
    F: Fn(Request) -> R + 'static,
    R: IntoResponse + 'static,
{
    #[inline]
    fn call(&self, request: Request) -> Reply {
        Reply::Ready((self.0)(request).into_response())
    }
}

impl<F, R> IntoHandler<Plain<R>> for F
where
    F: Fn(Request) -> R + 'static,
    R: IntoResponse + 'static,
{
    fn into_handler(self, _: &Rc<States>) -> Rc<dyn Handler> {
        Rc::new(PlainFn(self))
    }
}

/// `Fn(Request) -> impl Future`: boxes the future, as before.
struct PlainAsyncFn<F>(F);

impl<F, Fut> Handler for PlainAsyncFn<F>
where
    F: Fn(Request) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: IntoResponse,
{
    fn call(&self, request: Request) -> Reply {
        let future = (self.0)(request);
        Reply::Pending(Box::pin(async move { future.await.into_response() }))
    }
}

impl<F, Fut> IntoHandler<PlainLater<Fut>> for F
where
    F: Fn(Request) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: IntoResponse,
{
    fn into_handler(self, _: &Rc<States>) -> Rc<dyn Handler> {
        Rc::new(PlainAsyncFn(self))
    }
}

/// A function of extractors, with the router's state they may need.
struct Extracting<F, M> {
    f: F,
    states: Rc<States>,
    marker: PhantomData<fn() -> M>,
}

/// Extracts one argument or answers the rejection.
macro_rules! extract_or_reject {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(error) => return Reply::Ready(error.into_response()),
        }
    };
}

macro_rules! extracting_handlers {
    ($($first:ident),* ; $last:ident) => {
        impl<F, R, $($first,)* $last> Handler for Extracting<F, Now<($($first,)* $last,), R>>
        where
            F: Fn($($first,)* $last) -> R + 'static,
            R: IntoResponse + 'static,
            $($first: FromRequestParts + 'static,)*
            $last: FromRequest + 'static,
        {
            #[allow(non_snake_case)]
            fn call(&self, request: Request) -> Reply {
                $(let $first = extract_or_reject!($first::from_request_parts(&request, &self.states));)*
                let $last = extract_or_reject!($last::from_request(request, &self.states));
                Reply::Ready((self.f)($($first,)* $last).into_response())
            }
        }

        impl<F, R, $($first,)* $last> IntoHandler<Now<($($first,)* $last,), R>> for F
        where
            F: Fn($($first,)* $last) -> R + 'static,
            R: IntoResponse + 'static,
            $($first: FromRequestParts + 'static,)*
            $last: FromRequest + 'static,
        {
            fn into_handler(self, states: &Rc<States>) -> Rc<dyn Handler> {
                Rc::new(Extracting::<F, Now<($($first,)* $last,), R>> {
                    f: self,
                    states: states.clone(),
                    marker: PhantomData,
                })
            }
        }

        impl<F, Fut, $($first,)* $last> Handler for Extracting<F, Later<($($first,)* $last,), Fut>>
        where
            F: Fn($($first,)* $last) -> Fut + 'static,
            Fut: Future + 'static,
            Fut::Output: IntoResponse,
            $($first: FromRequestParts + 'static,)*
            $last: FromRequest + 'static,
        {
            #[allow(non_snake_case)]
            fn call(&self, request: Request) -> Reply {
                $(let $first = extract_or_reject!($first::from_request_parts(&request, &self.states));)*
                let $last = extract_or_reject!($last::from_request(request, &self.states));
                let future = (self.f)($($first,)* $last);
                Reply::Pending(Box::pin(async move { future.await.into_response() }))
            }
        }

        impl<F, Fut, $($first,)* $last> IntoHandler<Later<($($first,)* $last,), Fut>> for F
        where
            F: Fn($($first,)* $last) -> Fut + 'static,
            Fut: Future + 'static,
            Fut::Output: IntoResponse,
            $($first: FromRequestParts + 'static,)*
            $last: FromRequest + 'static,
        {
            fn into_handler(self, states: &Rc<States>) -> Rc<dyn Handler> {
                Rc::new(Extracting::<F, Later<($($first,)* $last,), Fut>> {
                    f: self,
                    states: states.clone(),
                    marker: PhantomData,
                })
            }
        }
    };
}

/// One extractor alone must not be `Request` (that is the plain path above), so the
/// single-argument form takes a `FromRequestParts`.
macro_rules! single_extractor {
    () => {
        impl<F, R, A> Handler for Extracting<F, Now<(A,), R>>
        where
            F: Fn(A) -> R + 'static,
            R: IntoResponse + 'static,
            A: FromRequestParts + 'static,
        {
            fn call(&self, request: Request) -> Reply {
                let a = extract_or_reject!(A::from_request_parts(&request, &self.states));
                Reply::Ready((self.f)(a).into_response())
            }
        }

        impl<F, R, A> IntoHandler<Now<(A,), R>> for F
        where
            F: Fn(A) -> R + 'static,
            R: IntoResponse + 'static,
            A: FromRequestParts + 'static,
        {
            fn into_handler(self, states: &Rc<States>) -> Rc<dyn Handler> {
                Rc::new(Extracting::<F, Now<(A,), R>> {
                    f: self,
                    states: states.clone(),
                    marker: PhantomData,
                })
            }
        }

        impl<F, Fut, A> Handler for Extracting<F, Later<(A,), Fut>>
        where
            F: Fn(A) -> Fut + 'static,
            Fut: Future + 'static,
            Fut::Output: IntoResponse,
            A: FromRequestParts + 'static,
        {
            fn call(&self, request: Request) -> Reply {
                let a = extract_or_reject!(A::from_request_parts(&request, &self.states));
                let future = (self.f)(a);
                Reply::Pending(Box::pin(async move { future.await.into_response() }))
            }
        }

        impl<F, Fut, A> IntoHandler<Later<(A,), Fut>> for F
        where
            F: Fn(A) -> Fut + 'static,
            Fut: Future + 'static,
            Fut::Output: IntoResponse,
            A: FromRequestParts + 'static,
        {
            fn into_handler(self, states: &Rc<States>) -> Rc<dyn Handler> {
                Rc::new(Extracting::<F, Later<(A,), Fut>> {
                    f: self,
                    states: states.clone(),
                    marker: PhantomData,
                })
            }
        }
    };
}

single_extractor!();
extracting_handlers!(A; B);
extracting_handlers!(A, B; C);
extracting_handlers!(A, B, C; D);
extracting_handlers!(A, B, C, D; E);
extracting_handlers!(A, B, C, D, E; G);

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
