//! Where the database is and how to log in: `postgres.url` (a libpq-style URL or
//! `key=value` pairs) or the separate `postgres.*` keys, read into one [`Settings`].

use std::path::PathBuf;

use percent_encoding::percent_decode_str;

use super::PgError;
use crate::config::PostgresConfig;

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Address {
    /// `host:port` (IPv6 hosts in brackets).
    Tcp(String),
    /// The server's Unix socket file (`<dir>/.s.PGSQL.<port>`).
    Unix(PathBuf),
}

/// One database's connection settings.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) dbname: String,
    pub(crate) application_name: String,
    /// Command-line options for the server's backend (`-c name=value ...`).
    pub(crate) options: String,
}

impl Settings {
    /// The settings in `config`: its `url`, or its separate keys when `url` is empty.
    pub(crate) fn from_config(config: &PostgresConfig) -> Result<Settings, PgError> {
        if !config.is_configured() {
            return Err(PgError::Config(
                "no database: set postgres.url or postgres.host".to_owned(),
            ));
        }
        if !config.url.is_empty() {
            return Settings::parse(&config.url)
                .map_err(|why| PgError::Config(format!("postgres.url: {why}")));
        }
        Ok(Settings {
            host: config.host.clone(),
            port: Some(config.port),
            user: config.user.clone(),
            password: config.password.clone(),
            dbname: config.dbname.clone(),
            ..Settings::default()
        })
    }

    /// Reads a `postgres://` / `postgresql://` URL or `key=value` pairs.
    fn parse(text: &str) -> Result<Settings, String> {
        let rest = text
            .strip_prefix("postgres://")
            .or_else(|| text.strip_prefix("postgresql://"));
        let mut settings = Settings::default();
        match rest {
            Some(rest) => settings.read_url(rest)?,
            None => {
                for (key, value) in pairs(text)? {
                    settings.set(&key, value)?;
                }
            }
        }
        if settings.user.is_empty() {
            return Err("no user".to_owned());
        }
        Ok(settings)
    }

    /// `[user[:password]@][host][:port][,more hosts][/dbname][?key=value&...]`; the
    /// first host is the one used.
    fn read_url(&mut self, rest: &str) -> Result<(), String> {
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, dbname) = rest.split_once('/').unwrap_or((rest, ""));
        let (login, hosts) = match authority.rsplit_once('@') {
            Some((login, hosts)) => (Some(login), hosts),
            None => (None, authority),
        };
        if let Some(login) = login {
            let (user, password) = login.split_once(':').unwrap_or((login, ""));
            self.user = decode(user)?;
            self.password = decode(password)?;
        }
        let first = hosts.split(',').next().unwrap_or("");
        let (host, port) = if let Some(bracketed) = first.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("unclosed `[` in host {first:?}"))?;
            (host, after.strip_prefix(':'))
        } else {
            match first.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (first, None),
            }
        };
        self.host = decode(host)?;
        if let Some(port) = port.filter(|p| !p.is_empty()) {
            self.set("port", port.to_owned())?;
        }
        self.dbname = decode(dbname)?;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            self.set(&decode(key)?, decode(value)?)?;
        }
        Ok(())
    }

    fn set(&mut self, key: &str, value: String) -> Result<(), String> {
        match key {
            "host" => self.host = value,
            "port" => {
                let port = value.split(',').next().unwrap_or("");
                self.port = Some(
                    port.parse()
                        .map_err(|_| format!("port {port:?} is not a port number"))?,
                );
            }
            "user" => self.user = value,
            "password" => self.password = value,
            "dbname" => self.dbname = value,
            "application_name" => self.application_name = value,
            "options" => self.options = value,
            // No TLS here: plain connections are what `disable`, `allow` and `prefer`
            // end in without it.
            "sslmode" if matches!(value.as_str(), "disable" | "allow" | "prefer") => {}
            "sslmode" => return Err(format!("sslmode={value}: TLS is not supported")),
            // Covered by postgres.connect_timeout.
            "connect_timeout" => {}
            other => return Err(format!("unknown parameter {other:?}")),
        }
        Ok(())
    }

    /// The socket address of the first host; `/...` is a Unix socket directory.
    pub(crate) fn address(&self) -> Result<Address, String> {
        let host = self.host.split(',').next().unwrap_or("");
        let port = self.port.unwrap_or(5432);
        if host.is_empty() {
            Err("no host".to_owned())
        } else if host.starts_with('/') {
            Ok(Address::Unix(
                PathBuf::from(host).join(format!(".s.PGSQL.{port}")),
            ))
        } else if host.contains(':') {
            Ok(Address::Tcp(format!("[{host}]:{port}")))
        } else {
            Ok(Address::Tcp(format!("{host}:{port}")))
        }
    }
}

fn decode(text: &str) -> Result<String, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| format!("{text:?} is not UTF-8 once decoded"))
}

/// `key=value` pairs separated by spaces; a value may be single-quoted, with `\'` and
/// `\\` inside.
fn pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("{key:?} has no `=value`"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => return Err(format!("the value of {key:?} has no closing quote")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gives_every_part() {
        let s = Settings::parse(
            "postgres://u%40x:p%3Aw@10.1.2.3:6543/db?application_name=app&options=-c%20a%3Db",
        )
        .unwrap();
        assert_eq!((s.user.as_str(), s.password.as_str()), ("u@x", "p:w"));
        assert_eq!(s.address(), Ok(Address::Tcp("10.1.2.3:6543".into())));
        assert_eq!(s.dbname, "db");
        assert_eq!(s.application_name, "app");
        assert_eq!(s.options, "-c a=b");
    }

    #[test]
    fn ipv6_hosts_socket_directories_and_several_hosts() {
        let s = Settings::parse("postgresql://u@[::1]/db").unwrap();
        assert_eq!(s.address(), Ok(Address::Tcp("[::1]:5432".into())));
        let s = Settings::parse("postgres://u@%2Fvar%2Frun%2Fpostgresql:5433/db").unwrap();
        assert_eq!(
            s.address(),
            Ok(Address::Unix("/var/run/postgresql/.s.PGSQL.5433".into()))
        );
        let s = Settings::parse("postgres://u@/db?host=/tmp").unwrap();
        assert_eq!(s.address(), Ok(Address::Unix("/tmp/.s.PGSQL.5432".into())));
        let s = Settings::parse("postgres://u@a:1,b:2/db").unwrap();
        assert_eq!(s.address(), Ok(Address::Tcp("a:1".into())));
    }

    #[test]
    fn key_value_pairs_with_quotes() {
        let s = Settings::parse(
            "host=db.local port=6000 user=u password='it\\'s secret' dbname = d options='-c x=1'",
        )
        .unwrap();
        assert_eq!(s.address(), Ok(Address::Tcp("db.local:6000".into())));
        assert_eq!(s.password, "it's secret");
        assert_eq!(s.dbname, "d");
        assert_eq!(s.options, "-c x=1");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let err = |text: &str| Settings::parse(text).unwrap_err();
        assert!(err("postgres://u@h:notaport/db").contains("notaport"));
        assert!(err("postgres://h/db").contains("no user"));
        assert!(err("postgres://u@h/db?sslmode=require").contains("TLS"));
        assert!(err("postgres://u@h/db?colour=blue").contains("colour"));
        assert!(err("user=u host").contains("host"));
        assert!(err("user='u").contains("quote"));
        let none = Settings::parse("postgres://u@/db").unwrap();
        assert_eq!(none.address(), Err("no host".to_owned()));
    }
}
