//! The per-shard context handed to every shard's main future, and the control mesh
//! as a shard sees it.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::rc::Rc;

use crate::control::{self, ShardPanicked};
use crate::event::LocalEvent;

/// This shard's end of the control mesh.
pub type Control = control::Control<ShardCtx>;

/// Reaches every shard from any thread.
pub type Controller = control::Controller<ShardCtx>;

/// Everything a shard knows about itself. `!Send`: it never leaves its shard.
pub struct ShardCtx {
    id: usize,
    count: usize,
    cpu: Option<usize>,
    control: Control,
    stop: LocalEvent,
    locals: RefCell<Vec<(TypeId, Rc<dyn Any>)>>,
}

impl ShardCtx {
    pub(crate) fn new(id: usize, count: usize, cpu: Option<usize>, control: Control) -> Self {
        ShardCtx {
            id,
            count,
            cpu,
            control,
            stop: LocalEvent::default(),
            locals: RefCell::new(Vec::new()),
        }
    }

    /// This shard's index, `0..count`.
    pub fn id(&self) -> usize {
        self.id
    }

    /// How many shards the runtime runs.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The CPU this shard is pinned to, if it is pinned.
    pub fn cpu(&self) -> Option<usize> {
        self.cpu
    }

    /// The control mesh: broadcasts and gathers across shards.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Fired when this shard is asked to stop (see [`ShardCtx::stop_all`]).
    pub fn stop_event(&self) -> &LocalEvent {
        &self.stop
    }

    /// Stores a shard-local value, found later by its type with [`ShardCtx::local`].
    /// Replaces any earlier value of the same type.
    pub fn insert_local<T: 'static>(&self, value: Rc<T>) {
        let mut locals = self.locals.borrow_mut();
        locals.retain(|(id, _)| *id != TypeId::of::<T>());
        locals.push((TypeId::of::<T>(), value));
    }

    /// The shard-local value of type `T`, if one was inserted. Meant for control jobs
    /// that reach shard state; request handlers capture their state directly.
    pub fn local<T: 'static>(&self) -> Option<Rc<T>> {
        let locals = self.locals.borrow();
        let (_, value) = locals.iter().find(|(id, _)| *id == TypeId::of::<T>())?;
        value.clone().downcast::<T>().ok()
    }

    /// Runs `f` once on every shard: on this one at once, on the others as soon as
    /// they get to it. Each shard runs jobs from one sender in the order they were sent.
    pub fn broadcast<F>(&self, f: F)
    where
        F: Fn(&ShardCtx) + Send + Clone + 'static,
    {
        self.control.broadcast(self, f);
    }

    /// Runs `f` on every shard and returns the answers indexed by shard id. Dropping
    /// the future before it completes forgets the gather; late answers are dropped.
    pub async fn gather<R, F>(&self, f: F) -> Result<Vec<R>, ShardPanicked>
    where
        R: Send + 'static,
        F: Fn(&ShardCtx) -> R + Send + Clone + 'static,
    {
        self.control.gather(self, f).await
    }

    /// Runs `f` on shard `shard` (at once when that is this one). Ownership of whatever
    /// `f` carries moves there: this is how a connection changes hands.
    pub fn run_on<F>(&self, shard: usize, f: F)
    where
        F: FnOnce(&ShardCtx) + Send + 'static,
    {
        self.control.run_on(self, shard, f);
    }

    /// Asks every shard, this one included, to stop: fires each shard's
    /// [`ShardCtx::stop_event`].
    pub fn stop_all(&self) {
        self.control.send_everywhere(None, |ctx: &ShardCtx| {
            ctx.stop_event().fire();
            Box::new(()) as Box<dyn Any + Send>
        });
        self.stop_event().fire();
    }
}

impl Controller {
    /// Fires every shard's [`ShardCtx::stop_event`].
    pub fn stop(&self) {
        self.broadcast(|ctx: &ShardCtx| ctx.stop_event().fire());
    }
}
