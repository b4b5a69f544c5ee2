//! The control mesh, exercised on real executors without any socket.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use haywire_shards::{launch, LaunchConfig, Placement, Runtime, ShardCtx, ShardPanicked};

struct Hits(Cell<u32>);

fn config(shards: usize) -> LaunchConfig {
    LaunchConfig {
        shards,
        placement: Placement::Unbound,
        ..LaunchConfig::default()
    }
}

/// Every shard registers a counter, then waits to be stopped; shard 0 drives `script`.
fn run<T, F, Fut>(shards: usize, script: F) -> T
where
    T: Send + 'static,
    F: FnOnce(Rc<ShardCtx>) -> Fut + Send + Clone + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    let runtime = launch(&config(shards), move |ctx: Rc<ShardCtx>| async move {
        ctx.insert_local(Rc::new(Hits(Cell::new(0))));
        // Let every shard register its state before shard 0 starts.
        let _ = ctx.gather(|_: &ShardCtx| ()).await;
        if ctx.id() == 0 {
            let out = script(ctx.clone()).await;
            ctx.stop_all();
            Some(out)
        } else {
            ctx.stop_event().wait().await;
            None
        }
    })
    .unwrap();
    let mut outs = runtime.join().into_iter().map(Result::unwrap);
    outs.next().unwrap().unwrap()
}

#[test]
fn broadcast_reaches_every_shard_once() {
    let hits = run(3, |ctx: Rc<ShardCtx>| async move {
        ctx.broadcast(|shard: &ShardCtx| {
            let hits = shard.local::<Hits>().unwrap();
            hits.0.set(hits.0.get() + 1);
        });
        ctx.gather(|shard: &ShardCtx| shard.local::<Hits>().unwrap().0.get())
            .await
            .unwrap()
    });
    assert_eq!(hits, vec![1, 1, 1]);
}

#[test]
fn gather_returns_one_answer_per_shard_in_shard_order() {
    let ids = run(4, |ctx: Rc<ShardCtx>| async move {
        ctx.gather(|shard: &ShardCtx| (shard.id(), shard.count()))
            .await
            .unwrap()
    });
    assert_eq!(ids, vec![(0, 4), (1, 4), (2, 4), (3, 4)]);
}

#[test]
fn a_panicking_job_is_reported_and_the_shard_lives_on() {
    let (first, second) = run(2, |ctx: Rc<ShardCtx>| async move {
        let first = ctx
            .gather(|shard: &ShardCtx| {
                if shard.id() == 1 {
                    panic!("job failure on purpose");
                }
                shard.id()
            })
            .await;
        let second = ctx.gather(|shard: &ShardCtx| shard.id()).await;
        (first, second)
    });
    assert_eq!(first, Err(ShardPanicked { shard: 1 }));
    assert_eq!(second, Ok(vec![0, 1]));
}

#[test]
fn a_single_shard_gathers_from_itself() {
    let ids = run(1, |ctx: Rc<ShardCtx>| async move {
        ctx.gather(|shard: &ShardCtx| shard.id()).await.unwrap()
    });
    assert_eq!(ids, vec![0]);
}

#[test]
fn pinned_placement_uses_allowed_cpus() {
    let allowed = haywire_shards::cpus::allowed().unwrap();
    let config = LaunchConfig {
        shards: 0,
        placement: Placement::Pinned,
        ..LaunchConfig::default()
    };
    let cpus = config.resolve().unwrap();
    assert_eq!(cpus, allowed.iter().map(|&c| Some(c)).collect::<Vec<_>>());
    let bad = LaunchConfig {
        placement: Placement::Cpus(vec![100_000]),
        ..config
    };
    assert!(bad.resolve().is_err());
}

#[test]
fn run_on_reaches_exactly_the_named_shard() {
    let hits = run(3, |ctx: Rc<ShardCtx>| async move {
        for target in [2, 2, 0, 1, 2] {
            ctx.run_on(target, |shard: &ShardCtx| {
                let hits = shard.local::<Hits>().unwrap();
                hits.0.set(hits.0.get() + 1);
            });
        }
        ctx.gather(|shard: &ShardCtx| shard.local::<Hits>().unwrap().0.get())
            .await
            .unwrap()
    });
    assert_eq!(hits, vec![1, 1, 3]);
}

#[test]
fn a_dropped_gather_is_forgotten() {
    let pending = run(2, |ctx: Rc<ShardCtx>| async move {
        for _ in 0..100 {
            // Polled once, so it is registered and its jobs are sent, then dropped the
            // way a handler's future is dropped by a timeout or a client reset.
            let gather = ctx.gather(|shard: &ShardCtx| shard.id());
            assert!(futures_lite::future::poll_once(gather).await.is_none());
        }
        let after_drops = ctx.control().pending_gathers();
        // Answers to the dropped gathers arrive later and are ignored; a new one works.
        let ids = ctx.gather(|shard: &ShardCtx| shard.id()).await.unwrap();
        assert_eq!(ids, vec![0, 1]);
        (after_drops, ctx.control().pending_gathers())
    });
    assert_eq!(pending, (0, 0));
}

/// Shards that only wait to be stopped; the test drives them from outside.
fn idle_shards(shards: usize) -> Runtime<()> {
    launch(&config(shards), |ctx: Rc<ShardCtx>| async move {
        ctx.stop_event().wait().await;
    })
    .unwrap()
}

#[test]
fn broadcast_and_wait_returns_after_every_shard_ran_the_job() {
    let runtime = idle_shards(3);
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let count =
        runtime
            .controller()
            .broadcast_and_wait(Duration::from_secs(30), move |_: &ShardCtx| {
                // Slow enough that a return before the jobs ran would see fewer.
                std::thread::sleep(Duration::from_millis(100));
                counter.fetch_add(1, Ordering::SeqCst);
            });
    assert_eq!((count, ran.load(Ordering::SeqCst)), (3, 3));
    runtime.stop();
    runtime.join();
}

#[test]
fn broadcast_and_wait_counts_a_panicking_shard_out_without_waiting_for_the_deadline() {
    let runtime = idle_shards(2);
    let started = Instant::now();
    let count =
        runtime
            .controller()
            .broadcast_and_wait(Duration::from_secs(30), |shard: &ShardCtx| {
                if shard.id() == 1 {
                    panic!("job failure on purpose");
                }
            });
    assert_eq!(count, 1);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited for the deadline"
    );
    runtime.stop();
    runtime.join();
}
