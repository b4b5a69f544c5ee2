//! The TOML configuration, one concern per file: `schema` (the keys and their
//! defaults), `load` (read, parse, apply [`Overrides`], validate), `validate` (what
//! types alone cannot check), `live` (the settings a running shard applies), `restart`
//! (`RESTART_KEYS`, the keys a reload leaves at their running value) and `overrides`
//! (the command line).

use std::fmt;

mod live;
mod load;
mod overrides;
mod restart;
mod schema;
mod validate;

pub(crate) use live::{Settings, WebSocketSettings};
pub use overrides::Overrides;
pub use schema::{
    Balancer, ClientAuth, CompressionConfig, Config, CorsConfig, EncodingName, HandoffPolicy,
    LimitsConfig, LogConfig, LogFormat, PlacementKind, PostgresConfig, RouteConfig, Secret,
    ServerConfig, TimeoutsConfig, TlsConfig, TlsVersion, WebSocketConfig,
};

/// A configuration problem, naming the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path, e.g. `server.port`; empty when the file itself is unreadable.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "key `{}`: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

fn error(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}
