//! The per-shard context handed to every shard's main future.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::rc::Rc;

use crate::control::Control;
use crate::event::LocalEvent;

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

    /// Fired when this shard is asked to stop (see [`Control::stop_all`]).
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
}
