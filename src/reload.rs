//! Config reload (SIGHUP): the settings every shard can change while it runs, and the
//! keys that need a restart.

use std::path::PathBuf;
use std::time::Duration;

use haywire_shards::{Controller, ShardCtx};

use crate::config::{Config, ConfigError, Timeouts};
use crate::http::Limits;
use crate::server::Shard;

/// What a running shard can change in place. Connections pick up new values at their
/// next request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Request size limits.
    pub limits: Limits,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Open connections per shard.
    pub max_connections: u64,
    /// TCP_NODELAY on newly accepted connections.
    pub tcp_nodelay: bool,
    /// How long a graceful shutdown waits.
    pub shutdown_grace: Duration,
}

impl Settings {
    /// The live settings in `config`.
    pub fn of(config: &Config) -> Settings {
        Settings {
            limits: config.limits(),
            timeouts: config.timeouts(),
            max_connections: config.server.max_connections as u64,
            tcp_nodelay: config.server.tcp_nodelay,
            shutdown_grace: Duration::from_secs_f64(config.server.shutdown_grace),
        }
    }
}

/// Keys whose new value differs from the running one but only takes effect on restart.
pub fn restart_keys(running: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&running.server, &new.server);
    let checks = [
        ("server.address", a.address != b.address),
        ("server.port", a.port != b.port),
        ("server.shards", a.shards != b.shards),
        ("server.placement", a.placement != b.placement),
        ("server.cpus", a.cpus != b.cpus),
        ("server.backlog", a.backlog != b.backlog),
        ("server.io_memory", a.io_memory != b.io_memory),
        ("server.balancer", a.balancer != b.balancer),
        ("server.handoff", a.handoff != b.handoff),
        (
            "limits.read_buffer",
            running.limits.read_buffer != new.limits.read_buffer,
        ),
        ("route", running.routes != new.routes),
    ];
    checks
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(key, _)| key)
        .collect()
}

/// Re-reads a config file and applies it to every shard.
pub struct Reloader {
    path: PathBuf,
    running: Config,
    controller: Controller,
}

/// The outcome of a reload that was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Changed keys that were left as they were, because they need a restart.
    pub needs_restart: Vec<&'static str>,
}

impl Reloader {
    pub(crate) fn new(path: PathBuf, running: Config, controller: Controller) -> Reloader {
        Reloader {
            path,
            running,
            controller,
        }
    }

    /// Reads the file again. An invalid file changes nothing and names the bad key.
    /// Otherwise every shard gets the new live settings, and the keys that need a
    /// restart keep their running values.
    pub fn reload(&mut self) -> Result<Reloaded, ConfigError> {
        let new = Config::load(&self.path)?;
        let needs_restart = restart_keys(&self.running, &new);
        let settings = Settings::of(&new);
        self.controller.broadcast(move |ctx: &ShardCtx| {
            if let Some(shard) = ctx.local::<Shard>() {
                shard.settings.set(settings);
            }
        });
        // Remember what now runs: the new live settings, the old restart-only ones.
        let mut running = new;
        running.server.address = self.running.server.address.clone();
        running.server.port = self.running.server.port;
        running.server.shards = self.running.server.shards;
        running.server.placement = self.running.server.placement;
        running.server.cpus = self.running.server.cpus.clone();
        running.server.backlog = self.running.server.backlog;
        running.server.io_memory = self.running.server.io_memory;
        running.server.balancer = self.running.server.balancer;
        running.server.handoff = self.running.server.handoff;
        running.limits.read_buffer = self.running.limits.read_buffer;
        running.routes = self.running.routes.clone();
        self.running = running;
        Ok(Reloaded { needs_restart })
    }

    /// Reloads and reports the outcome on stderr: what the binary does on SIGHUP.
    pub fn reload_and_report(&mut self) {
        match self.reload() {
            Ok(Reloaded { needs_restart }) if needs_restart.is_empty() => {
                eprintln!("haywire: reloaded {}", self.path.display());
            }
            Ok(Reloaded { needs_restart }) => eprintln!(
                "haywire: reloaded {}; unchanged until a restart: {}",
                self.path.display(),
                needs_restart.join(", ")
            ),
            Err(e) => eprintln!(
                "haywire: reload of {} rejected, the running config stays: {e}",
                self.path.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_startup_keys_need_a_restart() {
        let running = Config::default();
        let mut new = running.clone();
        new.limits.max_request_size = 5;
        new.timeouts.header = 1.0;
        new.server.max_connections = 3;
        assert!(restart_keys(&running, &new).is_empty());
        new.server.port = 1;
        new.server.shards = 3;
        assert_eq!(
            restart_keys(&running, &new),
            vec!["server.port", "server.shards"]
        );
    }
}
