//! The `shard_cache` example's routes on a 2-shard server: a value cached on one shard is
//! gone after an invalidation sent through another.

mod common;

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/shard_cache.rs"]
mod shard_cache;

use std::collections::HashSet;
use std::net::SocketAddr;

use common::*;
use haywire::Server;

/// What the client has done to each shard's cache, from the replies alone: the keys a
/// miss filled, less the ones invalidated. The server's own reports are checked against it.
struct Model {
    addr: SocketAddr,
    held: [HashSet<String>; 2],
}

impl Model {
    /// GETs `/cache/key` on a fresh connection; returns the shard that answered and the body.
    fn get(&mut self, key: &str) -> (usize, String) {
        let (reply, _) = exchange(self.addr, get(&format!("/cache/{key}")).as_bytes());
        let text = reply.text();
        let (kind, rest) = text.split_once(" shard ").expect("hit/miss reply");
        let shard: usize = rest.split(' ').next().unwrap().parse().unwrap();
        match kind {
            "miss" => assert!(self.held[shard].insert(key.to_owned()), "{text}"),
            "hit" => assert!(self.held[shard].contains(key), "{text}"),
            _ => panic!("{text}"),
        }
        (shard, text)
    }

    /// GETs `/cache/key` until shard `shard` answers; returns that body.
    fn get_on_shard(&mut self, key: &str, shard: usize) -> String {
        for _ in 0..200 {
            let (answered, text) = self.get(key);
            if answered == shard {
                return text;
            }
        }
        panic!("no connection reached shard {shard}");
    }

    /// POSTs `/invalidate/key` until shard `shard` takes it; every invalidation (on
    /// whichever shard) must report the holders the model expects.
    fn invalidate_through(&mut self, key: &str, shard: usize) {
        let wire =
            format!("POST /invalidate/{key} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
        for _ in 0..200 {
            let holders = self.held.iter().filter(|keys| keys.contains(key)).count();
            let text = exchange(self.addr, wire.as_bytes()).0.text();
            for keys in &mut self.held {
                keys.remove(key);
            }
            let by = text.split(" by shard ").nth(1).expect("invalidation reply");
            assert_eq!(
                text,
                format!("invalidated on 2 shards by shard {by}"),
                "the reply's shape"
            );
            assert!(
                by.ends_with(&format!(" (held by {holders})\n")),
                "{text}: {holders} shards held {key}"
            );
            if by.starts_with(&format!("{shard} ")) {
                return;
            }
        }
        panic!("no connection reached shard {shard}");
    }
}

#[test]
fn an_invalidation_through_one_shard_empties_the_cache_of_another() {
    let server = Server::new(test_config())
        .routes(shard_cache::routes)
        .start()
        .unwrap();
    let mut model = Model {
        addr: server.local_addr(),
        held: Default::default(),
    };
    // Fill the key on shard 0; the next request there is a hit.
    let first = model.get_on_shard("k", 0);
    assert!(first.starts_with("miss shard 0"), "{first}");
    let cached = model.get_on_shard("k", 0);
    assert!(cached.starts_with("hit shard 0"), "{cached}");

    // Invalidate through shard 1: shard 0's copy goes too.
    model.invalidate_through("k", 1);
    assert!(model.held.iter().all(|keys| keys.is_empty()));

    // Shard 0 no longer has it: the next request there is a miss again.
    let after = model.get_on_shard("k", 0);
    assert!(after.starts_with("miss shard 0"), "{after}");
    for i in 0..12 {
        model.get(&format!("key{i}"));
    }
    // The gather reports each shard's count, which must be what the client filled there.
    let (reply, _) = exchange(model.addr, get("/cached").as_bytes());
    let want = [model.held[0].len(), model.held[1].len()];
    assert_eq!(
        reply.text(),
        format!("{} keys cached: {want:?}\n", want[0] + want[1])
    );
    assert!(want[0] >= 1 && want[0] + want[1] >= 13, "{want:?}");
    server.stop();
    server.join().unwrap();
}
