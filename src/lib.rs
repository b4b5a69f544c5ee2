//! Haywire: a thread-per-core HTTP/1.1 server framework on glommio.
//!
//! A [`Server`] runs one **shard** per CPU: a glommio executor with its own listener,
//! connections, buffer pool, counters and handler instances. The route factory given
//! to [`Server::routes`] runs once on every shard, so handler state is shard-local
//! (`Rc`, `Cell`): the request path takes no lock and touches no atomic. Shards talk
//! only through [`ShardCtx`] (broadcasts and gathers over the control mesh).
//!
//! A handler is a function of a [`Request`] returning a [`Response`] (or anything
//! [`IntoReply`]), synchronous or `async`. [`Router`] matches exact paths, `:name`
//! parameters and `*` wildcards per method. [`Config`] is the TOML file (`config.toml`
//! shows every key); [`RequestBody`] streams large request bodies.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::rc::Rc;
//!
//! use haywire::config::PlacementKind;
//! use haywire::{Config, Request, Response, Router, Server, ShardCtx};
//!
//! let mut config = Config::default();
//! config.server.address = "127.0.0.1".into();
//! config.server.port = 0; // any free port
//! config.server.shards = 1;
//! config.server.placement = PlacementKind::Unbound;
//!
//! let server = Server::new(config)
//!     .routes(|router: &mut Router, shard: &Rc<ShardCtx>| {
//!         let id = shard.id();
//!         router.get("/", move |_: Request| Response::text(format!("hello from shard {id}")));
//!         router.get("/users/:id", |req: Request| {
//!             Response::text(format!("user {}", req.param("id").unwrap_or("?")))
//!         });
//!     })
//!     .start()?;
//!
//! let mut client = std::net::TcpStream::connect(server.local_addr())?;
//! client.write_all(b"GET /users/42 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
//! let mut reply = String::new();
//! client.read_to_string(&mut reply)?;
//! assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(reply.ends_with("user 42"));
//!
//! server.stop();
//! server.join()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Cargo features: `pg` adds `haywire::pg`, a PostgreSQL client per shard; `internals` exposes
//! the sans-I/O decoder and encoder to benchmarks and fuzz targets. The README covers
//! the `haywire` binary, configuration, reloads, TLS, the access log and deployment.

mod access_log;
mod balancer;
mod body;
pub mod config;
mod conn;
pub mod extract;
pub mod handler;
pub mod http;
mod inflight;
pub mod layer;
mod linger;
mod listener;
pub mod metrics;
mod net;
#[cfg(feature = "pg")]
pub mod pg;
mod pool;
mod reload;
mod respond;
mod router;
mod server;
mod shard;
pub mod stats;
pub mod stock;
pub mod testing;
mod watchdog;
pub mod ws;

pub use body::RequestBody;
pub use config::Config;
pub use handler::{BodyHandler, Handler, IntoHandler, IntoReply, Reply};
pub use haywire_shards::ShardCtx;
pub use http::{
    BodyStream, ChunkStream, HeaderText, Headers, Method, Request, Response, StatusCode, Version,
};
pub use listener::UnixSocketFile;
pub use net::{cipher_suites, CipherSuite};
pub use reload::{Reloaded, Reloader};
pub use respond::{Error, IntoResponse, Json};
pub use router::Router;
pub use server::{RunningServer, Server, StopHandle};

/// The sans-I/O decoder and encoder, for the micro-benchmarks and fuzz targets (cargo
/// feature `internals`); not a stable API.
#[cfg(feature = "internals")]
pub mod internals {
    pub use crate::http::codec::{BodyPiece, Decoder, Event, Limits};
    pub use crate::http::encode::{BodyEncoder, ShortBody};
    pub use crate::http::response::{ResponseMode, ServerHeaders, Stamp};

    /// The WebSocket frame codec.
    pub mod ws {
        pub use crate::ws::frame::{
            apply_mask, decode_header, encode_frame, OpCode, ProtocolError,
        };
        pub use crate::ws::message::{Limits, Reader};
        pub use crate::ws::Message;
    }
}
