//! Ready-made handlers the config's `[[route]]` tables mount, one module each: text,
//! echo, stats, metrics, the health routes (ready, live), and static files. The same
//! handlers can be mounted from code: `router.get("/ready", Ready::new(shard))`,
//! `Live`, `Stats::new(shard)`, `Metrics::new(shard)`, and
//! `router.static_files("/assets", "public")`.

use std::cell::Cell;
use std::rc::Rc;

use haywire_shards::ShardCtx;

use crate::config::{CompressionConfig, CorsConfig, RouteConfig};
use crate::layer::{Compression, Cors};
use crate::router::Router;

pub(crate) mod echo;
pub(crate) mod health;
pub(crate) mod metrics;
pub(crate) mod static_files;
pub(crate) mod stats;
pub(crate) mod text;

pub use health::{Live, Ready};
pub use metrics::Metrics;
pub use stats::Stats;

/// Mounts the configured stock routes on `router`; `draining` is the shard's flag that
/// readiness reports.
pub(crate) fn mount(
    routes: &[RouteConfig],
    router: &mut Router,
    ctx: &Rc<ShardCtx>,
    draining: &Rc<Cell<bool>>,
) {
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
            RouteConfig::Ready { path } => health::mount_ready(router, path, draining),
            RouteConfig::Live { path } => health::mount_live(router, path),
            RouteConfig::Static {
                path,
                dir,
                allow_check_then_open,
                max_age,
                index,
            } => static_files::mount(
                router,
                path,
                dir,
                &static_files::Options {
                    allow_check_then_open: *allow_check_then_open,
                    max_age: *max_age,
                    index,
                },
            ),
        }
    }
}

/// Wraps the stock routes mounted so far (with the 404 and 405 answers) in the layers
/// `[compression]` and `[cors]` enable; routes added in code afterwards are not
/// wrapped.
pub(crate) fn wrap(compression: &CompressionConfig, cors: &CorsConfig, router: &mut Router) {
    if compression.enabled {
        router.layer(Compression::from_config(compression));
    }
    if cors.enabled {
        router.layer(Cors::from_config(cors));
    }
}
