//! `/metrics`: a strict check of the Prometheus text format, and totals that equal the
//! sum over shards after a known workload.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};

use common::*;

/// One sample: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses the exposition, panicking on anything the format does not allow.
fn parse(text: &str) -> Vec<Sample> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = HashSet::new();
    let mut seen = HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has text");
            assert!(is_name(name) && !help.is_empty(), "{line}");
            assert!(helped.insert(name.to_owned()), "second HELP for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
            assert!(is_name(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "second TYPE for {name}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.strip_suffix('}').expect("labels close")),
            None => (series, ""),
        };
        assert!(is_name(name), "{line}");
        let mut map = BTreeMap::new();
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (key, quoted) = pair.split_once('=').expect("label has =");
            assert!(is_name(key), "{line}");
            let value = quoted
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .expect("quoted label");
            assert!(!value.contains('"') && !value.contains('\n'), "{line}");
            map.insert(key.to_owned(), value.to_owned());
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample before its TYPE: {line}");
        assert!(seen.insert(series.to_owned()), "duplicate series {series}");
        samples.push((name.to_owned(), map, value));
    }
    samples
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no {name} {labels:?}"))
        .2
}

#[test]
fn metrics_parse_and_totals_equal_the_sum_over_shards() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    for _ in 0..20 {
        assert_eq!(exchange(addr, get("/").as_bytes()).0.status, 200);
    }
    for _ in 0..5 {
        let wire = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(exchange(addr, wire).0.status, 200);
    }
    assert_eq!(exchange(addr, get("/missing").as_bytes()).0.status, 404);
    assert_eq!(exchange(addr, b"GET / HTTP/1.1\r\n\r\n").0.status, 400);

    let (reply, _) = exchange(addr, get("/metrics").as_bytes());
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let samples = parse(&reply.text());

    // The known workload, in the totals (the /metrics request itself is a GET too).
    let total = |name: &str, labels: &[(&str, &str)]| {
        let mut all = vec![("shard", "total")];
        all.extend_from_slice(labels);
        value(&samples, name, &all)
    };
    assert_eq!(total("haywire_requests_total", &[("method", "GET")]), 22.0);
    assert_eq!(total("haywire_requests_total", &[("method", "POST")]), 5.0);
    assert_eq!(total("haywire_responses_total", &[("class", "2xx")]), 25.0);
    assert_eq!(total("haywire_responses_total", &[("class", "4xx")]), 2.0);
    assert_eq!(
        total("haywire_parse_errors_total", &[("reason", "bad_request")]),
        1.0
    );
    assert_eq!(
        total("haywire_connections_total", &[("outcome", "accepted")]),
        28.0
    );

    // Every total equals the sum of its shards' series.
    for (name, labels, total) in samples.iter().filter(|(_, l, _)| l["shard"] == "total") {
        let sum: f64 = samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && l["shard"] != "total"
                    && l.iter()
                        .all(|(k, v)| k == "shard" || labels.get(k) == Some(v))
            })
            .map(|(_, _, v)| v)
            .sum();
        assert!(
            (sum - total).abs() < 1e-6,
            "{name} {labels:?}: total {total}, sum {sum}"
        );
    }
    // Histogram buckets are cumulative and end in the count.
    for shard in ["0", "1", "total"] {
        let buckets: Vec<f64> = samples
            .iter()
            .filter(|(n, l, _)| {
                n == "haywire_request_duration_seconds_bucket" && l["shard"] == shard
            })
            .map(|(_, _, v)| *v)
            .collect();
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
        let count = value(
            &samples,
            "haywire_request_duration_seconds_count",
            &[("shard", shard)],
        );
        assert_eq!(buckets.last().copied(), Some(count));
    }
    server.stop();
    server.join().unwrap();
}

/// The shard that serves `stream`, asked on it.
fn shard_of(reader: &mut BufReader<TcpStream>) -> usize {
    reader
        .get_mut()
        .write_all(get("/shard").as_bytes())
        .unwrap();
    read_reply(reader, false).text().parse().unwrap()
}

/// One shard's loop counters from `/stats`: (turns, parks).
fn loop_counts(addr: SocketAddr, shard: usize) -> (u64, u64) {
    let report = stats(addr);
    let counts = &report["shards"][shard]["loop"];
    (
        counts["turns"].as_u64().unwrap(),
        counts["parks"].as_u64().unwrap(),
    )
}

