//! Counters across worker processes: each worker publishes its shard's snapshot into a
//! file under a shared directory (on /dev/shm) every 250 ms; `/stats` and `/metrics`
//! read every worker's file (their own worker live) and sum them.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use haywire::stats::{ShardStats, StatsSnapshot};
use haywire::{Request, Response, ShardCtx, StatusCode};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde::Serialize;

/// How often a worker publishes its counters.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// Makes a new directory only this user can enter (mode 0700) with an unguessable name,
/// under `$XDG_RUNTIME_DIR` when set, else the temporary directory. Never reuses a path
/// that exists, so nobody can plant a symlink or a directory there in advance.
pub fn private_dir() -> io::Result<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| check_private(dir).is_ok())
        .unwrap_or_else(std::env::temp_dir);
    let mut last = None;
    for attempt in 0u32..16 {
        // RandomState is seeded from the OS's randomness for each process.
        let tag = RandomState::new().hash_one((std::process::id(), attempt));
        let dir = base.join(format!("haywire-{}-{tag:016x}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free name")))
}

/// Checks that `dir` is a real directory (not a symlink) owned by this user and not
/// writable by anyone else, so files written in it cannot be redirected.
pub fn check_private(dir: &Path) -> io::Result<PathBuf> {
    let meta = std::fs::symlink_metadata(dir)?;
    let uid = rustix::process::geteuid().as_raw();
    if !meta.file_type().is_dir() || meta.uid() != uid || meta.mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "stats directory {} must be a directory owned by this user and writable only by it",
                dir.display()
            ),
        ));
    }
    Ok(dir.to_owned())
}

/// Where the workers' counters meet.
#[derive(Clone)]
pub struct StatsDir {
    /// The shared directory.
    pub dir: PathBuf,
    /// This worker's index (its label in the reports).
    pub worker: usize,
}

impl StatsDir {
    fn file(&self, worker: usize) -> PathBuf {
        self.dir.join(format!("worker-{worker}.json"))
    }

    fn own(&self, ctx: &ShardCtx) -> Option<StatsSnapshot> {
        ctx.local::<ShardStats>().map(|s| s.snapshot(self.worker))
    }

    /// Writes this worker's snapshot (through a temporary file and a rename, so a reader
    /// never sees half a file).
    fn publish(&self, ctx: &ShardCtx) {
        let Some(snapshot) = self.own(ctx) else {
            return;
        };
        let Ok(json) = serde_json::to_vec(&snapshot) else {
            return;
        };
        let tmp = self.dir.join(format!(".worker-{}.tmp", self.worker));
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, self.file(self.worker));
        }
    }

    /// Publishes every [`PUBLISH_EVERY`] until the shard ends.
    pub async fn run(self, ctx: Rc<ShardCtx>) {
        loop {
            self.publish(&ctx);
            glommio::timer::sleep(PUBLISH_EVERY).await;
        }
    }

    /// Every worker's latest snapshot, this one's live, ordered by worker.
    pub fn gather(&self, ctx: &ShardCtx) -> Vec<StatsSnapshot> {
        let mut all = published(&self.dir, Some(self.worker));
        all.extend(self.own(ctx));
        all.sort_by_key(|s| s.shard);
        all
    }
}

/// The snapshots the workers have published in `dir`, but `skip`'s, unordered.
fn published(dir: &Path, skip: Option<usize>) -> Vec<StatsSnapshot> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| read_published(&entry.path(), skip))
        .collect()
}

fn read_published(path: &Path, skip: Option<usize>) -> Option<StatsSnapshot> {
    let name = path.file_name()?.to_str()?;
    let worker: usize = name
        .strip_prefix("worker-")?
        .strip_suffix(".json")?
        .parse()
        .ok()?;
    if Some(worker) == skip {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The Prometheus exposition of what every worker last published in `stats_dir` (at
/// most `PUBLISH_EVERY` old), for an exporter outside the workers (`--metrics`).
#[pyo3::pyfunction]
pub fn metrics_text(py: Python<'_>, stats_dir: PathBuf) -> Bound<'_, PyBytes> {
    let mut all = published(&stats_dir, None);
    all.sort_by_key(|s| s.shard);
    PyBytes::new(py, haywire::metrics::render(&all).as_bytes())
}

#[derive(Serialize)]
struct StatsReport {
    total: StatsSnapshot,
    shards: Vec<StatsSnapshot>,
}

/// `/stats`: JSON with each worker's counters and their sum (same shape as the stock
/// route, one entry per worker).
pub fn stats(dir: &StatsDir, ctx: &ShardCtx, _: Request) -> Response {
    let shards = dir.gather(ctx);
    let report = StatsReport {
        total: StatsSnapshot::total(&shards),
        shards,
    };
    match serde_json::to_vec_pretty(&report) {
        Ok(json) => Response::json(json),
        Err(_) => Response::new(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// `/metrics`: the Prometheus exposition of every worker and their total.
pub fn metrics(dir: &StatsDir, ctx: &ShardCtx, _: Request) -> Response {
    Response::new(StatusCode::OK).with_body(
        haywire::metrics::CONTENT_TYPE,
        haywire::metrics::render(&dir.gather(ctx)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dirs_are_new_0700_and_unguessable() {
        let a = private_dir().unwrap();
        let b = private_dir().unwrap();
        assert_ne!(a, b);
        let mode = std::fs::symlink_metadata(&a).unwrap().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(check_private(&a).is_ok());
        let link = a.with_extension("link");
        std::os::unix::fs::symlink(&b, &link).unwrap();
        assert!(check_private(&link).is_err());
        for path in [&a, &b] {
            std::fs::remove_dir(path).unwrap();
        }
        std::fs::remove_file(link).unwrap();
    }
}
