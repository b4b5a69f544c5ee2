//! The `haywire` binary: CLI flags over `config.toml`, then the stock server.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use haywire::config::{Balancer, Config, ConfigError, Overrides, RouteConfig};
use haywire::{Reloaded, Server};
use tracing_subscriber::EnvFilter;

/// A thread-per-core HTTP/1.1 server.
#[derive(Parser, Debug)]
#[command(name = "haywire", version, about)]
struct Cli {
    /// Configuration file. Without this flag, ./config.toml is used if present.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// IP address to listen on (overrides server.address).
    #[arg(long, value_name = "ADDR")]
    address: Option<String>,
    /// TCP port (overrides server.port).
    #[arg(long, value_name = "N")]
    port: Option<u16>,
    /// Number of shards, 0 = one per CPU (overrides server.shards).
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
}

/// Exit status for a configuration error: nothing was started.
const CONFIG_ERROR: u8 = 2;

impl Cli {
    /// The flags that override keys of the file, at start and at every reload.
    fn overrides(&self) -> Overrides {
        Overrides {
            address: self.address.clone(),
            port: self.port,
            shards: self.shards,
        }
    }
}

fn load(cli: &Cli) -> Result<Config, ConfigError> {
    let default = PathBuf::from("config.toml");
    match &cli.config {
        Some(path) => Config::load_with(path, &cli.overrides()),
        None if default.exists() => Config::load_with(&default, &cli.overrides()),
        None => {
            let mut config = Config::default();
            cli.overrides().apply(&mut config);
            config.validate()?;
            Ok(config)
        }
    }
}

/// Server events (start, reloads, errors) go to stderr through `tracing`, filtered by
/// `RUST_LOG` (`info` when unset); the start-up banner and the access log's `stdout`
/// stay on stdout.
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// A config value as the file spells it (`"least-connections"`, not `LeastConnections`).
fn spelled<T: serde::Serialize + std::fmt::Debug>(value: &T) -> String {
    match toml::Value::try_from(value) {
        Ok(toml::Value::String(text)) => text,
        _ => format!("{value:?}"),
    }
}

/// The configured routes as aligned columns under a header (method, path, handler,
/// detail); nothing when there are none.
fn route_table(routes: &[RouteConfig]) -> Vec<String> {
    if routes.is_empty() {
        return Vec::new();
    }
    let rows: Vec<[String; 4]> = routes
        .iter()
        .map(|r| {
            [
                r.methods().into(),
                r.path().into(),
                r.handler().into(),
                r.detail(),
            ]
        })
        .collect();
    let header = ["METHOD", "PATH", "HANDLER", "DETAIL"].map(String::from);
    let width = |i: usize| {
        rows.iter()
            .chain([&header])
            .map(|row| row[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2)];
    let mut lines = vec!["  routes:".to_owned()];
    for row in [&header].into_iter().chain(&rows) {
        lines.push(format!(
            "    {:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
        ));
    }
    lines
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let source = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("config.toml"));
    let config = match load(&cli) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("config error in {}: {e}", source.display());
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    let limits = config.limits.clone();
    let server = Server::new(config.clone());
    let running = match server.start() {
        Ok(running) => running,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cpus: Vec<String> = running
        .cpus()
        .iter()
        .map(|c| c.map_or("-".into(), |c| c.to_string()))
        .collect();
    let address = match running.unix_path() {
        Some(path) => format!("unix:{}", path.display()),
        None => running.local_addr().to_string(),
    };
    println!("haywire {}", env!("CARGO_PKG_VERSION"));
    println!("  address:      {address}");
    println!(
        "  shards:       {} ({}, cpus {})",
        running.shards(),
        spelled(&config.server.placement),
        cpus.join(",")
    );
    match config.server.balancer {
        Balancer::Reuseport => println!("  balancer:     reuseport"),
        Balancer::Handoff => println!(
            "  balancer:     handoff ({})",
            spelled(&config.server.handoff)
        ),
    }
    println!("  tcp_nodelay:  {}", config.server.tcp_nodelay);
    println!("  backlog:      {}", config.server.backlog);
    println!(
        "  io_memory:    {} bytes per shard",
        config.server.io_memory
    );
    println!(
        "  limits:       body {} B, head {} B, uri {} B, read buffer {} B",
        limits.max_request_size, limits.max_head_size, limits.max_uri_length, limits.read_buffer
    );
    println!(
        "  access log:   {} ({})",
        config.log.access,
        spelled(&config.log.format)
    );
    for line in route_table(&config.routes) {
        println!("{line}");
    }
    tracing::debug!(
        address = %address,
        shards = running.shards(),
        "haywire {} started",
        env!("CARGO_PKG_VERSION")
    );
    let mut reloader = running.reloader(&source, cli.overrides());
    let path = source.display().to_string();
    let on_reload = move || match reloader.reload() {
        Ok(Reloaded { needs_restart }) if needs_restart.is_empty() => {
            tracing::info!("reloaded {path}")
        }
        Ok(Reloaded { needs_restart }) => tracing::warn!(
            "reloaded {path}; unchanged until a restart: {}",
            needs_restart.join(", ")
        ),
        Err(e) => {
            tracing::error!("reload of {path} rejected, the running config stays: {e}")
        }
    };
    if let Err(e) = running.stop_on_signals(on_reload) {
        tracing::error!("cannot handle signals: {e}");
    }
    match running.join() {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("a shard failed: {e}");
            ExitCode::FAILURE
        }
    }
}
