//! The TOML configuration: serde structs, defaults, and validation that names the key.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::http::Limits;

/// The whole configuration file. Every key is optional; see `config.toml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listening socket and shard layout.
    pub server: ServerConfig,
    /// Request size limits.
    pub limits: LimitsConfig,
    /// Timeouts, in seconds.
    pub timeouts: TimeoutsConfig,
    /// Stock handlers mounted on paths.
    #[serde(rename = "route")]
    pub routes: Vec<RouteConfig>,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// IP address to listen on.
    pub address: String,
    /// TCP port; 0 picks a free one.
    pub port: u16,
    /// Number of shards; 0 means one per CPU the process may use.
    pub shards: usize,
    /// `pinned` (one shard per CPU) or `unbound`.
    pub placement: PlacementKind,
    /// With `pinned`: the CPUs to use, shard k on `cpus[k]`; empty means all allowed.
    pub cpus: Vec<usize>,
    /// Set TCP_NODELAY on accepted connections.
    pub tcp_nodelay: bool,
    /// Listen backlog of each shard's socket.
    pub backlog: u32,
    /// Bytes each shard registers with io_uring (locked memory).
    pub io_memory: usize,
    /// Open connections per shard; past it new connections are closed at once.
    pub max_connections: usize,
    /// Seconds a graceful shutdown waits for busy connections before closing them.
    pub shutdown_grace: f64,
    /// How connections reach shards.
    pub balancer: Balancer,
    /// With the `handoff` balancer: how the accepting shard picks a shard.
    pub handoff: HandoffPolicy,
}

/// How connections reach shards.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Balancer {
    /// Every shard accepts on its own SO_REUSEPORT listener; the kernel spreads
    /// connections by address hash.
    Reuseport,
    /// Shard 0 accepts and hands each connection to a shard over the control mesh.
    Handoff,
}

/// How the `handoff` balancer picks a shard.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum HandoffPolicy {
    /// Each shard in turn.
    RoundRobin,
    /// The shard with the fewest open connections.
    LeastConnections,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            address: "0.0.0.0".into(),
            port: 8000,
            shards: 0,
            placement: PlacementKind::Pinned,
            cpus: Vec::new(),
            tcp_nodelay: true,
            backlog: 1024,
            io_memory: 128 * 1024,
            max_connections: 10_000,
            shutdown_grace: 10.0,
            balancer: Balancer::Reuseport,
            handoff: HandoffPolicy::LeastConnections,
        }
    }
}

/// Where shards run.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PlacementKind {
    /// Each shard pinned to its own CPU.
    Pinned,
    /// Shards float.
    Unbound,
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body in bytes (413 beyond).
    pub max_request_size: usize,
    /// Largest request head in bytes (431 beyond), at most 65535.
    pub max_head_size: usize,
    /// Longest request target in bytes (414 beyond).
    pub max_uri_length: usize,
    /// Initial read buffer per connection; it grows to fit a request and shrinks back.
    pub read_buffer: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let limits = Limits::default();
        LimitsConfig {
            max_request_size: limits.max_body,
            max_head_size: limits.max_head,
            max_uri_length: limits.max_uri,
            read_buffer: 4096,
        }
    }
}

/// `[timeouts]`, in seconds (fractions allowed).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutsConfig {
    /// From a request's first byte to the end of its head (408 beyond).
    pub header: f64,
    /// Longest pause while a body is arriving (408 beyond).
    pub body: f64,
    /// Longest idle time between requests on a persistent connection (closed beyond).
    pub keep_alive: f64,
    /// Longest time a client may leave responses unread (closed beyond).
    pub write: f64,
    /// Longest time an asynchronous handler may take (503 beyond); 0 disables it.
    pub handler: f64,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            header: 10.0,
            body: 30.0,
            keep_alive: 60.0,
            write: 30.0,
            handler: 0.0,
        }
    }
}

/// The timeouts as durations; `handler` is `None` when disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// See [`TimeoutsConfig::header`].
    pub header: Duration,
    /// See [`TimeoutsConfig::body`].
    pub body: Duration,
    /// See [`TimeoutsConfig::keep_alive`].
    pub keep_alive: Duration,
    /// See [`TimeoutsConfig::write`].
    pub write: Duration,
    /// See [`TimeoutsConfig::handler`].
    pub handler: Option<Duration>,
}

/// A `[[route]]`: a stock handler mounted on a path.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "handler", rename_all = "lowercase", deny_unknown_fields)]
pub enum RouteConfig {
    /// Answers GET with a fixed body.
    Text {
        /// Route path.
        path: String,
        /// Response body.
        body: String,
        /// Content-Type of the body.
        #[serde(default = "default_text_type")]
        content_type: String,
    },
    /// Answers POST (and PUT) with the request body.
    Echo {
        /// Route path.
        path: String,
    },
    /// Answers GET with the server's counters as JSON, per shard and summed.
    Stats {
        /// Route path.
        path: String,
    },
    /// Answers GET with the counters in the Prometheus text format.
    Metrics {
        /// Route path.
        path: String,
    },
}

/// Longest timeout accepted: a day.
const MAX_TIMEOUT: f64 = 86_400.0;

fn default_text_type() -> String {
    "text/plain; charset=utf-8".into()
}

