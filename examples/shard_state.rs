//! Per-shard state without locks: each shard counts its own hits in a `Cell`.
//!
//! The route factory runs once on every shard, so each shard gets its own counter, and
//! the handler that captures it never leaves that shard. `curl localhost:8000/hits`
//! answers e.g. `shard 1 served 7 requests`.

use std::cell::Cell;
use std::rc::Rc;

use haywire::{Config, Request, Response, Router, Server, ShardCtx};

fn main() -> std::io::Result<()> {
    let server = Server::new(Config::default())
        .routes(|router: &mut Router, shard: &Rc<ShardCtx>| {
            let id = shard.id();
            let hits = Rc::new(Cell::new(0u64));
            router.get("/hits", move |_: Request| {
                hits.set(hits.get() + 1);
                Response::text(format!("shard {id} served {} requests\n", hits.get()))
            });
        })
        .start()?;
    println!("listening on http://{}", server.local_addr());
    server.join()
}
