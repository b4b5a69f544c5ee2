//! TechEmpower peer: hyper 1.x, the way TFB's hyper entry runs it: one current-thread tokio
//! runtime per thread, each with its own SO_REUSEPORT listener and its own tokio-postgres
//! connection (prepared statements; a request's queries are pipelined on it).
//! Usage: tfb-hyper --port P --threads N [--database-url URL]

#[path = "../../common.rs"]
mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;

use futures_util::future::try_join_all;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio_postgres::{Client, NoTls, Statement};

use common::Rng;

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

#[derive(Serialize, Clone, Copy)]
struct World {
    id: i32,
    #[serde(rename = "randomNumber")]
    random_number: i32,
}

struct Db {
    client: Client,
    world: Statement,
    fortune: Statement,
    update: Statement,
    cache: Vec<World>, // index id - 1
}

type Body = Full<Bytes>;

fn response(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut rsp = Response::new(Full::new(body.into()));
    *rsp.status_mut() = status;
    let headers = rsp.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("hyper"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    rsp
}

fn json(value: &impl Serialize) -> Response<Body> {
    response(StatusCode::OK, "application/json", serde_json::to_vec(value).unwrap())
}

impl Db {
    async fn world(&self, id: i32) -> Result<World, tokio_postgres::Error> {
        let row = self.client.query_one(&self.world, &[&id]).await?;
        Ok(World { id: row.get(0), random_number: row.get(1) })
    }

    async fn worlds(&self, n: usize) -> Result<Vec<World>, tokio_postgres::Error> {
        let mut rng = Rng::new();
        try_join_all((0..n).map(|_| self.world(rng.world_id()))).await
    }

    async fn handle(&self, req: &Request<Incoming>) -> Result<Response<Body>, tokio_postgres::Error> {
        let query = req.uri().query();
        Ok(match req.uri().path() {
            "/plaintext" => response(StatusCode::OK, "text/plain", Bytes::from_static(b"Hello, World!")),
            "/json" => json(&Message { message: common::HELLO }),
            "/db" => json(&self.world(Rng::new().world_id()).await?),
            "/queries" => json(&self.worlds(common::count(query, "queries")).await?),
            "/fortunes" => {
                let rows = self.client.query(&self.fortune, &[]).await?;
                let fortunes = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
                response(StatusCode::OK, "text/html; charset=utf-8", common::fortunes_html(fortunes))
            }
            "/updates" => {
                let mut worlds = self.worlds(common::count(query, "queries")).await?;
                let mut rng = Rng::new();
                for w in &mut worlds {
                    w.random_number = rng.world_id();
                }
                let mut sorted = worlds.clone();
                sorted.sort_unstable_by_key(|w| w.id);
                let ids: Vec<i32> = sorted.iter().map(|w| w.id).collect();
                let numbers: Vec<i32> = sorted.iter().map(|w| w.random_number).collect();
                self.client.execute(&self.update, &[&ids, &numbers]).await?;
                json(&worlds)
            }
            "/cached-queries" => {
                let mut rng = Rng::new();
                let n = common::count(query, "count");
                let worlds: Vec<World> =
                    (0..n).map(|_| self.cache[rng.world_id() as usize - 1]).collect();
                json(&worlds)
            }
            _ => response(StatusCode::NOT_FOUND, "text/plain", Bytes::from_static(b"not found")),
        })
    }
}

async fn connect(url: &str) -> Result<Db, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::task::spawn_local(async move {
        if let Err(e) = connection.await {
            eprintln!("database connection: {e}");
        }
    });
    let world = client.prepare(common::SELECT_WORLD).await?;
    let fortune = client.prepare(common::SELECT_FORTUNES).await?;
    let update = client.prepare(common::UPDATE_WORLDS).await?;
    let mut cache: Vec<World> = client
        .query(common::SELECT_ALL_WORLDS, &[])
        .await?
        .iter()
        .map(|r| World { id: r.get(0), random_number: r.get(1) })
        .collect();
    cache.sort_unstable_by_key(|w| w.id);
    assert_eq!(cache.len(), common::WORLD_ROWS as usize, "the world table needs 10,000 rows");
    Ok(Db { client, world, fortune, update, cache })
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
    let args = common::args(8101);
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let workers: Vec<_> = (0..args.threads)
        .map(|_| {
            let url = args.database_url.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, async move {
                    let db = Rc::new(connect(&url).await.expect("database"));
                    let listener = tokio::net::TcpListener::from_std(listener(addr)).unwrap();
                    loop {
                        let Ok((stream, _)) = listener.accept().await else { continue };
                        let _ = stream.set_nodelay(true);
                        let db = db.clone();
                        tokio::task::spawn_local(async move {
                            let service = service_fn(move |req| {
                                let db = db.clone();
                                async move {
                                    Ok::<_, Infallible>(db.handle(&req).await.unwrap_or_else(|e| {
                                        eprintln!("{e}");
                                        response(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", Bytes::new())
                                    }))
                                }
                            });
                            let _ = http1::Builder::new()
                                .pipeline_flush(true)
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                });
            })
        })
        .collect();
    println!("tfb-hyper on {addr} with {} threads", args.threads);
    for worker in workers {
        let _ = worker.join();
    }
}
