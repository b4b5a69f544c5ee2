//! What types alone cannot check: addresses, non-zero limits, timeouts, route paths,
//! the PostgreSQL, TLS and log sections. Errors name the key.

use std::net::IpAddr;
use std::path::Path;

use super::schema::{
    LogConfig, PlacementKind, PostgresConfig, RouteConfig, ServerConfig, TlsConfig,
};
use super::{error, Config, ConfigError};
use crate::access_log::Template;
use crate::http::codec::MAX_HEAD_SIZE;
use crate::http::token::is_token;
use crate::net::{TlsFileError, TlsKeys};

/// Longest timeout accepted: a day.
const MAX_TIMEOUT: f64 = 86_400.0;

/// Most connections one shard may open: PostgreSQL's own default `max_connections` is 100.
const MAX_PG_CONNECTIONS_PER_SHARD: usize = 64;

impl Config {
    /// Checks what types alone cannot: addresses, non-zero limits, route paths.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.address.parse::<IpAddr>().map_err(|_| {
            error(
                "server.address",
                format!("{:?} is not an IP address", self.server.address),
            )
        })?;
        self.server.validate_unix()?;
        self.server.validate_server_header()?;
        self.server.validate_headers()?;
        let positive = [
            ("server.backlog", self.server.backlog as usize),
            ("server.io_memory", self.server.io_memory),
            ("limits.max_request_size", self.limits.max_request_size),
            ("limits.max_head_size", self.limits.max_head_size),
            ("limits.max_uri_length", self.limits.max_uri_length),
            ("limits.read_buffer", self.limits.read_buffer),
            (
                "websocket.max_message_size",
                self.websocket.max_message_size,
            ),
            ("websocket.max_frame_size", self.websocket.max_frame_size),
            ("websocket.write_buffer", self.websocket.write_buffer),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(error(key, "must be greater than 0"));
            }
        }
        if !(1..=9).contains(&self.compression.level) {
            return Err(error("compression.level", "must be from 1 to 9"));
        }
        if self.compression.enabled && self.compression.encodings.is_empty() {
            return Err(error(
                "compression.encodings",
                "must name at least one coding",
            ));
        }
        for (key, value) in [
            ("cors.allow_methods", &self.cors.allow_methods),
            ("cors.allow_headers", &self.cors.allow_headers),
            ("cors.expose_headers", &self.cors.expose_headers),
        ]
        .into_iter()
        .chain(
            self.cors
                .allow_origins
                .iter()
                .map(|o| ("cors.allow_origins", o)),
        ) {
            if value.chars().any(char::is_control) {
                return Err(error(key, format!("{value:?} holds a control character")));
            }
        }
        let timeouts = [
            ("server.shutdown_grace", self.server.shutdown_grace),
            ("timeouts.header", self.timeouts.header),
            ("timeouts.body", self.timeouts.body),
            ("timeouts.keep_alive", self.timeouts.keep_alive),
            ("timeouts.write", self.timeouts.write),
            ("websocket.idle_timeout", self.websocket.idle_timeout),
            ("websocket.ping_timeout", self.websocket.ping_timeout),
        ];
        for (key, value) in timeouts {
            if !(value > 0.0 && value <= MAX_TIMEOUT) {
                return Err(error(
                    key,
                    format!("must be more than 0 and at most {MAX_TIMEOUT} seconds"),
                ));
            }
        }
        for (key, value) in [
            ("timeouts.handler", self.timeouts.handler),
            ("websocket.ping_interval", self.websocket.ping_interval),
        ] {
            if !(0.0..=MAX_TIMEOUT).contains(&value) {
                return Err(error(
                    key,
                    format!("must be 0 (off) to {MAX_TIMEOUT} seconds"),
                ));
            }
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
            if let RouteConfig::Static {
                dir,
                allow_check_then_open,
                index,
                ..
            } = route
            {
                // One name in the directory: a path could leave the route's tree.
                if index.contains(['/', '\0']) || index == "." || index == ".." {
                    return Err(error(
                        format!("route[{i}].index"),
                        format!("{index:?} is not a file name"),
                    ));
                }
                if !Path::new(dir).is_dir() {
                    return Err(error(
                        format!("route[{i}].dir"),
                        format!("{dir:?} is not a directory"),
                    ));
                }
                if !allow_check_then_open && !openat2_supported(Path::new(dir)) {
                    return Err(error(
                        format!("route[{i}].allow_check_then_open"),
                        "this kernel has no openat2 (Linux 5.6+): files could only be \
                         opened by checking the path first, which a symlink swapped in \
                         between defeats; set it to true to serve that way",
                    ));
                }
            }
        }
        self.postgres.validate()?;
        self.tls.validate()?;
        self.log.validate()?;
        Ok(())
    }
}

