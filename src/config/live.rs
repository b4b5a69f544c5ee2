//! The settings a running shard applies and a reload may change in place.

use std::time::Duration;

use super::Config;
use crate::http::Limits;

/// The timeouts as durations; `handler` is `None` when disabled. Part of [`Settings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
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

/// What a running shard applies and a reload may change in place; built only by
/// [`Config::settings`]. Connections pick up new values at their next request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Settings {
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
    /// `server.keep_alive`.
    pub keep_alive: bool,
    /// `server.shutdown_grace`.
    pub shutdown_grace: Duration,
    /// `[websocket]`, for connections upgraded from then on.
    pub websocket: WebSocketSettings,
}

/// The `[websocket]` settings a connection runs with. Part of [`Settings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WebSocketSettings {
    /// `websocket.max_message_size`.
    pub(crate) max_message_size: usize,
    /// `websocket.max_frame_size`.
    pub(crate) max_frame_size: usize,
    /// `websocket.idle_timeout`.
    pub(crate) idle_timeout: Duration,
    /// `websocket.ping_interval` (`None`: 0, no keepalive pings).
    pub(crate) ping_interval: Option<Duration>,
    /// `websocket.ping_timeout`.
    pub(crate) ping_timeout: Duration,
    /// `websocket.write_buffer`.
    pub(crate) write_buffer: usize,
    /// `websocket.compression`.
    pub(crate) compression: bool,
}

impl Config {
    /// The settings a running shard applies, and may change on reload: the one place
    /// that turns keys into the values connections use.
    pub(crate) fn settings(&self) -> Settings {
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
            keep_alive: self.server.keep_alive,
            shutdown_grace: Duration::from_secs_f64(self.server.shutdown_grace),
            websocket: WebSocketSettings {
                max_message_size: self.websocket.max_message_size,
                max_frame_size: self.websocket.max_frame_size,
                idle_timeout: Duration::from_secs_f64(self.websocket.idle_timeout),
                ping_interval: (self.websocket.ping_interval > 0.0)
                    .then(|| Duration::from_secs_f64(self.websocket.ping_interval)),
                ping_timeout: Duration::from_secs_f64(self.websocket.ping_timeout),
                write_buffer: self.websocket.write_buffer,
                compression: self.websocket.compression,
            },
        }
    }
}
