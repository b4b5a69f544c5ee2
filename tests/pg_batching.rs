//! The database path batches as HTTP responses do: every query that handlers issue in
//! one turn of a shard's loop leaves in one write to the database socket, counted in
//! `/stats` (`database.queries`, `database.writes`). Against the real PostgreSQL from
//! `benchmarks/tfb/setup.sh`.
#![cfg(feature = "pg")]

mod common;
mod pg_support;

use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use common::*;
use futures_util::future::try_join_all;
use haywire::pg::{Pg, ToSql};
use haywire::{Request, Response, Router, RunningServer, Server, ShardCtx};
use pg_support::*;

/// A 2-shard server with `/q/:n` (n concurrent `SELECT $1`s on the shard's one
/// connection, answering their sum), returned once both shards' connections answer.
fn server() -> RunningServer {
    require_database();
    let postgres = postgres_config(DATABASE_URL, 5.0);
    let running = Server::new(test_config())
        .routes(move |router: &mut Router, ctx: &Rc<ShardCtx>| {
            let pg = Pg::start(ctx, &postgres, &["SELECT $1::int"]).expect("configured");
            let p = pg.clone();
            router.get("/q/:n", move |req: Request| {
                let pg = p.clone();
                let n: i32 = req.param("n").and_then(|n| n.parse().ok()).unwrap_or(1);
                async move {
                    let queries = (1..=n).map(|i| {
                        let pg = pg.clone();
                        async move {
                            let params: [&(dyn ToSql + Sync); 1] = [&i];
                            pg.query_one(0, &params).await.map(|row| row.get::<i32>(0))
                        }
                    });
                    match try_join_all(queries).await {
                        Ok(values) => Response::text(values.iter().sum::<i32>().to_string()),
                        Err(e) => e.response(),
                    }
                }
            });
            // The same n queries on one connection, issued one after another and then
            // awaited in turn: each is sent when issued.
            router.get("/inturn/:n", move |req: Request| {
                let pg = pg.clone();
                let n: i32 = req.param("n").and_then(|n| n.parse().ok()).unwrap_or(1);
                async move {
                    let conn = match pg.conn() {
                        Ok(conn) => conn,
                        Err(e) => return e.response(),
                    };
                    let sent: Vec<_> = (1..=n)
                        .map(|i| {
                            let params: [&(dyn ToSql + Sync); 1] = [&i];
                            conn.query_one(0, &params)
                        })
                        .collect();
                    let mut sum = 0;
                    for query in sent {
                        match query.await {
                            Ok(row) => sum += row.get::<i32>(0),
                            Err(e) => return e.response(),
                        }
                    }
                    Response::text(sum.to_string())
                }
            });
        })
        .start()
        .expect("server starts");
    wait_for_shards(
        running.local_addr(),
        "/q/1",
        Duration::from_secs(10),
        "PostgreSQL reachable",
    );
    running
}

/// Queries and database writes so far, over both shards.
fn queries_and_writes(addr: SocketAddr) -> (u64, u64) {
    let stats = stats(addr);
    let database = &stats["total"]["database"];
    (
        database["queries"].as_u64().expect("database.queries"),
        database["writes"].as_u64().expect("database.writes"),
    )
}

/// For each n, GET `route`/n sums n one-row queries: the answer is right, and the n
/// queries left in exactly one database write.
fn each_batch_leaves_in_one_write(route: &str, counts: &[i32], what: &str) {
    let running = server();
    let addr = running.local_addr();
    for &n in counts {
        let before = queries_and_writes(addr);
        let reply = get_within(addr, &format!("{route}/{n}"), Duration::from_secs(10));
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.text(), (n * (n + 1) / 2).to_string());
        let after = queries_and_writes(addr);
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (u64::from(n.unsigned_abs()), 1),
            "{n} {what}: (queries, database writes)"
        );
    }
    running.stop();
    running.join().expect("clean stop");
}

#[test]
fn the_queries_of_one_request_leave_in_one_write() {
    each_batch_leaves_in_one_write("/q", &[1, 20, 100], "concurrent queries");
}

#[test]
fn queries_issued_then_awaited_in_turn_leave_in_one_write() {
    each_batch_leaves_in_one_write("/inturn", &[1, 20], "queries awaited in turn");
}

#[test]
fn the_queries_of_a_pipelined_batch_leave_in_one_write() {
    // 4 requests in one client write are read and dispatched in one turn (a connection
    // runs at most 4 handlers of a pipeline at once: src/conn.rs OUTPUT_CAP ÷
    // PENDING_COST); their 8 queries go to the database together.
    let running = server();
    let addr = running.local_addr();
    let before = queries_and_writes(addr);
    let mut stream = connect(addr);
    let wire: String = ["/q/1", "/q/1", "/q/1", "/q/5"]
        .iter()
        .map(|path| get(path))
        .collect();
    stream.write_all(wire.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    for i in 0..4 {
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.status, 200, "request {i}: {}", reply.text());
    }
    let after = queries_and_writes(addr);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (8, 1),
        "4 pipelined requests: (queries, database writes)"
    );
    running.stop();
    running.join().expect("clean stop");
}
