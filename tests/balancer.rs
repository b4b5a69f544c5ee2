//! The `handoff` balancer: shard 0 accepts, every shard serves.

mod common;

use std::io::BufReader;
use std::net::SocketAddr;

use common::*;
use haywire::config::{Balancer, HandoffPolicy};

fn shards_report(addr: SocketAddr) -> Vec<serde_json::Value> {
    stats(addr)["shards"].as_array().unwrap().clone()
}

#[test]
fn round_robin_handoff_spreads_connections_evenly() {
    let mut config = test_config();
    config.server.balancer = Balancer::Handoff;
    config.server.handoff = HandoffPolicy::RoundRobin;
    let server = start_server(config);
    let addr = server.local_addr();
    for i in 0..20 {
        let (reply, _) = exchange(addr, get(&format!("/items/{i}")).as_bytes());
        assert_eq!((reply.status, reply.text()), (200, i.to_string()));
    }
    let shards = shards_report(addr);
    let accepted: Vec<u64> = shards
        .iter()
        .map(|s| s["connections"]["accepted"].as_u64().unwrap())
        .collect();
    // 21 connections (the /stats one included), alternating.
    assert_eq!(accepted.iter().sum::<u64>(), 21);
    assert!(accepted.iter().all(|&n| n >= 10), "{accepted:?}");
    server.stop();
    server.join().unwrap();
}

#[test]
fn least_connections_handoff_balances_open_connections() {
    let mut config = test_config();
    config.server.balancer = Balancer::Handoff;
    config.server.handoff = HandoffPolicy::LeastConnections;
    let server = start_server(config);
    let addr = server.local_addr();
    let mut open = Vec::new();
    for _ in 0..10 {
        let (reply, reader): (_, BufReader<_>) = exchange(addr, get("/shard").as_bytes());
        assert_eq!(reply.status, 200);
        open.push((reply.text(), reader));
    }
    let mut per_shard = [0; 2];
    for (shard, _) in &open {
        per_shard[shard.parse::<usize>().unwrap()] += 1;
    }
    assert_eq!(per_shard, [5, 5], "open connections by shard");
    let shards = shards_report(addr);
    for shard in &shards {
        assert!(shard["requests"].as_u64().unwrap() >= 5, "{shard}");
    }
    drop(open);
    server.stop();
    server.join().unwrap();
}
