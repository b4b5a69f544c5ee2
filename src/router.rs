//! Routes: exact paths, `*` wildcard segments, `:name` parameters, per method.
//!
//! Matching order: an exact path wins; then patterns in the order they were added.
//! A `*` segment matches any one segment; a trailing `*` matches one or more remaining
//! segments (Haywire's `/users/*` matches `/users/42` and `/users/42/posts`). A `:name`
//! segment matches one non-empty segment and captures it. HEAD is served by the GET
//! handler when no HEAD handler is registered. A known path with no handler for the
//! method is answered 405 with `Allow`; an unknown path 404.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use crate::body::RequestBody;
use crate::extract::States;
use crate::handler::{BodyHandler, Handler, IntoHandler, Reply};
use crate::http::request::{Span, MAX_PARAMS};
use crate::http::{HeaderText, Method, Request, Response, StatusCode};
use crate::layer::Layer;
use crate::ws::{has_token, AcceptAll, UpgradeHandler, WebSocket};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    Param,
    Wildcard,
}

/// FNV-1a: exact-path lookup runs per request on short keys the server chose, where
/// SipHash's flooding resistance buys nothing and costs a measurable share.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &byte in bytes {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Answers a known path's other methods: 405 with `Allow`.
struct NotAllowed {
    /// The `Allow` value, kept in step with the endpoint's handlers.
    allow: Rc<RefCell<HeaderText>>,
}

impl Handler for NotAllowed {
    fn call(&self, _: Request) -> Reply {
        Reply::Ready(not_allowed(self.allow.borrow().clone()))
    }
}

/// 405 with `Allow`, for a path whose handlers take only the methods in `allow`.
fn not_allowed(allow: HeaderText) -> Response {
    Response::new(StatusCode::METHOD_NOT_ALLOWED)
        .with_header("Allow", allow)
        .with_body("text/plain", "method not allowed\n")
}

/// The `Allow` value that lists `methods`.
fn allow_value<'m>(methods: impl Iterator<Item = &'m Method>) -> HeaderText {
    let names: Vec<&str> = methods.filter_map(|m| m.as_str()).collect();
    names.join(", ").into()
}

/// Answers an unknown path: 404.
struct NotFound;

impl Handler for NotFound {
    fn call(&self, _: Request) -> Reply {
        Reply::Ready(Response::new(StatusCode::NOT_FOUND).with_body("text/plain", "not found\n"))
    }
}

/// The handlers registered for one path, by method.
struct Endpoint {
    handlers: Vec<(Method, Rc<dyn Handler>)>,
    allow: Rc<RefCell<HeaderText>>,
    /// Answers the methods without a handler (wrapped by the layers like the rest).
    not_allowed: Rc<dyn Handler>,
}

impl Default for Endpoint {
    fn default() -> Endpoint {
        let allow = Rc::new(RefCell::new(HeaderText::from("")));
        Endpoint {
            handlers: Vec::new(),
            not_allowed: Rc::new(NotAllowed {
                allow: allow.clone(),
            }),
            allow,
        }
    }
}

impl Endpoint {
    fn add(&mut self, method: Method, handler: Rc<dyn Handler>) {
        self.handlers.retain(|(m, _)| *m != method);
        self.handlers.push((method, handler));
        let mut methods: Vec<&Method> = self.handlers.iter().map(|(m, _)| m).collect();
        if self.find(Method::Head).is_some() && !methods.contains(&&Method::Head) {
            methods.push(&Method::Head);
        }
        *self.allow.borrow_mut() = allow_value(methods.into_iter());
    }

    fn find(&self, method: Method) -> Option<&Rc<dyn Handler>> {
        let exact = self.handlers.iter().find(|(m, _)| *m == method);
        let fallback = || match method {
            Method::Head => self.handlers.iter().find(|(m, _)| *m == Method::Get),
            _ => None,
        };
        exact.or_else(fallback).map(|(_, h)| h)
    }

    fn call(&self, request: Request) -> Reply {
        match self.find(request.method()) {
            Some(handler) => handler.call(request),
            None => self.not_allowed.call(request),
        }
    }

