//! A real PostgreSQL for the `pg` tests: the one `benchmarks/tfb/setup.sh` prepares.
//! No mock: when it is unreachable the tests fail and say how to set it up.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use haywire::config::{Config, PostgresConfig};

use crate::common::{connect, get, read_reply, Reply};

/// The TechEmpower database on loopback.
pub const DATABASE_URL: &str = "postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1/hello_world";

/// A `[postgres]` section for `url` plus `query_timeout`.
pub fn postgres_config(url: &str, query_timeout: f64) -> PostgresConfig {
    let mut config = Config::default().postgres;
    config.url = url.to_owned();
    config.query_timeout = query_timeout;
    // Generous: a debug build's SCRAM login takes about 0.5 s of CPU, far more on a busy machine.
    config.connect_timeout = 10.0;
    config
}

/// Fails the test unless PostgreSQL accepts TCP connections on 127.0.0.1:5432.
pub fn require_database() {
    let addr: SocketAddr = "127.0.0.1:5432".parse().unwrap();
    if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        panic!(
            "PostgreSQL is not reachable on {addr} ({e}): run `benchmarks/tfb/setup.sh` \
             (as root) to install and start it with the hello_world database"
        );
    }
}

/// Runs SQL through `psql` as the benchmark user over TCP; rows as `|`-separated lines.
pub fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "benchmarkdbuser",
            "-d",
            "hello_world",
        ])
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGPASSWORD", "benchmarkdbpass")
        .env("PGCONNECT_TIMEOUT", "3")
        .output()
        .expect("psql runs (run benchmarks/tfb/setup.sh to install PostgreSQL)");
    assert!(
        out.status.success(),
        "psql {sql:?} failed: {} (run benchmarks/tfb/setup.sh)",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One GET on a fresh connection with a `timeout` for the answer.
pub fn get_within(addr: SocketAddr, path: &str, timeout: Duration) -> Reply {
    use std::io::{BufReader, Write};
    let mut stream = connect(addr);
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream.write_all(get(path).as_bytes()).unwrap();
    read_reply(&mut BufReader::new(stream), false)
}

/// Polls `path` until it answers 200, failing with `why` after `within`.
pub fn wait_for_200(addr: SocketAddr, path: &str, within: Duration, why: &str) -> Reply {
    let start = Instant::now();
    loop {
        // Generous: a debug build's SCRAM logins hold a shard for a while on a busy machine.
        let reply = get_within(addr, path, Duration::from_secs(30));
        if reply.status == 200 {
            return reply;
        }
        assert!(
            start.elapsed() < within,
            "{path} still answers {} {:?} after {within:?}: {why}",
            reply.status,
            reply.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`wait_for_200`] on 20 fresh connections, so that (spread by SO_REUSEPORT) every
/// shard of a 2-shard server has its database connection up.
pub fn wait_for_shards(addr: SocketAddr, path: &str, within: Duration, why: &str) -> Reply {
    let mut reply = wait_for_200(addr, path, within, why);
    for _ in 0..19 {
        reply = wait_for_200(addr, path, within, why);
    }
    reply
}

/// A private copy of `world` in a schema of its own, first on the `search_path` of
/// [`PrivateWorld::url`]: a server using that URL reads and writes only this copy
/// (`fortune` still comes from `public`), so a test's checks are exact even while other
/// tests or a benchmark update the shared table. Dropped with the value.
pub struct PrivateWorld {
    pub schema: String,
    pub url: String,
}

impl PrivateWorld {
    /// Copies `world` into schema `haywire_test_<pid>_<tag>`, first dropping the schemas
    /// that earlier test processes (no longer running) left behind.
    pub fn new(tag: &str) -> PrivateWorld {
        require_database();
        for stale in
            psql("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'haywire\\_test\\_%'").lines()
        {
            let pid = stale.split('_').nth(2).unwrap_or("");
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                psql(&format!("DROP SCHEMA IF EXISTS {stale} CASCADE"));
            }
        }
        let schema = format!("haywire_test_{}_{tag}", std::process::id());
        psql(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; \
             CREATE TABLE {schema}.world (id integer PRIMARY KEY, randomnumber integer NOT NULL); \
             INSERT INTO {schema}.world SELECT id, randomnumber FROM public.world"
        ));
        let url = format!("{DATABASE_URL}?options=-c%20search_path%3D{schema}%2Cpublic");
        PrivateWorld { schema, url }
    }

    /// The copy's rows, by id.
    pub fn rows(&self) -> std::collections::HashMap<i64, i64> {
        psql(&format!(
            "SELECT id, randomnumber FROM {}.world",
            self.schema
        ))
        .lines()
        .map(|line| {
            let (id, n) = line.split_once('|').unwrap();
            (id.parse().unwrap(), n.parse().unwrap())
        })
        .collect()
    }
}

impl Drop for PrivateWorld {
    fn drop(&mut self) {
        psql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
    }
}
