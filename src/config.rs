//! The TOML configuration: serde structs, defaults, and validation that names the key.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::http::codec::MAX_HEAD_SIZE;
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
    /// The PostgreSQL client of the `pg` feature (`haywire::pg`); unused without it.
    pub postgres: PostgresConfig,
    /// HTTPS: certificate and key files; off when empty.
    pub tls: TlsConfig,
    /// The access log.
    pub log: LogConfig,
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
    /// Bytes per second a body must average once it has taken longer than
    /// `timeouts.body`; slower gets 408. 0 turns the check off.
    pub min_body_rate: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let limits = Limits::default();
        LimitsConfig {
            max_request_size: limits.max_request_size,
            max_head_size: limits.max_head_size,
            max_uri_length: limits.max_uri_length,
            read_buffer: 4096,
            min_body_rate: 1024,
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

/// `[postgres]`: the per-shard PostgreSQL client of the `pg` feature (`haywire::pg`).
/// Either `url` or `host` (with `port`, `dbname`, `user`, `password`); both empty means
/// no database is configured.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// A libpq-style URL (`postgres://user:pass@host:port/db`) or `key=value` string;
    /// empty: use the separate keys.
    pub url: String,
    /// Host name or IP address for TCP, or a directory holding the Unix socket when it
    /// starts with `/`; empty (and no `url`): not configured.
    pub host: String,
    /// TCP port, also the Unix socket's number (`.s.PGSQL.<port>`).
    pub port: u16,
    /// Database name; empty: the user name.
    pub dbname: String,
    /// User to log in as.
    pub user: String,
    /// Password; empty: none.
    pub password: String,
    /// Connections each shard opens; requests spread over them round-robin.
    pub connections_per_shard: usize,
    /// Seconds a connection attempt (connect, login, prepare) may take.
    pub connect_timeout: f64,
    /// Seconds a query may take before the request gets 504; also the server-side
    /// `statement_timeout`, so a runaway statement does not hold the connection.
    pub query_timeout: f64,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: String::new(),
            host: String::new(),
            port: 5432,
            dbname: String::new(),
            user: String::new(),
            password: String::new(),
            connections_per_shard: 1,
            connect_timeout: 5.0,
            query_timeout: 5.0,
        }
    }
}

/// Most connections one shard may open: PostgreSQL's own default `max_connections` is 100.
const MAX_PG_CONNECTIONS_PER_SHARD: usize = 64;

impl PostgresConfig {
    /// Whether a database is configured (`url` or `host` set).
    pub fn is_configured(&self) -> bool {
        !self.url.is_empty() || !self.host.is_empty()
    }

    /// Checks the keys; errors name them as `postgres.<key>`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.url.is_empty() && !self.host.is_empty() {
            return Err(error(
                "postgres.url",
                "set either `url` or `host`, not both",
            ));
        }
        let url_ok = self.url.is_empty()
            || self.url.starts_with("postgres://")
            || self.url.starts_with("postgresql://")
            || self.url.contains('=');
        if !url_ok {
            return Err(error(
                "postgres.url",
                "must start with postgres:// or postgresql://, or be key=value pairs",
            ));
        }
        if !self.host.is_empty() && self.user.is_empty() {
            return Err(error("postgres.user", "must be set with `host`"));
        }
        if self.port == 0 {
            return Err(error("postgres.port", "must be greater than 0"));
        }
        if !(1..=MAX_PG_CONNECTIONS_PER_SHARD).contains(&self.connections_per_shard) {
            return Err(error(
                "postgres.connections_per_shard",
                format!("must be 1 to {MAX_PG_CONNECTIONS_PER_SHARD}"),
            ));
        }
        for (key, value) in [
            ("postgres.connect_timeout", self.connect_timeout),
            ("postgres.query_timeout", self.query_timeout),
        ] {
            if !(value > 0.0 && value <= MAX_TIMEOUT) {
                return Err(error(
                    key,
                    format!("must be more than 0 and at most {MAX_TIMEOUT} seconds"),
                ));
            }
        }
        Ok(())
    }
}

