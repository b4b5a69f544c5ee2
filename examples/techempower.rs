//! TechEmpower Framework Benchmarks: all seven test types on Haywire and its per-shard
//! PostgreSQL client (`haywire::pg`).
//!
//! | path | test |
//! | --- | --- |
//! | `/plaintext` | `Hello, World!` |
//! | `/json` | `{"message":"Hello, World!"}`, serialized per request |
//! | `/db` | one random `World` row |
//! | `/queries?queries=N` | N random rows, one SELECT each, all sent together |
//! | `/fortunes` | every `Fortune` plus one added at request time, sorted, as HTML |
//! | `/updates?queries=N` | N random rows read, given new numbers, written in one UPDATE |
//! | `/cached-queries?count=N` | N random rows from the shard's in-memory copy |
//!
//! N is clamped to 1..=500; missing, zero, negative or non-numeric means 1. Haywire adds
//! `Server`, `Date` and `Content-Length` to every response.
//!
//! ```text
//! benchmarks/tfb/setup.sh      # PostgreSQL with the hello_world database
//! cargo build --release --features pg --example techempower
//! target/release/examples/techempower --port 8080 --shards 2 \
//!     [--database-url postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1/hello_world] \
//!     [--cpus 0,1] [--connections-per-shard 1]
//! ```

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use clap::Parser;
use haywire::config::{PlacementKind, PostgresConfig, RouteConfig};
use haywire::pg::{Pg, PgConn, PgError, ToSql};
use haywire::{Config, Request, Response, Router, Server, ShardCtx, StatusCode};
use sailfish::TemplateSimple;
use serde::Serialize;

/// The URL TechEmpower's toolset gives every framework (see benchmarks/tfb/setup.sh).
pub const DEFAULT_DATABASE_URL: &str =
    "postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1/hello_world";

/// Prepared statements, by index.
const WORLD: usize = 0;
const FORTUNES: usize = 1;
const UPDATE: usize = 2;
const ALL_WORLDS: usize = 3;

/// Prepared once on every connection. The update writes a whole request's rows in one
/// statement from two arrays (ids sorted, so concurrent updates lock rows in one order
/// and cannot deadlock).
pub static STATEMENTS: &[&str] = &[
    "SELECT id, randomnumber FROM world WHERE id = $1",
    "SELECT id, message FROM fortune",
    "UPDATE world SET randomnumber = w.r \
     FROM (SELECT unnest($1::int[]) AS i, unnest($2::int[]) AS r) AS w \
     WHERE world.id = w.i",
    "SELECT id, randomnumber FROM world",
];

/// Rows in `World`; ids are 1..=WORLD_ROWS.
const WORLD_ROWS: i32 = 10_000;

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

#[derive(Serialize, Clone, Copy)]
struct World {
    id: i32,
    #[serde(rename = "randomNumber")]
    random_number: i32,
}

struct Fortune {
    id: i32,
    message: String,
}

/// `<%= %>` escapes HTML.
#[derive(TemplateSimple)]
#[template(
    source = "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr><% for f in fortunes { %><tr><td><%= f.id %></td><td><%= f.message %></td></tr><% } %></table></body></html>"
)]
struct FortunesPage<'a> {
    fortunes: &'a [Fortune],
}

/// This shard's copy of `World` for `/cached-queries`, indexed by `id - 1`: bounded
/// (10,000 rows), filled from the database when the shard starts.
#[derive(Default)]
struct WorldCache {
    rows: RefCell<Option<Rc<Vec<World>>>>,
}

/// A random id, 1..=10,000. fastrand keeps its state in a thread-local `Cell`: one
/// generator per shard, no lock.
fn random_id() -> i32 {
    fastrand::i32(1..=WORLD_ROWS)
}

/// The `name` parameter of the query string, clamped to 1..=500; anything missing or
/// unparseable is 1.
fn count(req: &Request, name: &str) -> usize {
    let value = req.query().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    });
    value
        .and_then(|v| v.parse::<i64>().ok())
        .map_or(1, |n| n.clamp(1, 500) as usize)
}

