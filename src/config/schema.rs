//! The keys of the configuration file and their defaults: serde structs, one per
//! section.

use std::collections::BTreeMap;

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
    /// The PostgreSQL client of the `pg` feature (`haywire::pg`); unused without it.
    pub postgres: PostgresConfig,
    /// HTTPS: certificate and key files; off when empty.
    pub tls: TlsConfig,
    /// WebSocket size limits, idle timeout and output bound.
    pub websocket: WebSocketConfig,
    /// The access log.
    pub log: LogConfig,
    /// Response compression for the stock routes.
    pub compression: CompressionConfig,
    /// CORS for the stock routes.
    pub cors: CorsConfig,
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
    /// Path of a Unix socket to listen on instead of `address` and `port`; empty: TCP.
    pub unix: String,
    /// Permission bits given to the `unix` socket file (e.g. `0o660`); 0 leaves them
    /// as the umask makes them.
    pub unix_mode: u32,
    /// Number of shards; 0 means one per CPU the process may use.
    pub shards: usize,
    /// `pinned` (one shard per CPU) or `unbound`.
    pub placement: PlacementKind,
    /// With `pinned`: the CPUs to use, shard k on `cpus[k]`; empty means all allowed.
    pub cpus: Vec<usize>,
    /// Set TCP_NODELAY on accepted connections.
    pub tcp_nodelay: bool,
    /// Keep connections open between requests; false: `Connection: close` on every
    /// response, and the connection closes after it.
    pub keep_alive: bool,
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
    /// The `Server` header of every response; empty: none. A handler's own `Server`
    /// header replaces it.
    pub server_header: String,
    /// Headers added to every response that has none of the same name (security
    /// headers such as `Strict-Transport-Security`), by name.
    pub headers: BTreeMap<String, String>,
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
            unix: String::new(),
            unix_mode: 0,
            shards: 0,
            placement: PlacementKind::Pinned,
            cpus: Vec::new(),
            tcp_nodelay: true,
            keep_alive: true,
            backlog: 1024,
            io_memory: 128 * 1024,
            max_connections: 10_000,
            shutdown_grace: 10.0,
            balancer: Balancer::Reuseport,
            handoff: HandoffPolicy::LeastConnections,
            server_header: "haywire".into(),
            headers: BTreeMap::new(),
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

/// `[websocket]`: limits on WebSocket connections (routes added with
/// `Router::websocket`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketConfig {
    /// Largest message, all fragments together, in bytes (closed with 1009 beyond).
    pub max_message_size: usize,
    /// Largest frame in bytes (closed with 1009 beyond).
    pub max_frame_size: usize,
    /// Seconds without traffic either way before the server closes with 1001.
    pub idle_timeout: f64,
    /// Seconds without anything from the client before the server pings it (0: never),
    /// so that a live connection with nothing to say stays open through proxies and NAT
    /// (each ping and its pong is traffic) and a vanished client is noticed.
    pub ping_interval: f64,
    /// Seconds a pinged client has to send anything (its pong) before the server
    /// closes with 1011.
    pub ping_timeout: f64,
    /// Unwritten output, in bytes, at which `send` waits (and `try_send` refuses).
    pub write_buffer: usize,
    /// Accept a client's permessage-deflate offer (RFC 7692): messages compressed both
    /// ways, each on its own (no context kept between messages).
    pub compression: bool,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            max_message_size: 16 << 20,
            max_frame_size: 16 << 20,
            idle_timeout: 60.0,
            ping_interval: 20.0,
            ping_timeout: 20.0,
            write_buffer: 256 * 1024,
            compression: true,
        }
    }
}

/// `[compression]`: compresses the stock routes' responses as `Accept-Encoding` asks
/// (the `Compression` layer; routes added in code use `Router::layer` themselves).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CompressionConfig {
    /// Whether the stock routes are compressed.
    pub enabled: bool,
    /// Effort from 1 (fastest) to 9 (smallest).
    pub level: u32,
    /// Smallest body compressed, in bytes.
    pub min_size: usize,
    /// The codings offered, preferred in this order on equal q-values.
    pub encodings: Vec<EncodingName>,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        CompressionConfig {
            enabled: false,
            level: 4,
            min_size: 1024,
            encodings: vec![EncodingName::Br, EncodingName::Zstd, EncodingName::Gzip],
        }
    }
}

/// A coding `compression.encodings` may name.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EncodingName {
    /// brotli
    Br,
    /// zstd
    Zstd,
    /// gzip
    Gzip,
}

/// `[cors]`: lets browsers on other origins call the stock routes (the `Cors` layer).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Whether the stock routes answer CORS requests and preflights.
    pub enabled: bool,
    /// The origins allowed; empty allows every origin.
    pub allow_origins: Vec<String>,
    /// The methods preflights allow, as the header lists them.
    pub allow_methods: String,
    /// The request headers preflights allow; empty allows whatever is asked.
    pub allow_headers: String,
    /// Response headers scripts may read; empty for none beyond the simple ones.
    pub expose_headers: String,
    /// Whether cookies and `Authorization` may be sent.
    pub allow_credentials: bool,
    /// Seconds a browser may cache a preflight's answer.
    pub max_age: u32,
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            enabled: false,
            allow_origins: Vec::new(),
            allow_methods: "GET, HEAD, POST, PUT, PATCH, DELETE".into(),
            allow_headers: String::new(),
            expose_headers: String::new(),
            allow_credentials: false,
            max_age: 600,
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
    /// Queries each shard may have in flight, over all its connections; past it a query
    /// fails at once with 503 (`database busy`) instead of queueing without bound.
    pub max_queries_in_flight: usize,
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
            max_queries_in_flight: 16_384,
        }
    }
}

