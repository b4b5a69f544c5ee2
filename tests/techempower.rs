//! The `techempower` example's seven routes on a real 2-shard server against the real
//! PostgreSQL from `benchmarks/tfb/setup.sh`, checked against TechEmpower's rules; plus
//! pipelining, the query timeout (504) and an unreachable database (503).
#![cfg(feature = "pg")]

mod common;
mod pg_support;

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/techempower.rs"]
mod techempower;

use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use haywire::config::PostgresConfig;
use haywire::pg::{Pg, ToSql};
use haywire::{Config, Request, Response, Router, RunningServer, Server, ShardCtx};
use pg_support::*;
use serde_json::Value;

/// One server for the binary: test routes plus the example's, against a private copy
/// of `world` that nothing writes (the updates test has its own).
fn shared() -> &'static (SocketAddr, PrivateWorld) {
    static SERVER: OnceLock<(SocketAddr, PrivateWorld)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let world = PrivateWorld::new("shared");
        let running = techempower_server(&world.url);
        let addr = running.local_addr();
        std::mem::forget(running);
        (addr, world)
    })
}

fn server() -> SocketAddr {
    shared().0
}

/// The example's routes plus the test routes on a 2-shard server using `url`, returned
/// once every shard's database connection answers.
fn techempower_server(url: &str) -> RunningServer {
    let postgres = postgres_config(url, 5.0);
    let running = Server::new(test_config())
        .routes(test_routes)
        .routes(move |router: &mut Router, ctx: &Rc<ShardCtx>| {
            techempower::routes(router, ctx, &postgres)
        })
        .start()
        .expect("server starts");
    wait_for_shards(
        running.local_addr(),
        "/db",
        Duration::from_secs(10),
        "the shards cannot reach PostgreSQL: run benchmarks/tfb/setup.sh",
    );
    running
}

fn fetch(path: &str) -> Reply {
    let (reply, _) = exchange(server(), get(path).as_bytes());
    reply
}

fn json(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", reply.text()))
}

/// A `{"id":..,"randomNumber":..}` object with both in 1..=10000; returns them.
fn world(value: &Value) -> (i64, i64) {
    let object = value.as_object().expect("a world is an object");
    assert_eq!(object.len(), 2, "exactly id and randomNumber: {value}");
    let id = object["id"].as_i64().expect("id is an integer");
    let number = object["randomNumber"]
        .as_i64()
        .expect("randomNumber is an integer");
    assert!((1..=10_000).contains(&id), "{value}");
    assert!((1..=10_000).contains(&number), "{value}");
    (id, number)
}

fn worlds(reply: &Reply) -> Vec<(i64, i64)> {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let value = json(reply);
    value
        .as_array()
        .unwrap_or_else(|| panic!("an array: {value}"))
        .iter()
        .map(world)
        .collect()
}

#[test]
fn every_response_has_the_required_headers_and_content_type() {
    // `/updates` is checked (headers included) by its own test.
    let cases = [
        ("/plaintext", "text/plain"),
        ("/json", "application/json"),
        ("/db", "application/json"),
        ("/queries?queries=2", "application/json"),
        ("/fortunes", "text/html; charset=utf-8"),
        ("/cached-queries?count=2", "application/json"),
    ];
    for (path, content_type) in cases {
        check_headers(path, &fetch(path), content_type);
    }
}

/// Status 200 with `Server`, `Date`, `Content-Type` and a matching `Content-Length`.
fn check_headers(path: &str, reply: &Reply, content_type: &str) {
    assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    assert_eq!(reply.header("server"), Some("haywire"), "{path}");
    let date = reply.header("date").expect("Date");
    assert!(date.ends_with(" GMT"), "{path}: Date {date:?}");
    assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string().as_str()),
        "{path}"
    );
}