/// Longest Unix socket path: `sun_path` holds 108 bytes with the terminating NUL.
const MAX_UNIX_PATH: usize = 107;

/// Longest `server.server_header`: it is written into every response head.
const MAX_SERVER_HEADER: usize = 256;

/// Longest value in `server.headers` (a Content-Security-Policy can be long).
const MAX_HEADER_VALUE: usize = 4096;

/// Headers `server.headers` may not name: each response's own, or the server's.
const SERVERS_OWN: [&str; 9] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "date",
    "server",
    "content-type",
    "keep-alive",
    "upgrade",
    "trailer",
];

impl ServerConfig {
    /// Checks `unix` (fits a socket address) and `unix_mode` (permission bits only).
    fn validate_unix(&self) -> Result<(), ConfigError> {
        if self.unix.len() > MAX_UNIX_PATH {
            return Err(error(
                "server.unix",
                format!(
                    "is {} bytes; a Unix socket path holds at most {MAX_UNIX_PATH}",
                    self.unix.len()
                ),
            ));
        }
        if self.unix.contains('\0') {
            return Err(error("server.unix", "holds a NUL byte"));
        }
        if self.unix_mode > 0o777 {
            return Err(error(
                "server.unix_mode",
                format!(
                    "{:#o} is not permission bits (at most 0o777)",
                    self.unix_mode
                ),
            ));
        }
        Ok(())
    }

    /// Checks `server_header`: a header value (visible ASCII and spaces, as a product
    /// token and comments are) that fits in a response head.
    fn validate_server_header(&self) -> Result<(), ConfigError> {
        let value = &self.server_header;
        if value.len() > MAX_SERVER_HEADER {
            return Err(error(
                "server.server_header",
                format!("is {} bytes; at most {MAX_SERVER_HEADER}", value.len()),
            ));
        }
        if let Some(c) = value.chars().find(|&c| !(c == ' ' || c.is_ascii_graphic())) {
            return Err(error(
                "server.server_header",
                format!("holds {c:?}: only visible ASCII characters and spaces"),
            ));
        }
        if value.trim() != value {
            return Err(error("server.server_header", "starts or ends with a space"));
        }
        Ok(())
    }

