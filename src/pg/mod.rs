//! A PostgreSQL client that lives on a shard (cargo feature `pg`).
//!
//! Each shard opens its own connections (`postgres.connections_per_shard`, 1 by
//! default) on its own glommio executor: no tokio runtime, no extra thread, no lock.
//! The driver is [`tokio_postgres`] with its runtime feature off, over a TCP or Unix
//! socket registered with the shard's own epoll set, as client connections are: an idle
//! database socket costs no glommio poll arm, and its answers wake the shard together
//! with its client sockets. The statements given to [`Pg::start`] are prepared once per connection
//! and named by their index afterwards.
//!
//! Queries that are in flight at the same time on a shard, from one request or many,
//! are pipelined on a connection: each is written as soon as it is issued, without
//! waiting for earlier answers. A request that runs N queries should issue them
//! together (see [`PgConn`]) instead of awaiting each in turn. The queries issued during
//! one turn of the shard's loop leave in one write: the connection's task, woken by the
//! first, runs after the handlers and sends everything queued.
//!
//! A shard has at most `postgres.max_queries_in_flight` queries in flight over all its
//! connections; past that a query fails at once with [`PgError::Busy`] (503) instead of
//! queueing without bound.
//!
//! Faults never crash a shard: every connection has a background task that connects,
//! prepares, drives the connection and, when it drops (the database restarted, the
//! network broke), reconnects with backoff (20 ms doubling to 1 s). While no connection
//! is up a query fails at once with [`PgError::Unavailable`] (503); a query slower than
//! `postgres.query_timeout` fails with [`PgError::Timeout`] (504), and the database
//! aborts it too (`statement_timeout`), so a runaway statement does not hold the
//! connection. A connection that stays silent after a query was given up on (a dead
//! peer that never resets the socket) is probed with an empty query and replaced.
//! When the shard stops, its connections close.
//!
//! ```rust,ignore
//! use haywire::pg::{Pg, PgError};
//!
//! const WORLD: usize = 0;
//! static STATEMENTS: &[&str] = &["SELECT id, randomnumber FROM world WHERE id = $1"];
//!
//! Server::new(config.clone()).routes(move |router, ctx| {
//!     let pg = Pg::start(ctx, &config.postgres, STATEMENTS).expect("[postgres] is set");
//!     router.get("/db", move |_: Request| {
//!         let pg = pg.clone();
//!         async move {
//!             match pg.query_one(WORLD, &[&42i32]).await {
//!                 Ok(row) => Response::text(format!("{}", row.get::<_, i32>(1))),
//!                 Err(e) => e.response(),
//!             }
//!         }
//!     });
//! });
//! ```

mod error;
mod io;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::timer::sleep;
use haywire_shards::ShardCtx;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, NoTls, Statement};

pub use error::PgError;
pub use tokio_postgres;
pub use tokio_postgres::types::ToSql;
pub use tokio_postgres::Row;

use crate::config::PostgresConfig;
use crate::net::Poller;
use crate::stats::ShardStats;
use io::PgStream;

/// First wait before reconnecting; doubled after every failed attempt.
const MIN_BACKOFF: Duration = Duration::from_millis(20);
/// Longest wait between attempts: how late service can resume after the database is back.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Query parameters, as tokio-postgres takes them.
pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// One shard's database client: its connections and the statements prepared on them.
/// Found by handlers through `ctx.local::<Pg>()`; cheap to use from many requests at
/// once (queries pipeline).
pub struct Pg {
    slots: Vec<Rc<Slot>>,
    next: Cell<usize>,
    query_timeout: Duration,
    in_flight: Rc<InFlight>,
}

/// The shard's queries in flight, over all its connections, and their bound.
struct InFlight {
    now: Cell<usize>,
    max: usize,
    /// Where admitted queries are counted (`/stats` `database.queries`).
    stats: Rc<ShardStats>,
}

