#![doc = include_str!("../README.md")]

mod balancer;
pub mod config;
mod conn;
pub mod handler;
pub mod http;
pub mod metrics;
mod net;
#[cfg(feature = "pg")]
pub mod pg;
mod pool;
pub mod reload;
pub mod router;
pub mod server;
mod shard;
pub mod stats;
pub mod stock;
mod watchdog;

pub use config::Config;
pub use handler::{Handler, IntoReply, Reply};
pub use haywire_shards::ShardCtx;
pub use http::{Method, Request, Response, StatusCode};
pub use router::Router;
pub use server::{RunningServer, Server};
