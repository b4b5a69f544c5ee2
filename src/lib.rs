//! Haywire: a thread-per-core HTTP/1.1 server framework on glommio.
//!
//! Each shard (one glommio executor per core) owns its listener, connections, buffers,
//! counters and handler instances; only rare control traffic crosses shards. Start with
//! [`Server`], add routes with a per-shard factory, and see `config.toml` for settings.

pub mod config;
mod conn;
pub mod handler;
pub mod http;
mod pool;
pub mod router;
pub mod server;
pub mod stats;
pub mod stock;

pub use config::Config;
pub use handler::{Handler, IntoReply, Reply};
pub use haywire_shards::ShardCtx;
pub use http::{Method, Request, Response, StatusCode};
pub use router::Router;
pub use server::{RunningServer, Server};