impl InFlight {
    /// A place for one more query, or [`PgError::Busy`] when the shard has none left.
    fn admit(self: &Rc<Self>) -> Result<Admitted, PgError> {
        let now = self.now.get();
        if now >= self.max {
            return Err(PgError::Busy);
        }
        self.now.set(now + 1);
        self.stats.db_query();
        Ok(Admitted(self.clone()))
    }
}

/// One query's place in [`InFlight`], given back when the query is answered or dropped.
struct Admitted(Rc<InFlight>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.now.set(self.0.now.get() - 1);
    }
}

/// One connection's place: the live connection, if any, and why not otherwise.
struct Slot {
    conn: RefCell<Option<Rc<PgConn>>>,
    down_reason: RefCell<String>,
    connects: Cell<u64>,
}

/// One live connection with its prepared statements. Hold it for the length of a
/// request to issue several queries on the same connection; they pipeline when they
/// are polled together (`futures_util::future::try_join_all`, `FuturesUnordered`).
pub struct PgConn {
    client: Client,
    statements: Vec<Statement>,
    query_timeout: Duration,
    in_flight: Rc<InFlight>,
    /// When a query was first given up on (timed out) since the connection last
    /// answered: its answer is still owed, and a connection that owes one and stays
    /// silent is stalled (see `STALLED_AFTER`).
    gave_up_since: Cell<Option<Instant>>,
}

/// How many query timeouts a liveness probe may wait, once a query was given up on,
/// before the connection is dropped and reconnected. The server aborts a statement at
/// one query timeout (`statement_timeout`), so only a dead peer (a host gone without a
/// reset, a black-holed network) or a statement_timeout turned off stays silent that
/// long.
const STALLED_AFTER: u32 = 2;

/// What a connection task needs to (re)connect.
struct Target {
    config: tokio_postgres::Config,
    address: Address,
    statements: Vec<String>,
    connect_timeout: Duration,
}

enum Address {
    Tcp(String),
    Unix(PathBuf),
}

impl Pg {
    /// Starts this shard's client: one background task per connection connects,
    /// prepares `statements` and keeps the connection up. Returns at once (queries
    /// answer [`PgError::Unavailable`] until a connection is up; see [`Pg::wait_ready`])
    /// and registers the client as a shard local, so `ctx.local::<Pg>()` finds it.
    ///
    /// Must run on the shard, e.g. in a `Server::routes` factory. Fails only when the
    /// configuration cannot be used: nothing configured, a bad URL, no host.
    pub fn start(
        ctx: &Rc<ShardCtx>,
        config: &PostgresConfig,
        statements: &[&str],
    ) -> Result<Rc<Pg>, PgError> {
        let target = Rc::new(Target::from_config(config, statements)?);
        let slots: Vec<Rc<Slot>> = (0..config.connections_per_shard.max(1))
            .map(|_| {
                Rc::new(Slot {
                    conn: RefCell::new(None),
                    down_reason: RefCell::new("not connected yet".to_owned()),
                    connects: Cell::new(0),
                })
            })
            .collect();
        let query_timeout = Duration::from_secs_f64(config.query_timeout);
        let poller = shard_poller(ctx)?;
        let in_flight = Rc::new(InFlight {
            now: Cell::new(0),
            max: config.max_queries_in_flight.max(1),
            stats: poller.stats.clone(),
        });
        for slot in &slots {
            let task = maintain(
                Rc::downgrade(slot),
                target.clone(),
                Link {
                    query_timeout,
                    in_flight: in_flight.clone(),
                    poller: poller.clone(),
                },
            );
            let ctx = ctx.clone();
            glommio::spawn_local(async move {
                // Ends with the shard: the stop event drops the connection (and its socket).
                future::or(task, async move { ctx.stop_event().wait().await }).await
            })
            .detach();
        }
        let pg = Rc::new(Pg {
            slots,
            next: Cell::new(0),
            query_timeout,
            in_flight,
        });
        ctx.insert_local(pg.clone());
        Ok(pg)
    }