impl PostgresConfig {
    /// Whether a database is configured (`url` or `host` set).
    pub fn is_configured(&self) -> bool {
        !self.url.is_empty() || !self.host.is_empty()
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
    /// A line of the operator's own shape instead of `format`: text with `{field}`s
    /// (`remote`, `time`, `time_iso`, `request`, `method`, `target`, `protocol`,
    /// `status`, `bytes`, `referer`, `user_agent`, `shard`, `duration_us`,
    /// `duration_ms`) and `{{`/`}}` for braces; empty: `format`.
    pub template: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            access: "off".into(),
            format: LogFormat::Combined,
            template: String::new(),
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

/// `[tls]`: when `cert` and `key` are set, the listener speaks HTTPS only (TLS 1.3 and
/// 1.2, ALPN `http/1.1`). A reload re-reads both files; new connections use them.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, leaf first; empty: TLS off.
    pub cert: String,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1); empty: TLS off.
    pub key: String,
    /// PEM file with the certificate authorities whose client certificates are
    /// accepted (mutual TLS); empty: clients are not asked for one.
    pub client_ca: String,
    /// With `client_ca`: whether a client must present a certificate.
    pub client_auth: ClientAuth,
    /// PEM file with the CAs' certificate revocation lists: a client certificate they
    /// list is refused; empty: none checked.
    pub client_crl: String,
    /// The password of an encrypted `key` (PEM `ENCRYPTED PRIVATE KEY`, PKCS#8);
    /// unused for a key that is not encrypted.
    pub key_password: Secret,
    /// The oldest TLS version served: `"1.2"` (1.3 and 1.2) or `"1.3"` (1.3 only).
    pub min_version: TlsVersion,
    /// The cipher suites offered, by IANA, OpenSSL or rustls name (clients choose among
    /// them); a TLS version none of whose suites is named keeps all of its, as
    /// OpenSSL's cipher list leaves TLS 1.3 alone; empty: every suite Haywire has.
    pub ciphers: Vec<String>,
}

/// A TLS protocol version (`tls.min_version`).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "1.3")]
    Tls13,
}

/// A configuration value not to be shown: a plain string in the file, `***` in `Debug`
/// output (a logged configuration must not leak it).
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Secret {
        Secret(text.to_owned())
    }
}

/// Whether a TLS client must present a certificate (`tls.client_auth`).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// A client without a certificate the CA signed is refused in the handshake.
    #[default]
    Required,
    /// A client may go without one; a certificate it presents must verify.
    /// Handlers see which ([`crate::Request::client_certificate`]).
    Optional,
}

impl TlsConfig {
    /// Whether TLS is on.
    pub fn enabled(&self) -> bool {
        !self.cert.is_empty() || !self.key.is_empty()
    }
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
    /// `index` for directories; nothing outside `dir` is ever read.
    Static {
        /// Route path: the URL prefix.
        path: String,
        /// The directory served.
        dir: String,
        /// On kernels without `openat2` (Linux before 5.6), serve anyway by checking
        /// each path and then opening it, which a symlink swapped in between can
        /// defeat. Off: such a kernel is a config error.
        #[serde(default)]
        allow_check_then_open: bool,
        /// `Cache-Control: max-age=` this many seconds on the files served (200, 206
        /// and 304 answers); none when absent.
        #[serde(default)]
        max_age: Option<u64>,
        /// The file a directory's path serves (its `/`-ended path; without the `/`, a
        /// redirect to it); `""`: a directory is not found.
        #[serde(default = "default_index")]
        index: String,
    },
}

fn default_index() -> String {
    "index.html".into()
}

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

    /// The handler's name, as the `handler` key spells it.
    pub fn handler(&self) -> &'static str {
        match self {
            RouteConfig::Text { .. } => "text",
            RouteConfig::Echo { .. } => "echo",
            RouteConfig::Stats { .. } => "stats",
            RouteConfig::Metrics { .. } => "metrics",
            RouteConfig::Ready { .. } => "ready",
            RouteConfig::Live { .. } => "live",
            RouteConfig::Static { .. } => "static",
        }
    }

    /// The methods the route answers (a GET route answers HEAD too).
    pub fn methods(&self) -> &'static str {
        match self {
            RouteConfig::Echo { .. } => "POST PUT",
            _ => "GET",
        }
    }

    /// What the route answers, in a few words for a person: the start-up banner.
    pub fn detail(&self) -> String {
        match self {
            RouteConfig::Text {
                body, content_type, ..
            } => format!("{} bytes of {content_type}", body.len()),
            RouteConfig::Echo { .. } => "the request body".into(),
            RouteConfig::Stats { .. } => "counters as JSON".into(),
            RouteConfig::Metrics { .. } => "counters for Prometheus".into(),
            RouteConfig::Ready { .. } => "200, 503 once a shutdown begins".into(),
            RouteConfig::Live { .. } => "200 while the shard serves".into(),
            RouteConfig::Static { dir, .. } => format!("files under {dir}, and below the path"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_is_valid_and_complete() {
        let text = include_str!("../../config.toml");
        let config = Config::from_toml(text).unwrap();
        assert_eq!(config.server, ServerConfig::default());
        assert_eq!(config.limits, LimitsConfig::default());
        assert_eq!(config.timeouts, TimeoutsConfig::default());
        assert_eq!(config.log, LogConfig::default());
        assert_eq!(config.routes.len(), 6);
    }

    #[test]
    fn the_shipped_config_shows_every_key() {
        let shipped: toml::Table = include_str!("../../config.toml").parse().unwrap();
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
}
