//! TechEmpower peer: may_minihttp (stackful coroutines on `--threads` may workers, one
//! coroutine per connection), laid out like TFB's may-minihttp entry: a pool of database
//! connections made at start, each connection's service holding one of them.
//!
//! Substitution: TFB's entry uses may_postgres (a coroutine-aware port of tokio-postgres),
//! which is not published on crates.io. This peer uses the synchronous `postgres` crate, one
//! connection per may worker thread: a query blocks its worker thread (no other coroutine
//! runs meanwhile) and a request's queries go one after another, not pipelined. Database
//! tests therefore understate what may_minihttp does with may_postgres.
//! Usage: tfb-may-minihttp --port P --threads N [--database-url URL]

#[path = "../../common.rs"]
mod common;

use std::io;
use std::sync::{Arc, Mutex};

use bytes::BufMut;
use may_minihttp::{HttpService, HttpServiceFactory, Request, Response};
use postgres::{Client, NoTls, Statement};
use serde::Serialize;

use common::Rng;

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

struct Db {
    client: Client,
    world: Statement,
    fortune: Statement,
    update: Statement,
}

fn io_error(e: postgres::Error) -> io::Error {
    io::Error::other(e)
}

impl Db {
    fn connect(url: &str) -> Result<Db, postgres::Error> {
        let mut client = Client::connect(url, NoTls)?;
        let world = client.prepare(common::SELECT_WORLD)?;
        let fortune = client.prepare(common::SELECT_FORTUNES)?;
        let update = client.prepare(common::UPDATE_WORLDS)?;
        Ok(Db { client, world, fortune, update })
    }

    fn world(&mut self, id: i32) -> io::Result<World> {
        let row = self.client.query_one(&self.world, &[&id]).map_err(io_error)?;
        Ok(World { id: row.get(0), random_number: row.get(1) })
    }

    fn worlds(&mut self, n: usize) -> io::Result<Vec<World>> {
        let mut rng = Rng::new();
        (0..n).map(|_| self.world(rng.world_id())).collect()
    }
}

#[derive(Clone)]
struct Techempower {
    db: Arc<Mutex<Db>>,
    cache: Arc<Vec<World>>, // index id - 1
}

fn json(rsp: &mut Response, value: &impl Serialize) {
    rsp.header("Content-Type: application/json");
    serde_json::to_writer(rsp.body_mut().writer(), value).unwrap();
}

impl HttpService for Techempower {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
        let (path, query) = match req.path().split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (req.path(), None),
        };
        match path {
            "/plaintext" => {
                rsp.header("Content-Type: text/plain");
                rsp.body("Hello, World!");
            }
            "/json" => json(rsp, &Message { message: common::HELLO }),
            "/db" => {
                let world = self.db.lock().unwrap().world(Rng::new().world_id())?;
                json(rsp, &world);
            }
            "/queries" => {
                let worlds = self.db.lock().unwrap().worlds(common::count(query, "queries"))?;
                json(rsp, &worlds);
            }
            "/fortunes" => {
                let rows = {
                    let mut db = self.db.lock().unwrap();
                    let db = &mut *db;
                    db.client.query(&db.fortune, &[]).map_err(io_error)?
                };
                let fortunes = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
                rsp.header("Content-Type: text/html; charset=utf-8");
                rsp.body_vec(common::fortunes_html(fortunes).into_bytes());
            }
            "/updates" => {
                let n = common::count(query, "queries");
                let mut db = self.db.lock().unwrap();
                let mut worlds = db.worlds(n)?;
                let mut rng = Rng::new();
                for w in &mut worlds {
                    w.random_number = rng.world_id();
                }
                let mut sorted = worlds.clone();
                sorted.sort_unstable_by_key(|w| w.id);
                let ids: Vec<i32> = sorted.iter().map(|w| w.id).collect();
                let numbers: Vec<i32> = sorted.iter().map(|w| w.random_number).collect();
                let db = &mut *db;
                db.client.execute(&db.update, &[&ids, &numbers]).map_err(io_error)?;
                json(rsp, &worlds);
            }
            "/cached-queries" => {
                let mut rng = Rng::new();
                let n = common::count(query, "count");
                let worlds: Vec<World> =
                    (0..n).map(|_| self.cache[rng.world_id() as usize - 1]).collect();
                json(rsp, &worlds);
            }
            _ => {
                rsp.status_code(404, "Not Found");
                rsp.header("Content-Type: text/plain");
                rsp.body("not found");
            }
        }
        Ok(())
    }
}

struct Factory {
    pool: Vec<Arc<Mutex<Db>>>,
    cache: Arc<Vec<World>>,
}

impl HttpServiceFactory for Factory {
    type Service = Techempower;

    fn new_service(&self, id: usize) -> Techempower {
        Techempower { db: self.pool[id % self.pool.len()].clone(), cache: self.cache.clone() }
    }
}

fn main() {
    let args = common::args(8103);
    may::config().set_workers(args.threads).set_stack_size(0x8000);
    let pool: Vec<_> = (0..args.threads)
        .map(|_| Arc::new(Mutex::new(Db::connect(&args.database_url).expect("database"))))
        .collect();
    let mut cache: Vec<World> = pool[0]
        .lock()
        .unwrap()
        .client
        .query(common::SELECT_ALL_WORLDS, &[])
        .expect("world table")
        .iter()
        .map(|r| World { id: r.get(0), random_number: r.get(1) })
        .collect();
    cache.sort_unstable_by_key(|w| w.id);
    assert_eq!(cache.len(), common::WORLD_ROWS as usize, "the world table needs 10,000 rows");
    let server = Factory { pool, cache: Arc::new(cache) }.start(("127.0.0.1", args.port)).unwrap();
    println!("tfb-may-minihttp on 127.0.0.1:{} with {} workers", args.port, args.threads);
    server.wait();
}