    /// A live connection, taking the connections in turn and skipping those that are
    /// down; [`PgError::Unavailable`] at once when none is up.
    pub fn conn(&self) -> Result<Rc<PgConn>, PgError> {
        let n = self.slots.len();
        let start = self.next.get();
        self.next.set((start + 1) % n);
        for i in 0..n {
            let slot = &self.slots[(start + i) % n];
            if let Some(conn) = slot.conn.borrow().as_ref() {
                if !conn.client.is_closed() {
                    return Ok(conn.clone());
                }
            }
        }
        let why = self.slots[start % n].down_reason.borrow().clone();
        Err(PgError::Unavailable(why))
    }

    /// Runs `work` under `postgres.query_timeout`: [`PgError::Timeout`] when it is late.
    /// One timer for a whole request's queries.
    pub async fn timed<T>(
        &self,
        work: impl Future<Output = Result<T, PgError>>,
    ) -> Result<T, PgError> {
        with_timeout(self.query_timeout, work).await
    }

    /// Runs prepared statement `statement` expecting exactly one row.
    pub async fn query_one(&self, statement: usize, params: Params<'_>) -> Result<Row, PgError> {
        let conn = self.conn()?;
        self.timed(conn.query_one(statement, params)).await
    }

    /// Runs prepared statement `statement` and returns its rows.
    pub async fn query(&self, statement: usize, params: Params<'_>) -> Result<Vec<Row>, PgError> {
        let conn = self.conn()?;
        self.timed(conn.query(statement, params)).await
    }

    /// Runs prepared statement `statement` and returns how many rows it changed.
    pub async fn execute(&self, statement: usize, params: Params<'_>) -> Result<u64, PgError> {
        let conn = self.conn()?;
        self.timed(conn.execute(statement, params)).await
    }

    /// How many of this shard's connections are up now.
    pub fn connected(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| {
                s.conn
                    .borrow()
                    .as_ref()
                    .is_some_and(|c| !c.client.is_closed())
            })
            .count()
    }

    /// Queries in flight now on this shard, over all its connections.
    pub fn in_flight(&self) -> usize {
        self.in_flight.now.get()
    }

    /// Successful connects so far, over all of this shard's connections (reconnects
    /// included).
    pub fn connects(&self) -> u64 {
        self.slots.iter().map(|s| s.connects.get()).sum()
    }

    /// Waits until at least one connection is up, or `within` passes
    /// ([`PgError::Unavailable`] with the last reason). For work that needs the database
    /// at shard start, such as filling a cache.
    pub async fn wait_ready(&self, within: Duration) -> Result<(), PgError> {
        let deadline = std::time::Instant::now() + within;
        loop {
            match self.conn() {
                Ok(_) => return Ok(()),
                Err(e) if std::time::Instant::now() >= deadline => return Err(e),
                Err(_) => sleep(Duration::from_millis(10)).await,
            }
        }
    }
}

impl PgConn {
    /// The tokio-postgres client, for what the methods here do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Prepared statement `index` (its position in the texts given to [`Pg::start`]).
    /// Panics if there is no such statement.
    pub fn statement(&self, index: usize) -> &Statement {
        &self.statements[index]
    }

    /// Runs statement `statement` expecting exactly one row. No timeout of its own:
    /// wrap a request's queries in [`Pg::timed`].
    pub async fn query_one(&self, statement: usize, params: Params<'_>) -> Result<Row, PgError> {
        let stmt = self.statement(statement);
        let _admitted = self.in_flight.admit()?;
        let mut pending = Pending(self, false);
        let result = self.client.query_one(stmt, params).await;
        pending.1 = true;
        self.answered(result)
    }

    /// Runs statement `statement` and returns its rows.
    pub async fn query(&self, statement: usize, params: Params<'_>) -> Result<Vec<Row>, PgError> {
        let stmt = self.statement(statement);
        let _admitted = self.in_flight.admit()?;
        let mut pending = Pending(self, false);
        let result = self.client.query(stmt, params).await;
        pending.1 = true;
        self.answered(result)
    }

