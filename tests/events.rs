//! The `haywire` binary's server events and its access log on stdout: events go to
//! stderr through `tracing`, filtered by `RUST_LOG`; access log lines written to stdout
//! follow the start-up banner, and a SIGTERM writes what the shards still buffered.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use common::*;

fn config_file(name: &str, text: &str) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("haywire-events-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn rust_log_filters_the_server_events() {
    let path = config_file("bad", "[log]\naccess = \"\"\n");
    let run = |filter: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_haywire"));
        command.arg("--config").arg(&path).env_remove("RUST_LOG");
        if let Some(filter) = filter {
            command.env("RUST_LOG", filter);
        }
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let shown = run(None);
    assert!(shown.contains("ERROR"), "{shown}");
    assert!(shown.contains("config error"), "{shown}");
    assert!(shown.contains("log.access"), "{shown}");
    assert_eq!(run(Some("off")), "", "RUST_LOG=off silences the events");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn access_log_lines_follow_the_banner_on_stdout_and_a_stop_flushes_them() {
    let path = config_file(
        "stdout",
        "[server]\naddress = \"127.0.0.1\"\nport = 0\nshards = 2\nplacement = \"unbound\"\n\
         [log]\naccess = \"stdout\"\nformat = \"json\"\n\
         [[route]]\nhandler = \"live\"\npath = \"/live\"\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_haywire"))
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let addr: std::net::SocketAddr = loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "banner");
        if let Some(addr) = line.trim().strip_prefix("address:") {
            break addr.trim().parse().unwrap();
        }
    };
    for _ in 0..20 {
        let (reply, _) = exchange(addr, get("/live").as_bytes());
        assert_eq!(reply.status, 200);
    }
    // At once, before the one-second flush: the stop writes the buffered lines.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let lines: Vec<serde_json::Value> = rest
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 20, "{rest}");
    assert!(lines
        .iter()
        .all(|l| l["target"] == "/live" && l["status"] == 200));
    std::fs::remove_file(&path).unwrap();
}
