//! The supervisor's command-line overrides of config keys: a dict of dotted keys
//! (`"server.port"`, `"tls.cert"`) to values, applied over the file by
//! `Config::load_merged` and checked with it as one, so a bad value is reported naming
//! its key as a file's would be, and a file may leave a key to a flag.
//! One dict serves the supervisor's check and every worker (passed on as JSON).

use std::path::Path;

use haywire::Config;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::ConfigError;

/// Loads `path` (the defaults when `None`), applies `overrides` (`None` values are
/// skipped) and validates; a problem is a `ConfigError` naming the key.
pub fn load_config(path: Option<&str>, overrides: Option<&Bound<'_, PyDict>>) -> PyResult<Config> {
    let mut values = toml::Table::new();
    for (key, value) in overrides.into_iter().flatten() {
        if value.is_none() {
            continue;
        }
        let key: String = key.extract()?;
        let mut table = &mut values;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                table.insert(part.to_owned(), to_toml(&value)?);
                break;
            }
            let inner = table
                .entry(part.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = inner.as_table_mut().ok_or_else(|| {
                PyTypeError::new_err(format!("override {key:?} nests in a value"))
            })?;
        }
    }
    Config::load_merged(path.map(Path::new), values).map_err(config_error)
}

fn config_error(e: haywire::config::ConfigError) -> PyErr {
    ConfigError::new_err(e.to_string())
}

/// A Python value as TOML: bool, int, float, str, and dicts and lists of them.
fn to_toml(value: &Bound<'_, PyAny>) -> PyResult<toml::Value> {
    // bool before int: Python's bool is an int.
    Ok(if let Ok(b) = value.cast::<PyBool>() {
        toml::Value::Boolean(b.is_true())
    } else if value.is_instance_of::<PyInt>() {
        toml::Value::Integer(value.extract()?)
    } else if value.is_instance_of::<PyFloat>() {
        toml::Value::Float(value.extract()?)
    } else if value.is_instance_of::<PyString>() {
        toml::Value::String(value.extract()?)
    } else if let Ok(dict) = value.cast::<PyDict>() {
        let mut table = toml::Table::new();
        for (key, item) in dict {
            table.insert(key.extract()?, to_toml(&item)?);
        }
        toml::Value::Table(table)
    } else if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        toml::Value::Array(
            value
                .try_iter()?
                .map(|item| to_toml(&item?))
                .collect::<PyResult<_>>()?,
        )
    } else {
        return Err(PyTypeError::new_err(format!(
            "a config override cannot be {}",
            value.get_type().name()?
        )));
    })
}