/// `[log]`: the access log, one line per response, buffered per shard.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `"off"`, `"stdout"`, or the path of a file each shard appends to.
    pub access: String,
    /// Line format.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            access: "off".into(),
            format: LogFormat::Combined,
        }
    }
}

/// How access log lines are written.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// The NCSA combined format, as Apache's and nginx's default.
    Combined,
    /// One JSON object per line.
    Json,
}

impl LogConfig {
    /// Checks the keys; errors name them as `log.<key>`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.access.is_empty() {
            return Err(error(
                "log.access",
                "must be \"off\", \"stdout\" or a file path",
            ));
        }
        Ok(())
    }
}

/// `[tls]`: when `cert` and `key` are set, the listener speaks HTTPS only (TLS 1.3 and
/// 1.2, ALPN `http/1.1`). A reload re-reads both files; new connections use them.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, leaf first; empty: TLS off.
    pub cert: String,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1); empty: TLS off.
    pub key: String,
}

impl TlsConfig {
    /// Whether TLS is on.
    pub fn enabled(&self) -> bool {
        !self.cert.is_empty() || !self.key.is_empty()
    }

    /// Reads and checks both files; errors name `tls.cert` or `tls.key`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::net::TlsKeys::load(self).map(drop)
    }
}

/// The timeouts as durations; `handler` is `None` when disabled. Part of [`Settings`].
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
    /// Readiness for a load balancer: GET answers 200, and 503 from the moment a
    /// graceful shutdown begins, so the balancer stops sending before connections close.
    Ready {
        /// Route path.
        path: String,
    },
    /// Liveness: GET answers 200 while the shard serves.
    Live {
        /// Route path.
        path: String,
    },
    /// Serves the files under `dir` at `path` and below (GET and HEAD): content types
    /// by extension, ETag and Last-Modified with 304, single ranges (206/416),
    /// `index.html` for directories; nothing outside `dir` is ever read.
    Static {
        /// Route path: the URL prefix.
        path: String,
        /// The directory served.
        dir: String,
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
            | RouteConfig::Metrics { path }
            | RouteConfig::Ready { path }
            | RouteConfig::Live { path }
            | RouteConfig::Static { path, .. } => path,
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
        Config::from_toml_with(text, &Overrides::default())
    }

    /// Parses TOML text, applies `overrides`, and validates the result.
    pub fn from_toml_with(text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        let deserializer = toml::Deserializer::new(text);
        let mut config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let message = e.inner().message().trim().to_string();
            error(if key == "." { String::new() } else { key }, message)
        })?;
        overrides.apply(&mut config);
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, &Overrides::default())
    }

    /// Reads and parses a file, applies `overrides` (the command line), and validates.
    pub fn load_with(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| error("", format!("cannot read {}: {e}", path.display())))?;
        Config::from_toml_with(&text, overrides)
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
        if self.limits.max_head_size > MAX_HEAD_SIZE {
            return Err(error(
                "limits.max_head_size",
                format!("must be at most {MAX_HEAD_SIZE}"),
            ));
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
            if let RouteConfig::Static { dir, .. } = route {
                if !Path::new(dir).is_dir() {
                    return Err(error(
                        format!("route[{i}].dir"),
                        format!("{dir:?} is not a directory"),
                    ));
                }
            }
        }
        self.postgres.validate()?;
        self.tls.validate()?;
        self.log.validate()?;
        Ok(())
    }

    /// The settings a running shard applies, and may change on reload: the one place
    /// that turns keys into the values connections use.
    pub fn settings(&self) -> Settings {
        let t = &self.timeouts;
        Settings {
            limits: Limits {
                max_head_size: self.limits.max_head_size,
                max_uri_length: self.limits.max_uri_length,
                max_request_size: self.limits.max_request_size,
            },
            min_body_rate: self.limits.min_body_rate,
            timeouts: Timeouts {
                header: Duration::from_secs_f64(t.header),
                body: Duration::from_secs_f64(t.body),
                keep_alive: Duration::from_secs_f64(t.keep_alive),
                write: Duration::from_secs_f64(t.write),
                handler: (t.handler > 0.0).then(|| Duration::from_secs_f64(t.handler)),
            },
            max_connections: self.server.max_connections as u64,
            tcp_nodelay: self.server.tcp_nodelay,
            shutdown_grace: Duration::from_secs_f64(self.server.shutdown_grace),
        }
    }

    /// Keys whose value differs between `self` (running) and `new` but that only take
    /// effect on a restart.
    pub fn restart_keys(&self, new: &Config) -> Vec<&'static str> {
        RESTART_KEYS
            .iter()
            .filter(|key| (key.differs)(self, new))
            .map(|key| key.name)
            .collect()
    }

    /// `new` with the restart-only keys of `self`: what runs after a reload.
    pub fn reloaded(&self, mut new: Config) -> Config {
        for key in RESTART_KEYS {
            (key.keep)(&mut new, self);
        }
        new
    }
}

