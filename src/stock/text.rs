//! `handler = "text"`: a fixed body.

use bytes::Bytes;

use crate::http::{HeaderText, Request, Response, StatusCode};
use crate::router::Router;

/// Mounts GET `path` answering `body` with `content_type`.
pub fn mount(router: &mut Router, path: &str, body: &str, content_type: &str) {
    // Leaked once per shard when the routes are built (they live as long as the
    // shard): static bytes clone without touching a reference count, so answering
    // touches no atomic.
    let body = Bytes::from_static(Box::leak(body.to_owned().into_boxed_str()).as_bytes());
    let content_type = HeaderText::from(&*Box::leak(content_type.to_owned().into_boxed_str()));
    router.get(path, move |_: Request| {
        Response::new(StatusCode::OK).with_body(content_type.clone(), body.clone())
    });
}
