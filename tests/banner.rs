//! The `haywire` binary's start-up banner: settings as the config file spells them and
//! the routes as a table a person reads.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn the_banner_lists_routes_as_a_table() {
    let dir = std::env::temp_dir().join(format!("haywire-banner-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    let config = format!(
        "[server]\naddress = \"127.0.0.1\"\nport = 0\nshards = 2\nplacement = \"unbound\"\n\
         balancer = \"handoff\"\nhandoff = \"round-robin\"\n\
         [log]\nformat = \"json\"\n\
         [[route]]\nhandler = \"text\"\npath = \"/\"\nbody = \"hello world\"\n\
         [[route]]\nhandler = \"echo\"\npath = \"/echo\"\n\
         [[route]]\nhandler = \"static\"\npath = \"/files\"\ndir = \"{}\"\n\
         [[route]]\nhandler = \"ready\"\npath = \"/ready\"\n",
        dir.display()
    );
    std::fs::write(&path, config).unwrap();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_haywire"))
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Lines arrive through a channel, so a banner without the expected last row fails
    // after a timeout instead of blocking on a server that prints nothing more.
    let stdout = BufReader::new(child.0.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
        let last = line.trim_start().starts_with("GET") && line.contains("/ready");
        banner.push(line);
        if last {
            break;
        }
    }
    // The server answers, so the banner came from a running server.
    let addr = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("address:"))
        .expect("an address line")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(exchange(addr, get("/").as_bytes()).0.status, 200);
    drop(child);
    std::fs::remove_dir_all(&dir).unwrap();

    let text = banner.join("\n");
    assert!(
        !text.contains('{'),
        "Rust Debug output in the banner:\n{text}"
    );
    for spelled in [
        "(unbound, cpus",
        "balancer:     handoff (round-robin)",
        "(json)",
    ] {
        assert!(text.contains(spelled), "{spelled:?} missing:\n{text}");
    }
    let table = banner
        .iter()
        .position(|l| l.trim() == "routes:")
        .expect("a routes heading");
    let rows = &banner[table + 1..];
    let files = format!("files under {}, and below the path", dir.display());
    let expected: [[&str; 4]; 5] = [
        ["METHOD", "PATH", "HANDLER", "DETAIL"],
        ["GET", "/", "text", "11 bytes of text/plain; charset=utf-8"],
        ["POST PUT", "/echo", "echo", "the request body"],
        ["GET", "/files", "static", &files],
        ["GET", "/ready", "ready", "200, 503 once a shutdown begins"],
    ];
    assert_eq!(rows.len(), expected.len(), "{text}");
    // Columns line up: each cell starts where its heading does.
    let starts: Vec<usize> = ["PATH", "HANDLER", "DETAIL"]
        .iter()
        .map(|h| rows[0].find(h).unwrap())
        .collect();
    for (row, cells) in rows.iter().zip(expected) {
        assert_eq!(row[..starts[0]].trim(), cells[0], "{row}");
        assert_eq!(row[starts[0]..starts[1]].trim(), cells[1], "{row}");
        assert_eq!(row[starts[1]..starts[2]].trim(), cells[2], "{row}");
        assert_eq!(&row[starts[2]..], cells[3], "{row}");
    }
}
