//! One shard's state: what its connections share, how it is built on the shard's
//! executor (routes, poller, clocks, pool) and how it drains at a graceful stop.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use haywire_shards::ShardCtx;

use crate::access_log::AccessLog;
use crate::config::{Config, Settings};
use crate::http::date::{DateCache, DATE_LEN};
use crate::http::response::{ServerHeaders, Stamp};
use crate::http::HeaderText;
use crate::inflight::Queues;
use crate::net::{Poller, ShardTls};
use crate::pool::BufferPool;
use crate::router::Router;
use crate::stats::ShardStats;
use crate::stock;
use crate::watchdog::Watchdog;

/// Idle buffers a shard keeps for reuse, in initial-size buffers' worth of bytes.
const POOLED_BUFFERS: usize = 1024;
/// Bytes of idle in-flight queues a shard keeps: about 300 of a few slots, or 9 grown
/// to a full pipeline.
const POOLED_QUEUES: usize = 256 * 1024;
/// How long into a graceful stop a connection waiting between requests may still send
/// one (answered with `Connection: close`) before it is closed. Closing an idle
/// keep-alive connection at once races a client (a balancer) that is sending its next
/// request on it just then: that request would be lost.
const IDLE_LINGER: Duration = Duration::from_millis(500);

/// How long the connections still busy when the grace is over have to close, their
/// deadlines expired every 10 ms (a 503 they are writing to a reading client is out
/// within a few).
const FORCED_CLOSE: Duration = Duration::from_millis(200);

/// Bytes one read may take from a socket.
const READ_SCRATCH: usize = 64 * 1024;

/// Builds each shard's routes: called once on every shard, with that shard's context.
pub(crate) type RouteFactory = Arc<dyn Fn(&mut Router, &Rc<ShardCtx>) + Send + Sync>;

/// Everything one shard's connections share. Lives on that shard only.
pub(crate) struct Shard {
    pub(crate) id: usize,
    pub(crate) router: Router,
    pub(crate) date: Rc<DateCache>,
    /// `server.server_header` and `server.headers`, for every response head.
    pub(crate) server_headers: Rc<ServerHeaders>,
    pub(crate) stats: Rc<ShardStats>,
    pub(crate) pool: BufferPool,
    /// Emptied in-flight queues, so an idle connection holds none.
    pub(crate) queues: Queues,
    /// Live settings; a reload replaces them.
    pub(crate) settings: Cell<Settings>,
    pub(crate) watchdog: Rc<Watchdog>,
    /// TCP_NODELAY as set on the listeners, which accepted sockets inherit.
    pub(crate) listener_nodelay: bool,
    /// The listener is a Unix socket: no TCP options on it or its connections.
    pub(crate) unix: bool,
    /// Readiness for every socket of the shard.
    pub(crate) poller: Rc<Poller>,
    /// Set when a graceful shutdown begins: no new requests are read. Shared with the
    /// readiness route.
    pub(crate) draining: Rc<Cell<bool>>,
    /// Set `IDLE_LINGER` into a graceful shutdown: connections waiting between requests
    /// close from then on (until then each may send one more request).
    pub(crate) closing_idle: Cell<bool>,
    /// Every read lands here first (see `conn::poll_fill`); zeroed once.
    pub(crate) scratch: RefCell<Vec<u8>>,
    /// The TLS config new connections use (none: plaintext); a reload replaces it.
    pub(crate) tls: ShardTls,
    /// This shard's access log buffer; a reload reopens it.
    pub(crate) access_log: Rc<AccessLog>,
    /// Refused connections still answering `503` (bounded by `balancer::MAX_REFUSING`).
    pub(crate) refusing: Cell<usize>,
}

impl Shard {
    /// What this shard writes into every response head, with `date` from its cache.
    pub(crate) fn stamp<'a>(&'a self, date: &'a [u8; DATE_LEN]) -> Stamp<'a> {
        Stamp {
            date,
            headers: &self.server_headers,
        }
    }

