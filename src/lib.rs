#![doc = include_str!("../README.md")]

mod access_log;
mod balancer;
mod body;
pub mod config;
mod conn;
pub mod handler;
pub mod http;
pub mod metrics;
mod net;
#[cfg(feature = "pg")]
pub mod pg;
mod pool;
mod reload;
mod router;
mod server;
mod shard;
pub mod stats;
mod stock;
mod watchdog;

pub use body::RequestBody;
pub use config::Config;
pub use handler::{BodyHandler, Handler, IntoReply, Reply};
pub use haywire_shards::ShardCtx;
pub use http::{
    BodyStream, ChunkStream, HeaderText, Headers, Method, Request, Response, StatusCode, Version,
};
pub use reload::{Reloaded, Reloader};
pub use router::Router;
pub use server::{RunningServer, Server};

/// The sans-I/O decoder and encoder, for the micro-benchmarks and fuzz targets (cargo
/// feature `internals`); not a stable API.
#[cfg(feature = "internals")]
pub mod internals {
    pub use crate::http::codec::{BodyPiece, Decoder, Event, Limits};
    pub use crate::http::response::ResponseMode;
}
