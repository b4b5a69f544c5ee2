//! `Server`: binds one SO_REUSEPORT listener per shard, launches the shards, and on each
//! builds the routes and runs the accept loop.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use haywire_shards::signals::{self, Signal};
use haywire_shards::{launch, LaunchConfig, Placement, Runtime, ShardCtx};
use socket2::{Domain, Protocol, Socket, Type};

use crate::balancer::{self, Loads};
use crate::config::{Balancer, Config, PlacementKind};
use crate::http::date::DateCache;
use crate::net::{self, Poller};
use crate::pool::BufferPool;
use crate::reload::{Reloader, Settings};
use crate::router::Router;
use crate::stats::ShardStats;
use crate::stock;
use crate::watchdog::Watchdog;

/// Idle buffers a shard keeps for reuse, in initial-size buffers' worth of bytes.
const POOLED_BUFFERS: usize = 1024;

/// Bytes one read may take from a socket.
const READ_SCRATCH: usize = 64 * 1024;

/// Builds each shard's routes: called once on every shard, with that shard's context.
type RouteFactory = Arc<dyn Fn(&mut Router, &Rc<ShardCtx>) + Send + Sync>;

/// Everything one shard's connections share. Lives on that shard only.
pub(crate) struct Shard {
    pub(crate) id: usize,
    pub(crate) router: Router,
    pub(crate) date: Rc<DateCache>,
    pub(crate) stats: Rc<ShardStats>,
    pub(crate) pool: BufferPool,
    /// Live settings; a reload replaces them.
    pub(crate) settings: Cell<Settings>,
    pub(crate) watchdog: Rc<Watchdog>,
    /// Readiness for every socket of the shard.
    pub(crate) poller: Rc<Poller>,
    /// Set when a graceful shutdown begins: no new requests are read.
    pub(crate) draining: Cell<bool>,
    /// Every read lands here first (see `conn::poll_fill`); zeroed once.
    pub(crate) scratch: RefCell<Vec<u8>>,
}

/// A Haywire server: configuration plus the routes every shard builds.
pub struct Server {
    config: Config,
    routes: Vec<RouteFactory>,
}

/// A started server.
pub struct RunningServer {
    addr: SocketAddr,
    runtime: Runtime<()>,
    config: Config,
}

impl Server {
    /// A server for `config`; the config's `[[route]]` stock handlers are mounted first.
    pub fn new(config: Config) -> Server {
        Server {
            config,
            routes: Vec::new(),
        }
    }

    /// Adds routes. `factory` runs once on every shard and registers that shard's
    /// handlers, so handler state built inside it is shard-local (`Rc`, `Cell`).
    pub fn routes<F>(mut self, factory: F) -> Server
    where
        F: Fn(&mut Router, &Rc<ShardCtx>) + Send + Sync + 'static,
    {
        self.routes.push(Arc::new(factory));
        self
    }

    /// The shard layout this server's config asks for.
    pub fn launch_config(&self) -> LaunchConfig {
        let server = &self.config.server;
        let placement = match server.placement {
            PlacementKind::Unbound => Placement::Unbound,
            PlacementKind::Pinned if server.cpus.is_empty() => Placement::Pinned,
            PlacementKind::Pinned => Placement::Cpus(server.cpus.clone()),
        };
        LaunchConfig {
            shards: server.shards,
            placement,
            io_memory: server.io_memory,
            name: "haywire".into(),
            ..LaunchConfig::default()
        }
    }

    /// Binds the listeners and starts every shard; returns once they all run.
    pub fn start(self) -> io::Result<RunningServer> {
        let launch_config = self.launch_config();
        let shards = launch_config.resolve()?.len();
        let ip: IpAddr = self.config.server.address.parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "server.address is not an IP address",
            )
        })?;
        // With handoff only shard 0 listens.
        let listeners = match self.config.server.balancer {
            Balancer::Reuseport => shards,
            Balancer::Handoff => 1,
        };
        let sockets = bind_all(
            SocketAddr::new(ip, self.config.server.port),
            listeners,
            self.config.server.backlog,
        )?;
        let addr = sockets[0]
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("listener has no IP address"))?;
        let sockets = Arc::new(Mutex::new(
            sockets.into_iter().map(Some).collect::<Vec<_>>(),
        ));
        let loads: Loads = (0..shards).map(|_| AtomicUsize::new(0)).collect();
        let running_config = self.config.clone();
        let config = Arc::new(self.config);
        let routes = Arc::new(self.routes);
        let runtime = launch(&launch_config, move |ctx: Rc<ShardCtx>| {
            let socket = sockets
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(ctx.id())
                .and_then(Option::take);
            run_shard(ctx, socket, config, routes, loads)
        })?;
        Ok(RunningServer {
            addr,
            runtime,
            config: running_config,
        })
    }
}

