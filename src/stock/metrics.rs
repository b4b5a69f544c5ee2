//! `handler = "metrics"`: the counters in the Prometheus text format.

use std::rc::Rc;

use haywire_shards::ShardCtx;

use super::stats::{gather_stats, unavailable};
use crate::http::{Method, Request, Response, StatusCode};
use crate::metrics;
use crate::router::Router;

/// Mounts GET `path`.
pub fn mount(router: &mut Router, path: &str, ctx: &Rc<ShardCtx>) {
    let ctx = ctx.clone();
    router.route(Method::Get, path, move |_: Request| answer(ctx.clone()));
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
