//! A PostgreSQL client that lives on a shard (cargo feature `pg`).
//!
//! Each shard opens its own connections (`postgres.connections_per_shard`, 1 by
//! default) on its own glommio executor: no tokio runtime, no extra thread, no lock.
//! It speaks the wire protocol itself (`postgres-protocol`'s message encoders and auth
//! helpers; values through `postgres-types`' [`ToSql`] and [`FromSql`]), over a TCP or
//! Unix socket registered with the shard's own epoll set, as client connections are: an
//! idle database socket costs no glommio poll arm, and its answers wake the shard
//! together with its client sockets. The statements given to [`Pg::start`] are prepared
//! once per connection and named by their index afterwards. A query is encoded straight
//! into the connection's write buffer and its rows are slices of the read buffer
//! ([`Row`]): nothing is allocated per query but the rows' vector of [`PgConn::query`].
//!
//! Queries that are in flight at the same time on a shard, from one request or many,
//! are pipelined on a connection: each is written as soon as it is issued, without
//! waiting for earlier answers. A request that runs N queries should take one
//! connection ([`Pg::conn`]) and issue all N before awaiting any: [`PgConn`]'s methods
//! send when called, so awaiting the N futures in turn is one round trip, not N. The queries issued during
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
//!                 Ok(row) => Response::text(format!("{}", row.get::<i32>(1))),
//!                 Err(e) => e.response(),
//!             }
//!         }
//!     });
//! });
//! ```

mod error;
mod io;
mod login;
mod row;
mod settings;
mod wire;

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::timer::sleep;
use haywire_shards::ShardCtx;

pub use error::{DbError, PgError};
pub use postgres_types::{FromSql, ToSql, Type};
pub use row::Row;

use crate::config::PostgresConfig;
use crate::net::Poller;
use crate::stats::ShardStats;
use login::Login;
use settings::Settings;
use wire::{Answer, Kind, Wire};

/// First wait before reconnecting; doubled after every failed attempt.
const MIN_BACKOFF: Duration = Duration::from_millis(20);
/// Longest wait between attempts: how late service can resume after the database is back.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Query parameters: `&[&value, ...]`, each a [`ToSql`] of its parameter's type.
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
/// request to issue several queries on the same connection: each is sent when it is
/// issued, so they pipeline whether they are then awaited in turn or joined.
pub struct PgConn {
    wire: Wire,
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
    login: Login,
    statements: Vec<String>,
    connect_timeout: Duration,
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
                if !conn.wire.is_closed() {
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
                    .is_some_and(|c| !c.wire.is_closed())
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
    /// The server process serving this connection (what `pg_backend_pid()` says on it).
    pub fn backend_pid(&self) -> i32 {
        self.wire.backend_pid()
    }

    /// Runs statement `statement` expecting exactly one row. No timeout of its own:
    /// wrap a request's queries in [`Pg::timed`].
    ///
    /// The query is sent when this is called, not when the future is first polled (it
    /// borrows `params` only for the call): a request's queries issued one after another
    /// are all in flight at once, and awaiting them in order then costs one poll per
    /// answer, where a join polls every query each time one answers.
    pub fn query_one<'c>(
        &'c self,
        statement: usize,
        params: Params<'_>,
    ) -> impl Future<Output = Result<Row, PgError>> + 'c {
        let sent = self.send(Kind::One, statement, params);
        async move {
            match sent?.answer().await? {
                Answer::One(row) => Ok(row),
                _ => unreachable!("a one-row query answers with one row"),
            }
        }
    }

    /// Runs statement `statement` and returns its rows. Sent when called, as
    /// [`PgConn::query_one`].
    pub fn query<'c>(
        &'c self,
        statement: usize,
        params: Params<'_>,
    ) -> impl Future<Output = Result<Vec<Row>, PgError>> + 'c {
        let sent = self.send(Kind::Many, statement, params);
        async move {
            match sent?.answer().await? {
                Answer::Many(rows) => Ok(rows),
                _ => unreachable!("a query answers with rows"),
            }
        }
    }

    /// Runs statement `statement` and returns how many rows it changed. Sent when
    /// called, as [`PgConn::query_one`].
    pub fn execute<'c>(
        &'c self,
        statement: usize,
        params: Params<'_>,
    ) -> impl Future<Output = Result<u64, PgError>> + 'c {
        let sent = self.send(Kind::Count, statement, params);
        async move {
            match sent?.answer().await? {
                Answer::Count(n) => Ok(n),
                _ => unreachable!("a command answers with a count"),
            }
        }
    }

    /// Admits and sends one query.
    fn send(
        &self,
        kind: Kind,
        statement: usize,
        params: Params<'_>,
    ) -> Result<Ticket<'_>, PgError> {
        let admitted = self.in_flight.admit()?;
        let id = self.wire.send(kind, statement, params)?;
        Ok(Ticket {
            conn: self,
            id,
            answered: false,
            _admitted: Some(admitted),
        })
    }

    /// Whether the connection still answers: an empty query, behind whatever is in
    /// flight. Outside the in-flight bound (it is the connection's own).
    async fn probe(&self) -> Result<(), PgError> {
        let id = self.wire.send_probe()?;
        let ticket = Ticket {
            conn: self,
            id,
            answered: false,
            _admitted: None,
        };
        ticket.answer().await.map(drop)
    }

    /// A query was given up on at least a query timeout ago and nothing has been
    /// answered since.
    fn owes_answer(&self) -> bool {
        self.gave_up_since
            .get()
            .is_some_and(|t| t.elapsed() >= self.query_timeout)
    }
}

