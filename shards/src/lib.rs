//! Haywire's shard runtime: one glommio executor per core, each running a shard.
//!
//! A shard is a shared-nothing world: everything it owns lives on its own thread and is
//! reached without locks. The only thing that crosses shards is the [`control`] mesh,
//! meant for rare coordination (stats gathering, broadcasts, shutdown), never for
//! per-request work. This crate knows nothing about HTTP.

pub mod control;
pub mod cpus;
mod ctx;
mod event;
pub mod launch;
mod mailbox;
pub mod signals;

pub use control::ShardPanicked;
pub use ctx::{Control, Controller, ShardCtx};
pub use event::LocalEvent;
pub use launch::{launch, LaunchConfig, Placement, Runtime};
