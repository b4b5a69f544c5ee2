//! TechEmpower peer: actix-web 4 with tokio-postgres, as TFB's actix entries run it: every
//! worker (a single-threaded runtime) builds its own App and its own database connection
//! (prepared statements; a request's queries are pipelined on it), with the OS's TCP
//! keep-alive and no client request timeout, as the entry configures its server.
//! Usage: tfb-actix --port P --threads N [--database-url URL]

#[path = "../../common.rs"]
mod common;

use std::time::Duration;

use actix_web::http::header::{HeaderValue, CONTENT_TYPE, SERVER};
use actix_web::http::KeepAlive;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::future::try_join_all;
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

type Result<T> = std::result::Result<T, actix_web::Error>;

fn db_error(e: tokio_postgres::Error) -> actix_web::Error {
    actix_web::error::ErrorInternalServerError(e)
}

fn ok(content_type: &'static str, body: impl actix_web::body::MessageBody + 'static) -> HttpResponse {
    let mut rsp = HttpResponse::Ok().body(body);
    let headers = rsp.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("actix"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    rsp
}

fn json(value: &impl Serialize) -> HttpResponse {
    ok("application/json", serde_json::to_vec(value).unwrap())
}

impl Db {
    async fn connect(url: String) -> std::result::Result<Db, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
        actix_rt::spawn(async move {
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

    async fn world(&self, id: i32) -> Result<World> {
        let row = self.client.query_one(&self.world, &[&id]).await.map_err(db_error)?;
        Ok(World { id: row.get(0), random_number: row.get(1) })
    }

    async fn worlds(&self, n: usize) -> Result<Vec<World>> {
        let mut rng = Rng::new();
        try_join_all((0..n).map(|_| self.world(rng.world_id()))).await
    }
}

async fn plaintext() -> HttpResponse {
    ok("text/plain", "Hello, World!")
}

async fn json_route() -> HttpResponse {
    json(&Message { message: common::HELLO })
}

async fn db(db: web::Data<Db>) -> Result<HttpResponse> {
    Ok(json(&db.world(Rng::new().world_id()).await?))
}

async fn queries(req: HttpRequest, db: web::Data<Db>) -> Result<HttpResponse> {
    Ok(json(&db.worlds(common::count(Some(req.query_string()), "queries")).await?))
}

async fn fortunes(db: web::Data<Db>) -> Result<HttpResponse> {
    let rows = db.client.query(&db.fortune, &[]).await.map_err(db_error)?;
    let fortunes = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(ok("text/html; charset=utf-8", common::fortunes_html(fortunes)))
}

async fn updates(req: HttpRequest, db: web::Data<Db>) -> Result<HttpResponse> {
    let mut worlds = db.worlds(common::count(Some(req.query_string()), "queries")).await?;
    let mut rng = Rng::new();
    for w in &mut worlds {
        w.random_number = rng.world_id();
    }
    let mut sorted = worlds.clone();
    sorted.sort_unstable_by_key(|w| w.id);
    let ids: Vec<i32> = sorted.iter().map(|w| w.id).collect();
    let numbers: Vec<i32> = sorted.iter().map(|w| w.random_number).collect();
    db.client.execute(&db.update, &[&ids, &numbers]).await.map_err(db_error)?;
    Ok(json(&worlds))
}

async fn cached_queries(req: HttpRequest, db: web::Data<Db>) -> HttpResponse {
    let mut rng = Rng::new();
    let n = common::count(Some(req.query_string()), "count");
    let worlds: Vec<World> = (0..n).map(|_| db.cache[rng.world_id() as usize - 1]).collect();
    json(&worlds)
}

/// The listener, with TCP_NODELAY set on it: Linux hands it down to every accepted socket,
/// so answers to pipelined requests are not held back by Nagle's algorithm (the framework
/// does not set it itself).
fn listener(port: u16) -> std::io::Result<std::net::TcpListener> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = common::args(8102);
    let url = args.database_url.clone();
    let server = HttpServer::new(move || {
        let url = url.clone();
        App::new()
            .data_factory(move || Db::connect(url.clone()))
            .route("/plaintext", web::get().to(plaintext))
            .route("/json", web::get().to(json_route))
            .route("/db", web::get().to(db))
            .route("/queries", web::get().to(queries))
            .route("/fortunes", web::get().to(fortunes))
            .route("/updates", web::get().to(updates))
            .route("/cached-queries", web::get().to(cached_queries))
    })
    .keep_alive(KeepAlive::Os)
    .client_request_timeout(Duration::ZERO)
    .workers(args.threads)
    .listen(listener(args.port)?)?;
    println!("tfb-actix on 127.0.0.1:{} with {} workers", args.port, args.threads);
    server.run().await
}