#[test]
fn loop_counters_count_wake_ups_not_requests() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let mut reader = BufReader::new(connect(addr));
    let shard = shard_of(&mut reader);

    // One request at a time, with a pause after each answer: the shard sleeps between
    // them, so each one wakes it.
    let before = loop_counts(addr, shard);
    for _ in 0..40 {
        reader.get_mut().write_all(get("/").as_bytes()).unwrap();
        assert_eq!(read_reply(&mut reader, false).status, 200);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let after = loop_counts(addr, shard);
    let parks = after.1 - before.1;
    assert!(parks >= 40, "40 wake-ups, {parks} parks counted");
    assert!(after.0 - before.0 >= parks, "{before:?} -> {after:?}");

    // 40 requests in one write: one read carries them all, a wake-up or two.
    let before = loop_counts(addr, shard);
    reader
        .get_mut()
        .write_all(get("/").repeat(40).as_bytes())
        .unwrap();
    for _ in 0..40 {
        assert_eq!(read_reply(&mut reader, false).status, 200);
    }
    let after = loop_counts(addr, shard);
    let parks = after.1 - before.1;
    // The /stats gathers themselves wake the shard a few times.
    assert!(parks <= 10, "a pipelined batch took {parks} parks");

    // /metrics carries the same counters, and totals sum the shards.
    let (reply, _) = exchange(addr, get("/metrics").as_bytes());
    let samples = parse(&reply.text());
    let turns = value(&samples, "haywire_loop_turns_total", &[("shard", "total")]);
    let parks = value(&samples, "haywire_loop_parks_total", &[("shard", "total")]);
    let shard_parks = value(
        &samples,
        "haywire_loop_parks_total",
        &[("shard", &shard.to_string())],
    );
    assert!(shard_parks >= after.1 as f64, "{shard_parks} < {after:?}");
    assert!(parks >= shard_parks && turns >= parks, "{turns} {parks}");
    server.stop();
    server.join().unwrap();
}

/// Every shard's parks, summed, from `/stats`.
fn total_parks(addr: SocketAddr) -> u64 {
    stats(addr)["total"]["loop"]["parks"].as_u64().unwrap()
}

#[test]
fn a_new_connection_wakes_its_shard_once_with_its_request() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let before = total_parks(addr);
    for _ in 0..20 {
        // The request follows the handshake a moment later, as from a real client: the
        // listener reports the connection only with it (TCP_DEFER_ACCEPT), not twice.
        let mut stream = connect(addr);
        std::thread::sleep(std::time::Duration::from_millis(20));
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut reader = BufReader::new(stream);
        assert_eq!(read_reply(&mut reader, false).status, 200);
    }
    let parks = total_parks(addr) - before;
    // 20 wake-ups, and a few for the /stats requests themselves.
    assert!(parks <= 26, "20 connections took {parks} wake-ups");
    server.stop();
    server.join().unwrap();
}

#[test]
fn input_that_arrives_while_handlers_run_is_served_in_the_same_wake_up() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let mut blocker = BufReader::new(connect(addr));
    let shard = shard_of(&mut blocker);
    // A second connection on the same shard (the kernel spreads them by port).
    let mut other = (0..200)
        .map(|_| BufReader::new(connect(addr)))
        .find_map(|mut reader| (shard_of(&mut reader) == shard).then_some(reader))
        .expect("a second connection on the same shard");
    let before = loop_counts(addr, shard);
    for _ in 0..10 {
        // The first request holds the shard; the second arrives meanwhile. Both are
        // served before the shard waits in glommio again: one park per round, not two.
        blocker
            .get_mut()
            .write_all(get("/block/30").as_bytes())
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        other.get_mut().write_all(get("/").as_bytes()).unwrap();
        assert_eq!(read_reply(&mut blocker, false).status, 200);
        assert_eq!(read_reply(&mut other, false).status, 200);
    }
    let parks = loop_counts(addr, shard).1 - before.1;
    // 10 rounds, and a few for the /stats requests themselves.
    assert!(parks <= 14, "10 rounds of two requests took {parks} parks");
    server.stop();
    server.join().unwrap();
}
