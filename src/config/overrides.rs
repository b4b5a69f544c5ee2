//! The command line's overrides of configuration keys.

use std::path::Path;

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
    /// The file at `path` (the defaults with `None`) with the keys of `values`
    /// replaced: a table shaped as the file is (`{ server = { port = 80 } }`; tables
    /// merge key by key, anything else replaces), then checked once, as a whole, as a
    /// file is: a bad value's error names its key, and a key the file needs may come
    /// from `values` (its certificate in the file, the key from a flag). For front ends
    /// that gather overrides generically (the Python package's command line).
    pub fn load_merged(path: Option<&Path>, values: toml::Table) -> Result<Config, ConfigError> {
        let unrepresentable =
            |e: &dyn std::fmt::Display| error("", format!("cannot represent the config: {e}"));
        let mut table = match path {
            None => toml::Table::try_from(Config::default()).map_err(|e| unrepresentable(&e))?,
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| error("", format!("cannot read {}: {e}", path.display())))?;
                match text.parse::<toml::Table>() {
                    Ok(table) => table,
                    // Reported as for the file alone.
                    Err(e) => {
                        return Err(Config::from_toml(&text)
                            .err()
                            .unwrap_or_else(|| error("", e.to_string())))
                    }
                }
            }
        };
        merge(&mut table, values);
        let text = toml::to_string(&table).map_err(|e| unrepresentable(&e))?;
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
    fn load_merged_replaces_keys_merges_tables_and_checks_the_whole() {
        let dir = std::env::temp_dir().join(format!("haywire-merged-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        // The shipped file: every section, six routes, and a header to merge with.
        let text =
            include_str!("../../config.toml").replace("headers = {}", "headers = { X-A = \"a\" }");
        let shipped = write("shipped.toml", &text);
        let config = Config::from_toml(&text).unwrap();
        let values = |text: &str| text.parse::<toml::Table>().unwrap();
        let merged = Config::load_merged(
            Some(&shipped),
            values("server = { port = 9000, headers = { X-B = \"b\" } }\ntls = {}"),
        )
        .unwrap();
        assert_eq!(merged.server.port, 9000);
        assert_eq!(merged.server.address, config.server.address);
        let headers: Vec<_> = merged.server.headers.keys().map(String::as_str).collect();
        assert_eq!(headers, ["X-A", "X-B"]);
        assert_eq!(merged.routes.len(), 6);
        assert_eq!(
            (&merged.routes, &merged.limits, &merged.log),
            (&config.routes, &config.limits, &config.log)
        );
        let bad = Config::load_merged(None, values("server = { port = \"x\" }"));
        assert_eq!(bad.unwrap_err().key, "server.port");
        let invalid = Config::load_merged(None, values("limits = { max_request_size = 0 }"));
        assert_eq!(invalid.unwrap_err().key, "limits.max_request_size");
        // Invalid alone, valid with the value a flag gives.
        let partial = write(
            "partial.toml",
            "[compression]\nenabled = true\nencodings = []",
        );
        assert!(Config::load(&partial).is_err());
        let completed = values("compression = { encodings = [\"gzip\"] }");
        assert!(Config::load_merged(Some(&partial), completed).is_ok());
        // A file that is not TOML is reported as on its own.
        let broken = write("broken.toml", "[server\nport = 1");
        let alone = Config::load(&broken).unwrap_err().to_string();
        let with_values = Config::load_merged(Some(&broken), values("server = { port = 2 }"));
        assert_eq!(with_values.unwrap_err().to_string(), alone);
        std::fs::remove_dir_all(dir).unwrap();
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