/// What a running shard applies and a reload may change in place; built only by
/// [`Config::settings`]. Connections pick up new values at their next request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// `limits.max_head_size`, `limits.max_uri_length`, `limits.max_request_size`.
    pub limits: Limits,
    /// `limits.min_body_rate`, bytes per second (0: off).
    pub min_body_rate: u64,
    /// `[timeouts]`.
    pub timeouts: Timeouts,
    /// `server.max_connections`.
    pub max_connections: u64,
    /// `server.tcp_nodelay`, for newly accepted connections.
    pub tcp_nodelay: bool,
    /// `server.shutdown_grace`.
    pub shutdown_grace: Duration,
}

/// A key that only takes effect on a restart: its name, whether two configs differ in
/// it, and how to carry the running value over into a reloaded config.
pub struct RestartKey {
    /// The dotted key, as in `config.toml`.
    pub name: &'static str,
    differs: fn(&Config, &Config) -> bool,
    keep: fn(&mut Config, &Config),
}

macro_rules! restart_keys {
    ($($name:literal => $($field:ident).+;)*) => {
        /// Every key that a reload reports and leaves at its running value.
        pub const RESTART_KEYS: &[RestartKey] = &[$(RestartKey {
            name: $name,
            differs: |a, b| a.$($field).+ != b.$($field).+,
            keep: |new, running| new.$($field).+ = running.$($field).+.clone(),
        }),*];
    };
}

restart_keys! {
    "server.address" => server.address;
    "server.port" => server.port;
    "server.shards" => server.shards;
    "server.placement" => server.placement;
    "server.cpus" => server.cpus;
    "server.backlog" => server.backlog;
    "server.io_memory" => server.io_memory;
    "server.balancer" => server.balancer;
    "server.handoff" => server.handoff;
    "limits.read_buffer" => limits.read_buffer;
    "route" => routes;
    "postgres" => postgres;
}

/// Values given on the command line, applied over the file at start and at every
/// reload, so a reload compares like with like.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--address`: `server.address`.
    pub address: Option<String>,
    /// `--port`: `server.port`.
    pub port: Option<u16>,
    /// `--shards`: `server.shards`.
    pub shards: Option<usize>,
}