    /// Runs statement `statement` and returns how many rows it changed.
    pub async fn execute(&self, statement: usize, params: Params<'_>) -> Result<u64, PgError> {
        let stmt = self.statement(statement);
        let _admitted = self.in_flight.admit()?;
        let mut pending = Pending(self, false);
        let result = self.client.execute(stmt, params).await;
        pending.1 = true;
        self.answered(result)
    }

    /// Notes that the connection answered (it is alive); maps a driver error.
    fn answered<T>(&self, result: Result<T, tokio_postgres::Error>) -> Result<T, PgError> {
        self.gave_up_since.set(None);
        result.map_err(|e| self.error(e))
    }

    /// A query was given up on at least a query timeout ago and nothing has been
    /// answered since.
    fn owes_answer(&self) -> bool {
        self.gave_up_since
            .get()
            .is_some_and(|t| t.elapsed() >= self.query_timeout)
    }

    fn error(&self, e: tokio_postgres::Error) -> PgError {
        match PgError::from(e) {
            // The server's statement_timeout: report the configured limit.
            PgError::Timeout(_) => PgError::Timeout(self.query_timeout),
            other => other,
        }
    }
}

/// A query in flight on a [`PgConn`]; `.1` is set once it is answered. Dropped
/// unanswered (its request timed out), it leaves the connection owing an answer.
struct Pending<'a>(&'a PgConn, bool);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.1 && self.0.gave_up_since.get().is_none() {
            self.0.gave_up_since.set(Some(Instant::now()));
        }
    }
}

/// `work`, or [`PgError::Timeout`] after `limit`.
async fn with_timeout<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, PgError>>,
) -> Result<T, PgError> {
    future::or(work, async move {
        sleep(limit).await;
        Err(PgError::Timeout(limit))
    })
    .await
}

impl Target {
    fn from_config(config: &PostgresConfig, statements: &[&str]) -> Result<Target, PgError> {
        if !config.is_configured() {
            return Err(PgError::Config(
                "no database: set postgres.url or postgres.host".to_owned(),
            ));
        }
        let mut pg = if config.url.is_empty() {
            let mut pg = tokio_postgres::Config::new();
            pg.host(&config.host).port(config.port).user(&config.user);
            if !config.dbname.is_empty() {
                pg.dbname(&config.dbname);
            }
            if !config.password.is_empty() {
                pg.password(&config.password);
            }
            pg
        } else {
            config
                .url
                .parse::<tokio_postgres::Config>()
                .map_err(|e| PgError::Config(format!("postgres.url: {e}")))?
        };
        if pg.get_application_name().is_none() {
            pg.application_name("haywire");
        }
        // The server aborts a statement the client has given up on, so it does not keep
        // the connection (and every query pipelined behind it) busy.
        let query_ms = (config.query_timeout * 1000.0).ceil().max(1.0) as u64;
        let options = pg.get_options().unwrap_or_default();
        if !options.contains("statement_timeout") {
            let options = format!("{options} -c statement_timeout={query_ms}");
            pg.options(options.trim_start());
        }
        let port = pg.get_ports().first().copied().unwrap_or(5432);
        let address = match pg.get_hosts().first() {
            Some(Host::Tcp(host)) if host.contains(':') => Address::Tcp(format!("[{host}]:{port}")),
            Some(Host::Tcp(host)) => Address::Tcp(format!("{host}:{port}")),
            Some(Host::Unix(dir)) => Address::Unix(dir.join(format!(".s.PGSQL.{port}"))),
            None => return Err(PgError::Config("no host in postgres.url".to_owned())),
        };
        Ok(Target {
            config: pg,
            address,
            statements: statements.iter().map(|s| (*s).to_owned()).collect(),
            connect_timeout: Duration::from_secs_f64(config.connect_timeout),
        })
    }

