//! Benchmark peer: hyper 1.x, one current-thread tokio runtime per thread, each with its
//! own SO_REUSEPORT listener. It routes as Haywire's benchmark config does: `GET /` and
//! `GET /users/<id>` answer `hello world`, `POST /echo` echoes, anything else is a 404.
//! With `--tls CERT KEY` it serves HTTPS through tokio-rustls (ring provider, TLS 1.3 and
//! 1.2, ALPN http/1.1): the same TLS stack as Haywire's, over tokio's I/O.
//! Usage: peer-hyper [--port N] [--threads N] [--tls CERT KEY]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path();
    if req.method() == Method::POST && path == "/echo" {
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        return Ok(Response::new(Full::new(body)));
    }
    if req.method() != Method::GET || !(path == "/" || path.starts_with("/users/")) {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = hyper::StatusCode::NOT_FOUND;
        return Ok(response);
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

fn tls_acceptor(cert: &str, key: &str) -> TlsAcceptor {
    let certs = CertificateDer::pem_file_iter(cert)
        .expect("--tls CERT: a PEM file")
        .collect::<Result<Vec<_>, _>>()
        .expect("--tls CERT: PEM certificates");
    let key = PrivateKeyDer::from_pem_file(key).expect("--tls KEY: a PEM private key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("certificate and key");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

fn main() {
    let (port, threads, tls) = args(8001);
    let acceptor = tls.map(|(cert, key)| tls_acceptor(&cert, &key));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let std_listener = listener(addr);
            let acceptor = acceptor.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                    loop {
                        let Ok((stream, _)) = listener.accept().await else { continue };
                        let _ = stream.set_nodelay(true);
                        let acceptor = acceptor.clone();
                        tokio::task::spawn(async move {
                            let http = http1::Builder::new().pipeline_flush(true).clone();
                            match acceptor {
                                None => {
                                    let _ = http
                                        .serve_connection(TokioIo::new(stream), service_fn(handle))
                                        .await;
                                }
                                Some(acceptor) => {
                                    let Ok(stream) = acceptor.accept(stream).await else { return };
                                    let _ = http
                                        .serve_connection(TokioIo::new(stream), service_fn(handle))
                                        .await;
                                }
                            }
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

/// `--port N` (default 8001), `--threads N` (default 1), `--tls CERT KEY` (default off).
fn args(default_port: u16) -> (u16, usize, Option<(String, String)>) {
    let (mut port, mut threads, mut tls) = (default_port, 1, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => port = value.parse().expect("--port N"),
            "--threads" => threads = value.parse().expect("--threads N"),
            "--tls" => tls = Some((value, args.next().expect("--tls CERT KEY"))),
            _ => panic!("unknown flag {flag}: use --port N --threads N [--tls CERT KEY]"),
        }
    }
    (port, threads.max(1), tls)
}
