//! `handler = "echo"`: answers POST and PUT with the request body.

use crate::http::{HeaderText, Request, Response, StatusCode};
use crate::router::Router;

/// Mounts POST and PUT `path`.
pub fn mount(router: &mut Router, path: &str) {
    router.post(path, echo);
    router.put(path, echo);
}

/// Answers with the request body and its content type. Both are slices of the
/// request's own bytes: nothing is copied or allocated.
pub fn echo(request: Request) -> Response {
    let content_type = request
        .header_bytes("content-type")
        .unwrap_or_else(|| HeaderText::from("application/octet-stream"));
    Response::new(StatusCode::OK).with_body(content_type, request.body().clone())
}
