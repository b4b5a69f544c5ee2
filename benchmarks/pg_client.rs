//! Client CPU per query of tokio-postgres over glommio's own stream
//! (`tokio_util::compat`) against the whole `haywire::pg::Pg` client (its own wire
//! protocol driver, its socket on the shard's epoll set), on one glommio executor:
//! prepared `SELECT randomnumber FROM world WHERE id = $1`, either one query at a time or
//! a sliding window of 64 in flight.
//!
//! ```text
//! benchmarks/tfb/setup.sh --cpus 0
//! cargo bench --features pg --bench pg_client -- [--cpu 1] [--seconds 5]
//! ```
//!
//! CPU is this process's user + system time from /proc/self/stat (one executor thread
//! does all the work), so it counts the client alone, not PostgreSQL.

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use glommio::net::TcpStream;
use haywire::config::Config;
use haywire::pg::Pg;
use haywire_shards::{launch, LaunchConfig, Placement};
use tokio_postgres::{Client, NoTls, Statement};
use tokio_util::compat::FuturesAsyncReadCompatExt;

const URL: &str = "postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1/hello_world";
const QUERY: &str = "SELECT randomnumber FROM world WHERE id = $1";
const WINDOW: usize = 64;

/// This process's CPU time so far (user + system), from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // After the command: state is field 0, utime 11, stime 12 (clock ticks).
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / 100.0)
}

fn report(name: &str, queries: u64, wall: Duration, cpu: Duration) {
    println!(
        "{name:<34} {queries:>8} queries  {:>7.0} q/s  {:>6.2} µs CPU/query",
        queries as f64 / wall.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / queries as f64
    );
}

/// Runs `one` (a query) serially or 64 at a time for `seconds`; reports.
async fn measure<F, Fut>(name: &str, seconds: f64, window: usize, one: F)
where
    F: Fn(i32) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // Warm up, then measure.
    let end = Instant::now() + Duration::from_millis(500);
    while Instant::now() < end {
        one(fastrand::i32(1..=10_000)).await;
    }
    let (start, cpu0) = (Instant::now(), cpu_time());
    let end = start + Duration::from_secs_f64(seconds);
    let mut queries = 0u64;
    let mut in_flight = FuturesUnordered::new();
    while Instant::now() < end {
        while in_flight.len() < window {
            in_flight.push(one(fastrand::i32(1..=10_000)));
        }
        in_flight.next().await;
        queries += 1;
    }
    while in_flight.next().await.is_some() {
        queries += 1;
    }
    report(name, queries, start.elapsed(), cpu_time() - cpu0);
}

async fn tcp() -> TcpStream {
    let stream = TcpStream::connect("127.0.0.1:5432").await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

async fn raw_client() -> (Rc<Client>, Statement) {
    let config: tokio_postgres::Config = URL.parse().unwrap();
    let (client, connection) = config
        .connect_raw(tcp().await.compat(), NoTls)
        .await
        .unwrap();
    glommio::spawn_local(connection).detach();
    let statement = client.prepare(QUERY).await.unwrap();
    (Rc::new(client), statement)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut cpu, mut seconds) = (1usize, 5.0f64);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cpu" => cpu = args.next().unwrap().parse().unwrap(),
            "--seconds" => seconds = args.next().unwrap().parse().unwrap(),
            _ => {} // cargo bench passes --bench
        }
    }
    let config = LaunchConfig {
        shards: 1,
        placement: Placement::Cpus(vec![cpu]),
        ..LaunchConfig::default()
    };
    let runtime = launch(&config, move |ctx| async move {
        let (client, statement) = raw_client().await;
        for (mode, window) in [("1 at a time", 1), ("64 in flight", WINDOW)] {
            let (client, statement) = (client.clone(), statement.clone());
            measure(
                &format!("tokio_util::compat, {mode}"),
                seconds,
                window,
                move |id| {
                    let (client, statement) = (client.clone(), statement.clone());
                    async move {
                        client.query_one(&statement, &[&id]).await.unwrap();
                    }
                },
            )
            .await;
        }
        // The whole client as handlers use it: round-robin, timeout, error mapping.
        let mut postgres = Config::default().postgres;
        postgres.url = URL.to_owned();
        let pg = Pg::start(&ctx, &postgres, &[QUERY]).unwrap();
        pg.wait_ready(Duration::from_secs(5)).await.unwrap();
        for (mode, window) in [("1 at a time", 1), ("64 in flight", WINDOW)] {
            let pg = pg.clone();
            measure(
                &format!("haywire::pg::Pg, {mode}"),
                seconds,
                window,
                move |id| {
                    let pg = pg.clone();
                    async move {
                        pg.query_one(0, &[&id]).await.unwrap();
                    }
                },
            )
            .await;
        }
    })
    .expect("the shard starts");
    for result in runtime.join() {
        result.expect("the benchmark shard");
    }
}
