//! A per-shard cache, filled on a miss and invalidated on every shard at once.
//!
//! Each shard keeps its own `HashMap` (no lock: only its shard touches it). A GET
//! `/cache/:key` answers from this shard's cache or fills it; a POST
//! `/invalidate/:key` removes the key everywhere with a job gathered over the control
//! mesh (it answers once every shard has dropped the key), and a GET `/cached` asks
//! every shard how many keys it holds and sums the answers.
//!
//! `cargo run --release --example shard_cache` (or `-- PORT`), then
//! `curl localhost:8000/cache/a`, `curl -X POST localhost:8000/invalidate/a`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use haywire::{Config, Request, Response, Router, Server, ShardCtx, StatusCode};

/// One shard's cache, found by control jobs through `ShardCtx::local`.
#[derive(Default)]
struct Cache {
    entries: RefCell<HashMap<String, String>>,
    fills: Cell<u64>,
}

/// Registers the cache routes on one shard (the integration test mounts them too).
pub fn routes(router: &mut Router, shard: &Rc<ShardCtx>) {
    let cache = Rc::new(Cache::default());
    shard.insert_local(cache.clone());
    let id = shard.id();

    router.get("/cache/:key", move |req: Request| {
        let key = req.param("key").unwrap_or_default().to_owned();
        if let Some(value) = cache.entries.borrow().get(&key) {
            return Response::text(format!("hit shard {id} {value}\n"));
        }
        // A real service would ask its backend here.
        cache.fills.set(cache.fills.get() + 1);
        let value = format!("{key}#{}", cache.fills.get());
        cache.entries.borrow_mut().insert(key, value.clone());
        Response::text(format!("miss shard {id} {value}\n"))
    });

    let ctx = shard.clone();
    router.post("/invalidate/:key", move |req: Request| {
        let key = req.param("key").unwrap_or_default().to_owned();
        let ctx = ctx.clone();
        async move {
            // Runs on every shard, this one at once, the others as soon as they get to
            // it; answering after every shard has done it means a client that reads
            // the answer can no longer see the old value anywhere.
            let removed = ctx
                .gather(move |shard: &ShardCtx| {
                    shard
                        .local::<Cache>()
                        .is_some_and(|cache| cache.entries.borrow_mut().remove(&key).is_some())
                })
                .await;
            match removed {
                Ok(removed) => Response::text(format!(
                    "invalidated on {} shards by shard {} (held by {})\n",
                    removed.len(),
                    ctx.id(),
                    removed.iter().filter(|&&r| r).count()
                )),
                Err(e) => Response::new(StatusCode::INTERNAL_SERVER_ERROR)
                    .with_body("text/plain", e.to_string()),
            }
        }
    });

    let ctx = shard.clone();
    router.get("/cached", move |_: Request| {
        let ctx = ctx.clone();
        async move {
            let counts = ctx
                .gather(|shard: &ShardCtx| {
                    shard
                        .local::<Cache>()
                        .map_or(0, |c| c.entries.borrow().len())
                })
                .await;
            match counts {
                Ok(counts) => Response::text(format!(
                    "{} keys cached: {counts:?}\n",
                    counts.iter().sum::<usize>()
                )),
                Err(e) => Response::new(StatusCode::INTERNAL_SERVER_ERROR)
                    .with_body("text/plain", e.to_string()),
            }
        }
    });
}

fn main() -> std::io::Result<()> {
    let mut config = Config::default();
    config.server.address = "127.0.0.1".into();
    if let Some(port) = std::env::args().nth(1) {
        config.server.port = port.parse().expect("PORT is a number");
    }
    let server = Server::new(config).routes(routes).start()?;
    println!("listening on {}", server.local_addr());
    server.join()
}
