//! The control mesh: the only path between shards, for rare coordination.
//!
//! A message is a job: a closure that runs on the receiving shard with that shard's
//! [`ShardCtx`], so it reaches shard-local state without locks. `broadcast` runs a job on
//! every shard; `gather` runs one everywhere and collects one answer per shard. Nothing on
//! the request path should ever go through here.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::poll_fn;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::task::{Poll, Waker};

use std::sync::Arc;

use crate::ctx::ShardCtx;
use crate::mailbox::{Doorbell, Mailbox};

/// Every shard's mailbox, indexed by shard id; shared by all shards.
pub(crate) type Mailboxes = Arc<Vec<Arc<Mailbox<Envelope>>>>;

type Answer = Result<Box<dyn Any + Send>, ShardPanicked>;
type Job = Box<dyn FnOnce(&ShardCtx) -> Box<dyn Any + Send> + Send>;

/// What travels on the mesh.
pub(crate) enum Envelope {
    /// Run `job` here; if `reply_to` is `(gather id, shard)`, send the answer there.
    Run {
        job: Job,
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

/// This shard's end of the mesh. Reached through [`ShardCtx::control`].
pub struct Control {
    mailboxes: Mailboxes,
    next_id: Cell<u64>,
    gathers: RefCell<HashMap<u64, Gather>>,
}

impl Control {
    pub(crate) fn new(mailboxes: Mailboxes) -> Self {
        Control {
            mailboxes,
            next_id: Cell::new(0),
            gathers: RefCell::new(HashMap::new()),
        }
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
}

fn run_job(ctx: &ShardCtx, job: Job) -> Answer {
    catch_unwind(AssertUnwindSafe(|| job(ctx))).map_err(|_| ShardPanicked { shard: ctx.id() })
}

impl ShardCtx {
    /// Runs `f` once on every shard: on this one at once, on the others as soon as
    /// they get to it. Each shard runs jobs from one sender in the order they were sent.
    pub fn broadcast<F>(&self, f: F)
    where
        F: Fn(&ShardCtx) + Send + Clone + 'static,
    {
        let local = f.clone();
        let _ = run_job(
            self,
            Box::new(move |ctx| {
                local(ctx);
                Box::new(()) as Box<dyn Any + Send>
            }),
        );
        self.send_everywhere(None, move |ctx| {
            f(ctx);
            Box::new(()) as Box<dyn Any + Send>
        });
    }

    /// Runs `f` on every shard and returns the answers indexed by shard id.
    pub async fn gather<R, F>(&self, f: F) -> Result<Vec<R>, ShardPanicked>
    where
        R: Send + 'static,
        F: Fn(&ShardCtx) -> R + Send + Clone + 'static,
    {
        let control = self.control();
        let id = control.next_id.get();
        control.next_id.set(id + 1);
        control.gathers.borrow_mut().insert(
            id,
            Gather {
                answers: (0..self.count()).map(|_| None).collect(),
                missing: self.count(),
                waker: None,
            },
        );
        let job = move |ctx: &ShardCtx| Box::new(f(ctx)) as Box<dyn Any + Send>;
        let local = run_job(self, Box::new(job.clone()));
        control.record(id, self.id(), local);
        self.send_everywhere(Some((id, self.id())), job);

        let gather = poll_fn(|cx| {
            let mut gathers = control.gathers.borrow_mut();
            let gather = gathers.get_mut(&id).expect("gather registered above");
            if gather.missing == 0 {
                Poll::Ready(gathers.remove(&id).expect("present"))
            } else {
                gather.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        gather
            .answers
            .into_iter()
            .map(|answer| {
                let value = answer.expect("every shard answered")?;
                Ok(*value.downcast::<R>().expect("answer has the job's type"))
            })
            .collect()
    }

    /// Runs `f` on shard `shard` (at once when that is this one). Ownership of whatever
    /// `f` carries moves there: this is how a connection changes hands.
    pub fn run_on<F>(&self, shard: usize, f: F)
    where
        F: FnOnce(&ShardCtx) + Send + 'static,
    {
        if shard == self.id() {
            let _ = run_job(
                self,
                Box::new(move |ctx| {
                    f(ctx);
                    Box::new(()) as Box<dyn Any + Send>
                }),
            );
            return;
        }
        self.control().mailboxes[shard].post(Envelope::Run {
            job: Box::new(move |ctx| {
                f(ctx);
                Box::new(()) as Box<dyn Any + Send>
            }),
            reply_to: None,
        });
    }

    /// Asks every shard, this one included, to stop: fires each shard's
    /// [`ShardCtx::stop_event`].
    pub fn stop_all(&self) {
        self.send_everywhere(None, |ctx: &ShardCtx| {
            ctx.stop_event().fire();
            Box::new(()) as Box<dyn Any + Send>
        });
        self.stop_event().fire();
    }

    fn send_everywhere<J>(&self, reply_to: Option<(u64, usize)>, job: J)
    where
        J: FnOnce(&ShardCtx) -> Box<dyn Any + Send> + Send + Clone + 'static,
    {
        for peer in (0..self.count()).filter(|&peer| peer != self.id()) {
            let envelope = Envelope::Run {
                job: Box::new(job.clone()),
                reply_to,
            };
            self.control().mailboxes[peer].post(envelope);
        }
    }
}

/// Reaches every shard from outside the shards (a signal thread, a test, `main`).
#[derive(Clone)]
pub struct Controller {
    mailboxes: Mailboxes,
}

impl Controller {
    pub(crate) fn new(mailboxes: Mailboxes) -> Self {
        Controller { mailboxes }
    }

    /// Runs `f` on every shard, from any thread; returns once it is queued everywhere.
    pub fn broadcast<F>(&self, f: F)
    where
        F: Fn(&ShardCtx) + Send + Clone + 'static,
    {
        for mailbox in self.mailboxes.iter() {
            let f = f.clone();
            mailbox.post(Envelope::Run {
                job: Box::new(move |ctx: &ShardCtx| {
                    f(ctx);
                    Box::new(()) as Box<dyn Any + Send>
                }),
                reply_to: None,
            });
        }
    }

    /// Fires every shard's [`ShardCtx::stop_event`].
    pub fn stop(&self) {
        self.broadcast(|ctx: &ShardCtx| ctx.stop_event().fire());
    }
}

/// Serves this shard's mailbox: runs jobs in arrival order and routes answers back.
pub(crate) fn serve(ctx: Rc<ShardCtx>, doorbell: Doorbell) {
    let mailbox = ctx.control().mailboxes[ctx.id()].clone();
    glommio::spawn_local(async move {
        let here = ctx.clone();
        doorbell
            .serve(mailbox, move |envelope| match envelope {
                Envelope::Run { job, reply_to } => {
                    let answer = run_job(&here, job);
                    if let Some((id, origin)) = reply_to {
                        let reply = Envelope::Reply {
                            id,
                            from: here.id(),
                            answer,
                        };
                        here.control().mailboxes[origin].post(reply);
                    }
                }
                Envelope::Reply { id, from, answer } => here.control().record(id, from, answer),
            })
            .await
    })
    .detach();
}
