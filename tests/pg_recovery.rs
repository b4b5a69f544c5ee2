//! PostgreSQL restarts under load: requests during the outage get a quick 503, service
//! resumes on its own within seconds of the database accepting connections, no shard
//! crashes and no connection leaks. Its own test binary, because it stops the shared
//! cluster (cargo runs test binaries one after another).
#![cfg(feature = "pg")]

mod common;
mod pg_support;

use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use haywire::pg::Pg;
use haywire::{Request, Response, Router, Server, ShardCtx};
use pg_support::*;

/// Connections opened by this test's server carry this name in `pg_stat_activity`.
const APP: &str = "haywire_recovery_test";
const SHARDS: usize = 2;
const PER_SHARD: usize = 2;

/// The installed cluster, as `pg_ctlcluster` names it: (version, cluster).
fn cluster() -> (String, String) {
    let out = Command::new("pg_lsclusters")
        .arg("-h")
        .output()
        .expect("pg_lsclusters (run benchmarks/tfb/setup.sh)");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .next()
        .expect("a PostgreSQL cluster (run benchmarks/tfb/setup.sh)");
    let mut fields = line.split_whitespace();
    (
        fields.next().unwrap().to_owned(),
        fields.next().unwrap().to_owned(),
    )
}

fn pg_ctl(action: &str) {
    let (version, name) = cluster();
    let status = Command::new("pg_ctlcluster")
        .args([&version, &name, action])
        .status()
        .expect("pg_ctlcluster runs");
    assert!(status.success(), "pg_ctlcluster {version} {name} {action}");
}