/// `value` as JSON, written into a buffer of `capacity` bytes (enough for the answer:
/// growing it from serde_json's default cost more than the serializing).
fn json(value: &impl Serialize, capacity: usize) -> Response {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, value).expect("plain structs serialize");
    Response::json(out)
}

/// Room for the JSON of `n` worlds (`{"id":10000,"randomNumber":10000},`: 35 bytes).
fn worlds_capacity(n: usize) -> usize {
    36 * n + 2
}

fn world(row: &haywire::pg::Row) -> World {
    World {
        id: row.get(0),
        random_number: row.get(1),
    }
}

/// `ids.len()` random rows, one SELECT each, all in flight together on one connection:
/// every query is sent as it is issued, so awaiting them in order is one round trip,
/// and each answer costs one poll (a join would poll all of them at every answer).
async fn read_worlds(conn: &PgConn, ids: &[i32]) -> Result<Vec<World>, PgError> {
    let sent: Vec<_> = ids
        .iter()
        .map(|id| {
            let params: [&(dyn ToSql + Sync); 1] = [id];
            conn.query_one(WORLD, &params)
        })
        .collect();
    let mut worlds = Vec::with_capacity(ids.len());
    for query in sent {
        worlds.push(world(&query.await?));
    }
    Ok(worlds)
}

async fn db(pg: Rc<Pg>) -> Result<Response, PgError> {
    let row = pg.query_one(WORLD, &[&random_id()]).await?;
    Ok(json(&world(&row), worlds_capacity(1)))
}

async fn queries(pg: Rc<Pg>, n: usize) -> Result<Response, PgError> {
    let conn = pg.conn()?;
    let ids: Vec<i32> = (0..n).map(|_| random_id()).collect();
    let worlds = pg.timed(read_worlds(&conn, &ids)).await?;
    Ok(json(&worlds, worlds_capacity(n)))
}

async fn updates(pg: Rc<Pg>, n: usize) -> Result<Response, PgError> {
    let conn = pg.conn()?;
    let ids: Vec<i32> = (0..n).map(|_| random_id()).collect();
    pg.timed(async {
        let mut worlds = read_worlds(&conn, &ids).await?;
        for w in &mut worlds {
            w.random_number = random_id();
        }
        let mut pairs: Vec<(i32, i32)> = worlds.iter().map(|w| (w.id, w.random_number)).collect();
        pairs.sort_unstable();
        // A repeated id keeps one new number; the response shows the one written.
        pairs.dedup_by_key(|p| p.0);
        for w in &mut worlds {
            let i = pairs
                .binary_search_by_key(&w.id, |p| p.0)
                .expect("every id is in pairs");
            w.random_number = pairs[i].1;
        }
        let (ids, numbers): (Vec<i32>, Vec<i32>) = pairs.into_iter().unzip();
        conn.execute(UPDATE, &[&ids, &numbers]).await?;
        Ok(json(&worlds, worlds_capacity(n)))
    })
    .await
}

async fn fortunes(pg: Rc<Pg>) -> Result<Response, PgError> {
    let rows = pg.query(FORTUNES, &[]).await?;
    let mut fortunes: Vec<Fortune> = rows
        .iter()
        .map(|row| Fortune {
            id: row.get(0),
            message: row.get(1),
        })
        .collect();
    fortunes.push(Fortune {
        id: 0,
        message: "Additional fortune added at request time.".to_owned(),
    });
    fortunes.sort_unstable_by(|a, b| a.message.cmp(&b.message));
    let html = FortunesPage {
        fortunes: &fortunes,
    }
    .render_once()
    .expect("the template renders");
    Ok(Response::new(StatusCode::OK).with_body("text/html; charset=utf-8", html))
}

fn cached_queries(cache: &WorldCache, n: usize) -> Response {
    let Some(rows) = cache.rows.borrow().clone() else {
        return Response::new(StatusCode::SERVICE_UNAVAILABLE)
            .with_body("text/plain; charset=utf-8", "cache not loaded yet\n")
            .with_header("Retry-After", "1");
    };
    let worlds: Vec<World> = (0..n).map(|_| rows[(random_id() - 1) as usize]).collect();
    json(&worlds, worlds_capacity(n))
}

