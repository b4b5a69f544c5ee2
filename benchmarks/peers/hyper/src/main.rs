//! Benchmark peer: hyper 1.x, one current-thread tokio runtime per thread, each with its
//! own SO_REUSEPORT listener. `GET *` answers `hello world`; `POST /echo` echoes.
//! Usage: peer-hyper [--port N] [--threads N]

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() == Method::POST && req.uri().path() == "/echo" {
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        return Ok(Response::new(Full::new(body)));
    }
    let mut response = Response::new(Full::new(Bytes::from_static(b"hello world")));
    response
        .headers_mut()
        .insert("content-type", "text/plain; charset=utf-8".parse().unwrap());
    Ok(response)
}

fn listener(addr: SocketAddr) -> std::net::TcpListener {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_reuse_port(true).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(1024).unwrap();
    socket.set_nonblocking(true).unwrap();
    socket.into()
}

fn main() {
    let (port, threads) = args(8001);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let std_listener = listener(addr);
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                    loop {
                        let Ok((stream, _)) = listener.accept().await else { continue };
                        let _ = stream.set_nodelay(true);
                        tokio::task::spawn(async move {
                            let _ = http1::Builder::new()
                                .pipeline_flush(true)
                                .serve_connection(TokioIo::new(stream), service_fn(handle))
                                .await;
                        });
                    }
                });
            })
        })
        .collect();
    println!("peer-hyper on {addr} with {threads} threads");
    for worker in workers {
        let _ = worker.join();
    }
}

/// `--port N` (default 8001) and `--threads N` (default 1).
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
