//! Config reload (SIGHUP): re-reads the file with the command line's overrides, gives
//! every shard the new live settings, and reports the keys that need a restart.

use std::path::PathBuf;
use std::time::Duration;

use haywire_shards::{Controller, ShardCtx};

use crate::access_log;
use crate::config::{Config, ConfigError, Overrides};
use crate::net::TlsKeys;
use crate::shard::Shard;

/// How long a reload waits for the shards to take the new settings: past it (a shard
/// stuck in a long job) the reloading thread goes on, and that shard takes them late.
const APPLY_WITHIN: Duration = Duration::from_secs(5);

/// Re-reads a config file and applies it to every shard.
pub struct Reloader {
    path: PathBuf,
    overrides: Overrides,
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
    pub(crate) fn new(
        path: PathBuf,
        overrides: Overrides,
        running: Config,
        controller: Controller,
    ) -> Reloader {
        Reloader {
            path,
            overrides,
            running,
            controller,
        }
    }

    /// Reads the file again, with the same overrides as at start. An invalid file
    /// changes nothing and names the bad key. Otherwise every shard gets the new live
    /// settings before this returns, and the keys that need a restart keep their running
    /// values. Blocks the calling thread while the shards apply them: call it from
    /// outside the shards (the binary's signal thread does). Every
    /// shard also reopens its access log (after writing what it buffered), so a rotated
    /// log file is let go: rename it, then send SIGHUP.
    pub fn reload(&mut self) -> Result<Reloaded, ConfigError> {
        let new = Config::load_with(&self.path, &self.overrides)?;
        access_log::check(&new.log).map_err(|e| ConfigError {
            key: "log.access".into(),
            message: format!("cannot open: {e}"),
        })?;
        // Certificate and key are read again: new connections use them, open ones keep
        // theirs. A bad file was already rejected (naming its key).
        let tls = TlsKeys::load(&new.tls)?.map(std::sync::Arc::new);
        let needs_restart = self.running.restart_keys(&new);
        let settings = new.settings();
        let log = new.log.clone();
        // Waits for every shard, so that a connection made after `reload` returns gets the
        // new settings and certificate on whichever shard it lands.
        self.controller
            .broadcast_and_wait(APPLY_WITHIN, move |ctx: &ShardCtx| {
                if let Some(shard) = ctx.local::<Shard>() {
                    shard.settings.set(settings);
                    shard.tls.install(tls.as_deref());
                    shard.access_log.reopen(&log);
                }
            });
        self.running = self.running.reloaded(new);
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
