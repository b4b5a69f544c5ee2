//! `handler = "stats"`: every shard's counters and their sum, as JSON.

use std::rc::Rc;

use haywire_shards::ShardCtx;
use serde::Serialize;

use crate::handler::{Handler, Reply};
use crate::http::{Method, Request, Response, StatusCode};
use crate::router::Router;
use crate::stats::{ShardStats, StatsSnapshot};

/// Mounts GET `path`.
pub fn mount(router: &mut Router, path: &str, ctx: &Rc<ShardCtx>) {
    router.route(Method::Get, path, Stats::new(ctx));
}

/// The stats handler: every shard's counters and their sum as JSON, gathered over the
/// control mesh (`router.get("/stats", Stats::new(shard))`).
pub struct Stats {
    ctx: Rc<ShardCtx>,
}

impl Stats {
    /// Stats as seen from `shard`.
    pub fn new(shard: &Rc<ShardCtx>) -> Stats {
        Stats { ctx: shard.clone() }
    }
}

impl Handler for Stats {
    fn call(&self, _: Request) -> Reply {
        Reply::Pending(Box::pin(stats(self.ctx.clone())))
    }
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

/// The answer when the counters cannot be gathered (a shard's job panicked).
pub(crate) fn unavailable() -> Response {
    Response::new(StatusCode::INTERNAL_SERVER_ERROR).with_body("text/plain", "stats unavailable\n")
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
