//! Reading a configuration: parse the TOML, apply the command line's [`Overrides`],
//! validate.

use std::path::Path;

use super::{error, Config, ConfigError, Overrides};

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
}
