//! Starting N glommio executors, one shard each, placed on CPUs.

use std::any::Any;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use glommio::LocalExecutorBuilder;
use std::sync::mpsc;

use crate::control::{self, Mailboxes};
use crate::cpus;
use crate::ctx::{Control, Controller, ShardCtx};
use crate::mailbox;

/// Where shards run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// One shard per CPU of the process's allowed set, each pinned to its CPU.
    Pinned,
    /// Shards float; the kernel schedules them.
    Unbound,
    /// Shard `k` is pinned to the `k`-th CPU of this list.
    Cpus(Vec<usize>),
}

/// How to launch the shards.
#[derive(Debug, Clone)]
pub struct LaunchConfig {
    /// Number of shards; 0 means one per CPU available to the placement.
    pub shards: usize,
    /// Where the shards run.
    pub placement: Placement,
    /// Memory each executor registers with io_uring, in bytes. All shards together
    /// must fit under RLIMIT_MEMLOCK.
    pub io_memory: usize,
    /// io_uring submission queue depth per executor.
    pub ring_depth: usize,
    /// Thread name prefix; shard `k` runs on thread `{name}-{k}`.
    pub name: String,
}

impl Default for LaunchConfig {
    fn default() -> Self {
        LaunchConfig {
            shards: 0,
            placement: Placement::Pinned,
            io_memory: 128 << 10,
            ring_depth: 128,
            name: "shard".into(),
        }
    }
}

impl LaunchConfig {
    /// The CPU each shard is pinned to (`None` for unbound), one entry per shard.
    /// Fails when the placement asks for CPUs this process may not use.
    pub fn resolve(&self) -> io::Result<Vec<Option<usize>>> {
        let allowed = cpus::allowed()?;
        let list = match &self.placement {
            Placement::Unbound => {
                let n = if self.shards == 0 {
                    allowed.len()
                } else {
                    self.shards
                };
                return Ok(vec![None; n]);
            }
            Placement::Pinned => allowed,
            Placement::Cpus(list) => {
                if let Some(cpu) = list.iter().find(|cpu| !allowed.contains(cpu)) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("CPU {cpu} is not in this process's allowed set {allowed:?}"),
                    ));
                }
                list.clone()
            }
        };
        let n = if self.shards == 0 {
            list.len()
        } else {
            self.shards
        };
        if list.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no CPU to run on",
            ));
        }
        // More shards than CPUs wrap around: useful for tests, never faster.
        Ok((0..n).map(|k| Some(list[k % list.len()])).collect())
    }
}

/// The running shards.
pub struct Runtime<T> {
    handles: Vec<std::thread::JoinHandle<Option<T>>>,
    cpus: Vec<Option<usize>>,
    mailboxes: Mailboxes<ShardCtx>,
}

impl<T> Runtime<T> {
    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.handles.len()
    }

    /// The CPU of each shard, `None` where unbound.
    pub fn cpus(&self) -> &[Option<usize>] {
        &self.cpus
    }

    /// Asks every shard to stop, from any thread: fires each shard's
    /// [`ShardCtx::stop_event`]. What stopping means is up to each shard's main future.
    pub fn stop(&self) {
        self.controller().stop();
    }

    /// A handle that reaches every shard from any thread.
    pub fn controller(&self) -> Controller {
        Controller::new(self.mailboxes.clone())
    }

    /// Waits for every shard's main future to finish and returns their outputs in shard
    /// order; a shard whose main future panicked yields an error in its place.
    pub fn join(self) -> Vec<io::Result<T>> {
        self.handles
            .into_iter()
            .enumerate()
            .map(|(id, h)| match h.join() {
                Ok(Some(out)) => Ok(out),
                Ok(None) => Err(io::Error::other(format!("shard {id} never started"))),
                Err(_) => Err(io::Error::other(format!("shard {id} panicked"))),
            })
            .collect()
    }
}

