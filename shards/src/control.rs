//! The control mesh: the only path between shards, for rare coordination.
//!
//! A message is a job: a closure that runs on the receiving shard with that shard's
//! context, so it reaches shard-local state without locks. This module moves jobs and
//! answers between shards; it is generic over the context type (`C`, the crate's
//! `ShardCtx`), so it depends on nothing above it. Nothing on the request path should
//! ever go through here.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::poll_fn;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::mailbox::{Doorbell, Mailbox};

/// Every shard's mailbox, indexed by shard id; shared by all shards.
pub(crate) type Mailboxes<C> = Arc<Vec<Arc<Mailbox<Envelope<C>>>>>;

type Answer = Result<Box<dyn Any + Send>, ShardPanicked>;
type Job<C> = Box<dyn FnOnce(&C) -> Box<dyn Any + Send> + Send>;

/// What travels on the mesh.
pub(crate) enum Envelope<C> {
    /// Run `job` here; if `reply_to` is `(gather id, shard)`, send the answer there.
    Run {
        job: Job<C>,
        reply_to: Option<(u64, usize)>,
    },
    /// The answer from shard `from` to gather `id`.
    Reply {
        id: u64,
        from: usize,
        answer: Answer,
    },
}

/// A job panicked on the shard it was sent to; that shard keeps running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardPanicked {
    /// The shard whose job panicked.
    pub shard: usize,
}

impl fmt::Display for ShardPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a control job panicked on shard {}", self.shard)
    }
}

impl std::error::Error for ShardPanicked {}

struct Gather {
    answers: Vec<Option<Answer>>,
    missing: usize,
    waker: Option<Waker>,
}

/// One shard's end of the mesh, for a shard context of type `C`.
pub struct Control<C> {
    id: usize,
    mailboxes: Mailboxes<C>,
    next_id: Cell<u64>,
    gathers: RefCell<HashMap<u64, Gather>>,
}

/// Forgets a gather when its future is dropped, finished or not: answers that arrive
/// later find no entry and are dropped.
struct GatherGuard<'a, C> {
    control: &'a Control<C>,
    id: u64,
}

impl<C> Drop for GatherGuard<'_, C> {
    fn drop(&mut self) {
        self.control.gathers.borrow_mut().remove(&self.id);
    }
}

fn unit<C>(f: impl FnOnce(&C) + Send + 'static) -> Job<C> {
    Box::new(move |ctx: &C| {
        f(ctx);
        Box::new(()) as Box<dyn Any + Send>
    })
}