    /// Wraps every handler, and the 405 answer, in `layer`.
    fn wrap(&mut self, layer: &dyn Layer) {
        for (_, handler) in &mut self.handlers {
            *handler = layer.layer(handler.clone());
        }
        self.not_allowed = layer.layer(self.not_allowed.clone());
    }

    /// Takes `other`'s handlers (theirs win for a method both have).
    fn absorb(&mut self, other: Endpoint) {
        for (method, handler) in other.handlers {
            self.add(method, handler);
        }
    }
}

struct Pattern {
    segments: Vec<Segment>,
    names: Rc<[Box<str>]>,
    endpoint: Endpoint,
}

/// A WebSocket route: its path (exact or a pattern) and handler.
struct WsRoute {
    segments: Vec<Segment>,
    names: Rc<[Box<str>]>,
    handler: Rc<dyn UpgradeHandler>,
}

/// The handlers of one streaming route, by method.
type StreamingHandlers = Vec<(Method, Rc<dyn BodyHandler>)>;

/// A pattern's parameter names and how many captures a match recorded.
type Captures<'r> = Option<(&'r Rc<[Box<str>]>, usize)>;

/// What the streaming routes hold for a request (see `Router::streaming_route`).
enum StreamingMatch<'r> {
    /// The handler for its method, and a pattern's captures.
    Route(&'r Rc<dyn BodyHandler>, Captures<'r>),
    /// Its path has streaming handlers, none for its method.
    OtherMethods(&'r StreamingHandlers),
    /// No streaming route takes its path.
    None,
}

/// A streaming route with `:name` or `*` segments.
struct StreamingPattern {
    segments: Vec<Segment>,
    names: Rc<[Box<str>]>,
    handlers: StreamingHandlers,
}

/// One shard's routing table. Built by the route factory on each shard.
pub struct Router {
    exact: HashMap<Box<str>, Endpoint, BuildHasherDefault<Fnv>>,
    patterns: Vec<Pattern>,
    /// Answers every path no route matches, whatever the method: 404 unless
    /// `fallback` set another.
    not_found: Rc<dyn Handler>,
    /// Routes that read their bodies as they arrive: exact paths, then patterns in
    /// registration order, as for other routes.
    streaming: HashMap<Box<str>, StreamingHandlers, BuildHasherDefault<Fnv>>,
    /// Takes every request no route matches, its body streamed (`fallback_streaming`).
    streaming_fallback: Option<Rc<dyn BodyHandler>>,
    streaming_patterns: Vec<StreamingPattern>,
    /// WebSocket routes, in the order added.
    websockets: Vec<WsRoute>,
    /// Takes upgrade requests no WebSocket route matches (`websocket_fallback`).
    websocket_fallback: Option<Rc<dyn UpgradeHandler>>,
    /// Values the `State` extractor finds by type.
    states: Rc<States>,
}

impl Default for Router {
    fn default() -> Router {
        Router {
            exact: HashMap::default(),
            patterns: Vec::new(),
            not_found: Rc::new(NotFound),
            streaming: HashMap::default(),
            streaming_fallback: None,
            streaming_patterns: Vec::new(),
            websockets: Vec::new(),
            websocket_fallback: None,
            states: Rc::default(),
        }
    }
}

fn parse_pattern(path: &str) -> (Vec<Segment>, Vec<Box<str>>) {
    let mut names = Vec::new();
    let segments = path
        .trim_start_matches('/')
        .split('/')
        .map(|seg| {
            if seg == "*" {
                Segment::Wildcard
            } else if let Some(name) = seg.strip_prefix(':') {
                names.push(name.into());
                Segment::Param
            } else {
                Segment::Literal(seg.into())
            }
        })
        .collect();
    (segments, names)
}

/// `prefix` joined to a route's `path`: `/api` + `/` is `/api`, `/api` + `/x` is
/// `/api/x`.
fn join(prefix: &str, path: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    match path {
        "/" if !prefix.is_empty() => prefix.to_owned(),
        _ => format!("{prefix}{path}"),
    }
}

