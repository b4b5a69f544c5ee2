//! The `pg` client's own wire-protocol driver against the real PostgreSQL from
//! `benchmarks/tfb/setup.sh`: database errors reach `PgError` with their SQLSTATE and
//! fail only their own query, values convert by their column types, a parameter that
//! does not convert fails before anything is sent, `backend_pid` names the connection's
//! server process, and a query allocates nothing of its own.
#![cfg(feature = "pg")]

mod common;
mod pg_support;

use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use common::counting::*;
use common::*;
use futures_util::future::{join_all, try_join_all};
use haywire::pg::{Pg, PgError, ToSql};
use haywire::{Request, Response, Router, RunningServer, Server, ShardCtx};
use pg_support::*;

#[global_allocator]
static GLOBAL: Counting = Counting;

const DIVIDE: usize = 0;
const BACKEND_PID: usize = 1;
const VALUES: usize = 2;
const ECHO: usize = 3;
static STATEMENTS: &[&str] = &[
    "SELECT 10 / $1::int",
    "SELECT pg_backend_pid()",
    "SELECT NULL::int, 'h\u{e9}llo'::text, 5::int8",
    "SELECT $1::int",
];

/// What a query's outcome looks like in a test answer: its value, or its error's
/// SQLSTATE (`-` for an error found by the client).
fn outcome(result: Result<i32, PgError>) -> String {
    match result {
        Ok(v) => v.to_string(),
        Err(PgError::Query(e)) => format!("e:{}", e.code().unwrap_or("-")),
        Err(other) => format!("other:{other}"),
    }
}

fn routes(router: &mut Router, ctx: &Rc<ShardCtx>) {
    let postgres = postgres_config(DATABASE_URL, 5.0);
    let pg = Pg::start(ctx, &postgres, STATEMENTS).expect("configured");
    // `/div/a,b,...`: 10 / each, all in flight together on one connection.
    let p = pg.clone();
    router.get("/div/:list", move |req: Request| {
        let pg = p.clone();
        let divisors: Vec<i32> = req
            .param("list")
            .unwrap_or("")
            .split(',')
            .filter_map(|d| d.parse().ok())
            .collect();
        async move {
            let conn = match pg.conn() {
                Ok(conn) => conn,
                Err(e) => return e.response(),
            };
            let conn = &conn;
            let queries = divisors.iter().map(|d| async move {
                let params: [&(dyn ToSql + Sync); 1] = [d];
                conn.query_one(DIVIDE, &params)
                    .await
                    .map(|row| row.get::<i32>(0))
            });
            let outcomes: Vec<String> = join_all(queries).await.into_iter().map(outcome).collect();
            Response::text(outcomes.join(" "))
        }
    });
    let p = pg.clone();
    router.get("/div0", move |_: Request| {
        let pg = p.clone();
        async move {
            match pg.query_one(DIVIDE, &[&0i32]).await {
                Ok(_) => Response::text("divided by zero"),
                Err(e) => e.response(),
            }
        }
    });
    let p = pg.clone();
    router.get("/pid", move |_: Request| {
        let pg = p.clone();
        async move {
            let conn = match pg.conn() {
                Ok(conn) => conn,
                Err(e) => return e.response(),
            };
            match conn.query_one(BACKEND_PID, &[]).await {
                Ok(row) => Response::text(format!("{} {}", conn.backend_pid(), row.get::<i32>(0))),
                Err(e) => e.response(),
            }
        }
    });
    let p = pg.clone();
    router.get("/values", move |_: Request| {
        let pg = p.clone();
        async move {
            match pg.query_one(VALUES, &[]).await {
                Ok(row) => Response::text(format!(
                    "{:?} {} {} {} {}",
                    row.get::<Option<i32>>(0),
                    row.get::<&str>(1),
                    row.get::<i64>(2),
                    // An int8 is not an i32; a NULL is not an i32.
                    outcome(row.try_get::<i32>(2)),
                    outcome(row.try_get::<i32>(0)),
                )),
                Err(e) => e.response(),
            }
        }
    });
    // A text where an int goes, a missing parameter, then a good query on the same
    // connection: the bad ones fail alone, before anything is sent.
    router.get("/bad", move |_: Request| {
        let pg = pg.clone();
        async move {
            let conn = match pg.conn() {
                Ok(conn) => conn,
                Err(e) => return e.response(),
            };
            let text: [&(dyn ToSql + Sync); 1] = [&"seven"];
            let wrong = conn.query_one(ECHO, &text).await.map(|r| r.get::<i32>(0));
            let missing = conn.query_one(ECHO, &[]).await.map(|r| r.get::<i32>(0));
            let none = conn.query_one(99, &[]).await.map(|r| r.get::<i32>(0));
            let good = conn
                .query_one(ECHO, &[&7i32])
                .await
                .map(|r| r.get::<i32>(0));
            Response::text(format!(
                "{} {} {} {}",
                outcome(wrong),
                outcome(missing),
                outcome(none),
                outcome(good)
            ))
        }
    });
}

