//! Haywire's original sample in the Rust API: `/` answers `hello world`, `/ping` echoes
//! the request body.
//!
//! `cargo run --release --example hello_world`, then `curl localhost:8000/` and
//! `curl -d hi localhost:8000/ping`.

use std::rc::Rc;

use haywire::{Config, Request, Response, Router, Server, ShardCtx};

fn main() -> std::io::Result<()> {
    let server = Server::new(Config::default())
        .routes(|router: &mut Router, _shard: &Rc<ShardCtx>| {
            router.get("/", |_: Request| Response::text("hello world"));
            router.post("/ping", |req: Request| Response::bytes(req.body().clone()));
        })
        .start()?;
    println!("listening on http://{}", server.local_addr());
    server.join()
}
