//! `handler = "metrics"`: the counters in the Prometheus text format.

use std::rc::Rc;

use haywire_shards::ShardCtx;

use super::stats::{gather_stats, unavailable};
use crate::handler::{Handler, Reply};
use crate::http::{Method, Request, Response, StatusCode};
use crate::metrics;
use crate::router::Router;

/// Mounts GET `path`.
pub fn mount(router: &mut Router, path: &str, ctx: &Rc<ShardCtx>) {
    router.route(Method::Get, path, Metrics::new(ctx));
}

/// The metrics handler: every shard's counters in the Prometheus text format
/// (`router.get("/metrics", Metrics::new(shard))`).
pub struct Metrics {
    ctx: Rc<ShardCtx>,
}

impl Metrics {
    /// Metrics as seen from `shard`.
    pub fn new(shard: &Rc<ShardCtx>) -> Metrics {
        Metrics { ctx: shard.clone() }
    }
}

impl Handler for Metrics {
    fn call(&self, _: Request) -> Reply {
        Reply::Pending(Box::pin(answer(self.ctx.clone())))
    }
}

/// Answers with every shard's counters and their total in the Prometheus text format.
pub async fn answer(ctx: Rc<ShardCtx>) -> Response {
    match gather_stats(&ctx).await {
        Some(shards) => {
            Response::new(StatusCode::OK).with_body(metrics::CONTENT_TYPE, metrics::render(&shards))
        }
        None => unavailable(),
    }
}