impl Overrides {
    /// Replaces the overridden keys of `config`.
    pub fn apply(&self, config: &mut Config) {
        if let Some(address) = &self.address {
            config.server.address = address.clone();
        }
        if let Some(port) = self.port {
            config.server.port = port;
        }
        if let Some(shards) = self.shards {
            config.server.shards = shards;
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
        assert_eq!(config.log, LogConfig::default());
        assert_eq!(config.routes.len(), 6);
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
    fn only_startup_keys_need_a_restart_and_keep_their_running_value() {
        let running = Config::default();
        let mut new = running.clone();
        new.limits.max_request_size = 5;
        new.timeouts.header = 1.0;
        new.server.max_connections = 3;
        assert!(running.restart_keys(&new).is_empty());
        new.server.port = 1;
        new.server.shards = 3;
        new.routes.push(RouteConfig::Echo { path: "/e".into() });
        assert_eq!(
            running.restart_keys(&new),
            vec!["server.port", "server.shards", "route"]
        );
        let now = running.reloaded(new);
        assert_eq!(now.server.port, running.server.port);
        assert_eq!(now.routes, running.routes);
        assert_eq!(
            now.limits.max_request_size, 5,
            "a live key takes the new value"
        );
    }

    #[test]
    fn overrides_apply_over_the_file() {
        let overrides = Overrides {
            port: Some(18811),
            shards: Some(3),
            ..Overrides::default()
        };
        let config = Config::from_toml_with("[server]\nport = 8000\nshards = 1", &overrides);
        let config = config.unwrap();
        assert_eq!((config.server.port, config.server.shards), (18811, 3));
        let bad = Overrides {
            address: Some("nowhere".into()),
            ..Overrides::default()
        };
        assert_eq!(
            Config::from_toml_with("", &bad).unwrap_err().key,
            "server.address"
        );
    }

    #[test]
    fn the_readme_names_every_restart_key() {
        let readme = include_str!("../README.md");
        for key in RESTART_KEYS {
            assert!(
                readme.contains(&format!("`{}`", key.name)),
                "README's reload section lacks {}",
                key.name
            );
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
            ("[log]\naccess = \"\"", "log.access"),
            ("[log]\nformat = \"xml\"", "log.format"),
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

#[cfg(test)]
mod postgres_tests {
    use super::*;

    #[test]
    fn postgres_defaults_are_not_configured() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.postgres, PostgresConfig::default());
        assert!(!config.postgres.is_configured());
        assert_eq!(config.postgres.connections_per_shard, 1);
        assert_eq!(config.postgres.connect_timeout, 5.0);
        assert_eq!(config.postgres.query_timeout, 5.0);
    }

    #[test]
    fn postgres_accepts_a_url_or_separate_keys() {
        let url = Config::from_toml(
            "[postgres]\nurl = \"postgres://u:p@127.0.0.1/db\"\nconnections_per_shard = 4",
        )
        .unwrap();
        assert!(url.postgres.is_configured());
        assert_eq!(url.postgres.connections_per_shard, 4);
        let keys = Config::from_toml(
            "[postgres]\nhost = \"/var/run/postgresql\"\nuser = \"u\"\nquery_timeout = 0.5",
        )
        .unwrap();
        assert!(keys.postgres.is_configured());
        assert_eq!(keys.postgres.query_timeout, 0.5);
    }

    #[test]
    fn postgres_errors_name_the_key() {
        let cases = [
            (
                "[postgres]\nconnections_per_shard = 0",
                "postgres.connections_per_shard",
            ),
            (
                "[postgres]\nconnections_per_shard = 65",
                "postgres.connections_per_shard",
            ),
            (
                "[postgres]\nconnections_per_shard = -1",
                "postgres.connections_per_shard",
            ),
            (
                "[postgres]\nconnect_timeout = 0.0",
                "postgres.connect_timeout",
            ),
            ("[postgres]\nquery_timeout = -1.0", "postgres.query_timeout"),
            (
                "[postgres]\nquery_timeout = \"x\"",
                "postgres.query_timeout",
            ),
            ("[postgres]\nport = 0", "postgres.port"),
            ("[postgres]\nurl = \"mysql://x\"", "postgres.url"),
            (
                "[postgres]\nurl = \"postgres://x\"\nhost = \"y\"",
                "postgres.url",
            ),
            ("[postgres]\nhost = \"127.0.0.1\"", "postgres.user"),
            ("[postgres]\nbogus = 1", "postgres.bogus"),
        ];
        for (text, key) in cases {
            let err = Config::from_toml(text).unwrap_err();
            assert_eq!(err.key, key, "{text}: {err}");
        }
    }
}