impl RunningServer {
    /// The bound address (with the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.runtime.shards()
    }

    /// The CPU of each shard, `None` where unbound.
    pub fn cpus(&self) -> &[Option<usize>] {
        self.runtime.cpus()
    }

    /// Stops gracefully: every shard closes its listener at once, closes idle
    /// connections, lets in-flight requests finish (their responses carry
    /// `Connection: close`), and ends when its last connection closes or after
    /// `server.shutdown_grace`; `join` then returns.
    pub fn stop(&self) {
        self.runtime.stop();
    }

    /// A reloader that re-reads `path` and applies it to every shard (see
    /// [`Reloader::reload`]); `stop_on_signals` can call it on SIGHUP.
    pub fn reloader(&self, path: impl Into<std::path::PathBuf>) -> Reloader {
        Reloader::new(path.into(), self.config.clone(), self.runtime.controller())
    }

    /// Handles signals from now on: the first SIGINT or SIGTERM stops gracefully
    /// (see [`RunningServer::stop`]), a second exits at once with status 1; SIGHUP calls
    /// `on_reload` on the signal thread.
    pub fn stop_on_signals(&self, mut on_reload: impl FnMut() + Send + 'static) -> io::Result<()> {
        let controller = self.runtime.controller();
        let mut stopping = false;
        signals::watch(move |signal| match signal {
            Signal::Terminate if stopping => std::process::exit(1),
            Signal::Terminate => {
                stopping = true;
                controller.stop();
            }
            Signal::Reload => on_reload(),
        })
    }

    /// Waits until every shard has stopped.
    pub fn join(self) -> io::Result<()> {
        self.runtime
            .join()
            .into_iter()
            .collect::<io::Result<Vec<()>>>()
            .map(drop)
    }
}

/// One SO_REUSEPORT listener per shard, all on the same port: the first binds the
/// configured port (0 picks one), the rest bind the port it got.
fn bind_all(addr: SocketAddr, shards: usize, backlog: u32) -> io::Result<Vec<Socket>> {
    let first = bind_one(addr, backlog)?;
    let port = first
        .local_addr()?
        .as_socket()
        .map_or(addr.port(), |a| a.port());
    let mut sockets = vec![first];
    for _ in 1..shards {
        sockets.push(bind_one(SocketAddr::new(addr.ip(), port), backlog)?);
    }
    Ok(sockets)
}

fn bind_one(addr: SocketAddr, backlog: u32) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")))?;
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

async fn run_shard(
    ctx: Rc<ShardCtx>,
    socket: Option<Socket>,
    config: Arc<Config>,
    routes: Arc<Vec<RouteFactory>>,
    loads: Loads,
) {
    let stats = Rc::new(ShardStats::default());
    ctx.insert_local(stats.clone());
    // Failing here means the kernel is out of descriptors or memory at start-up: the
    // shard cannot serve at all, so it fails loudly (`join` reports it).
    let poller = Rc::new(Poller::new(stats.clone()).expect("cannot create the shard's epoll set"));
    glommio::spawn_local(poller.clone().run()).detach();
    let listener = socket.map(|socket| {
        net::Socket::register(socket.into(), &poller).expect("cannot register the listener")
    });
    let date = Rc::new(DateCache::default());
    glommio::spawn_local(refresh_date(date.clone())).detach();

    let watchdog = Rc::new(Watchdog::default());
    glommio::spawn_local(watchdog.clone().run()).detach();

    let mut router = Router::new();
    stock::mount(&config.routes, &mut router, &ctx);
    for factory in routes.iter() {
        factory(&mut router, &ctx);
    }
    let shard = Rc::new(Shard {
        id: ctx.id(),
        router,
        date,
        stats,
        pool: BufferPool::new(
            config.limits.read_buffer,
            POOLED_BUFFERS * config.limits.read_buffer,
        ),
        settings: Cell::new(Settings::of(&config)),
        watchdog,
        poller,
        draining: Cell::new(false),
        scratch: RefCell::new(vec![0; READ_SCRATCH]),
    });
    ctx.insert_local(shard.clone());
    // Returns when the shard is asked to stop; dropping the listener then refuses new
    // connections.
    match (listener, config.server.balancer) {
        (Some(listener), Balancer::Reuseport) => {
            balancer::accept_here(&ctx, &shard, listener).await
        }
        (Some(listener), Balancer::Handoff) => {
            balancer::hand_off(&ctx, listener, config.server.handoff, loads).await
        }
        (None, _) => ctx.stop_event().wait().await,
    }
    // Graceful stop: idle connections close now, busy ones once their in-flight
    // responses (sent with `Connection: close`) are out.
    shard.draining.set(true);
    shard.watchdog.wake_all();
    let grace = Instant::now() + shard.settings.get().shutdown_grace;
    while shard.stats.active() > 0 && Instant::now() < grace {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    // Returning ends the executor; connections still open past the grace are dropped.
}

async fn refresh_date(date: Rc<DateCache>) {
    loop {
        glommio::timer::sleep(DateCache::until_next_second(SystemTime::now())).await;
        date.refresh(SystemTime::now());
    }
}
