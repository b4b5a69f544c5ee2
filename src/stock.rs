//! Ready-made handlers the config can mount: text, echo, stats.

use std::rc::Rc;

use bytes::Bytes;
use haywire_shards::ShardCtx;
use serde::Serialize;

use crate::config::RouteConfig;
use crate::http::response::HeaderText;
use crate::http::{Method, Request, Response, StatusCode};
use crate::router::Router;
use crate::stats::{ShardStats, StatsSnapshot};

/// Mounts the configured stock routes on `router`.
pub fn mount(routes: &[RouteConfig], router: &mut Router, ctx: &Rc<ShardCtx>) {
    for route in routes {
        match route {
            RouteConfig::Text {
                path,
                body,
                content_type,
            } => {
                // Leaked once per shard when the routes are built (they live as long as
                // the shard): static bytes clone without touching a reference count, so
                // answering touches no atomic.
                let body = Bytes::from_static(Box::leak(body.clone().into_boxed_str()).as_bytes());
                let content_type =
                    HeaderText::from(&*Box::leak(content_type.clone().into_boxed_str()));
                router.get(path, move |_: Request| {
                    Response::new(StatusCode::OK).with_body(content_type.clone(), body.clone())
                });
            }
            RouteConfig::Echo { path } => {
                router.post(path, echo);
                router.put(path, echo);
            }
            RouteConfig::Stats { path } => {
                let ctx = ctx.clone();
                router.route(Method::Get, path, move |_: Request| stats(ctx.clone()));
            }
            RouteConfig::Metrics { path } => {
                let ctx = ctx.clone();
                router.route(Method::Get, path, move |_: Request| metrics(ctx.clone()));
            }
        }
    }
}

/// Answers with the request body and its content type.
pub fn echo(request: Request) -> Response {
    let content_type = request
        .header("content-type")
        .unwrap_or("application/octet-stream")
        .to_owned();
    Response::new(StatusCode::OK).with_body(content_type, request.body().clone())
}

#[derive(Serialize)]
struct StatsReport {
    total: StatsSnapshot,
    shards: Vec<StatsSnapshot>,
}

/// Every shard's counters, gathered over the control mesh.
pub async fn gather_stats(ctx: &ShardCtx) -> Option<Vec<StatsSnapshot>> {
    let gathered = ctx
        .gather(|shard: &ShardCtx| shard.local::<ShardStats>().map(|s| s.snapshot(shard.id())))
        .await
        .ok()?;
    Some(gathered.into_iter().flatten().collect())
}

fn unavailable() -> Response {
    Response::new(StatusCode::INTERNAL_SERVER_ERROR).with_body("text/plain", "stats unavailable\n")
}

/// Answers with every shard's counters and their total in the Prometheus text format.
pub async fn metrics(ctx: Rc<ShardCtx>) -> Response {
    match gather_stats(&ctx).await {
        Some(shards) => Response::new(StatusCode::OK).with_body(
            crate::metrics::CONTENT_TYPE,
            crate::metrics::render(&shards),
        ),
        None => unavailable(),
    }
}

/// Gathers every shard's counters over the control mesh and answers with JSON.
pub async fn stats(ctx: Rc<ShardCtx>) -> Response {
    let Some(shards) = gather_stats(&ctx).await else {
        return unavailable();
    };
    let report = StatsReport {
        total: StatsSnapshot::total(&shards),
        shards,
    };
    match serde_json::to_vec_pretty(&report) {
        Ok(json) => Response::json(json),
        Err(_) => Response::new(StatusCode::INTERNAL_SERVER_ERROR),
    }
}
