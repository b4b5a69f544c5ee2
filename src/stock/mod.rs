//! Ready-made handlers the config's `[[route]]` tables mount, one module each: text,
//! echo, stats and metrics.

use std::rc::Rc;

use haywire_shards::ShardCtx;

use crate::config::RouteConfig;
use crate::router::Router;

pub mod echo;
pub mod metrics;
pub mod stats;
pub mod text;

/// Mounts the configured stock routes on `router`.
pub fn mount(routes: &[RouteConfig], router: &mut Router, ctx: &Rc<ShardCtx>) {
    for route in routes {
        match route {
            RouteConfig::Text {
                path,
                body,
                content_type,
            } => text::mount(router, path, body, content_type),
            RouteConfig::Echo { path } => echo::mount(router, path),
            RouteConfig::Stats { path } => stats::mount(router, path, ctx),
            RouteConfig::Metrics { path } => metrics::mount(router, path, ctx),
        }
    }
}
