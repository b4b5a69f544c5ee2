//! Server-sent events with a streamed response: `/events` sends a numbered event every
//! second, for as long as the client listens; `/count/:n` streams `n` lines, chunked.
//!
//! `cargo run --release --example sse`, then `curl -N localhost:8000/events`.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::stream;
use haywire::{Config, Request, Response, Router, Server, ShardCtx};

fn main() -> std::io::Result<()> {
    let server = Server::new(Config::default())
        .routes(|router: &mut Router, shard: &Rc<ShardCtx>| {
            let id = shard.id();
            router.get("/events", move |_: Request| {
                // Each piece is asked for once the previous ones are written: a client
                // that stops reading stops the producer (and `timeouts.write` ends it).
                let events = stream::unfold(0u64, move |n| async move {
                    if n > 0 {
                        glommio::timer::sleep(Duration::from_secs(1)).await;
                    }
                    let event = format!("id: {n}\ndata: event {n} from shard {id}\n\n");
                    Some((Bytes::from(event), n + 1))
                });
                Response::stream("text/event-stream", events)
                    .with_header("Cache-Control", "no-cache")
            });
            router.get("/count/:n", |req: Request| {
                let n: u32 = req.param("n").and_then(|n| n.parse().ok()).unwrap_or(10);
                let lines = stream::iter((0..n).map(|i| Bytes::from(format!("{i}\n"))));
                Response::stream("text/plain", lines)
            });
        })
        .start()?;
    println!("listening on http://{}", server.local_addr());
    server.join()
}
