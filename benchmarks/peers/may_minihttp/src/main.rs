//! Benchmark peer: may_minihttp. It routes as Haywire's benchmark config does: `GET /` and
//! `GET /users/<id>` answer `hello world`, `POST /echo` echoes, anything else is a 404.
//! may_minihttp never closes a connection itself: when a request says `Connection: close`
//! the answer says so too, and the client (wrk) closes it, so the `close` scenario still
//! costs this server one accepted connection per request.
//! Usage: peer-may-minihttp [--port N] [--threads N]

use std::io::{self, Read};

use may_minihttp::{HttpService, HttpServiceFactory, Request, Response};

#[derive(Clone)]
struct Hello;

impl HttpService for Hello {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
        let close = req.headers().iter().any(|h| {
            h.name.eq_ignore_ascii_case("connection") && h.value.eq_ignore_ascii_case(b"close")
        });
        if close {
            rsp.header("Connection: close");
        }
        if req.method() == "POST" && req.path() == "/echo" {
            let mut body = Vec::new();
            req.body().read_to_end(&mut body)?;
            rsp.body_vec(body);
            return Ok(());
        }
        let path = req.path();
        if req.method() != "GET" || !(path == "/" || path.starts_with("/users/")) {
            rsp.status_code(404, "Not Found");
            return Ok(());
        }
        rsp.header("Content-Type: text/plain; charset=utf-8");
        rsp.body("hello world");
        Ok(())
    }
}

struct Factory;

impl HttpServiceFactory for Factory {
    type Service = Hello;

    fn new_service(&self, _: usize) -> Hello {
        Hello
    }
}

fn main() {
    let (port, threads) = args(8002);
    may::config().set_workers(threads);
    let server = Factory.start(("127.0.0.1", port)).unwrap();
    println!("peer-may-minihttp on 127.0.0.1:{port} with {threads} workers");
    server.wait();
}

/// `--port N` (default 8002) and `--threads N` (default 1).
fn args(default_port: u16) -> (u16, usize) {
    let (mut port, mut threads) = (default_port, 1);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => port = value.parse().expect("--port N"),
            "--threads" => threads = value.parse().expect("--threads N"),
            _ => panic!("unknown flag {flag}: use --port N --threads N"),
        }
    }
    (port, threads.max(1))
}
