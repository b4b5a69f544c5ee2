//! `Server`: the public API. Binds the listeners (`listener.rs`) and launches the
//! shards (`shard.rs`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use futures_lite::future;
use haywire_shards::signals::{self, Signal};
use haywire_shards::{launch, Controller, LaunchConfig, Placement, Runtime, ShardCtx};
use socket2::Socket;

use crate::balancer::{self, Loads};
use crate::config::{Balancer, Config, ConfigError, Overrides, PlacementKind};
use crate::listener::{Listeners, UnixSocketFile};
use crate::net::{self, TlsKeys};
use crate::reload::Reloader;
use crate::router::Router;
use crate::shard::{RouteFactory, Shard};

/// A Haywire server: configuration plus the routes every shard builds.
pub struct Server {
    config: Config,
    routes: Vec<RouteFactory>,
    /// A socket bound elsewhere to serve from (see [`Server::listener`]).
    listener: Option<OwnedFd>,
}

/// Stops a [`RunningServer`] from any thread, as [`RunningServer::stop`] does, for
/// embedders that handle signals themselves (the Python package's workers).
#[derive(Clone)]
pub struct StopHandle(Controller);

impl StopHandle {
    /// Stops the server gracefully (see [`RunningServer::stop`]); repeating it is harmless.
    pub fn stop(&self) {
        self.0.stop();
    }
}

/// A started server.
pub struct RunningServer {
    addr: SocketAddr,
    unix_path: Option<PathBuf>,
    /// The Unix socket file this server bound, removed once it has stopped.
    file: Option<UnixSocketFile>,
    runtime: Runtime<()>,
    config: Config,
}

impl Server {
    /// A server for `config`; the config's `[[route]]` stock handlers are mounted first.
    pub fn new(config: Config) -> Server {
        Server {
            config,
            routes: Vec::new(),
            listener: None,
        }
    }

    /// Serves from `fd`, a socket already bound and listening (TCP or Unix), such as one
    /// inherited from a supervisor or from systemd, instead of binding `server.address`
    /// and `server.port` or `server.unix`. Every shard accepts from it (shard 0 alone
    /// with the `handoff` balancer). A TCP one gets TCP_NODELAY (`server.tcp_nodelay`)
    /// and TCP_DEFER_ACCEPT as a bound one; either is made non-blocking. A Unix socket's
    /// file is left in place at stop: it is for whoever bound it to remove.
    pub fn listener(mut self, fd: OwnedFd) -> Server {
        self.listener = Some(fd);
        self
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

    /// Binds the listeners and starts every shard; returns once they all run. With
    /// `server.unix`, a stale socket file (nothing listens on it) is replaced and a live
    /// one is an error naming the key.
    pub fn start(self) -> io::Result<RunningServer> {
        let launch_config = self.launch_config();
        let shards = launch_config.resolve()?.len();
        // A log file that cannot be opened fails the start, not each shard quietly.
        crate::access_log::check(&self.config.log)?;
        // Read once here; every shard builds its own TLS config from the same keys.
        let tls = TlsKeys::load(&self.config.tls)
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    ConfigError::from(e).to_string(),
                )
            })?
            .map(Arc::new);
        // With handoff only shard 0 listens.
        let listeners = match self.config.server.balancer {
            Balancer::Reuseport => shards,
            Balancer::Handoff => 1,
        };
        let Listeners {
            sockets,
            addr,
            unix_path,
            unix,
            file,
        } = match self.listener {
            Some(fd) => Listeners::inherited(fd, &self.config.server, listeners)?,
            None => Listeners::bind(&self.config.server, listeners)?,
        };
        let sockets = Arc::new(Mutex::new(
            sockets.into_iter().map(Some).collect::<Vec<_>>(),
        ));
        let loads: Loads = (0..shards).map(|_| AtomicUsize::new(0)).collect();
        let running_config = self.config.clone();
        let config = Arc::new(self.config);
        let routes = Arc::new(self.routes);
        let launched = launch(&launch_config, move |ctx: Rc<ShardCtx>| {
            let listener = sockets
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(ctx.id())
                .and_then(Option::take);
            run_shard(ctx, listener, unix, config, routes, loads, tls.clone())
        });
        let runtime = match launched {
            Ok(runtime) => runtime,
            Err(e) => {
                if let Some(file) = &file {
                    file.remove();
                }
                return Err(e);
            }
        };
        Ok(RunningServer {
            addr: addr.unwrap_or((Ipv4Addr::UNSPECIFIED, 0).into()),
            unix_path,
            file,
            runtime,
            config: running_config,
        })
    }
}

impl RunningServer {
    /// The bound address (with the real port when the config asked for port 0). On a
    /// Unix socket it is `0.0.0.0:0`: see [`RunningServer::unix_path`].
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The path of the Unix socket served (`server.unix`, or an inherited Unix
    /// listener's); `None` on TCP.
    pub fn unix_path(&self) -> Option<&Path> {
        self.unix_path.as_deref()
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.runtime.shards()
    }

    /// The CPU of each shard, `None` where unbound.
    pub fn cpus(&self) -> &[Option<usize>] {
        self.runtime.cpus()
    }

    /// Stops gracefully: every shard keeps accepting for the drain's first moments (a
    /// client connected but silent is not reported before its request comes, see
    /// `net::defer_accept`), then closes its listener, closes idle connections, lets
    /// in-flight requests finish (their responses carry `Connection: close`), and ends
    /// when its last connection closes or after `server.shutdown_grace`; `join` then
    /// returns.
    pub fn stop(&self) {
        self.runtime.stop();
    }

    /// A handle that stops this server from another thread, even while `join` waits.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.runtime.controller())
    }

    /// A reloader that re-reads `path`, applies `overrides` over it (the command line
    /// the server was started with), and gives every shard the result (see
    /// [`Reloader::reload`]); `stop_on_signals` can call it on SIGHUP.
    pub fn reloader(&self, path: impl Into<std::path::PathBuf>, overrides: Overrides) -> Reloader {
        Reloader::new(
            path.into(),
            overrides,
            self.config.clone(),
            self.runtime.controller(),
        )
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

    /// Waits until every shard has stopped, then removes the `server.unix` socket file
    /// (if it is still the one this server bound).
    pub fn join(self) -> io::Result<()> {
        let joined = self.runtime.join();
        if let Some(file) = &self.file {
            file.remove();
        }
        joined
            .into_iter()
            .collect::<io::Result<Vec<()>>>()
            .map(drop)
    }
}

/// One shard's life: build its state, accept (or wait, on a shard that does not
/// listen) until it is asked to stop, then drain.
async fn run_shard(
    ctx: Rc<ShardCtx>,
    listener: Option<Socket>,
    unix: bool,
    config: Arc<Config>,
    routes: Arc<Vec<RouteFactory>>,
    loads: Loads,
    tls: Option<Arc<TlsKeys>>,
) {
    let shard = Shard::start(&ctx, &config, &routes, unix);
    shard.tls.install(tls.as_deref());
    let listener = listener.map(|socket| {
        net::Socket::register(socket.into(), &shard.poller).expect("cannot register the listener")
    });
    // Each returns once the shard has stopped (drained).
    match (listener, config.server.balancer) {
        (Some(listener), Balancer::Reuseport) => {
            balancer::accept_here(&ctx, &shard, listener).await
        }
        (Some(listener), Balancer::Handoff) => {
            balancer::hand_off(&ctx, &shard, listener, config.server.handoff, loads).await
        }
        (None, _) => {
            ctx.stop_event().wait().await;
            shard.drain(|_| future::ready(())).await;
        }
    }
}