    /// Opens the socket on the shard's poller and logs in.
    async fn connect(
        &self,
        poller: &Rc<Poller>,
    ) -> Result<
        (
            Client,
            tokio_postgres::Connection<PgStream, tokio_postgres::tls::NoTlsStream>,
        ),
        PgError,
    > {
        let socket = match &self.address {
            Address::Tcp(addr) => PgStream::tcp(addr, poller)
                .await
                .map_err(|e| PgError::Unavailable(format!("connect {addr}: {e}")))?,
            Address::Unix(path) => PgStream::unix(path, poller)
                .await
                .map_err(|e| PgError::Unavailable(format!("connect {}: {e}", path.display())))?,
        };
        self.config
            .connect_raw(socket, NoTls)
            .await
            .map_err(|e| PgError::Unavailable(format!("login: {e}")))
    }
}

/// What a connection shares with its shard: the query timeout, the in-flight bound and
/// the poller its socket is registered with.
struct Link {
    query_timeout: Duration,
    in_flight: Rc<InFlight>,
    poller: Rc<Poller>,
}

/// The shard's poller, found as a shard local (a Haywire server's shards have one). On a
/// bare shard (no server) one is started and registered for the other clients.
fn shard_poller(ctx: &Rc<ShardCtx>) -> Result<Rc<Poller>, PgError> {
    if let Some(poller) = ctx.local::<Poller>() {
        return Ok(poller);
    }
    let stats = ctx.local::<ShardStats>().unwrap_or_default();
    let poller = Rc::new(
        Poller::new(stats)
            .map_err(|e| PgError::Config(format!("cannot create an epoll set: {e}")))?,
    );
    glommio::spawn_local(poller.clone().run()).detach();
    ctx.insert_local(poller.clone());
    Ok(poller)
}

/// One connection's life, forever: connect, prepare, publish, drive until it drops,
/// then reconnect with backoff. Ends when the slot is gone.
async fn maintain(slot: Weak<Slot>, target: Rc<Target>, link: Link) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let Some(live) = slot.upgrade() else { return };
        drop(live);
        let reason = match connection(&slot, &target, &link).await {
            // It was up: reconnect at once the first time.
            Ok(reason) => {
                backoff = MIN_BACKOFF;
                reason
            }
            Err(e) => reason(e),
        };
        let Some(live) = slot.upgrade() else { return };
        live.conn.borrow_mut().take();
        // The detail goes to the log, once per new reason (clients get a generic 503).
        if *live.down_reason.borrow() != reason {
            tracing::warn!(target: "haywire::pg", "database connection down: {reason}");
            *live.down_reason.borrow_mut() = reason;
        }
        drop(live);
        sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Connects and serves one connection until it ends. `Ok(reason)` when it was up and