    /// Checks `headers`: token names the server does not write itself, and values of
    /// visible ASCII and inner spaces (a CR or LF would split the head).
    fn validate_headers(&self) -> Result<(), ConfigError> {
        for (name, value) in &self.headers {
            let key = format!("server.headers.{name}");
            if !is_token(name.as_bytes()) {
                return Err(error(key, "is not a header name (letters, digits, -, ...)"));
            }
            if SERVERS_OWN.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(error(
                    key,
                    "is written by the server or the response itself (framing, Date, \
                     Content-Type; Server is server.server_header)",
                ));
            }
            if value.len() > MAX_HEADER_VALUE
                || value.chars().any(|c| !(c == ' ' || c.is_ascii_graphic()))
                || value.trim() != value
            {
                return Err(error(
                    key,
                    format!(
                        "must be visible ASCII characters and inner spaces, at most \
                         {MAX_HEADER_VALUE} bytes"
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl PostgresConfig {
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
        if self.max_queries_in_flight == 0 {
            return Err(error(
                "postgres.max_queries_in_flight",
                "must be greater than 0",
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

impl LogConfig {
    /// Checks the keys; errors name them as `log.<key>`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.access.is_empty() {
            return Err(error(
                "log.access",
                "must be \"off\", \"stdout\" or a file path",
            ));
        }
        if !self.template.is_empty() {
            Template::parse(&self.template).map_err(|e| error("log.template", e))?;
        }
        Ok(())
    }
}

impl TlsConfig {
    /// Reads and checks the files; errors name `tls.cert`, `tls.key` or
    /// `tls.client_ca`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        TlsKeys::load(self)?;
        Ok(())
    }
}

impl From<TlsFileError> for ConfigError {
    fn from(e: TlsFileError) -> ConfigError {
        error(e.key, e.message)
    }
}

/// Whether this kernel has `openat2`, which the static handler opens files with.
fn openat2_supported(dir: &Path) -> bool {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let opened = rustix::fs::openat2(
        rustix::fs::CWD,
        dir,
        flags,
        Mode::empty(),
        ResolveFlags::empty(),
    );
    !matches!(opened, Err(rustix::io::Errno::NOSYS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[server]\nport = \"x\"", "server.port"),
            ("[server]\nbogus = 1", "server.bogus"),
            ("[server]\naddress = \"nowhere\"", "server.address"),
            ("[server]\nunix_mode = 0o1777", "server.unix_mode"),
            ("[server]\nunix_mode = -1", "server.unix_mode"),
            ("[server]\nunix = 7", "server.unix"),
            (
                "[server]\nserver_header = \"a\\r\\nX-Evil: 1\"",
                "server.server_header",
            ),
            (
                "[server]\nserver_header = \"caf\u{e9}\"",
                "server.server_header",
            ),
            (
                "[server]\nserver_header = \" padded\"",
                "server.server_header",
            ),
            (
                "[server.headers]\n\"Bad Name\" = \"x\"",
                "server.headers.Bad Name",
            ),
            ("[server.headers]\nDate = \"x\"", "server.headers.Date"),
            ("[server.headers]\nX-A = \"a\\nb\"", "server.headers.X-A"),
            ("[server.headers]\nX-A = 1", "server.headers.X-A"),
            ("[limits]\nmax_request_size = 0", "limits.max_request_size"),
            ("[limits]\nmax_head_size = 70000", "limits.max_head_size"),
            ("[server]\nplacement = \"sideways\"", "server.placement"),
            ("[timeouts]\nheader = 0", "timeouts.header"),
            ("[compression]\nlevel = 0", "compression.level"),
            ("[compression]\nlevel = 10", "compression.level"),
            (
                "[compression]\nencodings = [\"lz4\"]",
                "compression.encodings[0]",
            ),
            (
                "[compression]\nenabled = true\nencodings = []",
                "compression.encodings",
            ),
            ("[cors]\nallow_origins = [\"a\\nb\"]", "cors.allow_origins"),
            ("[cors]\nmax_age = -1", "cors.max_age"),
            ("[timeouts]\nheader = 0.0", "timeouts.header"),
            ("[timeouts]\nhandler = -1.0", "timeouts.handler"),
            ("[server]\nmax_connections = 0", "server.max_connections"),
            ("[log]\naccess = \"\"", "log.access"),
            (
                "[websocket]\nmax_frame_size = 0",
                "websocket.max_frame_size",
            ),
            ("[websocket]\nidle_timeout = 0", "websocket.idle_timeout"),
            ("[websocket]\nping_interval = -1", "websocket.ping_interval"),
            ("[websocket]\nping_timeout = 0", "websocket.ping_timeout"),
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
        let long = format!("[server]\nunix = \"/{}\"", "s".repeat(107));
        assert_eq!(Config::from_toml(&long).unwrap_err().key, "server.unix");
        let unknown = Config::from_toml("[server]\nbogus = 1").unwrap_err();
        assert!(unknown.to_string().contains("bogus"), "{unknown}");
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
                "[postgres]\nmax_queries_in_flight = 0",
                "postgres.max_queries_in_flight",
            ),
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
