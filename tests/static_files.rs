//! `handler = "static"` over raw TCP: types, validators and 304, ranges, HEAD, index
//! files, large files sent by `sendfile` (counted in `/stats`), clients that do not
//! read, and requests that try to leave the directory.

mod common;

use std::io::{BufReader, Write};
use std::path::PathBuf;

use haywire::config::{Config, RouteConfig};
use haywire::RunningServer;

use common::*;

struct Site {
    root: PathBuf,
    big: Vec<u8>,
}

/// `root/www` is served; `root/outside/secret.txt` must never be.
fn site(name: &str) -> Site {
    let root = std::env::temp_dir().join(format!("haywire-static-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let www = root.join("www");
    std::fs::create_dir_all(www.join("sub")).unwrap();
    std::fs::create_dir_all(root.join("outside")).unwrap();
    std::fs::write(root.join("outside/secret.txt"), "secret").unwrap();
    std::fs::write(www.join("hello.txt"), "hello static\n").unwrap();
    std::fs::write(www.join("style.CSS"), "body{}").unwrap();
    std::fs::write(www.join("sub/index.html"), "<h1>index</h1>").unwrap();
    std::fs::write(www.join(".hidden"), "hidden").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(www.join("big.bin"), &big).unwrap();
    std::os::unix::fs::symlink(root.join("outside/secret.txt"), www.join("escape.txt")).unwrap();
    std::os::unix::fs::symlink(root.join("outside"), www.join("escape-dir")).unwrap();
    std::os::unix::fs::symlink(www.join("hello.txt"), www.join("alias.txt")).unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", www.join("rel-escape.txt")).unwrap();
    std::os::unix::fs::symlink("hello.txt", www.join("rel-alias.txt")).unwrap();
    // Links inside the directory to hidden names: the dot-file rule is about where a
    // path lands, not only the name asked for.
    std::os::unix::fs::symlink(".hidden", www.join("rel-hidden.txt")).unwrap();
    std::os::unix::fs::symlink(www.join(".hidden"), www.join("abs-hidden.txt")).unwrap();
    std::fs::create_dir_all(www.join(".git")).unwrap();
    std::fs::write(www.join(".git/config"), "hidden").unwrap();
    std::os::unix::fs::symlink(".git", www.join("repo")).unwrap();
    Site { root, big }
}

fn start(site: &Site) -> RunningServer {
    let mut config = test_config();
    config.routes.push(RouteConfig::Static {
        path: "/static".into(),
        dir: site.root.join("www").display().to_string(),
        allow_check_then_open: false,
        max_age: None,
        index: "index.html".into(),
    });
    start_server(config)
}

fn request(path: &str, headers: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n")
}

#[test]
fn files_types_validators_and_not_modified() {
    let site = site("basic");
    let server = start(&site);
    let addr = server.local_addr();
    let (reply, _) = exchange(addr, get("/static/hello.txt").as_bytes());
    assert_eq!((reply.status, reply.text()), (200, "hello static\n".into()));
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(reply.header("accept-ranges"), Some("bytes"));
    assert_eq!(reply.header("cache-control"), None, "only with max_age");
    let etag = reply.header("etag").unwrap().to_owned();
    let modified = reply.header("last-modified").unwrap().to_owned();
    let (css, _) = exchange(addr, get("/static/style.CSS").as_bytes());
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    // 304 on a matching ETag (also weak, also in a list), or an unchanged date.
    for header in [
        format!("If-None-Match: {etag}\r\n"),
        format!("If-None-Match: \"x\", W/{etag}\r\n"),
        format!("If-Modified-Since: {modified}\r\n"),
    ] {
        let (reply, _) = exchange(addr, request("/static/hello.txt", &header).as_bytes());
        assert_eq!(reply.status, 304, "{header}");
        assert!(reply.body.is_empty());
        assert_eq!(reply.header("etag"), Some(&*etag));
    }
    for header in [
        "If-None-Match: \"other\"\r\n",
        "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
    ] {
        let (reply, _) = exchange(addr, request("/static/hello.txt", header).as_bytes());
        assert_eq!(reply.status, 200, "{header}");
    }
    // HEAD: the GET's headers, no body; the connection goes on.
    let mut stream = connect(addr);
    let wire =
        "HEAD /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n".to_owned() + &get("/static/hello.txt");
    stream.write_all(wire.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let head = read_reply(&mut reader, true);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("3000000"));
    assert_eq!(
        head.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(read_reply(&mut reader, false).text(), "hello static\n");
    server.stop();
    server.join().unwrap();
}

/// `max_age`: `Cache-Control` on every answer with a file's validators: 200, 206, 304.
#[test]
fn max_age_sets_cache_control_on_files() {
    let site = site("max-age");
    let mut config = test_config();
    config.routes.push(RouteConfig::Static {
        path: "/static".into(),
        dir: site.root.join("www").display().to_string(),
        allow_check_then_open: false,
        max_age: Some(600),
        index: "index.html".into(),
    });
    let server = start_server(config);
    let addr = server.local_addr();
    let (whole, _) = exchange(addr, get("/static/hello.txt").as_bytes());
    let etag = whole.header("etag").unwrap().to_owned();
    let (part, _) = exchange(
        addr,
        request("/static/hello.txt", "Range: bytes=0-4\r\n").as_bytes(),
    );
    let (same, _) = exchange(
        addr,
        request("/static/hello.txt", &format!("If-None-Match: {etag}\r\n")).as_bytes(),
    );
    for (reply, status) in [(whole, 200), (part, 206), (same, 304)] {
        assert_eq!(reply.status, status);
        assert_eq!(
            reply.header("cache-control"),
            Some("max-age=600"),
            "{status}"
        );
    }
    let (missing, _) = exchange(addr, get("/static/nope.txt").as_bytes());
    assert_eq!(
        (missing.status, missing.header("cache-control")),
        (404, None)
    );
    server.stop();
    server.join().unwrap();
}

/// `index` names the file a directory serves; `""` serves none; a path is refused.
#[test]
fn index_names_the_file_a_directory_serves() {
    let site = site("index");
    std::fs::write(site.root.join("www/sub/default.htm"), "default").unwrap();
    let route = |index: &str| RouteConfig::Static {
        path: "/static".into(),
        dir: site.root.join("www").display().to_string(),
        allow_check_then_open: false,
        max_age: None,
        index: index.into(),
    };
    let mut config = test_config();
    config.routes.push(route("default.htm"));
    let server = start_server(config);
    let (reply, _) = exchange(server.local_addr(), get("/static/sub/").as_bytes());
    assert_eq!((reply.status, reply.text()), (200, "default".into()));
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    server.stop();
    server.join().unwrap();
    let mut config = test_config();
    config.routes.push(route(""));
    let server = start_server(config);
    for path in ["/static/sub/", "/static/sub"] {
        let (reply, _) = exchange(server.local_addr(), get(path).as_bytes());
        assert_eq!(reply.status, 404, "{path}");
    }
    let (reply, _) = exchange(
        server.local_addr(),
        get("/static/sub/index.html").as_bytes(),
    );
    assert_eq!(reply.status, 200);
    server.stop();
    server.join().unwrap();
    for bad in ["../outside/secret.txt", "sub/index.html", ".."] {
        let mut config = test_config();
        config.routes.push(route(bad));
        let err = config.validate().unwrap_err();
        let key = format!("route[{}].index", config.routes.len() - 1);
        assert_eq!(err.key, key, "{bad}: {err}");
    }
}

#[test]
fn ranges_large_files_and_index() {
    let site = site("ranges");
    let server = start(&site);
    let addr = server.local_addr();
    // A large file is streamed with its length.
    let (reply, _) = exchange(addr, get("/static/big.bin").as_bytes());
    assert_eq!(reply.status, 200);
    assert!(reply.body == site.big);
    let cases = [
        ("bytes=0-4", 0, 5),
        ("bytes=-3", 2_999_997, 3_000_000),
        ("bytes=100000-2000000", 100_000, 2_000_001),
        ("bytes=2999990-", 2_999_990, 3_000_000),
    ];
    for (range, start, end) in cases {
        let (reply, _) = exchange(
            addr,
            request("/static/big.bin", &format!("Range: {range}\r\n")).as_bytes(),
        );
        assert_eq!(reply.status, 206, "{range}");
        assert_eq!(
            reply.header("content-range").unwrap(),
            format!("bytes {start}-{}/3000000", end - 1)
        );
        assert!(reply.body == site.big[start..end], "{range}");
    }
    let (reply, _) = exchange(
        addr,
        request("/static/big.bin", "Range: bytes=3000000-\r\n").as_bytes(),
    );
    assert_eq!(reply.status, 416);
    assert_eq!(reply.header("content-range"), Some("bytes */3000000"));
    // If-Range with another validator: the whole file.
    let (reply, _) = exchange(
        addr,
        request(
            "/static/hello.txt",
            "Range: bytes=0-1\r\nIf-Range: \"old\"\r\n",
        )
        .as_bytes(),
    );
    assert_eq!((reply.status, reply.body.len()), (200, 13));
    // Directories: index.html, and a redirect to the slash form.
    let (reply, _) = exchange(addr, get("/static/sub/").as_bytes());
    assert_eq!((reply.status, reply.text()), (200, "<h1>index</h1>".into()));
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let (reply, _) = exchange(addr, get("/static/sub").as_bytes());
    assert_eq!(reply.status, 301);
    assert_eq!(reply.header("location"), Some("/static/sub/"));
    // The root has no index: 404. A symlink inside the directory is followed.
    assert_eq!(exchange(addr, get("/static/").as_bytes()).0.status, 404);
    for alias in ["/static/alias.txt", "/static/rel-alias.txt"] {
        let (reply, _) = exchange(addr, get(alias).as_bytes());
        assert_eq!((reply.status, reply.text()), (200, "hello static\n".into()));
    }
    server.stop();
    server.join().unwrap();
}

#[test]
fn nothing_outside_the_directory_is_served() {
    let site = site("escape");
    let server = start(&site);
    let addr = server.local_addr();
    for path in [
        "/static/../outside/secret.txt",
        "/static/%2e%2e/outside/secret.txt",
        "/static/%2E%2E/outside/secret.txt",
        "/static/sub/..%2f..%2foutside/secret.txt",
        "/static/..%5c..%5coutside%5csecret.txt",
        "/static/hello.txt%00",
        "/static/escape.txt",
        "/static/rel-escape.txt",
        "/static/escape-dir/secret.txt",
        "/static/.hidden",
        "/static/rel-hidden.txt",
        "/static/abs-hidden.txt",
        "/static/repo/config",
        "/static//hello.txt",
        "/static/missing.txt",
        "/static/%ff",
    ] {
        let (reply, _) = exchange(addr, get(path).as_bytes());
        assert!(
            reply.status == 404 || reply.status == 400,
            "{path}: {} {}",
            reply.status,
            reply.text()
        );
        assert!(!reply.text().contains("secret"), "{path}");
        assert!(!reply.text().contains("hidden"), "{path}");
    }
    // The server still serves.
    assert_eq!(
        exchange(addr, get("/static/hello.txt").as_bytes()).0.status,
        200
    );
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_path_that_reaches_the_route_without_its_prefix_is_not_served() {
    // `//static/x` matches the `/static` route by its segments, but is not under the
    // `/static` prefix: neither the directory's root nor a redirect answers it.
    let site = site("prefix");
    let server = start(&site);
    let addr = server.local_addr();
    for path in [
        "//static/hello.txt",
        "//static/sub",
        "//static/",
        "//static",
    ] {
        let (reply, _) = exchange(addr, get(path).as_bytes());
        assert_eq!(reply.status, 404, "{path}: {}", reply.text());
        assert_eq!(reply.header("location"), None, "{path}");
    }
    assert_eq!(
        exchange(addr, get("/static/hello.txt").as_bytes()).0.status,
        200
    );
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_missing_directory_is_a_config_error_naming_the_key() {
    let text = "[[route]]\nhandler = \"static\"\npath = \"/s\"\ndir = \"/nonexistent/haywire\"\n";
    assert_eq!(Config::from_toml(text).unwrap_err().key, "route[0].dir");
    let site = site("config");
    let text = format!(
        "[[route]]\nhandler = \"static\"\npath = \"/s\"\ndir = \"{}\"\n",
        site.root.join("www").display()
    );
    assert!(Config::from_toml(&text).is_ok());
}

/// `(file bodies, bytes)` the server has sent by `sendfile`, from `/stats`.
fn sent_by_sendfile(addr: std::net::SocketAddr) -> (u64, u64) {
    let total = &stats(addr)["total"];
    let field = |name: &str| total[name].as_u64().expect(name);
    (field("sendfile_bodies"), field("sendfile_bytes"))
}

#[test]
fn large_files_and_ranges_go_out_by_sendfile_byte_exact() {
    let site = site("sendfile");
    let server = start(&site);
    let addr = server.local_addr();
    assert_eq!(sent_by_sendfile(addr), (0, 0));
    // The whole file, twice on one keep-alive connection, then a small one after it.
    let mut reader = BufReader::new(connect(addr));
    for _ in 0..2 {
        reader
            .get_mut()
            .write_all(get("/static/big.bin").as_bytes())
            .unwrap();
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.status, 200);
        assert!(reply.body == site.big, "the whole file, byte for byte");
    }
    reader
        .get_mut()
        .write_all(get("/static/hello.txt").as_bytes())
        .unwrap();
    assert_eq!(read_reply(&mut reader, false).text(), "hello static\n");
    assert_eq!(sent_by_sendfile(addr), (2, 6_000_000));
    // Slices above the whole-read size: start, middle, suffix, open-ended, and one
    // whose If-Range still matches.
    let (big_etag, head) = {
        let mut stream = connect(addr);
        stream
            .write_all(b"HEAD /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let head = read_reply(&mut BufReader::new(stream), true);
        (head.header("etag").unwrap().to_owned(), head)
    };
    assert_eq!(head.header("content-length"), Some("3000000"));
    assert_eq!(sent_by_sendfile(addr), (2, 6_000_000), "HEAD sends no file");
    let cases = [
        ("bytes=0-199999".to_owned(), 0, 200_000),
        ("bytes=100000-2000000".to_owned(), 100_000, 2_000_001),
        ("bytes=-300000".to_owned(), 2_700_000, 3_000_000),
        ("bytes=2500000-".to_owned(), 2_500_000, 3_000_000),
        (
            format!("bytes=1000000-1099999\r\nIf-Range: {big_etag}"),
            1_000_000,
            1_100_000,
        ),
    ];
    let mut sent = 6_000_000;
    for (i, (range, start, end)) in cases.iter().enumerate() {
        let (reply, _) = exchange(
            addr,
            request("/static/big.bin", &format!("Range: {range}\r\n")).as_bytes(),
        );
        assert_eq!(reply.status, 206, "{range}");
        assert_eq!(
            reply.header("content-range").unwrap(),
            format!("bytes {start}-{}/3000000", end - 1)
        );
        assert!(reply.body == site.big[*start..*end], "{range}");
        sent += (end - start) as u64;
        assert_eq!(sent_by_sendfile(addr), (3 + i as u64, sent), "{range}");
    }
    // If-Range with a stale validator: the whole file, by sendfile too.
    let (reply, _) = exchange(
        addr,
        request(
            "/static/big.bin",
            "Range: bytes=0-99999\r\nIf-Range: \"stale\"\r\n",
        )
        .as_bytes(),
    );
    assert_eq!(reply.status, 200);
    assert!(reply.body == site.big);
    assert_eq!(sent_by_sendfile(addr), (8, sent + 3_000_000));
    server.stop();
    server.join().unwrap();
}

#[test]
fn many_concurrent_large_downloads_complete() {
    let site = site("concurrent");
    let server = start(&site);
    let addr = server.local_addr();
    let big = std::sync::Arc::new(site.big.clone());
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let big = big.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(connect(addr));
                for _ in 0..3 {
                    reader
                        .get_mut()
                        .write_all(get("/static/big.bin").as_bytes())
                        .unwrap();
                    let reply = read_reply(&mut reader, false);
                    assert_eq!(reply.status, 200);
                    assert!(reply.body == *big, "byte for byte");
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a download failed");
    }
    assert_eq!(sent_by_sendfile(addr), (48, 48 * 3_000_000));
    server.stop();
    server.join().unwrap();
}

#[test]
fn a_client_that_never_reads_a_file_is_closed_after_the_write_timeout() {
    let site = site("unread");
    let mut config = test_config();
    config.timeouts.write = 0.5;
    config.routes.push(RouteConfig::Static {
        path: "/static".into(),
        dir: site.root.join("www").display().to_string(),
        allow_check_then_open: false,
        max_age: None,
        index: "index.html".into(),
    });
    let server = start_server(config);
    let addr = server.local_addr();
    // 30 pipelined requests for the 3 MB file (90 MB), never read: far more than the
    // socket buffers hold, so the server's sendfile finds the socket full.
    let mut stalled = connect_to_shard(addr, 0);
    let wire: String = (0..30).map(|_| get("/static/big.bin")).collect();
    stalled.get_mut().write_all(wire.as_bytes()).unwrap();
    // Meanwhile the same shard serves others at once: it waits, it does not block.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut other = connect_to_shard(addr, 0);
    other
        .get_mut()
        .write_all(get("/static/big.bin").as_bytes())
        .unwrap();
    assert!(read_reply(&mut other, false).body == site.big);
    // The write timeout ends the stalled connection; bounded by the read timeout.
    let started = std::time::Instant::now();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let mut sink = vec![0u8; 1 << 16];
    let mut total = 0usize;
    loop {
        match std::io::Read::read(&mut stalled, &mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    assert!(total < 30 * 3_000_000, "all {total} bytes arrived");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let report = stats(addr);
    assert!(
        report["total"]["timeouts"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert!(report["total"]["sendfile_bodies"].as_u64().unwrap() >= 2);
    // And the shard goes on serving.
    let mut after = connect_to_shard(addr, 0);
    after
        .get_mut()
        .write_all(get("/static/hello.txt").as_bytes())
        .unwrap();
    assert_eq!(read_reply(&mut after, false).text(), "hello static\n");
    server.stop();
    server.join().unwrap();
}
