//! Slow, idle, greedy and numerous clients: every one is cut off by its limit while
//! everybody else is served.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::counting::*;
use common::*;
use haywire::{Request, Response, Router, RunningServer, Server, ShardCtx};

// Counts what the greedy client's server holds (only threads marked by
// `mark_shard_thread` count: the other tests' servers are not).
#[global_allocator]
static GLOBAL: Counting = Counting;

/// A 2-shard server with sub-second timeouts.
fn impatient_server() -> RunningServer {
    let mut config = test_config();
    config.timeouts.header = 0.5;
    config.timeouts.body = 0.5;
    config.timeouts.keep_alive = 0.5;
    config.timeouts.write = 0.5;
    config.timeouts.handler = 0.3;
    start_server(config)
}

fn total_stats(addr: SocketAddr) -> serde_json::Value {
    stats(addr)["total"].clone()
}

/// Polls `check` every 50 ms for up to 5 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting for {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn slowloris_gets_408_while_others_are_served() {
    let server = impatient_server();
    let addr = server.local_addr();
    let slow = thread::spawn(move || {
        let mut stream = connect(addr);
        let started = Instant::now();
        for byte in b"GET / HTTP/1.1\r\nHost: slow\r\nX-Drip: 1234567890\r\n" {
            if stream.write_all(&[*byte]).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(40));
        }
        let mut reader = BufReader::new(stream);
        let reply = read_reply(&mut reader, false);
        (
            reply.status,
            reply.header("connection").map(str::to_owned),
            started.elapsed(),
            is_closed(&mut reader),
        )
    });
    // While the slow client drips, both shards keep answering everybody else.
    for _ in 0..30 {
        let (reply, _) = exchange(addr, get("/").as_bytes());
        assert_eq!(reply.status, 200);
        thread::sleep(Duration::from_millis(10));
    }
    let (status, connection, elapsed, closed) = slow.join().unwrap();
    assert_eq!(status, 408);
    assert_eq!(connection.as_deref(), Some("close"));
    assert!(closed);
    assert!(
        elapsed < Duration::from_secs(2),
        "cut off after {elapsed:?}"
    );
    assert!(total_stats(addr)["timeouts"].as_u64().unwrap() >= 1);
}

#[test]
fn a_stalled_body_gets_408() {
    let server = impatient_server();
    let wire = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc";
    let (reply, mut reader) = exchange(server.local_addr(), wire);
    assert_eq!(reply.status, 408);
    assert!(is_closed(&mut reader));
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let server = impatient_server();
    let (reply, mut reader) = exchange(server.local_addr(), get("/").as_bytes());
    assert_eq!(reply.status, 200);
    let started = Instant::now();
    assert!(is_closed(&mut reader), "idle connection left open");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "closed too early"
    );
}

