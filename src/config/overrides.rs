//! The command line's overrides of configuration keys.

use super::Config;

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
}