impl Router {
    /// An empty router.
    pub fn new() -> Router {
        Router::default()
    }

    /// Registers `handler` for `method` on `path`. Panics on a pattern with more than
    /// eight `:name` segments or a path not starting with `/`: both are programming
    /// errors found at startup.
    pub fn route<M>(
        &mut self,
        method: Method,
        path: &str,
        handler: impl IntoHandler<M>,
    ) -> &mut Router {
        let handler = handler.into_handler(&self.states);
        self.route_rc(method, path, handler)
    }

    /// Like [`Router::route`] with a handler shared between routes or methods.
    pub fn route_rc(
        &mut self,
        method: Method,
        path: &str,
        handler: Rc<dyn Handler>,
    ) -> &mut Router {
        self.endpoint(path).add(method, handler);
        self
    }

    /// The endpoint of `path`, made when new.
    fn endpoint(&mut self, path: &str) -> &mut Endpoint {
        assert!(path.starts_with('/'), "route {path:?} must start with '/'");
        let (segments, names) = parse_pattern(path);
        assert!(
            names.len() <= MAX_PARAMS,
            "route {path:?} has more than {MAX_PARAMS} parameters"
        );
        if segments.iter().all(|s| matches!(s, Segment::Literal(_))) {
            return self.exact.entry(path.into()).or_default();
        }
        let index = match self.patterns.iter().position(|p| p.segments == segments) {
            Some(index) => index,
            None => {
                self.patterns.push(Pattern {
                    segments,
                    names: names.into(),
                    endpoint: Endpoint::default(),
                });
                self.patterns.len() - 1
            }
        };
        &mut self.patterns[index].endpoint
    }

    /// GET `path`.
    pub fn get<M>(&mut self, path: &str, handler: impl IntoHandler<M>) -> &mut Router {
        self.route(Method::Get, path, handler)
    }

    /// POST `path`.
    pub fn post<M>(&mut self, path: &str, handler: impl IntoHandler<M>) -> &mut Router {
        self.route(Method::Post, path, handler)
    }

    /// PUT `path`.
    pub fn put<M>(&mut self, path: &str, handler: impl IntoHandler<M>) -> &mut Router {
        self.route(Method::Put, path, handler)
    }

    /// PATCH `path`.
    pub fn patch<M>(&mut self, path: &str, handler: impl IntoHandler<M>) -> &mut Router {
        self.route(Method::Patch, path, handler)
    }

    /// DELETE `path`.
    pub fn delete<M>(&mut self, path: &str, handler: impl IntoHandler<M>) -> &mut Router {
        self.route(Method::Delete, path, handler)
    }

    /// OPTIONS `path`.
    pub fn options<M>(&mut self, path: &str, handler: impl IntoHandler<M>) -> &mut Router {
        self.route(Method::Options, path, handler)
    }

