//! The command line's overrides of configuration keys.

use super::{error, Config, ConfigError};

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

impl Config {
    /// `self` with the keys of `values` replaced: a table shaped as the file is
    /// (`{ server = { port = 80 } }`; tables merge key by key, anything else replaces),
    /// then checked as a file is, so a bad value's error names its key. For front ends
    /// that gather overrides generically (the Python package's command line).
    pub fn merged(&self, values: toml::Table) -> Result<Config, ConfigError> {
        let mut table = toml::Table::try_from(self)
            .map_err(|e| error("", format!("cannot represent the config: {e}")))?;
        merge(&mut table, values);
        let text = toml::to_string(&table)
            .map_err(|e| error("", format!("cannot represent the config: {e}")))?;
        Config::from_toml(&text)
    }
}

fn merge(into: &mut toml::Table, values: toml::Table) {
    for (key, value) in values {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(value)) => merge(inner, value),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_replaces_keys_merges_tables_and_names_a_bad_value() {
        // The shipped file: every section, six routes, and a header to merge with.
        let text =
            include_str!("../../config.toml").replace("headers = {}", "headers = { X-A = \"a\" }");
        let config = Config::from_toml(&text).unwrap();
        assert_eq!(config.routes.len(), 6);
        let values: toml::Table = "server = { port = 9000, headers = { X-B = \"b\" } }\ntls = {}"
            .parse()
            .unwrap();
        let merged = config.merged(values).unwrap();
        assert_eq!(merged.server.port, 9000);
        assert_eq!(merged.server.address, config.server.address);
        let headers: Vec<_> = merged.server.headers.keys().map(String::as_str).collect();
        assert_eq!(headers, ["X-A", "X-B"]);
        assert_eq!(merged.routes, config.routes);
        assert_eq!(merged.limits, config.limits);
        assert_eq!(merged.log, config.log);
        let bad: toml::Table = "server = { port = \"x\" }".parse().unwrap();
        assert_eq!(config.merged(bad).unwrap_err().key, "server.port");
        let invalid: toml::Table = "limits = { max_request_size = 0 }".parse().unwrap();
        assert_eq!(
            config.merged(invalid).unwrap_err().key,
            "limits.max_request_size"
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
}