impl<C: 'static> Control<C> {
    pub(crate) fn new(id: usize, mailboxes: Mailboxes<C>) -> Self {
        Control {
            id,
            mailboxes,
            next_id: Cell::new(0),
            gathers: RefCell::new(HashMap::new()),
        }
    }

    /// Gathers still waiting for answers (a dropped gather is forgotten at once).
    pub fn pending_gathers(&self) -> usize {
        self.gathers.borrow().len()
    }

    fn run_job(&self, ctx: &C, job: Job<C>) -> Answer {
        catch_unwind(AssertUnwindSafe(|| job(ctx))).map_err(|_| ShardPanicked { shard: self.id })
    }

    fn record(&self, id: u64, from: usize, answer: Answer) {
        let mut gathers = self.gathers.borrow_mut();
        if let Some(gather) = gathers.get_mut(&id) {
            if gather.answers[from].replace(answer).is_none() {
                gather.missing -= 1;
            }
            if gather.missing == 0 {
                if let Some(waker) = gather.waker.take() {
                    waker.wake();
                }
            }
        }
    }

    /// Runs `f` with `ctx` here at once, then on every other shard.
    pub(crate) fn broadcast<F>(&self, ctx: &C, f: F)
    where
        F: Fn(&C) + Send + Clone + 'static,
    {
        let _ = self.run_job(ctx, unit(f.clone()));
        self.send_everywhere(None, move |ctx: &C| {
            f(ctx);
            Box::new(()) as Box<dyn Any + Send>
        });
    }

    /// Runs `f` everywhere (here with `ctx`) and returns the answers by shard id.
    pub(crate) async fn gather<R, F>(&self, ctx: &C, f: F) -> Result<Vec<R>, ShardPanicked>
    where
        R: Send + 'static,
        F: Fn(&C) -> R + Send + Clone + 'static,
    {
        let count = self.mailboxes.len();
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.gathers.borrow_mut().insert(
            id,
            Gather {
                answers: (0..count).map(|_| None).collect(),
                missing: count,
                waker: None,
            },
        );
        let _guard = GatherGuard { control: self, id };
        let job = move |ctx: &C| Box::new(f(ctx)) as Box<dyn Any + Send>;
        let local = self.run_job(ctx, Box::new(job.clone()));
        self.record(id, self.id, local);
        self.send_everywhere(Some((id, self.id)), job);

        let answers = poll_fn(|cx| {
            let mut gathers = self.gathers.borrow_mut();
            let gather = gathers.get_mut(&id).expect("gather registered above");
            if gather.missing == 0 {
                Poll::Ready(std::mem::take(&mut gather.answers))
            } else {
                gather.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        answers
            .into_iter()
            .map(|answer| {
                let value = answer.expect("every shard answered")?;
                Ok(*value.downcast::<R>().expect("answer has the job's type"))
            })
            .collect()
    }

    /// Runs `f` on shard `shard` (at once, with `ctx`, when that is this one).
    pub(crate) fn run_on<F>(&self, ctx: &C, shard: usize, f: F)
    where
        F: FnOnce(&C) + Send + 'static,
    {
        if shard == self.id {
            let _ = self.run_job(ctx, unit(f));
            return;
        }
        self.mailboxes[shard].post(Envelope::Run {
            job: unit(f),
            reply_to: None,
        });
    }

    /// Posts `job` to every shard but this one.
    pub(crate) fn send_everywhere<J>(&self, reply_to: Option<(u64, usize)>, job: J)
    where
        J: FnOnce(&C) -> Box<dyn Any + Send> + Send + Clone + 'static,
    {
        for (peer, mailbox) in self.mailboxes.iter().enumerate() {
            if peer != self.id {
                mailbox.post(Envelope::Run {
                    job: Box::new(job.clone()),
                    reply_to,
                });
            }
        }
    }
}

/// Reaches every shard from outside the shards (a signal thread, a test, `main`).
pub struct Controller<C> {
    mailboxes: Mailboxes<C>,
}

impl<C> Clone for Controller<C> {
    fn clone(&self) -> Self {
        Controller {
            mailboxes: self.mailboxes.clone(),
        }
    }
}

impl<C: 'static> Controller<C> {
    pub(crate) fn new(mailboxes: Mailboxes<C>) -> Self {
        Controller { mailboxes }
    }

    /// Runs `f` on every shard, from any thread; returns once it is queued everywhere.
    pub fn broadcast<F>(&self, f: F)
    where
        F: Fn(&C) + Send + Clone + 'static,
    {
        for mailbox in self.mailboxes.iter() {
            mailbox.post(Envelope::Run {
                job: unit(f.clone()),
                reply_to: None,
            });
        }
    }

    /// Runs `f` on every shard and waits until each has run it, or until `within` has
    /// passed; returns how many shards ran it (all of them, unless some had stopped, a
    /// job panicked, or the time ran out). A caller that must not act before every shard
    /// has taken a change (a reload, then the first new connection) waits here.
    ///
    /// Blocks the calling thread: call it from outside the shards (a signal thread, a
    /// test, `main`), never from a shard, whose own mailbox would wait behind it.
    pub fn broadcast_and_wait<F>(&self, within: Duration, f: F) -> usize
    where
        F: Fn(&C) + Send + Clone + 'static,
    {
        let (done, ran) = mpsc::channel();
        self.broadcast(move |ctx: &C| {
            f(ctx);
            let _ = done.send(());
        });
        // Each queued job holds a sender: once every job has run or been dropped (a
        // panic), the channel closes and the wait ends before the deadline.
        let deadline = Instant::now() + within;
        let mut count = 0;
        while count < self.mailboxes.len() {
            match ran.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(()) => count += 1,
                Err(_) => break,
            }
        }
        count
    }
}

/// Serves this shard's mailbox: runs jobs in arrival order with `ctx`, and routes
/// answers back. `control` finds the shard's own end of the mesh in `ctx`.
pub(crate) fn serve<C: 'static>(ctx: Rc<C>, control: fn(&C) -> &Control<C>, doorbell: Doorbell) {
    let mailbox = control(&ctx).mailboxes[control(&ctx).id].clone();
    glommio::spawn_local(async move {
        doorbell
            .serve(mailbox, move |envelope| {
                let here = control(&ctx);
                match envelope {
                    Envelope::Run { job, reply_to } => {
                        let answer = here.run_job(&ctx, job);
                        if let Some((id, origin)) = reply_to {
                            let reply = Envelope::Reply {
                                id,
                                from: here.id,
                                answer,
                            };
                            here.mailboxes[origin].post(reply);
                        }
                    }
                    Envelope::Reply { id, from, answer } => here.record(id, from, answer),
                }
            })
            .await
    })
    .detach();
}