#[test]
fn a_client_that_never_reads_is_cut_off_with_bounded_output() {
    // The write timeout is long enough to look at the server while the client is
    // still connected and stalled.
    let mut config = test_config();
    config.timeouts.write = 4.0;
    let server = Server::new(config)
        .routes(mark_shard_thread)
        .routes(|router: &mut Router, _: &Rc<ShardCtx>| {
            // 64 KiB made for each request: what a server that buffered answers would hold.
            router.get("/made", |_: Request| Response::bytes(vec![b'x'; 64 * 1024]));
        })
        .start()
        .unwrap();
    let addr = server.local_addr();
    assert_eq!(exchange(addr, get("/made").as_bytes()).0.status, 200);
    let before = LIVE.load(Ordering::SeqCst);
    // A small send buffer, so what the kernels hold is small next to what is sent.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut greedy: std::net::TcpStream = socket.into();
    greedy
        .set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    // Up to 32,768 requests for 64 KiB each (1.2 MB sent): 2 GiB of responses if the
    // server read them all and buffered the answers.
    let wire = get("/made").repeat(256);
    let rounds = 128;
    let mut sent = 0;
    while sent < rounds && greedy.write_all(wire.as_bytes()).is_ok() {
        sent += 1;
    }
    // Still connected (the write timeout is 4 s; the client's write gave up after 1 s
    // without progress): what the server holds for it now.
    let held = LIVE.load(Ordering::SeqCst) - before;
    eprintln!("greedy: {sent} of {rounds} rounds sent, {held} bytes held");
    let total = total_stats(addr);
    assert_eq!(
        total["connections"]["active"], 2,
        "the greedy client was cut off before the server was measured"
    );
    // The server stopped reading once its writes stalled: the client could not send it all.
    assert!(
        sent < rounds,
        "the server read all {rounds} rounds unanswered"
    );
    // About one answer and the buffers, never the pipeline's worth (a batch of 128
    // answers alone is 8 MiB).
    assert!(
        held < 1 << 20,
        "the server holds {held} bytes for the greedy client"
    );
    // Then it gives up on the client.
    eventually("the greedy connection to be closed", || {
        let total = total_stats(addr);
        total["timeouts"].as_u64().unwrap() >= 1 && total["connections"]["active"] == 1
    });
    drop(greedy);
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_handler_past_its_timeout_gets_503() {
    let server = impatient_server();
    let mut stream = connect(server.local_addr());
    stream
        .write_all([get("/slow/5000"), get("/")].concat().as_bytes())
        .unwrap();
    let mut reader = BufReader::new(stream);
    let started = Instant::now();
    let first = read_reply(&mut reader, false);
    assert_eq!(first.status, 503);
    assert!(started.elapsed() < Duration::from_secs(2));
    // The connection goes on: the next pipelined request is answered.
    assert_eq!(read_reply(&mut reader, false).text(), "hello world");
}

/// Whether the server has closed `reader`'s connection, looking for `wait` at most.
fn closed_within(reader: &mut BufReader<std::net::TcpStream>, wait: Duration) -> bool {
    reader.get_ref().set_read_timeout(Some(wait)).unwrap();
    let closed = is_closed(reader);
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    closed
}

#[test]
fn at_max_connections_the_longest_idle_connection_makes_room() {
    let mut config = test_config();
    config.server.max_connections = 1;
    let server = start_server(config);
    let addr = server.local_addr();
    // One connection per shard at most, yet every new client is served: each new
    // one closes the longest-idle connection of its shard.
    let mut clients = Vec::new();
    for _ in 0..6 {
        let mut stream = connect(addr);
        stream.write_all(get("/").as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        assert_eq!(read_reply(&mut reader, false).status, 200);
        clients.push(reader);
    }
    let open = clients
        .iter_mut()
        .map(|c| !closed_within(c, Duration::from_millis(300)))
        .filter(|&open| open)
        .count();
    assert!(open <= 2, "{open} connections open past the limit of 2");
    let connections = &total_stats(addr)["connections"];
    assert!(
        connections["evicted"].as_u64().unwrap() >= 4,
        "{connections}"
    );
    assert_eq!(connections["refused"], 0);
    assert_eq!(
        total_stats(addr)["timeouts"],
        0,
        "an eviction is no timeout"
    );
}

#[test]
fn at_max_connections_with_none_idle_new_clients_get_503_and_close() {
    let mut config = test_config();
    config.server.max_connections = 1;
    let server = start_server(config);
    let addr = server.local_addr();
    // Fill both shards with busy connections: a slow request in flight is not idle.
    let mut busy = Vec::new();
    for _ in 0..40 {
        let mut stream = connect(addr);
        stream.write_all(get("/slow/2000").as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut reader, &mut line).is_err() {
            busy.push(reader); // no answer yet: its handler is running
        }
        if busy.len() == 2 {
            break;
        }
    }
    assert_eq!(busy.len(), 2, "could not occupy both shards");
    let (reply, mut reader) = exchange(addr, get("/").as_bytes());
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("connection"), Some("close"));
    // Encoded like every answer: with the shard's Date, framed by its body.
    let date = reply.header("date").expect("a Date header");
    assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
    assert_eq!(reply.text(), "server at capacity\n");
    assert!(is_closed(&mut reader));
    // The busy ones are unaffected.
    for reader in &mut busy {
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(read_reply(reader, false).text(), "slept 2000");
    }
}

#[test]
fn a_body_dripped_below_the_minimum_rate_gets_408() {
    let mut config = test_config();
    config.timeouts.body = 0.5;
    config.limits.min_body_rate = 100;
    let server = start_server(config);
    let mut stream = connect(server.local_addr());
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    // A byte every 100 ms: each well within `timeouts.body` of the last, but 10 B/s
    // overall, a tenth of the minimum rate.
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let dripper = thread::spawn(move || {
        for _ in 0..100 {
            if stream.write_all(b"x").is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    let reply = read_reply(&mut reader, false);
    assert_eq!(reply.status, 408);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "cut off after {:?}",
        started.elapsed()
    );
    drop(reader);
    dripper.join().unwrap();
}

/// Sends `wire`, then resets the connection (RST, not FIN).
fn send_and_reset(addr: SocketAddr, wire: &[u8]) {
    send_and_reset_after(addr, Duration::ZERO, wire)
}

/// Connects, waits `idle` (so the server has found the new socket empty), sends
/// `wire`, then resets the connection.
fn send_and_reset_after(addr: SocketAddr, idle: Duration, wire: &[u8]) {
    let stream = connect(addr);
    thread::sleep(idle);
    let socket = socket2::Socket::from(stream);
    socket.set_linger(Some(Duration::ZERO)).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    stream.write_all(wire).unwrap();
    thread::sleep(Duration::from_millis(1));
    drop(stream);
}

#[test]
fn resets_mid_request_body_and_pipeline_leave_nothing_behind() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let pipeline = get("/big").repeat(64);
    let cases: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: t\r\nX-Half: ".to_vec(),
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\npartial".to_vec(),
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc".to_vec(),
        pipeline.into_bytes(),
        [get("/slow/300"), get("/")].concat().into_bytes(),
    ];
    for _ in 0..5 {
        for wire in &cases {
            send_and_reset(addr, wire);
        }
    }
    // Every reset connection is gone, the counters agree, and both shards still serve.
    eventually("reset connections to be released", || {
        total_stats(addr)["connections"]["active"] == 1
    });
    let total = total_stats(addr);
    // 25 reset connections plus the /stats ones, all of them accounted for.
    assert!(total["connections"]["accepted"].as_u64().unwrap() > 25);
    let refused = total["parse_errors"].as_object().unwrap();
    assert!(refused.values().all(|n| n == 0), "{refused:?}");
    for _ in 0..10 {
        let (reply, _) = exchange(addr, get("/").as_bytes());
        assert_eq!(reply.status, 200);
    }
}

#[test]
fn handler_panics_are_counted() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    for path in ["/panic", "/panic-async", "/panic"] {
        let (reply, _) = exchange(addr, get(path).as_bytes());
        assert_eq!(reply.status, 500);
    }
    let total = total_stats(addr);
    assert_eq!(total["handler_panics"], 3);
    assert_eq!(total["responses"]["5xx"], 3);
}

