//! The access log against a real server: lines for every response (pipelined, errors,
//! 404s), written within a second without a shutdown, all of them at a graceful stop,
//! and moved to a new file by a reload (log rotation).

mod common;

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use haywire::config::{Config, LogFormat, Overrides};

fn temp(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("haywire-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until `path` holds `count` lines, at most `limit`.
fn wait_for_lines(path: &Path, count: usize, limit: Duration) -> Vec<String> {
    let start = Instant::now();
    loop {
        let lines = read_lines(path);
        if lines.len() >= count || start.elapsed() > limit {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn config_with_log(path: &Path, format: LogFormat) -> Config {
    let mut config = test_config();
    config.log.access = path.display().to_string();
    config.log.format = format;
    config
}

#[test]
fn combined_lines_are_written_within_a_second_and_all_at_a_stop() {
    let path = temp("access-combined");
    let running = start_server(config_with_log(&path, LogFormat::Combined));
    let addr = running.local_addr();

    // Three pipelined requests on one connection, in order.
    let mut stream = connect(addr);
    stream
        .write_all(
            b"GET /items/7 HTTP/1.1\r\nHost: t\r\nUser-Agent: probe/1\r\nReferer: http://r/\r\n\r\n\
              GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n\
              HEAD / HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    assert_eq!(read_reply(&mut reader, false).status, 200);
    assert_eq!(read_reply(&mut reader, false).status, 404);
    assert_eq!(read_reply(&mut reader, true).status, 200);

    // Buffered, then written by the shard's timer: no shutdown needed.
    let lines = wait_for_lines(&path, 3, Duration::from_secs(3));
    assert_eq!(lines.len(), 3, "{lines:?}");
    let date = r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000\]";
    let patterns = [
        format!(
            r#"^127\.0\.0\.1 - - {date} "GET /items/7 HTTP/1\.1" 200 1 "http://r/" "probe/1"$"#
        ),
        format!(r#"^127\.0\.0\.1 - - {date} "GET /nowhere HTTP/1\.1" 404 \d+ "-" "-"$"#),
        // HEAD: the GET's headers, no body bytes.
        format!(r#"^127\.0\.0\.1 - - {date} "HEAD / HTTP/1\.1" 200 0 "-" "-"$"#),
    ];
    for (line, pattern) in lines.iter().zip(&patterns) {
        assert!(matches(pattern, line), "{line:?} !~ {pattern}");
    }

    // A malformed request is logged too, without a request line.
    let (reply, _) = exchange(
        addr,
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n",
    );
    assert_eq!(reply.status, 400);
    // Many requests, then a stop at once: the stop writes what the shards buffered.
    for _ in 0..50 {
        let (reply, _) = exchange(addr, get("/").as_bytes());
        assert_eq!(reply.status, 200);
    }
    running.stop();
    running.join().unwrap();
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 3 + 1 + 50, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains(r#""-" 400 "#)), "{lines:?}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn json_lines_parse_and_a_reload_moves_the_log_to_a_new_file() {
    let first = temp("access-json-1");
    let second = temp("access-json-2");
    let config_file = temp("access-json.toml");
    let write_config = |log: &Path| {
        std::fs::write(
            &config_file,
            format!(
                "[server]\naddress = \"127.0.0.1\"\nport = 0\nshards = 2\nplacement = \"unbound\"\n\
                 [log]\naccess = {:?}\nformat = \"json\"\n",
                log.display().to_string()
            ),
        )
        .unwrap();
    };
    write_config(&first);
    let running = start_server(Config::load(&config_file).unwrap());
    let addr = running.local_addr();
    let (reply, _) = exchange(
        addr,
        b"GET /items/a%22b?q=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: a \"quoted\" \xff agent\r\n\r\n",
    );
    assert_eq!(reply.status, 200);
    let lines = wait_for_lines(&first, 1, Duration::from_secs(3));
    assert_eq!(lines.len(), 1, "{lines:?}");
    let value: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(value["remote"], "127.0.0.1");
    assert_eq!(value["method"], "GET");
    assert_eq!(value["target"], "/items/a%22b?q=1");
    assert_eq!(value["protocol"], "HTTP/1.1");
    assert_eq!(value["status"], 200);
    assert_eq!(value["bytes"], 5);
    assert_eq!(value["user_agent"], "a \"quoted\" \u{ff} agent");
    assert_eq!(value["referer"], serde_json::Value::Null);
    assert!(value["shard"].as_u64().unwrap() < 2);

    // Rotation: the file is renamed away and a reload reopens the configured path;
    // here the config names a new path, which the shards switch to.
    write_config(&second);
    let mut reloader = running.reloader(&config_file, Overrides::default());
    reloader.reload().unwrap();
    // The reload reaches every shard over the control mesh; give it a moment.
    std::thread::sleep(Duration::from_millis(200));
    let (reply, _) = exchange(addr, get("/nowhere").as_bytes());
    assert_eq!(reply.status, 404);
    let lines = wait_for_lines(&second, 1, Duration::from_secs(3));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("\"status\":404"), "{lines:?}");
    assert_eq!(
        read_lines(&first).len(),
        1,
        "the old file gets no more lines"
    );

    // A path that cannot be opened is refused by key; the running log stays.
    write_config(Path::new("/nonexistent-dir/access.log"));
    let err = reloader.reload().unwrap_err();
    assert_eq!(err.key, "log.access", "{err}");

    running.stop();
    running.join().unwrap();
    for path in [&first, &second, &config_file] {
        std::fs::remove_file(path).unwrap();
    }
}

/// A body sent after its head (streamed, chunked or with a length) is logged once it
/// has ended: the bytes that went out, and the time to its end; one cut short (fewer
/// bytes than announced) is logged with what was sent.
#[test]
fn a_streamed_body_is_logged_at_its_end_with_the_bytes_sent() {
    use futures_lite::stream;
    let path = temp("access-stream");
    let mut config = config_with_log(&path, LogFormat::Combined);
    config.log.template = "{target} {status} {bytes} {duration_ms}".into();
    let running = haywire::Server::new(config)
        .routes(
            |router: &mut haywire::Router, _: &std::rc::Rc<haywire::ShardCtx>| {
                router.get("/chunked", |_: haywire::Request| {
                    // The last piece comes 300 ms after the head.
                    let pieces = stream::unfold(0, |n| async move {
                        match n {
                            0 => Some((bytes::Bytes::from_static(b"ab"), 1)),
                            1 => {
                                glommio::timer::sleep(Duration::from_millis(300)).await;
                                Some((bytes::Bytes::from_static(b"cd"), 2))
                            }
                            _ => None,
                        }
                    });
                    haywire::Response::stream("text/plain", pieces)
                });
                router.get("/sized", |_: haywire::Request| {
                    let pieces = stream::iter([&b"abc"[..], b"de"].map(bytes::Bytes::from_static));
                    haywire::Response::new(haywire::StatusCode::OK).with_stream(
                        "text/plain",
                        Some(5),
                        pieces,
                    )
                });
                router.get("/short", |_: haywire::Request| {
                    let pieces = stream::iter([&b"abc"[..]].map(bytes::Bytes::from_static));
                    haywire::Response::new(haywire::StatusCode::OK).with_stream(
                        "text/plain",
                        Some(10),
                        pieces,
                    )
                });
            },
        )
        .start()
        .unwrap();
    for target in ["/chunked", "/sized", "/short"] {
        let mut stream = connect(running.local_addr());
        stream
            .write_all(
                format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .unwrap();
        let mut all = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut all);
        assert!(
            all.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&all)
        );
    }
    running.stop();
    running.join().unwrap();
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 3, "{lines:?}");
    // Status, bytes, milliseconds.
    let line = |target: &str| -> Vec<f64> {
        let line = lines.iter().find(|l| l.starts_with(target)).expect(target);
        line.split(' ')
            .skip(1)
            .map(|n| n.parse().unwrap())
            .collect()
    };
    let chunked = line("/chunked ");
    assert_eq!(chunked[..2], [200.0, 4.0], "{lines:?}");
    assert!(
        chunked[2] >= 300.0,
        "the duration ends with the body: {lines:?}"
    );
    assert_eq!(line("/sized ")[..2], [200.0, 5.0], "{lines:?}");
    assert_eq!(line("/short ")[..2], [200.0, 3.0], "{lines:?}");
    std::fs::remove_file(&path).unwrap();
}

/// `log.template` shapes every line, on every shard; a bad one is a config error
/// naming the key.
#[test]
fn template_lines_follow_log_template() {
    let path = temp("access-template");
    let mut config = config_with_log(&path, LogFormat::Json);
    config.log.template =
        "{{{method}}} {target} -> {status} ({bytes} B, shard {shard}, {duration_ms} ms) {scheme} {path} [{query}] {header:x-id}".into();
    let running = start_server(config);
    let addr = running.local_addr();
    for target in ["/items/3?a=1", "/nowhere"] {
        let request = get(target).replace("\r\n\r\n", "\r\nX-Id: r-7\r\n\r\n");
        let (reply, _) = exchange(addr, request.as_bytes());
        assert!(reply.status == 200 || reply.status == 404);
    }
    // Each shard writes its own lines: in the file, in either order.
    let lines = wait_for_lines(&path, 2, Duration::from_secs(3));
    assert_eq!(lines.len(), 2, "{lines:?}");
    for pattern in [
        r"^\{GET\} /items/3\?a=1 -> 200 \(1 B, shard [01], \d+\.\d{3} ms\) http /items/3 \[a=1\] r-7$",
        r"^\{GET\} /nowhere -> 404 \(\d+ B, shard [01], \d+\.\d{3} ms\) http /nowhere \[\] r-7$",
    ] {
        assert!(
            lines.iter().any(|l| matches(pattern, l)),
            "{pattern}: {lines:?}"
        );
    }
    running.stop();
    running.join().unwrap();
    std::fs::remove_file(&path).unwrap();
    let err = Config::from_toml("[log]\ntemplate = \"{status} {latency}\"\n").unwrap_err();
    assert_eq!(err.key, "log.template", "{err}");
    assert!(err.message.contains("unknown field {latency}"), "{err}");
}

#[test]
fn a_log_file_that_cannot_be_opened_fails_the_start() {
    let mut config = test_config();
    config.log.access = "/nonexistent-dir/access.log".into();
    let err = haywire::Server::new(config)
        .start()
        .err()
        .expect("start fails");
    assert!(err.to_string().contains("log.access"), "{err}");
}

fn matches(pattern: &str, line: &str) -> bool {
    regex::Regex::new(pattern).unwrap().is_match(line)
}

/// A streamed response still open when a graceful stop's grace ends is cut and
/// logged with the bytes that went out: the stop writes its line too.
#[test]
fn a_stream_open_at_a_stop_is_logged_with_the_bytes_sent() {
    use futures_lite::{stream, StreamExt};
    let path = temp("access-open-stream");
    let mut config = config_with_log(&path, LogFormat::Combined);
    config.log.template = "{target} {status} {bytes}".into();
    config.server.shutdown_grace = 0.3;
    let running = haywire::Server::new(config)
        .routes(
            |router: &mut haywire::Router, _: &std::rc::Rc<haywire::ShardCtx>| {
                router.get("/endless", |_: haywire::Request| {
                    // One piece, then a producer that never ends.
                    let pieces =
                        stream::once(bytes::Bytes::from_static(b"abc")).chain(stream::pending());
                    haywire::Response::stream("text/plain", pieces)
                });
            },
        )
        .start()
        .unwrap();
    let mut stream = connect(running.local_addr());
    stream
        .write_all(b"GET /endless HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    running.stop();
    running.join().unwrap();
    let lines = read_lines(&path);
    assert_eq!(lines, ["/endless 200 3"], "{lines:?}");
    std::fs::remove_file(&path).unwrap();
}
