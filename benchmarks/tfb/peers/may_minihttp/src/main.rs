//! TechEmpower peer: may_minihttp (stackful coroutines on `--threads` may workers, one
//! coroutine per connection), for the tests that need no database query while serving:
//! plaintext, json and cached-queries (the cache is read once at start).
//!
//! TFB's may-minihttp entry queries through may_postgres, a coroutine-aware client that is
//! not published on crates.io; a blocking client would stall a worker thread per query and
//! measure something else, so this peer answers 404 to /db, /queries, /fortunes and
//! /updates, and benchmarks/tfb/run.sh leaves it out of those tests.
//! Usage: tfb-may-minihttp --port P --threads N [--database-url URL]

#[path = "../../common.rs"]
mod common;

use std::io;
use std::sync::Arc;

use bytes::BufMut;
use may_minihttp::{HttpService, HttpServiceFactory, Request, Response};
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

#[derive(Clone)]
struct Techempower {
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
    cache: Arc<Vec<World>>,
}

impl HttpServiceFactory for Factory {
    type Service = Techempower;

    fn new_service(&self, _: usize) -> Techempower {
        Techempower { cache: self.cache.clone() }
    }
}

/// The World table, read once before serving (TFB's cache is filled at start too).
fn load_cache(url: &str) -> Vec<World> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("database");
    let mut cache: Vec<World> = client
        .query(common::SELECT_ALL_WORLDS, &[])
        .expect("world table")
        .iter()
        .map(|r| World { id: r.get(0), random_number: r.get(1) })
        .collect();
    cache.sort_unstable_by_key(|w| w.id);
    assert_eq!(cache.len(), common::WORLD_ROWS as usize, "the world table needs 10,000 rows");
    cache
}

fn main() {
    let args = common::args(8103);
    may::config().set_workers(args.threads).set_stack_size(0x8000);
    let cache = Arc::new(load_cache(&args.database_url));
    let server = Factory { cache }.start(("127.0.0.1", args.port)).unwrap();
    println!("tfb-may-minihttp on 127.0.0.1:{} with {} workers", args.port, args.threads);
    server.wait();
}