    /// Stores `value` for the `State<T>` extractor of this router's handlers (and of
    /// routers nested or merged into it later that lack a `T`). Each shard's router
    /// holds its own: an `Rc<RefCell<_>>` inside is shared by this shard's requests
    /// only, no lock needed.
    pub fn state<T: Clone + 'static>(&mut self, value: T) -> &mut Router {
        self.states.insert(value);
        self
    }

    /// Wraps every route registered so far, the 405 answers of their paths and the
    /// 404 (or fallback) in `layer`; routes added later are not wrapped. The layer added
    /// last runs first. Streaming routes are not wrapped.
    pub fn layer(&mut self, layer: impl Layer) -> &mut Router {
        for endpoint in self.exact.values_mut() {
            endpoint.wrap(&layer);
        }
        for pattern in &mut self.patterns {
            pattern.endpoint.wrap(&layer);
        }
        self.not_found = layer.layer(self.not_found.clone());
        self
    }

    /// Mounts `other`'s routes under `prefix` (`/api` + `/items/:id` is
    /// `/api/items/:id`; `/api` + `/` is `/api`), with the layers `other` already
    /// wraps them in: a group of routes with its own layers. Streaming and WebSocket
    /// routes move too. `other`'s fallback is not used. A path and method both have
    /// is `other`'s.
    pub fn nest(&mut self, prefix: &str, other: Router) -> &mut Router {
        assert!(
            prefix.is_empty() || prefix.starts_with('/'),
            "prefix {prefix:?} must start with '/'"
        );
        other.states.inherit(&self.states);
        for (path, endpoint) in other.exact {
            self.endpoint(&join(prefix, &path)).absorb(endpoint);
        }
        for pattern in other.patterns {
            let path = pattern_path(&pattern.segments, &pattern.names);
            self.endpoint(&join(prefix, &path)).absorb(pattern.endpoint);
        }
        for (path, handlers) in other.streaming {
            for (method, handler) in handlers {
                self.add_streaming(method, &join(prefix, &path), handler);
            }
        }
        for pattern in other.streaming_patterns {
            let path = pattern_path(&pattern.segments, &pattern.names);
            for (method, handler) in pattern.handlers {
                self.add_streaming(method, &join(prefix, &path), handler);
            }
        }
        for route in other.websockets {
            let path = pattern_path(&route.segments, &route.names);
            self.add_websocket(&join(prefix, &path), route.handler);
        }
        self
    }

    /// Takes `other`'s routes as they are: [`Router::nest`] without a prefix.
    pub fn merge(&mut self, other: Router) -> &mut Router {
        self.nest("", other)
    }

    /// Builds a group of routes with `build` on a new router that shares this one's
    /// state, then nests it under `prefix` (`""` for none): layers `build` adds wrap
    /// the group's routes only.
    pub fn group(&mut self, prefix: &str, build: impl FnOnce(&mut Router)) -> &mut Router {
        let mut group = Router::new();
        group.states.inherit(&self.states);
        build(&mut group);
        self.nest(prefix, group)
    }

    /// Registers `handler` for `method` on `path` (exact, or with `:name` and `*`
    /// segments as [`Router::route`] takes), reading the request body as it arrives, with backpressure and without
    /// `max_request_size` (see [`RequestBody`]): for uploads larger than memory should
    /// hold. A request there without a body gets an empty, complete one.
    pub fn route_streaming(
        &mut self,
        method: Method,
        path: &str,
        handler: impl BodyHandler,
    ) -> &mut Router {
        self.add_streaming(method, path, Rc::new(handler))
    }

    fn add_streaming(
        &mut self,
        method: Method,
        path: &str,
        handler: Rc<dyn BodyHandler>,
    ) -> &mut Router {
        assert!(path.starts_with('/'), "route {path:?} must start with '/'");
        let (segments, names) = parse_pattern(path);
        assert!(
            names.len() <= MAX_PARAMS,
            "route {path:?} has more than {MAX_PARAMS} parameters"
        );
        let handlers = if segments.iter().all(|s| matches!(s, Segment::Literal(_))) {
            self.streaming.entry(path.into()).or_default()
        } else {
            let index = match self
                .streaming_patterns
                .iter()
                .position(|p| p.segments == segments)
            {
                Some(index) => index,
                None => {
                    self.streaming_patterns.push(StreamingPattern {
                        segments,
                        names: names.into(),
                        handlers: Vec::new(),
                    });
                    self.streaming_patterns.len() - 1
                }
            };
            &mut self.streaming_patterns[index].handlers
        };
        handlers.retain(|(m, _)| *m != method);
        handlers.push((method, handler));
        self
    }

    /// POST `path`, the body read as it arrives (see [`Router::route_streaming`]).
    pub fn post_streaming(&mut self, path: &str, handler: impl BodyHandler) -> &mut Router {
        self.route_streaming(Method::Post, path, handler)
    }

    /// PUT `path`, the body read as it arrives (see [`Router::route_streaming`]).
    pub fn put_streaming(&mut self, path: &str, handler: impl BodyHandler) -> &mut Router {
        self.route_streaming(Method::Put, path, handler)
    }

    /// What the streaming routes hold for `request`: its handler, with the pattern's
    /// parameter names and the number of captures in `spans` when a pattern took it; or
    /// only handlers for other methods on its path.
    fn streaming_route<'r>(
        &'r self,
        request: &Request,
        spans: &mut [Span; MAX_PARAMS],
    ) -> StreamingMatch<'r> {
        let method = request.method();
        let for_method = |handlers: &'r StreamingHandlers, captures: Captures<'r>| match handlers
            .iter()
            .find(|(m, _)| *m == method)
        {
            Some((_, handler)) => StreamingMatch::Route(handler, captures),
            None => StreamingMatch::OtherMethods(handlers),
        };
        let path = request.path();
        if let Some(handlers) = self.streaming.get(path) {
            return for_method(handlers, None);
        }
        self.streaming_patterns
            .iter()
            .find_map(|pattern| {
                let count = match_segments(&pattern.segments, request.head(), path, spans)?;
                Some(for_method(&pattern.handlers, Some((&pattern.names, count))))
            })
            .unwrap_or(StreamingMatch::None)
    }

    /// Calls `request`'s streaming handler with `body`, or the streaming fallback, or
    /// answers 405 when the path has streaming handlers for other methods only, or calls
    /// `otherwise`.
    fn call_streaming(
        &self,
        mut request: Request,
        body: RequestBody,
        otherwise: impl FnOnce(Request) -> Reply,
    ) -> Reply {
        let mut spans = [Span::default(); MAX_PARAMS];
        match (
            self.streaming_route(&request, &mut spans),
            &self.streaming_fallback,
        ) {
            (StreamingMatch::Route(handler, captures), _) => {
                if let Some((names, count)) = captures {
                    request.set_params(names, &spans[..count]);
                }
                handler.call(request, body)
            }
            (_, Some(fallback)) => fallback.call(request, body),
            (StreamingMatch::OtherMethods(handlers), None) => {
                Reply::Ready(not_allowed(allow_value(handlers.iter().map(|(m, _)| m))))
            }
            (StreamingMatch::None, None) => otherwise(request),
        }
    }

    /// Whether `request`'s body should be streamed to its handler. Asked only for
    /// requests that have a body; free when no streaming route exists.
    pub(crate) fn streams(&self, request: &Request) -> bool {
        ((!self.streaming.is_empty() || !self.streaming_patterns.is_empty())
            && matches!(
                self.streaming_route(request, &mut [Span::default(); MAX_PARAMS]),
                StreamingMatch::Route(..)
            ))
            || (self.streaming_fallback.is_some() && !self.routes_match(request))
    }

    /// Whether an exact or pattern route takes `request`'s path.
    fn routes_match(&self, request: &Request) -> bool {
        let path = request.path();
        let mut spans = [Span::default(); MAX_PARAMS];
        self.exact.contains_key(path)
            || self.patterns.iter().any(|pattern| {
                match_segments(&pattern.segments, request.head(), path, &mut spans).is_some()
            })
    }

    /// Calls the streaming handler of `request` (which `streams` said has one).
    pub(crate) fn dispatch_streaming(&self, request: Request, body: RequestBody) -> Reply {
        self.call_streaming(request, body, |request| self.dispatch(request))
    }

    /// A WebSocket route on `path` (exact, or with `:name` and `*` segments): every
    /// valid handshake is accepted without a subprotocol, then `handler` runs the
    /// connection; an invalid one is answered 400, 405 or 426 (see [`crate::ws`]).
    /// WebSocket routes are matched before all others.
    pub fn websocket<F, Fut>(&mut self, path: &str, handler: F) -> &mut Router
    where
        F: Fn(Request, WebSocket) -> Fut + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        self.websocket_upgrade(path, AcceptAll(handler))
    }

    /// A WebSocket route whose handler answers the handshake itself: it may accept
    /// with a subprotocol, or reject, after waiting on anything (see [`crate::ws::Upgrade`]).
    pub fn websocket_upgrade(&mut self, path: &str, handler: impl UpgradeHandler) -> &mut Router {
        self.add_websocket(path, Rc::new(handler))
    }

    fn add_websocket(&mut self, path: &str, handler: Rc<dyn UpgradeHandler>) -> &mut Router {
        assert!(path.starts_with('/'), "route {path:?} must start with '/'");
        let (segments, names) = parse_pattern(path);
        assert!(
            names.len() <= MAX_PARAMS,
            "route {path:?} has more than {MAX_PARAMS} parameters"
        );
        self.websockets.retain(|route| route.segments != segments);
        self.websockets.push(WsRoute {
            segments,
            names: names.into(),
            handler,
        });
        self
    }

    /// Sends every request that asks to upgrade to WebSocket (`Upgrade: websocket`)
    /// and matches no WebSocket route to `handler`; other requests on the same paths
    /// are dispatched as usual. For an application mounted behind the routes that
    /// decides on any path (Python's ASGI apps).
    pub fn websocket_fallback(&mut self, handler: impl UpgradeHandler) -> &mut Router {
        self.websocket_fallback = Some(Rc::new(handler));
        self
    }

    /// The WebSocket handler for `request`'s path, with its `:name` parameters set on
    /// the request; else the WebSocket fallback if the request asks to upgrade. Free
    /// when neither exists.
    pub(crate) fn websocket_for(&self, request: &mut Request) -> Option<Rc<dyn UpgradeHandler>> {
        if self.websockets.is_empty() && self.websocket_fallback.is_none() {
            return None;
        }
        let mut spans = [Span::default(); MAX_PARAMS];
        let path = request.path();
        let found = self.websockets.iter().find_map(|route| {
            match_segments(&route.segments, request.head(), path, &mut spans).map(|n| (route, n))
        });
        match found {
            Some((route, count)) => {
                request.set_params(&route.names, &spans[..count]);
                Some(route.handler.clone())
            }
            None => self
                .websocket_fallback
                .clone()
                .filter(|_| has_token(request, "upgrade", "websocket")),
        }
    }

    /// Sends every request that matches no route to `handler`, whatever its method,
    /// instead of answering 404 (an application mounted behind the stock routes).
    pub fn fallback<M>(&mut self, handler: impl IntoHandler<M>) -> &mut Router {
        self.not_found = handler.into_handler(&self.states);
        self
    }

    /// Like [`Router::fallback`], but `handler` gets the body of a request no route
    /// matches as it arrives (see [`Router::route_streaming`]): for an application
    /// mounted behind the routes that takes uploads larger than memory should hold.
    /// A request without a body gets an empty, complete one.
    pub fn fallback_streaming(&mut self, handler: impl BodyHandler) -> &mut Router {
        self.streaming_fallback = Some(Rc::new(handler));
        self
    }

    /// Finds the handler for `request` and calls it; answers 404 or 405 itself.
    pub fn dispatch(&self, mut request: Request) -> Reply {
        let path = request.path();
        if let Some(endpoint) = self.exact.get(path) {
            return endpoint.call(request);
        }
        let mut spans = [Span::default(); MAX_PARAMS];
        for pattern in &self.patterns {
            if let Some(count) = match_segments(&pattern.segments, request.head(), path, &mut spans)
            {
                request.set_params(&pattern.names, &spans[..count]);
                return pattern.endpoint.call(request);
            }
        }
        self.call_streaming(request, RequestBody::empty(), |request| {
            self.not_found.call(request)
        })
    }
}

