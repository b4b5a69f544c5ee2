//! The `shard_cache` example's routes on a 2-shard server: a value cached on one shard is
//! gone after an invalidation sent through another.

mod common;

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/shard_cache.rs"]
mod shard_cache;

use std::net::SocketAddr;

use common::*;
use haywire::Server;

/// GETs `path` on fresh connections until one lands on `shard`; returns its body.
fn get_on_shard(addr: SocketAddr, path: &str, shard: usize) -> String {
    for _ in 0..200 {
        let (reply, _) = exchange(addr, get(path).as_bytes());
        let text = reply.text();
        if text.contains(&format!("shard {shard} ")) {
            return text;
        }
    }
    panic!("no connection reached shard {shard}");
}

#[test]
fn an_invalidation_through_one_shard_empties_the_cache_of_another() {
    let server = Server::new(test_config())
        .routes(shard_cache::routes)
        .start()
        .unwrap();
    let addr = server.local_addr();
    // Fill the key on shard 0; the next request there is a hit.
    let first = get_on_shard(addr, "/cache/k", 0);
    assert!(first.starts_with("miss shard 0"), "{first}");
    let cached = get_on_shard(addr, "/cache/k", 0);
    assert!(cached.starts_with("hit shard 0"), "{cached}");

    // Invalidate through shard 1.
    let invalidated = (0..200)
        .map(|_| {
            let wire = b"POST /invalidate/k HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";
            exchange(addr, wire).0.text()
        })
        .find(|text| text.contains("by shard 1"))
        .expect("a connection reached shard 1");
    assert!(
        invalidated.starts_with("invalidated on 2 shards"),
        "{invalidated}"
    );

    // Shard 0 no longer has it: the next request there is a miss again.
    let after = get_on_shard(addr, "/cache/k", 0);
    assert!(after.starts_with("miss shard 0"), "{after}");
    // The gather answers once per shard, and the total is their sum.
    let (reply, _) = exchange(addr, get("/cached").as_bytes());
    let text = reply.text();
    let (total, per_shard) = text
        .trim()
        .split_once(" keys cached: ")
        .expect("gather report");
    let counts: Vec<usize> = per_shard
        .trim_matches(|c| c == '[' || c == ']')
        .split(", ")
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 2, "{text}");
    assert!(counts[0] >= 1, "{text}");
    assert_eq!(
        total.parse::<usize>().unwrap(),
        counts.iter().sum::<usize>()
    );
    server.stop();
    server.join().unwrap();
}