/// A query sent on a [`PgConn`], holding its place in the in-flight bound. Dropped
/// unanswered (its request timed out or failed early), it gives up its slot and leaves
/// the connection owing an answer.
struct Ticket<'c> {
    conn: &'c PgConn,
    id: usize,
    answered: bool,
    _admitted: Option<Admitted>,
}

impl Ticket<'_> {
    /// The query's answer, once it has come.
    async fn answer(mut self) -> Result<Answer, PgError> {
        let (conn, id) = (self.conn, self.id);
        let result = poll_fn(|cx| conn.wire.poll_answer(id, cx)).await;
        self.answered = true;
        conn.gave_up_since.set(None);
        result.map_err(|e| match e {
            // The server's statement_timeout: report the configured limit.
            PgError::Timeout(_) => PgError::Timeout(conn.query_timeout),
            other => other,
        })
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.conn.wire.abandon(self.id);
            if self.conn.gave_up_since.get().is_none() {
                self.conn.gave_up_since.set(Some(Instant::now()));
            }
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
        let settings = Settings::from_config(config)?;
        let address = settings.address().map_err(|why| {
            let key = if config.url.is_empty() {
                "postgres.host"
            } else {
                "postgres.url"
            };
            PgError::Config(format!("{key}: {why}"))
        })?;
        let mut params = vec![("user", settings.user.clone())];
        if !settings.dbname.is_empty() {
            params.push(("database", settings.dbname.clone()));
        }
        let application_name = match settings.application_name.as_str() {
            "" => "haywire".to_owned(),
            name => name.to_owned(),
        };
        params.push(("application_name", application_name));
        // The server aborts a statement the client has given up on, so it does not keep
        // the connection (and every query pipelined behind it) busy.
        let query_ms = (config.query_timeout * 1000.0).ceil().max(1.0) as u64;
        let mut options = settings.options.clone();
        if !options.contains("statement_timeout") {
            options = format!("{options} -c statement_timeout={query_ms}")
                .trim_start()
                .to_owned();
        }
        params.push(("options", options));
        // Text values (`String`, `&str`) are read as UTF-8.
        params.push(("client_encoding", "UTF8".to_owned()));
        Ok(Target {
            login: Login {
                address,
                user: settings.user,
                password: settings.password,
                params,
            },
            statements: statements.iter().map(|s| (*s).to_owned()).collect(),
            connect_timeout: Duration::from_secs_f64(config.connect_timeout),
        })
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
    let mut session = with_timeout(target.connect_timeout, target.login.open(&link.poller)).await?;
    let statements =
        with_timeout(target.connect_timeout, session.prepare(&target.statements)).await?;
    let conn = Rc::new(PgConn {
        wire: Wire::new(statements, session.backend_pid),
        query_timeout,
        in_flight: link.in_flight.clone(),
        gave_up_since: Cell::new(None),
    });
    let Some(live) = slot.upgrade() else {
        return Ok("the client is gone".to_owned());
    };
    *live.conn.borrow_mut() = Some(conn.clone());
    live.connects.set(live.connects.get() + 1);
    // The next drop is news for the log, whatever its reason.
    live.down_reason.borrow_mut().clear();
    drop(live);
    // A dead peer that never resets the socket would leave the driver waiting forever
    // and every query timing out. After a query was given up on, an empty query asks
    // whether the connection still answers: it queues behind whatever is stuck, so
    // silence means stalled, and the connection is replaced.
    let watch = async {
        loop {
            sleep(query_timeout).await;
            if !conn.owes_answer() {
                continue;
            }
            match with_timeout(query_timeout * STALLED_AFTER, conn.probe()).await {
                Ok(()) => conn.gave_up_since.set(None),
                Err(PgError::Timeout(_)) => {
                    return format!(
                        "no answer for {:.1} s: reconnecting",
                        (query_timeout * (STALLED_AFTER + 1)).as_secs_f64()
                    )
                }
                Err(e) => return reason(e),
            }
        }
    };
    // The driver reads and writes the socket until the connection ends; ending the
    // watch drops the driver, which closes the socket.
    let drive = conn.wire.drive(session.stream, session.input);
    Ok(future::or(drive, watch).await)
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
    use super::settings::Address;
    use super::*;

    fn target(edit: impl FnOnce(&mut PostgresConfig)) -> Result<Target, PgError> {
        let mut config = PostgresConfig::default();
        edit(&mut config);
        Target::from_config(&config, &["SELECT 1"])
    }

    fn param<'a>(t: &'a Target, name: &str) -> Option<&'a str> {
        t.login
            .params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_url_names_the_server_and_gets_the_defaults_added() {
        let t = target(|c| {
            c.url = "postgres://u:p@10.1.2.3:6543/db".into();
            c.query_timeout = 0.25;
        })
        .unwrap();
        assert_eq!(t.login.address, Address::Tcp("10.1.2.3:6543".into()));
        assert_eq!(param(&t, "application_name"), Some("haywire"));
        assert_eq!(param(&t, "options"), Some("-c statement_timeout=250"));
        assert_eq!(param(&t, "database"), Some("db"));
        assert_eq!(param(&t, "user"), Some("u"));
        assert_eq!(param(&t, "client_encoding"), Some("UTF8"));
        assert_eq!(t.login.password, "p");
        assert_eq!(t.statements, ["SELECT 1"]);
    }

    #[test]
    fn the_users_own_settings_win() {
        let t = target(|c| {
            c.url = "postgres://u@[::1]/db?application_name=app&options=-c%20statement_timeout%3D0"
                .into();
        })
        .unwrap();
        assert_eq!(t.login.address, Address::Tcp("[::1]:5432".into()));
        assert_eq!(param(&t, "application_name"), Some("app"));
        assert_eq!(param(&t, "options"), Some("-c statement_timeout=0"));
    }

    #[test]
    fn a_host_starting_with_a_slash_is_a_socket_directory() {
        let t = target(|c| {
            c.host = "/var/run/postgresql".into();
            c.port = 5433;
            c.user = "u".into();
        })
        .unwrap();
        assert_eq!(
            t.login.address,
            Address::Unix("/var/run/postgresql/.s.PGSQL.5433".into())
        );
        assert_eq!(param(&t, "user"), Some("u"));
        assert_eq!(param(&t, "database"), None);
        assert_eq!(t.login.password, "");
    }

    #[test]
    fn a_timeout_fires_while_the_work_keeps_waking() {
        let executor = glommio::LocalExecutorBuilder::default()
            .make()
            .expect("a glommio executor for the test");
        executor.run(async {
            // Work polled every 5 ms (as a request is at each answer), never done: the
            // timer registered at the first poll still ends it.
            let start = Instant::now();
            let busy = async {
                loop {
                    sleep(Duration::from_millis(5)).await;
                }
            };
            let limit = Duration::from_millis(100);
            let result: Result<(), PgError> = with_timeout(limit, busy).await;
            assert!(matches!(result, Err(PgError::Timeout(l)) if l == limit));
            assert!(start.elapsed() >= limit);
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{:?}",
                start.elapsed()
            );
            let quick = with_timeout(Duration::from_secs(5), async { Ok::<_, PgError>(7) }).await;
            assert!(matches!(quick, Ok(7)));
        });
    }

    #[test]
    fn nothing_configured_or_a_bad_url_is_a_config_error() {
        assert!(matches!(target(|_| {}), Err(PgError::Config(_))));
        assert!(matches!(
            target(|c| c.url = "postgres://u@h:notaport/db".into()),
            Err(PgError::Config(_))
        ));
        let Err(PgError::Config(why)) = target(|c| c.url = "postgres://u@/db".into()) else {
            panic!("a URL without a host is a config error");
        };
        assert_eq!(why, "postgres.url: no host");
    }
}
