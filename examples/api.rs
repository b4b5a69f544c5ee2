//! A small JSON CRUD API written the way Haywire handlers are meant to be written:
//! typed extractors, `Result` with `haywire::Error`, layers (compression, request ids,
//! and a bearer-token check on the routes that write), and state shared by a shard's
//! handlers.
//!
//! | Route | Answer |
//! | --- | --- |
//! | `GET /items?offset=0&limit=50` | `200` the items, by id |
//! | `GET /items/:id` | `200` the item, `404` |
//! | `POST /items` (token) | `201` the new item, `Location` |
//! | `PUT /items/:id` (token) | `200` the replaced item, `404` |
//! | `DELETE /items/:id` (token) | `204`, `404` |
//!
//! Each shard holds a copy of the items. A write is applied on every shard through
//! the control mesh (`ShardCtx::gather`) before it is answered, so a client reads its
//! own writes on any connection. Ids are unique across shards: shard `s` of `n` hands
//! out `s + 1`, `s + 1 + n`, ...
//!
//! ```sh
//! cargo run --release --example api -- --port 8080 --shards 2 --token secret
//! curl -s -X POST localhost:8080/items -H 'Authorization: Bearer secret' \
//!      -H 'Content-Type: application/json' -d '{"name": "pen", "price": 1.5}'
//! curl -s --compressed 'localhost:8080/items?limit=10'
//! ```

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use clap::Parser;
use haywire::extract::{Path, Query, State};
use haywire::layer::{from_fn, Compression, Next, RequestId};
use haywire::{
    Config, Error, IntoResponse, Json, Request, Response, Router, Server, ShardCtx, StatusCode,
};
use serde::{Deserialize, Serialize};

/// An item as stored and sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Item {
    pub id: u64,
    pub name: String,
    pub price: f64,
}

/// What a client sends to create or replace an item.
#[derive(Debug, Clone, Deserialize)]
pub struct NewItem {
    pub name: String,
    pub price: f64,
}

impl NewItem {
    /// 422 with the reason when the item makes no sense.
    fn check(&self) -> Result<(), Error> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(Error::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "name must be 1 to 200 characters",
            ));
        }
        if !self.price.is_finite() || self.price < 0.0 {
            return Err(Error::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "price must be a number from 0",
            ));
        }
        Ok(())
    }

    fn with_id(self, id: u64) -> Item {
        Item {
            id,
            name: self.name,
            price: self.price,
        }
    }
}

/// `?offset=&limit=` of a listing.
#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    offset: usize,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    50
}

/// One shard's copy of the items.
#[derive(Default)]
pub struct Store {
    items: RefCell<BTreeMap<u64, Item>>,
    /// Ids this shard has handed out.
    issued: Cell<u64>,
}

/// What a handler needs: this shard's store and its context (to reach the others).
#[derive(Clone)]
struct App {
    store: Rc<Store>,
    shard: Rc<ShardCtx>,
}

impl App {
    /// Applies `change` to every shard's store, this one included, and waits for all.
    async fn everywhere<R: Send + 'static>(
        &self,
        change: impl Fn(&Store) -> R + Send + Clone + 'static,
    ) -> Result<R, Error> {
        let mut answers = self
            .shard
            .gather(move |shard: &ShardCtx| shard.local::<Store>().map(|store| change(&store)))
            .await
            .map_err(|e| Error::internal(e.to_string()))?;
        answers
            .swap_remove(self.shard.id())
            .ok_or_else(|| Error::internal("no store on this shard"))
    }

    fn next_id(&self) -> u64 {
        let n = self.store.issued.get();
        self.store.issued.set(n + 1);
        n * self.shard.count() as u64 + self.shard.id() as u64 + 1
    }
}

fn list(State(app): State<App>, Query(page): Query<Page>) -> Json<Vec<Item>> {
    let items = app.store.items.borrow();
    let limit = page.limit.min(1000);
    Json(
        items
            .values()
            .skip(page.offset)
            .take(limit)
            .cloned()
            .collect(),
    )
}

fn show(State(app): State<App>, Path(id): Path<u64>) -> Result<Json<Item>, Error> {
    let items = app.store.items.borrow();
    let item = items.get(&id).ok_or_else(|| not_found(id))?;
    Ok(Json(item.clone()))
}

async fn create(app: App, new: NewItem) -> Result<Response, Error> {
    new.check()?;
    let item = new.with_id(app.next_id());
    let stored = item.clone();
    app.everywhere(move |store| {
        store.items.borrow_mut().insert(stored.id, stored.clone());
    })
    .await?;
    let location = format!("/items/{}", item.id);
    Ok((StatusCode::CREATED, [("Location", location)], Json(item)).into_response())
}

async fn replace(app: App, id: u64, new: NewItem) -> Result<Json<Item>, Error> {
    new.check()?;
    let item = new.with_id(id);
    let stored = item.clone();
    let existed = app
        .everywhere(move |store| {
            let mut items = store.items.borrow_mut();
            let slot = items.get_mut(&stored.id);
            slot.map(|slot| *slot = stored.clone()).is_some()
        })
        .await?;
    if !existed {
        return Err(not_found(id));
    }
    Ok(Json(item))
}

async fn remove(app: App, id: u64) -> Result<StatusCode, Error> {
    let existed = app
        .everywhere(move |store| store.items.borrow_mut().remove(&id).is_some())
        .await?;
    if !existed {
        return Err(not_found(id));
    }
    Ok(StatusCode::NO_CONTENT)
}

fn not_found(id: u64) -> Error {
    Error::not_found(format!("no item {id}"))
}

/// Answers 401 unless the request carries `Authorization: Bearer <token>`.
fn require_token(token: Rc<str>) -> impl haywire::layer::Layer {
    from_fn(move |request: Request, next: Next| {
        let presented = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "));
        if presented != Some(&*token) {
            return Error::unauthorized("a bearer token is required")
                .into_response()
                .with_header("WWW-Authenticate", "Bearer")
                .into();
        }
        next.run(request)
    })
}

/// The API's routes on one shard (the integration test mounts them too).
pub fn routes(router: &mut Router, shard: &Rc<ShardCtx>, token: &str) {
    let store = Rc::new(Store::default());
    shard.insert_local(store.clone());
    router.state(App {
        store,
        shard: shard.clone(),
    });
    router.get("/items", list);
    router.get("/items/:id", show);
    let token: Rc<str> = token.into();
    router.group("", |writes| {
        writes.post(
            "/items",
            |State(app): State<App>, Json(new): Json<NewItem>| create(app, new),
        );
        writes.put(
            "/items/:id",
            |State(app): State<App>, Path(id): Path<u64>, Json(new): Json<NewItem>| {
                replace(app, id, new)
            },
        );
        writes.delete(
            "/items/:id",
            |State(app): State<App>, Path(id): Path<u64>| remove(app, id),
        );
        writes.layer(require_token(token));
    });
    router.layer(Compression::new());
    router.layer(RequestId::new());
}

/// `--port P --shards N --token T`.
#[derive(Parser)]
struct Args {
    /// Port to listen on.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Shards (threads); 0 for one per CPU.
    #[arg(long, default_value_t = 0)]
    shards: usize,
    /// The bearer token the writing routes require.
    #[arg(long, default_value = "secret")]
    token: String,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut config = Config::default();
    config.server.port = args.port;
    config.server.shards = args.shards;
    let token = args.token;
    let server = Server::new(config)
        .routes(move |router: &mut Router, shard: &Rc<ShardCtx>| routes(router, shard, &token))
        .start()?;
    println!("listening on {}", server.local_addr());
    server.join()
}