/// then dropped; `Err` when it never came up.
async fn connection(slot: &Weak<Slot>, target: &Target, link: &Link) -> Result<String, PgError> {
    let query_timeout = link.query_timeout;
    let (client, driver) =
        with_timeout(target.connect_timeout, target.connect(&link.poller)).await?;
    let up = Cell::new(false);
    // The driver reads and writes the socket; the other branch prepares and then
    // publishes the connection. Whichever ends first ends the connection: a driver
    // error (socket closed, server gone) or a failed prepare.
    let serve = async {
        let texts = &target.statements;
        let prepared = with_timeout(target.connect_timeout, async {
            futures_util::future::try_join_all(texts.iter().map(|t| client.prepare(t)))
                .await
                .map_err(|e| match PgError::from(e) {
                    PgError::Query(e) => PgError::Unavailable(format!("prepare: {e}")),
                    other => other,
                })
        });
        let statements = prepared.await?;
        let conn = Rc::new(PgConn {
            client,
            statements,
            query_timeout,
            in_flight: link.in_flight.clone(),
            gave_up_since: Cell::new(None),
        });
        let Some(live) = slot.upgrade() else {
            return Ok(());
        };
        *live.conn.borrow_mut() = Some(conn.clone());
        live.connects.set(live.connects.get() + 1);
        // The next drop is news for the log, whatever its reason.
        live.down_reason.borrow_mut().clear();
        up.set(true);
        drop(live);
        // A dead peer that never resets the socket would leave the driver waiting
        // forever and every query timing out. After a query was given up on, an empty
        // query asks whether the connection still answers: it queues behind whatever
        // is stuck, so silence means stalled, and the connection is replaced.
        loop {
            sleep(query_timeout).await;
            if !conn.owes_answer() {
                continue;
            }
            let probe = async { conn.client.check_connection().await.map_err(PgError::from) };
            match with_timeout(query_timeout * STALLED_AFTER, probe).await {
                Ok(()) => conn.gave_up_since.set(None),
                Err(PgError::Timeout(_)) => {
                    return Err(PgError::Unavailable(format!(
                        "no answer for {:.1} s: reconnecting",
                        (query_timeout * (STALLED_AFTER + 1)).as_secs_f64()
                    )))
                }
                Err(e) => return Err(e),
            }
        }
    };
    let ended = future::or(async { driver.await.map_err(PgError::from) }, serve).await;
    match (up.get(), ended) {
        (true, Ok(())) => Ok("connection closed".to_owned()),
        (true, Err(e)) => Ok(reason(e)),
        (false, Ok(())) => Err(PgError::Unavailable(
            "connection closed during setup".to_owned(),
        )),
        (false, Err(e)) => Err(e),
    }
}

/// Why a connection is down, without the "database unavailable" its error adds later.
fn reason(e: PgError) -> String {
    match e {
        PgError::Unavailable(why) => why,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(edit: impl FnOnce(&mut PostgresConfig)) -> Result<Target, PgError> {
        let mut config = PostgresConfig::default();
        edit(&mut config);
        Target::from_config(&config, &["SELECT 1"])
    }

    #[test]
    fn a_url_names_the_server_and_gets_the_defaults_added() {
        let t = target(|c| {
            c.url = "postgres://u:p@10.1.2.3:6543/db".into();
            c.query_timeout = 0.25;
        })
        .unwrap();
        assert!(matches!(&t.address, Address::Tcp(a) if a == "10.1.2.3:6543"));
        assert_eq!(t.config.get_application_name(), Some("haywire"));
        assert_eq!(t.config.get_options(), Some("-c statement_timeout=250"));
        assert_eq!(t.config.get_dbname(), Some("db"));
        assert_eq!(t.statements, ["SELECT 1"]);
    }

    #[test]
    fn the_users_own_settings_win() {
        let t = target(|c| {
            c.url = "postgres://u@[::1]/db?application_name=app&options=-c%20statement_timeout%3D0"
                .into();
        })
        .unwrap();
        assert!(matches!(&t.address, Address::Tcp(a) if a == "[::1]:5432"));
        assert_eq!(t.config.get_application_name(), Some("app"));
        assert_eq!(t.config.get_options(), Some("-c statement_timeout=0"));
    }

    #[test]
    fn a_host_starting_with_a_slash_is_a_socket_directory() {
        let t = target(|c| {
            c.host = "/var/run/postgresql".into();
            c.port = 5433;
            c.user = "u".into();
        })
        .unwrap();
        assert!(matches!(
            &t.address,
            Address::Unix(p) if p == std::path::Path::new("/var/run/postgresql/.s.PGSQL.5433")
        ));
        assert_eq!(t.config.get_user(), Some("u"));
        assert_eq!(t.config.get_password(), None);
    }

    #[test]
    fn nothing_configured_or_a_bad_url_is_a_config_error() {
        assert!(matches!(target(|_| {}), Err(PgError::Config(_))));
        assert!(matches!(
            target(|c| c.url = "postgres://u@h:notaport/db".into()),
            Err(PgError::Config(_))
        ));
    }
}
