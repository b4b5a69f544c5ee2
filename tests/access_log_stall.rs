//! An access log on a stdout pipe that nobody reads must not stall the server: lines
//! are dropped and counted (`/stats`, `/metrics`), every request is still answered, and
//! the lines that do come out are whole.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use common::*;

/// Requests per connection: well past what a pipe (64 KiB) and the shards' queues
/// (about 256 KiB each) hold at about 70 bytes a line.
const BATCHES: usize = 50;
const PIPELINED: usize = 100;
const CONNECTIONS: usize = 4;

#[test]
fn a_stdout_pipe_nobody_reads_drops_lines_and_stalls_nothing() {
    let path = std::env::temp_dir().join(format!("haywire-log-stall-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "[server]\naddress = \"127.0.0.1\"\nport = 0\nshards = 2\nplacement = \"unbound\"\n\
         [log]\naccess = \"stdout\"\n\
         [[route]]\nhandler = \"text\"\npath = \"/\"\nbody = \"hello world\"\n\
         [[route]]\nhandler = \"stats\"\npath = \"/stats\"\n\
         [[route]]\nhandler = \"metrics\"\npath = \"/metrics\"\n",
    )
    .unwrap();
    let mut server = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_haywire"))
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Read the banner up to its last route, then leave the pipe unread.
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    let mut addr: Option<SocketAddr> = None;
    loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "banner");
        if let Some(a) = line.trim().strip_prefix("address:") {
            addr = Some(a.trim().parse().unwrap());
        }
        if line.contains("/metrics") {
            break;
        }
    }
    let addr = addr.expect("an address line");

    // Every request is answered (each read times out after 10 s, so a stalled shard
    // fails here), on connections that both shards serve.
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = connect(addr);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let batch = get("/").repeat(PIPELINED);
                for _ in 0..BATCHES {
                    stream.write_all(batch.as_bytes()).unwrap();
                    for _ in 0..PIPELINED {
                        assert_eq!(read_reply(&mut reader, false).status, 200);
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("every request answered");
    }
    let requests = (CONNECTIONS * BATCHES * PIPELINED) as u64;

    let stats = stats(addr);
    let dropped = stats["total"]["access_log_dropped"].as_u64().unwrap();
    assert!(dropped > 0, "no line dropped: {}", stats["total"]);
    assert!(dropped <= requests, "{dropped} dropped of {requests}");
    let (metrics, _) = exchange(addr, get("/metrics").as_bytes());
    let counted: u64 = metrics
        .text()
        .lines()
        .filter(|l| l.starts_with("haywire_access_log_dropped_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .max()
        .expect("haywire_access_log_dropped_total in /metrics");
    assert!(counted > 0, "{}", metrics.text());

    // A graceful stop; reading the pipe now lets the writers finish.
    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(server.0.wait().unwrap().code(), Some(0));
    std::fs::remove_file(&path).unwrap();
    let lines: Vec<&str> = rest.lines().collect();
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("127.0.0.1 - - [") && l.ends_with("\"-\" \"-\"")),
        "a line cut or mixed with another"
    );
    let written = lines
        .iter()
        .filter(|l| l.contains("\"GET / HTTP/1.1\""))
        .count() as u64;
    assert!(written > 0, "no line written at all");
    assert!(
        written + dropped <= requests,
        "{written} written + {dropped} dropped > {requests} requests"
    );
}
