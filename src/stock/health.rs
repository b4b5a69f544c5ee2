//! `handler = "ready"` and `handler = "live"`: health routes for a load balancer or an
//! orchestrator.
//!
//! Readiness answers 503 from the moment a graceful shutdown begins (the shard's
//! `draining` flag), while in-flight requests are still being served: a balancer that
//! polls it stops sending new requests before the connections close. Liveness answers
//! 200 as long as the shard answers at all.

use std::cell::Cell;
use std::rc::Rc;

use haywire_shards::ShardCtx;

use crate::handler::{Handler, Reply};
use crate::http::{Method, Request, Response, StatusCode};
use crate::router::Router;

/// The shard's draining flag, registered as a shard local so that handlers made in
/// code ([`Ready::new`]) read the same flag the config's `ready` routes do.
pub(crate) struct Draining(pub(crate) Rc<Cell<bool>>);

/// The readiness handler: `200 ready`, or `503 draining` with `Connection: close` once
/// the shard's graceful shutdown began (`router.get("/ready", Ready::new(shard))`).
pub struct Ready {
    draining: Rc<Cell<bool>>,
}

impl Ready {
    /// Readiness of `shard` (always ready on a router not served by a `Server`).
    pub fn new(shard: &ShardCtx) -> Ready {
        let draining = shard
            .local::<Draining>()
            .map_or_else(Rc::default, |flag| flag.0.clone());
        Ready { draining }
    }
}

impl Handler for Ready {
    fn call(&self, _: Request) -> Reply {
        Reply::Ready(ready(!self.draining.get()))
    }
}

/// The liveness handler: `200 live` as long as the shard answers at all.
pub struct Live;

impl Handler for Live {
    fn call(&self, _: Request) -> Reply {
        Reply::Ready(Response::new(StatusCode::OK).with_body("text/plain", "live\n"))
    }
}

/// Mounts GET `path` answering readiness from the shard's `draining` flag.
pub fn mount_ready(router: &mut Router, path: &str, draining: &Rc<Cell<bool>>) {
    let draining = draining.clone();
    router.route(Method::Get, path, Ready { draining });
}

/// Mounts GET `path` answering liveness.
pub fn mount_live(router: &mut Router, path: &str) {
    router.get(path, Live);
}

/// 200 `ready` when serving; 503 `draining` with `Connection: close` once a shutdown
/// began (the connection is closing anyway).
fn ready(serving: bool) -> Response {
    if serving {
        Response::new(StatusCode::OK).with_body("text/plain", "ready\n")
    } else {
        Response::new(StatusCode::SERVICE_UNAVAILABLE)
            .with_body("text/plain", "draining\n")
            .with_close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_the_draining_flag() {
        assert_eq!(ready(true).status(), StatusCode::OK);
        let draining = ready(false);
        assert_eq!(draining.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(draining.closes());
    }
}