#[test]
fn a_close_that_arrives_with_the_request_ends_the_connection_at_once() {
    // The default keep-alive timeout (60 s): only the FIN itself can end these.
    let server = start_server(test_config());
    let addr = server.local_addr();
    for _ in 0..10 {
        let mut stream = connect(addr);
        // Idle first, so the server has read the socket empty and waits for an event.
        thread::sleep(Duration::from_millis(50));
        stream.write_all(get("/").as_bytes()).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reader = BufReader::new(stream);
        assert_eq!(read_reply(&mut reader, false).status, 200);
        let started = Instant::now();
        assert!(is_closed(&mut reader), "the server kept the connection");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    eventually("every connection to be released", || {
        total_stats(addr)["connections"]["active"] == 1
    });
}

#[test]
fn a_reset_after_part_of_a_body_releases_the_connection_at_once() {
    // The default body timeout (30 s): only the reset itself can end these.
    let server = start_server(test_config());
    let addr = server.local_addr();
    let half = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nhalf";
    for _ in 0..50 {
        send_and_reset_after(addr, Duration::from_millis(20), half);
    }
    eventually("reset connections to be released", || {
        total_stats(addr)["connections"]["active"] == 1
    });
    assert_eq!(total_stats(addr)["timeouts"], 0);
}

/// A connection per shard, each told apart by the shard that serves it (at most 40
/// tries: the kernel spreads connections by a hash). Under a low `max_connections` a
/// try can evict a connection already kept (the connections let go are not closed on
/// the server yet), so once the others are gone each kept one must answer again.
fn one_connection_per_shard(addr: SocketAddr) -> Vec<BufReader<std::net::TcpStream>> {
    for _ in 0..5 {
        let mut found: Vec<Option<BufReader<std::net::TcpStream>>> = vec![None, None];
        for _ in 0..40 {
            let mut stream = connect(addr);
            stream.write_all(get("/shard").as_bytes()).unwrap();
            let mut reader = BufReader::new(stream);
            let shard: usize = read_reply(&mut reader, false).text().parse().unwrap();
            found[shard].get_or_insert(reader);
            if found.iter().all(Option::is_some) {
                break;
            }
        }
        let mut found: Vec<_> = found
            .into_iter()
            .map(|r| r.expect("a connection on every shard"))
            .collect();
        thread::sleep(Duration::from_millis(100));
        let alive = found.iter_mut().all(|reader| {
            reader.get_mut().write_all(get("/shard").as_bytes()).is_ok()
                && !reader.fill_buf().map_or(true, |b| b.is_empty())
                && read_reply(reader, false).status == 200
        });
        if alive {
            return found;
        }
    }
    panic!("no connection per shard survived 5 tries");
}

/// What a client of a burst heard from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Answered(u16),
    /// The connection closed (or was reset) without an answer.
    Closed,
    /// Nothing yet: the read timed out.
    Waiting,
}