impl RouteConfig {
    /// The route's path.
    pub fn path(&self) -> &str {
        match self {
            RouteConfig::Text { path, .. }
            | RouteConfig::Echo { path }
            | RouteConfig::Stats { path }
            | RouteConfig::Metrics { path } => path,
        }
    }
}

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

impl Config {
    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let deserializer = toml::Deserializer::new(text);
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let message = e.inner().message().trim().to_string();
            error(if key == "." { String::new() } else { key }, message)
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| error("", format!("cannot read {}: {e}", path.display())))?;
        Config::from_toml(&text)
    }

    /// Checks what types alone cannot: addresses, non-zero limits, route paths.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.address.parse::<IpAddr>().map_err(|_| {
            error(
                "server.address",
                format!("{:?} is not an IP address", self.server.address),
            )
        })?;
        let positive = [
            ("server.backlog", self.server.backlog as usize),
            ("server.io_memory", self.server.io_memory),
            ("limits.max_request_size", self.limits.max_request_size),
            ("limits.max_head_size", self.limits.max_head_size),
            ("limits.max_uri_length", self.limits.max_uri_length),
            ("limits.read_buffer", self.limits.read_buffer),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(error(key, "must be greater than 0"));
            }
        }
        let timeouts = [
            ("server.shutdown_grace", self.server.shutdown_grace),
            ("timeouts.header", self.timeouts.header),
            ("timeouts.body", self.timeouts.body),
            ("timeouts.keep_alive", self.timeouts.keep_alive),
            ("timeouts.write", self.timeouts.write),
        ];
        for (key, value) in timeouts {
            if !(value > 0.0 && value <= MAX_TIMEOUT) {
                return Err(error(
                    key,
                    format!("must be more than 0 and at most {MAX_TIMEOUT} seconds"),
                ));
            }
        }
        if !(0.0..=MAX_TIMEOUT).contains(&self.timeouts.handler) {
            return Err(error(
                "timeouts.handler",
                format!("must be 0 (off) to {MAX_TIMEOUT} seconds"),
            ));
        }
        if self.server.max_connections == 0 {
            return Err(error("server.max_connections", "must be greater than 0"));
        }
        if self.limits.max_head_size > u16::MAX as usize {
            return Err(error("limits.max_head_size", "must be at most 65535"));
        }
        if self.server.placement == PlacementKind::Unbound && !self.server.cpus.is_empty() {
            return Err(error(
                "server.cpus",
                "only applies with placement = \"pinned\"",
            ));
        }
        for (i, route) in self.routes.iter().enumerate() {
            if !route.path().starts_with('/') {
                return Err(error(format!("route[{i}].path"), "must start with '/'"));
            }
        }
        Ok(())
    }

    /// The timeouts as durations.
    pub fn timeouts(&self) -> Timeouts {
        let t = &self.timeouts;
        Timeouts {
            header: Duration::from_secs_f64(t.header),
            body: Duration::from_secs_f64(t.body),
            keep_alive: Duration::from_secs_f64(t.keep_alive),
            write: Duration::from_secs_f64(t.write),
            handler: (t.handler > 0.0).then(|| Duration::from_secs_f64(t.handler)),
        }
    }

    /// The decoder limits these settings describe.
    pub fn limits(&self) -> Limits {
        Limits {
            max_head: self.limits.max_head_size,
            max_uri: self.limits.max_uri_length,
            max_body: self.limits.max_request_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_is_valid_and_complete() {
        let text = include_str!("../config.toml");
        let config = Config::from_toml(text).unwrap();
        assert_eq!(config.server, ServerConfig::default());
        assert_eq!(config.limits, LimitsConfig::default());
        assert_eq!(config.timeouts, TimeoutsConfig::default());
        assert_eq!(config.routes.len(), 4);
    }

    #[test]
    fn the_shipped_config_shows_every_key() {
        let shipped: toml::Table = include_str!("../config.toml").parse().unwrap();
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        for (section, keys) in defaults
            .iter()
            .filter_map(|(k, v)| Some((k, v.as_table()?)))
        {
            let shown = shipped[section].as_table().unwrap();
            for key in keys.keys() {
                assert!(shown.contains_key(key), "config.toml lacks {section}.{key}");
            }
        }
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[server]\nport = \"x\"", "server.port"),
            ("[server]\nbogus = 1", "server.bogus"),
            ("[server]\naddress = \"nowhere\"", "server.address"),
            ("[limits]\nmax_request_size = 0", "limits.max_request_size"),
            ("[limits]\nmax_head_size = 70000", "limits.max_head_size"),
            ("[server]\nplacement = \"sideways\"", "server.placement"),
            ("[timeouts]\nheader = 0", "timeouts.header"),
            ("[timeouts]\nheader = 0.0", "timeouts.header"),
            ("[timeouts]\nhandler = -1.0", "timeouts.handler"),
            ("[server]\nmax_connections = 0", "server.max_connections"),
            (
                "[[route]]\nhandler = \"text\"\npath = \"x\"\nbody = \"\"",
                "route[0].path",
            ),
        ];
        for (text, key) in cases {
            let err = Config::from_toml(text).unwrap_err();
            assert_eq!(err.key, key, "{text}: {err}");
        }
        let unknown = Config::from_toml("[server]\nbogus = 1").unwrap_err();
        assert!(unknown.to_string().contains("bogus"), "{unknown}");
    }
}