/// Starts one executor per shard and runs `main(ctx)` on each. `main` is cloned into
/// every shard and called there, so what it builds is shard-local.
///
/// Returns once every executor has been created (io_uring rings set up, CPU pinned): if
/// any fails, for instance for lack of locked memory, none runs `main` and the error
/// names the shard.
pub fn launch<F, Fut, T>(config: &LaunchConfig, main: F) -> io::Result<Runtime<T>>
where
    F: FnOnce(Rc<ShardCtx>) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let cpus = config.resolve()?;
    let count = cpus.len();
    let (mailboxes, doorbells): (Vec<_>, Vec<_>) = (0..count)
        .map(|_| mailbox::mailbox())
        .collect::<io::Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let mailboxes = std::sync::Arc::new(mailboxes);
    let (ready_tx, ready_rx) = mpsc::channel::<(usize, Result<(), String>)>();
    let mut handles = Vec::with_capacity(count);
    let mut gates = Vec::with_capacity(count);
    for ((id, cpu), doorbell) in cpus.iter().copied().enumerate().zip(doorbells) {
        let placement = match cpu {
            Some(cpu) => glommio::Placement::Fixed(cpu),
            None => glommio::Placement::Unbound,
        };
        let builder = LocalExecutorBuilder::new(placement)
            .name(&format!("{}-{id}", config.name))
            .io_memory(config.io_memory)
            .ring_depth(config.ring_depth);
        let (gate_tx, gate_rx) = mpsc::channel::<bool>();
        gates.push(gate_tx);
        let (mailboxes, main, ready_tx) = (mailboxes.clone(), main.clone(), ready_tx.clone());
        let name = config.name.clone();
        let handle = std::thread::Builder::new()
            .name(format!("{}-{id}", config.name))
            .spawn(move || {
                let executor = match builder.make() {
                    Ok(executor) => executor,
                    Err(e) => {
                        let _ = ready_tx.send((id, Err(e.to_string())));
                        return None;
                    }
                };
                let _ = ready_tx.send((id, Ok(())));
                // Only go on once every shard exists: a gather would wait forever for
                // one that failed.
                if gate_rx.recv() != Ok(true) {
                    return None;
                }
                let stopper = Controller::new(mailboxes.clone());
                let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    executor.run(async move {
                        let ctx =
                            Rc::new(ShardCtx::new(id, count, cpu, Control::new(id, mailboxes)));
                        control::serve(ctx.clone(), ShardCtx::control, doorbell);
                        main(ctx).await
                    })
                }));
                match ran {
                    Ok(out) => Some(out),
                    Err(panic) => {
                        // A panic that unwound out of a task ended this executor. The
                        // others must not go on without it (its mailbox is dead: gathers
                        // would never finish, handed-off connections would be lost):
                        // stop them all, so `join` reports the failure and a supervisor
                        // can restart the process.
                        eprintln!(
                            "{}-{id}: shard {id} panicked ({}); stopping every shard",
                            name,
                            panic_message(&*panic)
                        );
                        stopper.stop();
                        std::panic::resume_unwind(panic)
                    }
                }
            })?;
        handles.push(handle);
    }
    drop(ready_tx);
    let mut failure = None;
    for _ in 0..count {
        match ready_rx.recv() {
            Ok((_, Ok(()))) => {}
            Ok((id, Err(e))) => failure = failure.or(Some(format!("starting shard {id}: {e}"))),
            Err(_) => failure = failure.or(Some("a shard thread died while starting".into())),
        }
    }
    let go = failure.is_none();
    for gate in gates {
        let _ = gate.send(go);
    }
    if let Some(failure) = failure {
        for handle in handles {
            let _ = handle.join();
        }
        return Err(io::Error::other(failure));
    }
    Ok(Runtime {
        handles,
        cpus,
        mailboxes,
    })
}

/// The text a panic was raised with, when it is a string.
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}