fn outcome(reader: &mut BufReader<std::net::TcpStream>) -> Outcome {
    let mut line = String::new();
    match std::io::BufRead::read_line(reader, &mut line) {
        Ok(0) => Outcome::Closed,
        Ok(_) => Outcome::Answered(line[9..12].parse().unwrap()),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Outcome::Waiting,
        Err(_) => Outcome::Closed,
    }
}

#[test]
fn a_burst_of_clients_never_opens_more_than_max_connections() {
    const MAX: u64 = 2;
    let mut config = test_config();
    config.server.max_connections = MAX as usize;
    // `/active`: the shard's open connections as its handler runs, in the middle of
    // the burst (a connection's first request is answered as it is accepted).
    let server = haywire::Server::new(config)
        .routes(test_routes)
        .routes(|router, shard| {
            let shard = shard.clone();
            router.get("/active", move |_: haywire::Request| {
                let stats = shard.local::<haywire::stats::ShardStats>().unwrap();
                haywire::Response::text(stats.active().to_string())
            });
        })
        .start()
        .unwrap();
    let addr = server.local_addr();
    // Both shards block, so the burst queues in their listeners and is accepted at
    // once; each new client finds the one before it idle and evicts it.
    let mut blockers = one_connection_per_shard(addr);
    for blocker in &mut blockers {
        blocker
            .get_mut()
            .write_all(get("/block/700").as_bytes())
            .unwrap();
    }
    thread::sleep(Duration::from_millis(100));
    let mut burst: Vec<_> = (0..100)
        .map(|_| {
            let mut stream = connect(addr);
            stream.write_all(get("/active").as_bytes()).unwrap();
            BufReader::new(stream)
        })
        .collect();
    for blocker in &mut blockers {
        assert_eq!(read_reply(blocker, false).text(), "unblocked");
    }
    // A client is answered by `/active`, or refused with 503 when its shard had no
    // used idle connection to evict (one not read yet may hold a request), or, past
    // the bounded number of lingering refusals, closed unanswered.
    let (mut seen, mut refused, mut closed) = (Vec::new(), 0, 0);
    for reader in &mut burst {
        if reader.fill_buf().map_or(true, |b| b.is_empty()) {
            closed += 1;
            continue;
        }
        let reply = read_reply(reader, false);
        match reply.status {
            200 => seen.push(reply.text().parse::<u64>().unwrap()),
            503 => refused += 1,
            other => panic!("a burst client got {other}"),
        }
    }
    eprintln!(
        "burst: {} answered, {refused} refused, {closed} closed",
        seen.len()
    );
    assert!(
        seen.iter().all(|&n| n <= MAX),
        "open connections seen: {seen:?}"
    );
    assert!(seen.len() >= 10, "only {} of 100 served", seen.len());
    let connections = &stats(addr)["total"]["connections"];
    let displaced =
        connections["evicted"].as_u64().unwrap() + connections["refused"].as_u64().unwrap();
    assert!(displaced >= 90, "{connections}");
}

