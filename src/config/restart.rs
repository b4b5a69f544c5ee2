//! The keys that only take effect on a restart: a reload reports them and keeps their
//! running value.

use super::Config;

/// A key that only takes effect on a restart: its name, whether two configs differ in
/// it, and how to carry the running value over into a reloaded config.
pub(crate) struct RestartKey {
    /// The dotted key, as in `config.toml`.
    pub name: &'static str,
    differs: fn(&Config, &Config) -> bool,
    keep: fn(&mut Config, &Config),
}

macro_rules! restart_keys {
    ($($name:literal => $($field:ident).+;)*) => {
        /// Every key that a reload reports and leaves at its running value.
        pub(crate) const RESTART_KEYS: &[RestartKey] = &[$(RestartKey {
            name: $name,
            differs: |a, b| a.$($field).+ != b.$($field).+,
            keep: |new, running| new.$($field).+ = running.$($field).+.clone(),
        }),*];
    };
}

restart_keys! {
    "server.address" => server.address;
    "server.port" => server.port;
    "server.unix" => server.unix;
    "server.unix_mode" => server.unix_mode;
    "server.shards" => server.shards;
    "server.placement" => server.placement;
    "server.cpus" => server.cpus;
    "server.backlog" => server.backlog;
    "server.io_memory" => server.io_memory;
    "server.balancer" => server.balancer;
    "server.handoff" => server.handoff;
    "server.server_header" => server.server_header;
    "server.headers" => server.headers;
    "limits.read_buffer" => limits.read_buffer;
    "route" => routes;
    "compression" => compression;
    "cors" => cors;
    "postgres" => postgres;
}

impl Config {
    /// Keys whose value differs between `self` (running) and `new` but that only take
    /// effect on a restart.
    pub(crate) fn restart_keys(&self, new: &Config) -> Vec<&'static str> {
        RESTART_KEYS
            .iter()
            .filter(|key| (key.differs)(self, new))
            .map(|key| key.name)
            .collect()
    }

    /// `new` with the restart-only keys of `self`: what runs after a reload.
    pub(crate) fn reloaded(&self, mut new: Config) -> Config {
        for key in RESTART_KEYS {
            (key.keep)(&mut new, self);
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;

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
    fn the_readme_names_every_restart_key() {
        let readme = include_str!("../../README.md");
        for key in RESTART_KEYS {
            assert!(
                readme.contains(&format!("`{}`", key.name)),
                "README's reload section lacks {}",
                key.name
            );
        }
    }
}