/// Fills the shard's cache once the database answers, retrying until it does.
async fn fill_cache(pg: Rc<Pg>, cache: Rc<WorldCache>) {
    loop {
        if pg.wait_ready(Duration::from_secs(1)).await.is_ok() {
            if let Ok(rows) = pg.query(ALL_WORLDS, &[]).await {
                let mut table = vec![
                    World {
                        id: 0,
                        random_number: 0
                    };
                    WORLD_ROWS as usize
                ];
                for w in rows.iter().map(world) {
                    if (1..=WORLD_ROWS).contains(&w.id) {
                        table[(w.id - 1) as usize] = w;
                    }
                }
                *cache.rows.borrow_mut() = Some(Rc::new(table));
                return;
            }
        }
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
}

fn answer(result: Result<Response, PgError>) -> Response {
    result.unwrap_or_else(|e| e.response())
}

/// Registers the seven routes on one shard, starting its database client.
pub fn routes(router: &mut Router, ctx: &Rc<ShardCtx>, postgres: &PostgresConfig) {
    let pg = Pg::start(ctx, postgres, STATEMENTS).expect("[postgres] is configured");
    let cache = Rc::new(WorldCache::default());
    glommio::spawn_local(fill_cache(pg.clone(), cache.clone())).detach();

    router.get("/plaintext", |_: Request| {
        Response::new(StatusCode::OK).with_body("text/plain", "Hello, World!")
    });
    router.get("/json", |_: Request| {
        json(
            &Message {
                message: "Hello, World!",
            },
            32,
        )
    });
    let p = pg.clone();
    router.get("/db", move |_: Request| {
        let pg = p.clone();
        async move { answer(db(pg).await) }
    });
    let p = pg.clone();
    router.get("/queries", move |req: Request| {
        let pg = p.clone();
        let n = count(&req, "queries");
        async move { answer(queries(pg, n).await) }
    });
    let p = pg.clone();
    router.get("/updates", move |req: Request| {
        let pg = p.clone();
        let n = count(&req, "queries");
        async move { answer(updates(pg, n).await) }
    });
    let p = pg;
    router.get("/fortunes", move |_: Request| {
        let pg = p.clone();
        async move { answer(fortunes(pg).await) }
    });
    router.get("/cached-queries", move |req: Request| {
        cached_queries(&cache, count(&req, "count"))
    });
}

/// Command-line flags.
#[derive(Parser, Debug)]
#[command(about = "TechEmpower test types on Haywire")]
struct Args {
    /// Port to listen on.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Shards; 0 = one per allowed CPU.
    #[arg(long, default_value_t = 0)]
    shards: usize,
    /// Pin shard k to the k-th CPU of this list (e.g. 0,1); unpinned without it.
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
    /// PostgreSQL URL.
    #[arg(long, default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Database connections per shard.
    #[arg(long, default_value_t = 1)]
    connections_per_shard: usize,
}

#[allow(dead_code)] // the integration test mounts `routes` without this `main`
fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut config = Config::default();
    config.server.port = args.port;
    config.server.shards = args.shards;
    // The seven test routes, plus the counters benchmarks/tfb/run.sh reads (wake-ups).
    config.routes = vec![RouteConfig::Metrics {
        path: "/metrics".into(),
    }];
    if args.cpus.is_empty() {
        config.server.placement = PlacementKind::Unbound;
    } else {
        config.server.placement = PlacementKind::Pinned;
        config.server.cpus = args.cpus;
    }
    config.postgres.url = args.database_url;
    config.postgres.connections_per_shard = args.connections_per_shard;
    if let Err(e) = config.validate() {
        eprintln!("techempower: {e}");
        std::process::exit(2);
    }
    let postgres = config.postgres.clone();
    let server = Server::new(config)
        .routes(move |router: &mut Router, ctx: &Rc<ShardCtx>| routes(router, ctx, &postgres))
        .start()?;
    println!("techempower listening on {}", server.local_addr());
    server.join()
}
