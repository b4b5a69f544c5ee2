//! Handlers tested without sockets: build a request in code, run it through a
//! `Router` (its layers included), look at the response.
//!
//! ```rust
//! use haywire::{testing::TestRequest, Request, Router};
//! let mut router = Router::new();
//! router.get("/hello/:name", |req: Request| format!("hello {}", req.param("name").unwrap()));
//! let response = TestRequest::get("/hello/ann").send(&router);
//! assert_eq!(response.status().as_u16(), 200);
//! assert_eq!(haywire::testing::body(&response), "hello ann");
//! ```
//!
//! The request goes through the same decoder as one from a socket, so what a test
//! builds is what a client could send. [`TestRequest::send`] awaits an asynchronous
//! handler on a glommio executor of its own (timers and `spawn_local` work), so call
//! it from a plain thread such as a `#[test]`, not from inside a shard.

use bytes::{Bytes, BytesMut};
use futures_lite::StreamExt;
use serde::Serialize;

use crate::http::{Decoder, Event, Limits, Request, Response};
use crate::router::Router;

/// A request under construction: method, target, headers, body.
#[derive(Debug, Clone)]
pub struct TestRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl TestRequest {
    /// `method target` (target is the path and query: `/items?limit=2`).
    pub fn new(method: &str, target: &str) -> TestRequest {
        TestRequest {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// `GET target`.
    pub fn get(target: &str) -> TestRequest {
        TestRequest::new("GET", target)
    }

    /// `POST target`.
    pub fn post(target: &str) -> TestRequest {
        TestRequest::new("POST", target)
    }

    /// `PUT target`.
    pub fn put(target: &str) -> TestRequest {
        TestRequest::new("PUT", target)
    }

    /// `PATCH target`.
    pub fn patch(target: &str) -> TestRequest {
        TestRequest::new("PATCH", target)
    }

    /// `DELETE target`.
    pub fn delete(target: &str) -> TestRequest {
        TestRequest::new("DELETE", target)
    }

    /// Adds a header (repeats are kept).
    pub fn header(mut self, name: &str, value: &str) -> TestRequest {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body (sent with its `Content-Length`).
    pub fn body(mut self, body: impl Into<Bytes>) -> TestRequest {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    pub fn json(self, value: &impl Serialize) -> TestRequest {
        let body = serde_json::to_vec(value).expect("a test value serialises");
        self.header("Content-Type", "application/json").body(body)
    }

    /// The request as a handler receives it, decoded from the wire form. Panics when
    /// the parts do not make a valid HTTP/1.1 request (a test's mistake).
    pub fn to_request(&self) -> Request {
        let mut wire = BytesMut::new();
        wire.extend_from_slice(format!("{} {} HTTP/1.1\r\n", self.method, self.target).as_bytes());
        let mut has_host = false;
        for (name, value) in &self.headers {
            has_host |= name.eq_ignore_ascii_case("host");
            wire.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if !has_host {
            wire.extend_from_slice(b"Host: test\r\n");
        }
        if !self.body.is_empty() {
            wire.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        wire.extend_from_slice(b"\r\n");
        wire.extend_from_slice(&self.body);
        let limits = Limits {
            max_request_size: usize::MAX,
            ..Limits::default()
        };
        match Decoder::new(limits, 0).decode(&mut wire) {
            Ok(Event::Request(request)) => request,
            other => panic!(
                "{} {} with {:?} is not a valid request: {other:?}",
                self.method, self.target, self.headers
            ),
        }
    }

    /// Runs the request through `router` and its layers, awaiting an asynchronous
    /// handler, and returns the response.
    pub fn send(&self, router: &Router) -> Response {
        call(router, self.to_request())
    }
}

/// Runs `request` through `router` and its layers and returns the response.
pub fn call(router: &Router, request: Request) -> Response {
    let reply = router.dispatch(request);
    run(async move { reply.await })
}

/// The whole body of `response` as text (lossy), a streamed body included.
pub fn body(response: &Response) -> String {
    String::from_utf8_lossy(&body_bytes(response)).into_owned()
}

/// The whole body of `response`: its buffered body, or every piece of its stream
/// (which can be read once).
pub fn body_bytes(response: &Response) -> Bytes {
    if response.body_stream().is_none() {
        return response.body().clone();
    }
    let mut all = BytesMut::new();
    for_each_piece(response, |piece| all.extend_from_slice(piece));
    all.freeze()
}

/// Calls `f` with each piece of `response`'s body as the connection would send it
/// (the buffered body is one piece), dropping each before asking for the next.
pub fn for_each_piece(response: &Response, mut f: impl FnMut(&Bytes)) {
    let Some(stream) = response.body_stream().and_then(|s| s.take()) else {
        f(response.body());
        return;
    };
    run(async move {
        let mut stream = stream;
        while let Some(piece) = stream.next().await {
            f(&piece);
        }
    })
}

/// Runs `future` to completion on a glommio executor made for it.
fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    glommio::LocalExecutorBuilder::default()
        .make()
        .expect("a glommio executor for the test")
        .run(future)
}