fn server() -> RunningServer {
    require_database();
    let running = Server::new(test_config())
        .routes(routes)
        .start()
        .expect("server starts");
    wait_for_shards(
        running.local_addr(),
        "/pid",
        Duration::from_secs(10),
        "PostgreSQL reachable",
    );
    running
}

fn fetch(addr: SocketAddr, path: &str) -> String {
    let reply = get_within(addr, path, Duration::from_secs(10));
    assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    reply.text()
}

fn database_writes(addr: SocketAddr) -> u64 {
    stats(addr)["total"]["database"]["writes"]
        .as_u64()
        .expect("database.writes")
}

#[test]
fn a_failing_query_fails_alone_with_its_sqlstate() {
    let running = server();
    let addr = running.local_addr();
    // Five queries in one write: the two divisions by zero fail (22012), the others,
    // before and after them in the same write, are answered.
    let before = database_writes(addr);
    assert_eq!(fetch(addr, "/div/1,0,2,0,5"), "10 e:22012 5 e:22012 2");
    assert_eq!(
        database_writes(addr) - before,
        1,
        "the five queries left in one write"
    );
    // The client sees the SQLSTATE, not the database's message.
    let reply = get_within(addr, "/div0", Duration::from_secs(10));
    assert_eq!(reply.status, 500);
    assert_eq!(reply.text(), "database error (SQLSTATE 22012)\n");
    running.stop();
    running.join().expect("clean stop");
}

#[test]
fn values_convert_by_their_column_types() {
    let running = server();
    assert_eq!(
        fetch(running.local_addr(), "/values"),
        "None h\u{e9}llo 5 e:- e:-"
    );
    running.stop();
    running.join().expect("clean stop");
}

#[test]
fn a_parameter_that_does_not_convert_fails_before_it_is_sent() {
    let running = server();
    // Wrong type, wrong count, no such statement: client errors (no SQLSTATE); the
    // connection's next query is answered as usual.
    assert_eq!(fetch(running.local_addr(), "/bad"), "e:- e:- e:- 7");
    running.stop();
    running.join().expect("clean stop");
}

#[test]
fn backend_pid_is_the_connections_server_process() {
    let running = server();
    for _ in 0..4 {
        let text = fetch(running.local_addr(), "/pid");
        let (ours, theirs) = text.split_once(' ').unwrap();
        assert_eq!(ours, theirs);
    }
    running.stop();
    running.join().expect("clean stop");
}

/// Sends `requests` GETs of `path` one at a time on one connection.
fn one_at_a_time(addr: SocketAddr, path: &str, requests: usize) {
    let stream = connect(addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    for _ in 0..requests {
        writer.write_all(get(path).as_bytes()).unwrap();
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    }
}

#[test]
fn a_query_allocates_nothing_of_its_own() {
    // One shard whose allocations are counted; `/q/:n` runs n `SELECT $1` together on
    // one connection under one timer. A request of 25 queries allocates as many times
    // as a request of one: what a query needs (its slot, its place in the write
    // buffer, its row) is reused or cut from buffers the connection already has.
    require_database();
    let mut config = test_config();
    config.server.shards = 1;
    let postgres = postgres_config(DATABASE_URL, 5.0);
    let running = Server::new(config)
        .routes(mark_shard_thread)
        .routes(move |router: &mut Router, ctx: &Rc<ShardCtx>| {
            let pg = Pg::start(ctx, &postgres, STATEMENTS).expect("configured");
            router.get("/q/:n", move |req: Request| {
                let pg = pg.clone();
                let n: i32 = req.param("n").and_then(|n| n.parse().ok()).unwrap_or(1);
                async move {
                    let conn = match pg.conn() {
                        Ok(conn) => conn,
                        Err(e) => return e.response(),
                    };
                    let conn = &conn;
                    let queries = (1..=n).map(|i| async move {
                        let params: [&(dyn ToSql + Sync); 1] = [&i];
                        conn.query_one(ECHO, &params)
                            .await
                            .map(|row| row.get::<i32>(0))
                    });
                    match pg.timed(try_join_all(queries)).await {
                        Ok(values) => Response::text(values.iter().sum::<i32>().to_string()),
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
        "/q/1",
        Duration::from_secs(10),
        "PostgreSQL reachable",
    );
    let requests = 200;
    let mut haywire = [0.0; 2];
    for (i, n) in [1, 25].into_iter().enumerate() {
        let path = format!("/q/{n}");
        // Warm-up: the buffers, the slot table and the queue reach their steady sizes.
        one_at_a_time(addr, &path, 50);
        let before = snapshot();
        one_at_a_time(addr, &path, requests);
        let [all, ours, runtime] = per(before, requests);
        eprintln!(
            "{path}: per request {all:.3} allocations, Haywire's {ours:.3}, glommio's {runtime:.3}"
        );
        haywire[i] = ours;
    }
    let per_query = (haywire[1] - haywire[0]) / 24.0;
    assert!(
        per_query < 0.05,
        "Haywire allocates {per_query:.3} times per query (per request: {haywire:?})"
    );
    running.stop();
    running.join().expect("clean stop");
}