#[test]
fn refusals_at_max_connections_are_bounded() {
    // balancer::MAX_REFUSING: refused connections answered 503 at a time per shard.
    const MAX_REFUSING: usize = 32;
    const BURST: usize = 200;
    let mut config = test_config();
    config.server.max_connections = 2;
    let server = start_server(config);
    let addr = server.local_addr();
    // Each client starts a request and stops: busy, so none can be evicted. Two per
    // shard are served; every other one is refused while all of them stay connected.
    let mut burst: Vec<_> = (0..BURST)
        .map(|_| {
            let mut stream = connect(addr);
            stream.write_all(b"GET /stats HTTP/1.1\r\n").unwrap();
            stream
                .set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            BufReader::new(stream)
        })
        .collect();
    // Every refused client hears back: a 503, or its connection closed at once. The
    // served ones wait (their request is not finished).
    let outcomes: Vec<Outcome> = burst.iter_mut().map(outcome).collect();
    let count = |which| outcomes.iter().filter(|&&o| o == which).count();
    let (busy, closed) = (count(Outcome::Answered(503)), count(Outcome::Closed));
    assert_eq!(count(Outcome::Waiting), 4, "{outcomes:?}");
    assert_eq!(busy + closed, BURST - 4, "{outcomes:?}");
    // At most MAX_REFUSING answers linger per shard; the rest closed at once.
    assert!(busy <= 2 * MAX_REFUSING, "{busy} refusals answered at once");
    assert!(
        closed >= BURST - 4 - 2 * MAX_REFUSING,
        "{busy} answered, {closed} closed"
    );
    // A served client finishes its request (the shard is full for a new one).
    let served = outcomes
        .iter()
        .position(|&o| o == Outcome::Waiting)
        .unwrap();
    let reader = &mut burst[served];
    reader.get_mut().write_all(b"Host: t\r\n\r\n").unwrap();
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&read_reply(reader, false).body).unwrap();
    let connections = &report["total"]["connections"];
    assert_eq!(connections["refused"], BURST as u64 - 4, "{connections}");
}

/// A client that pipelines requests without pause and reads every response as fast as
/// it comes must not hold its shard: glommio is cooperative, and while the client keeps
/// up neither the connection's reads nor its writes find the socket not ready, so its
/// request loop would never wait.
#[test]
fn a_pipelining_client_that_keeps_up_lets_its_shard_serve_others() {
    // Each request costs 1 ms of work (standing for a handler's real work), so the
    // server, not the client, is the slower side: the client's requests are always
    // waiting in the socket, and its few responses never fill it.
    let worked: Arc<Vec<AtomicU64>> = Arc::new((0..2).map(|_| AtomicU64::new(0)).collect());
    let counters = worked.clone();
    let server = Server::new(test_config())
        .routes(move |router: &mut Router, shard: &Rc<ShardCtx>| {
            test_routes(router, shard);
            let (id, counters) = (shard.id(), counters.clone());
            router.get("/work", move |_: Request| {
                let worked = Instant::now() + Duration::from_millis(1);
                while Instant::now() < worked {
                    std::hint::spin_loop();
                }
                counters[id].fetch_add(1, Ordering::Relaxed);
                Response::text("done")
            });
        })
        .start()
        .expect("server starts");
    assert_eq!(server.shards(), worked.len());
    let addr = server.local_addr();
    // On every shard, one connection that floods and one that asks meanwhile.
    let pairs = two_on_every_shard(addr, server.shards());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let batch = get("/work").repeat(256).into_bytes();
    let mut clients = Vec::new();
    let mut probes = Vec::new();
    for (flood, probe) in pairs {
        probes.push(probe);
        let mut reader = flood.into_inner();
        // Bounded, so the thread sees `stop` soon whatever the server does.
        reader
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let writer = reader.try_clone().unwrap();
        clients.push(write_without_pause(writer, batch.clone(), stop.clone()));
        let stop_reading = stop.clone();
        clients.push(thread::spawn(move || {
            use std::io::Read;
            let mut sink = vec![0u8; 1 << 20];
            while !stop_reading.load(Ordering::Relaxed) {
                match reader.read(&mut sink) {
                    Ok(0) => break,
                    Err(e) if !timed_out(&e) => break,
                    _ => {}
                }
            }
        }));
    }
    // Every flood is being served...
    let work = |shard: usize| worked[shard].load(Ordering::Relaxed);
    wait_for_floods("a flood", || (0..worked.len()).all(|s| work(s) >= 16));
    // ...and a request on the same shard is answered meanwhile.
    for (shard, probe) in probes.iter_mut().enumerate() {
        assert_shard_answers(probe, shard, "flooded", || work(shard));
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    server.stop();
    server.join().unwrap();
}