    /// Builds the shard's state on its executor: the poller, the clocks, the buffer
    /// pool, and the router from the config's stock routes and the user's factories.
    /// `unix`: the server listens on a Unix socket.
    pub(crate) fn start(
        ctx: &Rc<ShardCtx>,
        config: &Config,
        routes: &[RouteFactory],
        unix: bool,
    ) -> Rc<Shard> {
        let stats = Rc::new(ShardStats::default());
        ctx.insert_local(stats.clone());
        // Failing here means the kernel is out of descriptors or memory at start-up: the
        // shard cannot serve at all, so it fails loudly (`join` reports it).
        let poller =
            Rc::new(Poller::new(stats.clone()).expect("cannot create the shard's epoll set"));
        glommio::spawn_local(poller.clone().run()).detach();
        // Found by other clients on the shard (the `pg` feature's database sockets).
        ctx.insert_local(poller.clone());
        let date = Rc::new(DateCache::default());
        glommio::spawn_local(refresh_date(date.clone())).detach();
        let watchdog = Rc::new(Watchdog::default());
        glommio::spawn_local(watchdog.clone().run()).detach();
        let access_log = Rc::new(AccessLog::new(ctx.id(), &config.log, stats.clone()));
        glommio::spawn_local(access_log.clone().run()).detach();

        let draining = Rc::new(Cell::new(false));
        ctx.insert_local(Rc::new(stock::health::Draining(draining.clone())));
        let mut router = Router::new();
        stock::mount(&config.routes, &mut router, ctx, &draining);
        stock::wrap(&config.compression, &config.cors, &mut router);
        for factory in routes {
            factory(&mut router, ctx);
        }
        let shard = Rc::new(Shard {
            id: ctx.id(),
            router,
            date,
            server_headers: Rc::new(ServerHeaders::new(
                &config.server.server_header,
                config.server.headers.iter().map(|(name, value)| {
                    (
                        HeaderText::from(name.clone()),
                        HeaderText::from(value.clone()),
                    )
                }),
            )),
            stats,
            pool: BufferPool::new(
                config.limits.read_buffer,
                POOLED_BUFFERS * config.limits.read_buffer,
            ),
            queues: Queues::new(POOLED_QUEUES),
            settings: Cell::new(config.settings()),
            listener_nodelay: config.server.tcp_nodelay,
            unix,
            watchdog,
            poller,
            draining,
            closing_idle: Cell::new(false),
            scratch: RefCell::new(vec![0; READ_SCRATCH]),
            tls: ShardTls::default(),
            access_log,
            refusing: Cell::new(0),
        });
        ctx.insert_local(shard.clone());
        shard
    }

    /// Graceful stop: every response from now on carries `Connection: close`; a
    /// connection waiting between requests (or for its first) may still send one for
    /// `IDLE_LINGER`, then idle ones close; busy ones close once their in-flight
    /// responses are out. `accepting(linger_end)` runs alongside (the listener, still
    /// accepting until `linger_end`, see `balancer::listen`), so the drain lasts at
    /// least until then, also on a shard that does not listen (a handoff may still bring
    /// it connections). Returns when the last connection is done, or the grace has
    /// passed and the busy ones are closed, after writing the access log lines still
    /// buffered.
    pub(crate) async fn drain<F: Future<Output = ()>>(&self, accepting: impl FnOnce(Instant) -> F) {
        self.draining.set(true);
        self.watchdog.wake_all();
        let start = Instant::now();
        let grace = self.settings.get().shutdown_grace;
        let linger_end = start + IDLE_LINGER.min(grace);
        let waiting = async {
            while (self.stats.active() > 0 || Instant::now() < linger_end)
                && start.elapsed() < grace
            {
                if !self.closing_idle.get() && Instant::now() >= linger_end {
                    self.closing_idle.set(true);
                    self.watchdog.wake_all();
                }
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        };
        futures_lite::future::zip(accepting(linger_end), waiting).await;
        // The grace is over: the connections still busy give up (a response still
        // waiting for its handler is answered 503) and close, rather than outlive the
        // shard: its executor ends without dropping them, so their sockets would stay
        // open until the process exits.
        let closing = Instant::now();
        while self.stats.active() > 0 && closing.elapsed() < FORCED_CLOSE {
            self.watchdog.expire_all();
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        self.access_log.finish().await;
    }
}

async fn refresh_date(date: Rc<DateCache>) {
    loop {
        glommio::timer::sleep(DateCache::until_next_second(SystemTime::now())).await;
        date.refresh(SystemTime::now());
    }
}