/// Starts the cluster again even when an assertion fails mid-outage, so later test
/// binaries find it running.
struct RestartOnDrop;

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        let (version, name) = cluster();
        let _ = Command::new("pg_ctlcluster")
            .args([&version, &name, "start"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// This server's connections as the database sees them.
fn backends() -> usize {
    psql(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{APP}'"
    ))
    .trim()
    .parse()
    .unwrap()
}

fn wait_for_backends(n: usize, within: Duration) {
    let start = Instant::now();
    while backends() != n {
        assert!(
            start.elapsed() < within,
            "{} connections from the server after {within:?}, want {n}",
            backends()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the database accepts a login now.
fn accepting() -> bool {
    Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "benchmarkdbuser",
            "-d",
            "hello_world",
        ])
        .args(["-X", "-q", "-A", "-t", "-c", "SELECT 1"])
        .env("PGPASSWORD", "benchmarkdbpass")
        .env("PGCONNECT_TIMEOUT", "1")
        .output()
        .is_ok_and(|out| out.status.success())
}

fn routes(router: &mut Router, ctx: &Rc<ShardCtx>) {
    let mut postgres = postgres_config(&format!("{DATABASE_URL}?application_name={APP}"), 2.0);
    postgres.connections_per_shard = PER_SHARD;
    let pg = Pg::start(
        ctx,
        &postgres,
        &["SELECT randomnumber FROM world WHERE id = $1"],
    )
    .expect("configured");
    let id = ctx.id();
    router.get("/q", move |_: Request| {
        let pg = pg.clone();
        async move {
            match pg.query_one(0, &[&42i32]).await {
                Ok(row) => Response::text(format!("{id} {}", row.get::<i32>(0))),
                Err(e) => e.response(),
            }
        }
    });
    // The client as any code on the shard finds it: through the shard's typed locals.
    let ctx = ctx.clone();
    router.get("/pg", move |_: Request| {
        let pg = ctx.local::<Pg>().expect("Pg::start registers the client");
        Response::text(format!("{} {} {}", ctx.id(), pg.connected(), pg.connects()))
    });
}

/// Each shard's (connections up, connects so far), asked on fresh connections until
/// every shard has answered.
fn shard_connections(addr: SocketAddr) -> [(usize, u64); SHARDS] {
    let mut seen = [None; SHARDS];
    for _ in 0..200 {
        let reply = get_within(addr, "/pg", Duration::from_secs(5));
        assert_eq!(reply.status, 200, "{}", reply.text());
        let text = reply.text();
        let fields: Vec<u64> = text.split(' ').map(|f| f.parse().unwrap()).collect();
        seen[fields[0] as usize] = Some((fields[1] as usize, fields[2]));
        if seen.iter().all(Option::is_some) {
            return seen.map(Option::unwrap);
        }
    }
    panic!("not every shard answered: {seen:?}");
}

/// Keeps `threads` keep-alive clients sending `/q`; counts answers by status and
/// records the slowest one.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    unavailable: Arc<AtomicU64>,
    other: Arc<AtomicU64>,
    slowest_ms: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr, threads: usize) -> Load {
        let mut load = Load {
            stop: Arc::default(),
            ok: Arc::default(),
            unavailable: Arc::default(),
            other: Arc::default(),
            slowest_ms: Arc::default(),
            threads: Vec::new(),
        };
        for _ in 0..threads {
            let (stop, ok, unavailable, other, slowest) = (
                load.stop.clone(),
                load.ok.clone(),
                load.unavailable.clone(),
                load.other.clone(),
                load.slowest_ms.clone(),
            );
            load.threads.push(std::thread::spawn(move || {
                let mut stream = connect(addr);
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    stream.write_all(get("/q").as_bytes()).unwrap();
                    let reply = read_reply(&mut reader, false);
                    slowest.fetch_max(start.elapsed().as_millis() as u64, Ordering::Relaxed);
                    match reply.status {
                        200 => ok.fetch_add(1, Ordering::Relaxed),
                        503 => {
                            // Don't spin: a client would honour Retry-After; 5 ms is plenty here.
                            std::thread::sleep(Duration::from_millis(5));
                            unavailable.fetch_add(1, Ordering::Relaxed)
                        }
                        _ => other.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
        load
    }

    fn finish(self) -> (u64, u64, u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread
                .join()
                .expect("a load thread failed (a hang or a closed connection)");
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.unavailable.load(Ordering::Relaxed),
            self.other.load(Ordering::Relaxed),
            self.slowest_ms.load(Ordering::Relaxed),
        )
    }
}

/// Each shard answers `/q` with 200 (its id is in the body).
fn every_shard_serves(addr: SocketAddr) {
    let mut seen = [false; SHARDS];
    for _ in 0..200 {
        let reply = get_within(addr, "/q", Duration::from_secs(5));
        assert_eq!(reply.status, 200, "{}", reply.text());
        let shard: usize = reply.text().split(' ').next().unwrap().parse().unwrap();
        seen[shard] = true;
        if seen.iter().all(|s| *s) {
            return;
        }
    }
    panic!("not every shard answered: {seen:?}");
}

#[test]
fn a_database_restart_under_load_gives_quick_503s_then_service_resumes() {
    require_database();
    let _restart = RestartOnDrop;
    let running = Server::new(test_config())
        .routes(routes)
        .start()
        .expect("server starts");
    let addr = running.local_addr();
    wait_for_shards(addr, "/q", Duration::from_secs(10), "PostgreSQL reachable");
    wait_for_backends(SHARDS * PER_SHARD, Duration::from_secs(5));

    let load = Load::start(addr, 4);
    std::thread::sleep(Duration::from_millis(300));
    pg_ctl("stop");
    let stopped = Instant::now();

    // During the outage: a quick 503 that says why, never a hang.
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..5 {
        let start = Instant::now();
        let reply = get_within(addr, "/q", Duration::from_secs(5));
        assert_eq!(reply.status, 503, "{}", reply.text());
        // Why (connection refused, the address) is in the log, not the body.
        assert_eq!(reply.text(), "database unavailable\n");
        assert!(
            start.elapsed() < Duration::from_millis(200),
            "503 took {:?}",
            start.elapsed()
        );
    }
    std::thread::sleep(Duration::from_millis(500));

    pg_ctl("start");
    let start = Instant::now();
    while !accepting() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "PostgreSQL did not come back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let accepting_at = Instant::now();
    let outage = accepting_at - stopped;
    wait_for_200(
        addr,
        "/q",
        Duration::from_secs(3),
        "service must resume within 3 s of the database accepting logins",
    );
    let resumed = accepting_at.elapsed();
    // Every connection comes back (backoff is at most 1 s), and no more than that.
    wait_for_backends(SHARDS * PER_SHARD, Duration::from_secs(3));
    every_shard_serves(addr);

    std::thread::sleep(Duration::from_millis(300));
    let (ok, unavailable, other, slowest_ms) = load.finish();
    eprintln!(
        "outage {outage:?}; first 200 {resumed:?} after the database accepted logins; \
         load: {ok} ok, {unavailable} 503, {other} other, slowest {slowest_ms} ms"
    );
    assert!(ok > 0 && unavailable > 0, "{ok} ok, {unavailable} 503");
    assert_eq!(other, 0, "only 200 and 503 while the database restarts");
    assert!(
        slowest_ms < 2_500,
        "a request took {slowest_ms} ms (query timeout is 2 s)"
    );

    // A second restart, straight through (`restart`), recovers the same way.
    pg_ctl("restart");
    wait_for_200(
        addr,
        "/q",
        Duration::from_secs(5),
        "service after `restart`",
    );
    wait_for_backends(SHARDS * PER_SHARD, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(backends(), SHARDS * PER_SHARD, "no leaked connections");
    every_shard_serves(addr);
    // Every shard has all its connections up, each having connected three times (at
    // start, after the stop/start, after the restart).
    for (shard, (up, connects)) in shard_connections(addr).into_iter().enumerate() {
        assert_eq!(up, PER_SHARD, "shard {shard}: connections up");
        assert!(
            connects >= 3 * PER_SHARD as u64,
            "shard {shard}: {connects} connects"
        );
    }

    // Stopping the server closes its connections.
    running.stop();
    running.join().expect("clean stop");
    wait_for_backends(0, Duration::from_secs(5));
}
