//! TechEmpower peer: xitca-web with xitca-postgres, as TFB's xitca-web entry runs it: every
//! worker thread builds its own state (`with_async_state`) holding its own database client;
//! a request's queries are all sent before any answer is read (pipelined), and an update's
//! SELECTs and its one batched UPDATE go out together: one round trip.
//! Usage: tfb-xitca --port P --threads N [--database-url URL]

#[path = "../../common.rs"]
mod common;

use std::future::IntoFuture;

use serde::Serialize;
use xitca_postgres::{iter::AsyncLendingIterator, types::Type, Client, Execute, Postgres, Statement};
use xitca_web::{
    body::ResponseBody,
    handler::{handler_service, state::StateRef},
    http::{
        header::{HeaderValue, CONTENT_TYPE, SERVER},
        StatusCode, Uri, WebResponse,
    },
    route::get,
    App,
};

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

type Error = Box<dyn std::error::Error>;

impl Db {
    async fn connect(url: String) -> Result<Db, Error> {
        let (client, driver) = Postgres::new(url).connect().await?;
        tokio::task::spawn_local(driver.into_future());
        let world = Statement::named(common::SELECT_WORLD, &[Type::INT4]).execute(&client).await?.leak();
        let fortune = Statement::named(common::SELECT_FORTUNES, &[]).execute(&client).await?.leak();
        let update = Statement::named(common::UPDATE_WORLDS, &[Type::INT4_ARRAY, Type::INT4_ARRAY])
            .execute(&client)
            .await?
            .leak();
        let all = Statement::named(common::SELECT_ALL_WORLDS, &[]).execute(&client).await?;
        let mut rows = all.query(&client).await?;
        let mut cache = Vec::with_capacity(common::WORLD_ROWS as usize);
        while let Some(row) = rows.try_next().await? {
            cache.push(World { id: row.get(0), random_number: row.get(1) });
        }
        drop(rows);
        drop(all);
        cache.sort_unstable_by_key(|w| w.id);
        assert_eq!(cache.len(), common::WORLD_ROWS as usize, "the world table needs 10,000 rows");
        Ok(Db { client, world, fortune, update, cache })
    }

    async fn worlds(&self, n: usize) -> Result<Vec<World>, Error> {
        let mut rng = Rng::new();
        // Send every query first, then read the answers: one round trip for the lot.
        let streams = (0..n)
            .map(|_| self.world.bind([rng.world_id()]).query(&self.client).into_inner())
            .collect::<Vec<_>>();
        let mut worlds = Vec::with_capacity(n);
        for stream in streams {
            let mut stream = stream?;
            let row = stream.try_next().await?.ok_or("no world row")?;
            worlds.push(World { id: row.get(0), random_number: row.get(1) });
        }
        Ok(worlds)
    }
}

fn respond(content_type: &'static str, body: impl Into<ResponseBody>) -> WebResponse {
    let mut rsp = WebResponse::new(body.into());
    let headers = rsp.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("xitca-web"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    rsp
}

fn json(value: &impl Serialize) -> WebResponse {
    respond("application/json", serde_json::to_vec(value).unwrap())
}

fn or_500(result: Result<WebResponse, Error>) -> WebResponse {
    result.unwrap_or_else(|e| {
        eprintln!("{e}");
        let mut rsp = respond("text/plain", "");
        *rsp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        rsp
    })
}

async fn plaintext() -> WebResponse {
    respond("text/plain", "Hello, World!")
}

async fn json_route() -> WebResponse {
    json(&Message { message: common::HELLO })
}

async fn db(StateRef(db): StateRef<'_, Db>) -> WebResponse {
    or_500(async { Ok(json(&db.worlds(1).await?[0])) }.await)
}

async fn queries(StateRef(db): StateRef<'_, Db>, uri: &Uri) -> WebResponse {
    or_500(async { Ok(json(&db.worlds(common::count(uri.query(), "queries")).await?)) }.await)
}

async fn fortunes(StateRef(db): StateRef<'_, Db>) -> WebResponse {
    or_500(
        async {
            let mut rows = db.fortune.bind_none().query(&db.client).await?;
            let mut fortunes = Vec::with_capacity(13);
            while let Some(row) = rows.try_next().await? {
                fortunes.push((row.get::<i32>(0), row.get::<String>(1)));
            }
            Ok(respond("text/html; charset=utf-8", common::fortunes_html(fortunes)))
        }
        .await,
    )
}

async fn updates(StateRef(db): StateRef<'_, Db>, uri: &Uri) -> WebResponse {
    or_500(
        async {
            let n = common::count(uri.query(), "queries");
            let mut rng = Rng::new();
            // (id, new number) per row: the new numbers do not depend on the rows read.
            let picks: Vec<(i32, i32)> = (0..n).map(|_| (rng.world_id(), rng.world_id())).collect();
            // Every SELECT and then the UPDATE are sent before any answer is read (xitca-
            // postgres sends when a query is made, not when it is awaited): one round trip,
            // as TFB's xitca-web entry pipelines them.
            let streams = picks
                .iter()
                .map(|&(id, _)| db.world.bind([id]).query(&db.client).into_inner())
                .collect::<Vec<_>>();
            let mut sorted = picks.clone();
            sorted.sort_unstable_by_key(|&(id, _)| id);
            let ids: Vec<i32> = sorted.iter().map(|&(id, _)| id).collect();
            let numbers: Vec<i32> = sorted.iter().map(|&(_, number)| number).collect();
            let update = db.update.bind([ids, numbers]).execute(&db.client);
            let mut worlds = Vec::with_capacity(n);
            for (stream, &(_, number)) in streams.into_iter().zip(&picks) {
                let mut stream = stream?;
                let row = stream.try_next().await?.ok_or("no world row")?;
                worlds.push(World { id: row.get(0), random_number: number });
            }
            update.await?;
            Ok(json(&worlds))
        }
        .await,
    )
}

async fn cached_queries(StateRef(db): StateRef<'_, Db>, uri: &Uri) -> WebResponse {
    let mut rng = Rng::new();
    let n = common::count(uri.query(), "count");
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

fn main() -> std::io::Result<()> {
    let args = common::args(8104);
    let url = args.database_url.clone();
    println!("tfb-xitca on 127.0.0.1:{} with {} workers", args.port, args.threads);
    App::new()
        .with_async_state(move || Db::connect(url.clone()))
        .at("/plaintext", get(handler_service(plaintext)))
        .at("/json", get(handler_service(json_route)))
        .at("/db", get(handler_service(db)))
        .at("/queries", get(handler_service(queries)))
        .at("/fortunes", get(handler_service(fortunes)))
        .at("/updates", get(handler_service(updates)))
        .at("/cached-queries", get(handler_service(cached_queries)))
        .serve()
        .worker_threads(args.threads)
        .listen(listener(args.port)?)?
        .run()
        .wait()
}