#[test]
fn plaintext_and_json() {
    assert_eq!(fetch("/plaintext").text(), "Hello, World!");
    let reply = fetch("/json");
    assert_eq!(reply.text(), r#"{"message":"Hello, World!"}"#);
}

#[test]
fn db_answers_one_random_world() {
    let ids: Vec<i64> = (0..20)
        .map(|_| {
            let reply = fetch("/db");
            assert_eq!(reply.status, 200, "{}", reply.text());
            world(&json(&reply)).0
        })
        .collect();
    assert!(ids.iter().any(|id| *id != ids[0]), "random ids: {ids:?}");
}

#[test]
fn queries_clamp_their_count() {
    let cases = [
        ("", 1),
        ("?queries=", 1),
        ("?queries=0", 1),
        ("?queries=-1", 1),
        ("?queries=abc", 1),
        ("?queries=1", 1),
        ("?queries=20", 20),
        ("?queries=500", 500),
        ("?queries=501", 500),
        ("?other=3&queries=7", 7),
    ];
    for (query, n) in cases {
        let reply = fetch(&format!("/queries{query}"));
        assert_eq!(worlds(&reply).len(), n, "/queries{query}");
    }
}

#[test]
fn queries_read_the_database() {
    // The shared server's copy of `world` is written by nobody: every row must match.
    let table = shared().1.rows();
    for _ in 0..3 {
        let rows = worlds(&fetch("/queries?queries=200"));
        assert_eq!(rows.len(), 200);
        for (id, n) in rows {
            assert_eq!(table[&id], n, "world {id}");
        }
    }
}

#[test]
fn fortunes_are_escaped_sorted_and_complete() {
    let reply = fetch("/fortunes");
    assert_eq!(reply.status, 200);
    let html = reply.text();
    assert!(html.starts_with(
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>\
         <tr><th>id</th><th>message</th></tr>"
    ));
    assert!(html.ends_with("</table></body></html>"), "{html}");
    assert!(!html.contains("<script>"), "unescaped: {html}");
    assert!(html.contains(
        "<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a \
         browser alert box.&quot;);&lt;/script&gt;</td></tr>"
    ));
    assert!(html.contains("<tr><td>12</td><td>フレームワークのベンチマーク</td></tr>"));
    assert!(html.contains("<tr><td>0</td><td>Additional fortune added at request time.</td></tr>"));
    // Rows in message order: their ids follow the order of the sorted messages.
    let ids: Vec<&str> = html
        .split("<tr><td>")
        .skip(1)
        .map(|row| row.split("</td>").next().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["11", "4", "5", "2", "8", "0", "3", "7", "10", "6", "9", "1", "12"]
    );
    assert_eq!(
        html.matches("<tr>").count(),
        14,
        "header + 12 rows + the added one"
    );
}

#[test]
fn cached_queries_match_the_database() {
    // Its own server and copy of `world`, which nothing writes: every cached row must
    // match it exactly.
    let private = PrivateWorld::new("cache");
    let table = private.rows();
    assert_eq!(table.len(), 10_000);
    let postgres = postgres_config(&private.url, 5.0);
    let running = Server::new(test_config())
        .routes(move |router: &mut Router, ctx: &Rc<ShardCtx>| {
            techempower::routes(router, ctx, &postgres)
        })
        .start()
        .expect("server starts");
    let addr = running.local_addr();
    wait_for_200(
        addr,
        "/cached-queries?count=1",
        Duration::from_secs(10),
        "the cache loads at shard start",
    );
    let mut cached = Vec::new();
    for _ in 0..10 {
        // Each shard fills its own cache: wait for the one this connection reaches.
        let reply = wait_for_200(
            addr,
            "/cached-queries?count=500",
            Duration::from_secs(10),
            "every shard's cache loads at start",
        );
        cached.extend(worlds(&reply));
    }
    assert_eq!(cached.len(), 5_000);
    for (id, n) in &cached {
        assert_eq!(table[id], *n, "cached world {id}");
    }
    for (query, n) in [
        ("", 1),
        ("?count=0", 1),
        ("?count=-1", 1),
        ("?count=abc", 1),
        ("?count=501", 500),
        ("?count=9", 9),
    ] {
        let path = format!("/cached-queries{query}");
        let reply = wait_for_200(addr, &path, Duration::from_secs(10), "cache loaded");
        assert_eq!(worlds(&reply).len(), n, "{path}");
    }
    running.stop();
    running.join().expect("clean stop");
}

#[test]
fn updates_clamp_their_count_and_persist() {
    // Its own server and copy of `world`: this test is the only writer, so what an
    // update answers must be exactly what the table holds afterwards.
    let private = PrivateWorld::new("updates");
    let running = techempower_server(&private.url);
    let addr = running.local_addr();
    let fetch = |path: &str| exchange(addr, get(path).as_bytes()).0;
    for (query, n) in [
        ("", 1),
        ("?queries=0", 1),
        ("?queries=-1", 1),
        ("?queries=abc", 1),
        ("?queries=501", 500),
        ("?queries=5", 5),
    ] {
        let path = format!("/updates{query}");
        let reply = fetch(&path);
        check_headers(&path, &reply, "application/json");
        assert_eq!(worlds(&reply).len(), n, "{path}");
    }
    for _ in 0..5 {
        let before = private.rows();
        let updated = worlds(&fetch("/updates?queries=20"));
        let after = private.rows();
        assert_eq!(updated.len(), 20);
        for (id, n) in &updated {
            assert_eq!(after[id], *n, "updated world {id}");
        }
        // Nothing else changed.
        for (id, n) in &before {
            if !updated.iter().any(|(u, _)| u == id) {
                assert_eq!(after[id], *n, "world {id} was not in the update");
            }
        }
        // The new numbers are random: most rows changed (1 in 10,000 keeps its number).
        let changed = updated.iter().filter(|(id, n)| before[id] != *n).count();
        assert!(changed >= 15, "{changed} of 20 rows changed");
    }
    running.stop();
    running.join().expect("clean stop");
}

#[test]
fn many_pipelined_queries_on_one_connection_and_several_connections() {
    let addr = server();
    // 64 pipelined requests on one connection, each with its own number of queries
    // (answered at different times): the answers come back in request order.
    let mut stream = connect(addr);
    let wire: String = (1..=64)
        .map(|n| get(&format!("/queries?queries={}", 65 - n)))
        .collect();
    stream.write_all(wire.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    for n in 1..=64 {
        let reply = read_reply(&mut reader, false);
        assert_eq!(worlds(&reply).len(), 65 - n, "response {n}");
    }
    // Eight connections at once, each pipelining 16 mixed requests.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = connect(addr);
                let paths = ["/db", "/queries?queries=10", "/fortunes", "/db"];
                let wire: String = (0..16).map(|i| get(paths[i % 4])).collect();
                stream.write_all(wire.as_bytes()).unwrap();
                let mut reader = BufReader::new(stream);
                for i in 0..16 {
                    let reply = read_reply(&mut reader, false);
                    assert_eq!(reply.status, 200, "{}: {}", paths[i % 4], reply.text());
                    if i % 4 == 1 {
                        assert_eq!(worlds(&reply).len(), 10);
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a client thread");
    }
}

/// A server with `/sleep/:s` (`pg_sleep`) and `/fast` (`SELECT 7`) on `postgres`,
/// returned once every shard's connection answers.
fn sleep_server(config: Config, postgres: PostgresConfig) -> RunningServer {
    let running = Server::new(config)
        .routes(move |router: &mut Router, ctx: &Rc<ShardCtx>| {
            let pg = Pg::start(ctx, &postgres, &["SELECT 1 FROM pg_sleep($1)", "SELECT 7"])
                .expect("configured");
            let p = pg.clone();
            router.get("/sleep/:s", move |req: Request| {
                let pg = p.clone();
                let secs: f64 = req.param("s").and_then(|s| s.parse().ok()).unwrap_or(0.0);
                async move {
                    let params: [&(dyn ToSql + Sync); 1] = [&secs];
                    match pg.query_one(0, &params).await {
                        Ok(_) => Response::text("slept"),
                        Err(e) => e.response(),
                    }
                }
            });
            router.get("/fast", move |_: Request| {
                let pg = pg.clone();
                async move {
                    match pg.query_one(1, &[]).await {
                        Ok(row) => Response::text(row.get::<i32>(0).to_string()),
                        Err(e) => e.response(),
                    }
                }
            });
        })
        .start()
        .expect("server starts");
    wait_for_shards(
        running.local_addr(),
        "/fast",
        Duration::from_secs(10),
        "PostgreSQL reachable",
    );
    running
}

#[test]
fn a_slow_query_answers_504_and_the_connection_serves_again() {
    require_database();
    let postgres = postgres_config(DATABASE_URL, 0.3);
    let running = sleep_server(test_config(), postgres);
    let addr = running.local_addr();
    for _ in 0..3 {
        let start = Instant::now();
        let reply = get_within(addr, "/sleep/3", Duration::from_secs(5));
        let took = start.elapsed();
        assert_eq!(reply.status, 504, "{}", reply.text());
        assert!(reply.text().contains("timed out"), "{}", reply.text());
        assert!(took < Duration::from_millis(1500), "504 after {took:?}");
        // The database aborted the statement too (statement_timeout), so the connection
        // is free again at once, not after the 3 s sleep.
        let start = Instant::now();
        let reply = get_within(addr, "/fast", Duration::from_secs(5));
        assert_eq!((reply.status, reply.text().as_str()), (200, "7"));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }
    running.stop();
    running.join().expect("clean stop");
}

#[test]
fn an_unreachable_database_answers_503_at_once() {
    // Nothing listens on port 1: every connect is refused and retried with backoff.
    let postgres = postgres_config("postgres://benchmarkdbuser:x@127.0.0.1:1/hello_world", 5.0);
    let running = Server::new(test_config())
        .routes(move |router: &mut Router, ctx: &Rc<ShardCtx>| {
            techempower::routes(router, ctx, &postgres)
        })
        .start()
        .expect("server starts");
    let addr = running.local_addr();
    for path in [
        "/db",
        "/queries?queries=5",
        "/fortunes",
        "/updates?queries=5",
    ] {
        let start = Instant::now();
        let reply = get_within(addr, path, Duration::from_secs(5));
        assert_eq!(reply.status, 503, "{path}: {}", reply.text());
        // A generic reason: not the address, not the connect error (those are logged).
        assert_eq!(reply.text(), "database unavailable\n", "{path}");
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "{path}: {:?}",
            start.elapsed()
        );
    }
    // The shards keep serving everything else.
    assert_eq!(
        get_within(addr, "/plaintext", Duration::from_secs(5)).status,
        200
    );
    running.stop();
    running.join().expect("clean stop");
}

#[test]
fn the_separate_keys_and_a_unix_socket_work_too() {
    require_database();
    // host starting with `/`: the socket directory (setup.sh allows password logins there).
    let mut postgres = postgres_config("", 5.0);
    postgres.host = "/var/run/postgresql".into();
    postgres.user = "benchmarkdbuser".into();
    postgres.password = "benchmarkdbpass".into();
    postgres.dbname = "hello_world".into();
    postgres.connections_per_shard = 3;
    let running = Server::new(test_config())
        .routes(move |router: &mut Router, ctx: &Rc<ShardCtx>| {
            techempower::routes(router, ctx, &postgres);
            // Which backend (connection) of the example's client answered, on which shard.
            let pg = ctx
                .local::<Pg>()
                .expect("techempower::routes started the client");
            let id = ctx.id();
            router.get("/backend", move |_: Request| {
                let pg = pg.clone();
                async move {
                    let pid = pg.conn().map(|conn| conn.backend_pid());
                    match pid {
                        Ok(pid) => Response::text(format!("{id} {pid}")),
                        Err(e) => e.response(),
                    }
                }
            });
        })
        .start()
        .expect("server starts");
    let addr = running.local_addr();
    let reply = wait_for_shards(
        addr,
        "/db",
        Duration::from_secs(10),
        "login over /var/run/postgresql (run benchmarks/tfb/setup.sh)",
    );
    world(&json(&reply));
    for _ in 0..3 {
        assert_eq!(worlds(&fetch_from(addr, "/queries?queries=50")).len(), 50);
    }
    // Requests spread over the three connections of a shard, in turn: each shard's
    // answers cycle through three different backends.
    wait_for_shards(
        addr,
        "/backend",
        Duration::from_secs(10),
        "second client up",
    );
    let mut seen: [Vec<i32>; 2] = Default::default();
    for _ in 0..200 {
        if seen.iter().all(|pids| pids.len() >= 6) {
            break;
        }
        let reply = fetch_from(addr, "/backend");
        assert_eq!(reply.status, 200, "{}", reply.text());
        let text = reply.text();
        let (shard, pid) = text.split_once(' ').unwrap();
        seen[shard.parse::<usize>().unwrap()].push(pid.parse().unwrap());
    }
    for (shard, pids) in seen.iter().enumerate() {
        assert!(
            pids.len() >= 6,
            "shard {shard} answered {} times",
            pids.len()
        );
        let first: std::collections::HashSet<i32> = pids[..3].iter().copied().collect();
        assert_eq!(first.len(), 3, "shard {shard}: {pids:?}");
        assert_eq!(pids[..3], pids[3..6], "shard {shard} takes turns: {pids:?}");
    }
    running.stop();
    running.join().expect("clean stop");
}

#[test]
fn queries_past_the_shards_in_flight_bound_answer_503_at_once() {
    // One shard, two connections, at most four queries in flight over both: a request
    // with four concurrent queries is served, one with five gets 503 at once, and the
    // bound frees up again once queries are answered or given up.
    require_database();
    let mut postgres = postgres_config(DATABASE_URL, 5.0);
    postgres.connections_per_shard = 2;
    postgres.max_queries_in_flight = 4;
    let mut config = test_config();
    config.server.shards = 1;
    let running = Server::new(config)
        .routes(move |router: &mut Router, ctx: &Rc<ShardCtx>| {
            let pg =
                Pg::start(ctx, &postgres, &["SELECT 1 FROM pg_sleep($1)"]).expect("configured");
            router.get("/sleepy/:n/:secs", move |req: Request| {
                let pg = pg.clone();
                let n: usize = req.param("n").and_then(|n| n.parse().ok()).unwrap_or(1);
                let secs: f64 = req
                    .param("secs")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0.0);
                async move {
                    let queries = (0..n).map(|_| {
                        let pg = pg.clone();
                        async move {
                            let params: [&(dyn ToSql + Sync); 1] = [&secs];
                            pg.query_one(0, &params).await
                        }
                    });
                    match futures_util::future::try_join_all(queries).await {
                        Ok(rows) => Response::text(format!("{} {}", rows.len(), pg.in_flight())),
                        Err(e) => e.response(),
                    }
                }
            });
        })
        .start()
        .expect("server starts");
    let addr = running.local_addr();
    wait_for_200(
        addr,
        "/sleepy/1/0",
        Duration::from_secs(10),
        "PostgreSQL reachable",
    );
    for _ in 0..2 {
        let reply = get_within(addr, "/sleepy/4/0.1", Duration::from_secs(5));
        assert_eq!((reply.status, reply.text().as_str()), (200, "4 0"));
        let reply = get_within(addr, "/sleepy/5/0.1", Duration::from_secs(5));
        assert_eq!(reply.status, 503, "{}", reply.text());
        assert_eq!(reply.text(), "database busy\n");
        assert_eq!(reply.header("retry-after"), Some("1"));
    }
    // Two requests at once (each holds its queries for a second) share the bound:
    // 3 + 3 > 4, so one of them is refused.
    let both: Vec<u16> = std::thread::scope(|scope| {
        let requests: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| get_within(addr, "/sleepy/3/1", Duration::from_secs(5)).status))
            .collect();
        requests.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert!(both.contains(&503) && both.contains(&200), "{both:?}");
    running.stop();
    running.join().expect("clean stop");
}

#[test]
fn a_failed_prepare_answers_503_without_the_databases_message() {
    require_database();
    let postgres = postgres_config(DATABASE_URL, 5.0);
    let running = Server::new(test_config())
        .routes(move |router: &mut Router, ctx: &Rc<ShardCtx>| {
            let pg = Pg::start(ctx, &postgres, &["SELECT secret FROM no_such_table"])
                .expect("configured");
            router.get("/q", move |_: Request| {
                let pg = pg.clone();
                async move {
                    match pg.query(0, &[]).await {
                        Ok(_) => Response::text("rows"),
                        Err(e) => e.response(),
                    }
                }
            });
        })
        .start()
        .expect("server starts");
    let addr = running.local_addr();
    // Long enough for every connection to log in and fail its prepare at least once.
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..10 {
        let reply = get_within(addr, "/q", Duration::from_secs(5));
        assert_eq!(reply.status, 503, "{}", reply.text());
        assert_eq!(reply.text(), "database unavailable\n");
    }
    running.stop();
    running.join().expect("clean stop");
}

fn fetch_from(addr: SocketAddr, path: &str) -> Reply {
    get_within(addr, path, Duration::from_secs(10))
}

#[test]
fn a_stalled_connection_is_replaced() {
    // With the server-side statement_timeout off, a long statement keeps the shard's one
    // connection silent: queries behind it time out (504) until the client gives up on
    // it (two query timeouts without an answer) and reconnects, well before the
    // statement would have finished.
    require_database();
    let url = format!("{DATABASE_URL}?options=-c%20statement_timeout%3D0");
    let postgres = postgres_config(&url, 0.3);
    let mut config = test_config();
    config.server.shards = 1;
    let running = sleep_server(config, postgres);
    let addr = running.local_addr();
    let start = Instant::now();
    let reply = get_within(addr, "/sleep/10", Duration::from_secs(5));
    assert_eq!(reply.status, 504, "{}", reply.text());
    wait_for_200(
        addr,
        "/fast",
        Duration::from_secs(8),
        "a stalled connection must be replaced",
    );
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    running.stop();
    running.join().expect("clean stop");
}