/// A pattern written back as a path (`:name` segments get their names again).
fn pattern_path(segments: &[Segment], names: &[Box<str>]) -> String {
    let mut names = names.iter();
    let mut path = String::new();
    for segment in segments {
        path.push('/');
        match segment {
            Segment::Literal(literal) => path.push_str(literal),
            Segment::Param => {
                path.push(':');
                path.push_str(names.next().map_or("", |n| n));
            }
            Segment::Wildcard => path.push('*'),
        }
    }
    path
}

/// Matches `path` against `segments`, recording `:name` captures as spans of `head`.
fn match_segments(
    segments: &[Segment],
    head: &[u8],
    path: &str,
    spans: &mut [Span; MAX_PARAMS],
) -> Option<usize> {
    let mut parts = path.trim_start_matches('/').split('/');
    let mut captured = 0;
    for (i, segment) in segments.iter().enumerate() {
        let part = parts.next()?;
        match segment {
            Segment::Literal(lit) if **lit == *part => {}
            Segment::Literal(_) => return None,
            Segment::Param if part.is_empty() => return None,
            Segment::Param => {
                spans[captured] = Span::of(head, part.as_bytes());
                captured += 1;
            }
            Segment::Wildcard if part.is_empty() => return None,
            Segment::Wildcard if i + 1 == segments.len() => return Some(captured),
            Segment::Wildcard => {}
        }
    }
    parts.next().is_none().then_some(captured)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::http::{Decoder, Event, Limits};

    fn request(method: &str, path: &str) -> Request {
        let wire = format!("{method} {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        let mut buf = BytesMut::from(wire.as_bytes());
        match Decoder::new(Limits::default(), 0).decode(&mut buf) {
            Ok(Event::Request(request)) => request,
            other => panic!("{wire:?} did not decode: {other:?}"),
        }
    }

    /// The status and body `router` answers `method path` with.
    fn answer(router: &Router, method: &str, path: &str) -> (u16, String) {
        match router.dispatch(request(method, path)) {
            Reply::Ready(response) => (
                response.status().as_u16(),
                String::from_utf8_lossy(response.body()).into_owned(),
            ),
            Reply::Pending(_) => panic!("test handlers answer at once"),
        }
    }

    fn named(name: &'static str) -> impl Fn(Request) -> Response + 'static {
        move |req: Request| {
            let params = ["id", "dir", "rest"]
                .iter()
                .filter_map(|p| req.param(p).map(|v| format!(" {p}={v}")))
                .collect::<String>();
            Response::text(format!("{name}{params}"))
        }
    }

    #[test]
    fn streaming_patterns_match_by_method_and_move_with_nest() {
        let streamed = |_: Request, _: RequestBody| Response::text("streamed");
        let mut inner = Router::new();
        inner.put_streaming("/b/:id", streamed);
        inner.post_streaming("/files/*", streamed);
        let mut router = Router::new();
        router.nest("/api", inner);
        assert!(router.streams(&request("PUT", "/api/b/1")));
        assert!(router.streams(&request("POST", "/api/files/a/b")));
        assert!(!router.streams(&request("POST", "/api/b/1")));
        assert!(!router.streams(&request("PUT", "/api/b/1/2")));
        assert_eq!(answer(&router, "PUT", "/api/b/7").1, "streamed");
    }

    #[test]
    fn a_streaming_path_answers_its_other_methods_405_with_allow() {
        let streamed = |_: Request, _: RequestBody| Response::text("streamed");
        let mut router = Router::new();
        router.post_streaming("/upload", streamed);
        router.put_streaming("/upload", streamed);
        router.put_streaming("/b/:id", streamed);
        for (method, path, allow) in [
            ("GET", "/upload", "POST, PUT"),
            ("DELETE", "/upload", "POST, PUT"),
            ("GET", "/b/1", "PUT"),
        ] {
            let Reply::Ready(response) = router.dispatch(request(method, path)) else {
                panic!("405 is immediate");
            };
            assert_eq!(response.status().as_u16(), 405, "{method} {path}");
            assert_eq!(response.header("allow"), Some(allow), "{method} {path}");
        }
        assert_eq!(answer(&router, "GET", "/elsewhere").0, 404);
        // A streaming fallback still takes every request no route takes.
        router.fallback_streaming(streamed);
        assert_eq!(answer(&router, "GET", "/upload").1, "streamed");
    }

    #[test]
    fn exact_paths_win_over_patterns() {
        let mut router = Router::new();
        router.get("/users/:id", named("param"));
        router.get("/users/me", named("exact"));
        assert_eq!(answer(&router, "GET", "/users/me").1, "exact");
        assert_eq!(answer(&router, "GET", "/users/7").1, "param id=7");
    }

    #[test]
    fn patterns_match_in_registration_order() {
        let mut router = Router::new();
        router.get("/files/:dir/*", named("first"));
        router.get("/files/*", named("second"));
        assert_eq!(answer(&router, "GET", "/files/a/b").1, "first dir=a");
        assert_eq!(answer(&router, "GET", "/files/a").1, "second");
    }

    #[test]
    fn stars_match_one_segment_or_a_tail() {
        let mut router = Router::new();
        router.get("/a/*/c", named("middle"));
        router.get("/users/*", named("tail"));
        assert_eq!(answer(&router, "GET", "/a/b/c").1, "middle");
        assert_eq!(answer(&router, "GET", "/a/b/x").0, 404);
        assert_eq!(
            answer(&router, "GET", "/a//c").0,
            404,
            "a star needs a segment"
        );
        assert_eq!(answer(&router, "GET", "/users/42").1, "tail");
        assert_eq!(answer(&router, "GET", "/users/42/posts/1").1, "tail");
        assert_eq!(answer(&router, "GET", "/users").0, 404);
        assert_eq!(answer(&router, "GET", "/users/").0, 404);
    }

    #[test]
    fn params_capture_one_non_empty_segment() {
        let mut router = Router::new();
        router.get("/items/:id", named("item"));
        assert_eq!(answer(&router, "GET", "/items/x%20y").1, "item id=x%20y");
        assert_eq!(answer(&router, "GET", "/items/").0, 404);
        assert_eq!(answer(&router, "GET", "/items/1/2").0, 404);
        assert_eq!(
            answer(&router, "GET", "/items/7?q=1").1,
            "item id=7",
            "the query is not part of the path"
        );
    }

    #[test]
    fn methods_head_fallback_405_and_404() {
        let mut router = Router::new();
        router.get("/r", named("get"));
        router.post("/r", named("post"));
        router.delete("/p/:id", named("delete"));
        assert_eq!(answer(&router, "HEAD", "/r").1, "get");
        assert_eq!(answer(&router, "POST", "/r").1, "post");
        let Reply::Ready(response) = router.dispatch(request("PUT", "/r")) else {
            panic!("405 is immediate");
        };
        assert_eq!(response.status().as_u16(), 405);
        assert_eq!(response.header("allow"), Some("GET, POST, HEAD"));
        assert_eq!(answer(&router, "GET", "/p/1").0, 405);
        assert_eq!(answer(&router, "DELETE", "/p/1").1, "delete id=1");
        assert_eq!(answer(&router, "GET", "/nowhere").0, 404);
    }

    #[test]
    fn a_later_registration_replaces_the_same_method_and_path() {
        let mut router = Router::new();
        router.get("/x", named("old"));
        router.get("/x", named("new"));
        router.get("/y/:id", named("old"));
        router.get("/y/:id", named("new"));
        assert_eq!(answer(&router, "GET", "/x").1, "new");
        assert_eq!(answer(&router, "GET", "/y/1").1, "new id=1");
    }

    #[test]
    fn the_streaming_fallback_takes_unrouted_bodies_as_they_arrive() {
        let mut router = Router::new();
        router.post("/known", named("known"));
        router.get("/users/:id", named("user"));
        router.fallback_streaming(|_: Request, _: RequestBody| Response::text("streamed"));
        assert!(router.streams(&request("POST", "/upload")));
        assert!(!router.streams(&request("POST", "/known")));
        assert!(!router.streams(&request("PUT", "/users/7")));
        assert_eq!(answer(&router, "GET", "/upload").1, "streamed");
        assert_eq!(answer(&router, "POST", "/known").1, "known");
        assert!(!Router::new().streams(&request("POST", "/x")));
    }

    #[test]
    fn the_fallback_takes_every_unmatched_path_and_method() {
        let mut router = Router::new();
        router.get("/known", named("known"));
        router.fallback(named("fallback"));
        assert_eq!(answer(&router, "GET", "/known").1, "known");
        assert_eq!(answer(&router, "GET", "/").1, "fallback");
        assert_eq!(answer(&router, "PATCH", "/any/thing").1, "fallback");
        assert_eq!(
            answer(&router, "POST", "/known").0,
            405,
            "a known path keeps its 405"
        );
    }
}
