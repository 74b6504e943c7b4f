//! Single-flight: concurrent callers asking for the same key share one computation.
//!
//! The first caller (the leader) runs the work on its own task, with whatever borrowed IO
//! it has; later callers park on a oneshot channel and receive a clone of the leader's
//! result. If the leader is dropped mid-flight, the followers get [`Abandoned`] and may
//! retry. Single-threaded by design (the worker runtime is), hence `RefCell`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;

use futures_channel::oneshot;

use crate::runtime::Sleeper;

/// The leader went away before producing a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned;

pub struct SingleFlight<K, V> {
    waiters: RefCell<HashMap<K, Vec<oneshot::Sender<V>>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash + Clone, V: Clone> SingleFlight<K, V> {
    pub fn new() -> Self {
        SingleFlight {
            waiters: RefCell::new(HashMap::new()),
        }
    }

    /// Number of keys with a computation in flight.
    pub fn in_flight(&self) -> usize {
        self.waiters.borrow().len()
    }

    /// Runs `work` unless a computation for `key` is already in flight, in which case
    /// waits for that one's result (woken by the leader).
    pub async fn run<F, Fut>(&self, key: K, work: F) -> Result<V, Abandoned>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        self.run_polling(key, None, work).await
    }

    /// Like [`SingleFlight::run`], but a follower checks for the result on its own timer
    /// every `poll_ms` instead of being woken by the leader. Needed on Workers: the
    /// runtime cancels a request whose only pending work is a promise that another
    /// request will resolve ("your Worker's code had hung").
    pub async fn run_polling<F, Fut>(
        &self,
        key: K,
        poll: Option<(&dyn Sleeper, u64)>,
        work: F,
    ) -> Result<V, Abandoned>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let follower = {
            let mut waiters = self.waiters.borrow_mut();
            match waiters.get_mut(&key) {
                Some(list) => {
                    let (tx, rx) = oneshot::channel();
                    list.push(tx);
                    Some(rx)
                }
                None => {
                    waiters.insert(key.clone(), Vec::new());
                    None
                }
            }
        };
        if let Some(mut rx) = follower {
            return match poll {
                None => rx.await.map_err(|_| Abandoned),
                Some((sleeper, poll_ms)) => loop {
                    match rx.try_recv() {
                        Ok(Some(value)) => break Ok(value),
                        Ok(None) => sleeper.sleep(poll_ms).await,
                        Err(_) => break Err(Abandoned),
                    }
                },
            };
        }
        // Leader. The guard clears the entry if this future is dropped before finishing,
        // which drops the senders and wakes the followers with `Abandoned`.
        let guard = LeaderGuard {
            flight: self,
            key: Some(key),
        };
        let value = work().await;
        let key = guard.finish();
        let followers = self.waiters.borrow_mut().remove(&key).unwrap_or_default();
        for tx in followers {
            let _ = tx.send(value.clone());
        }
        Ok(value)
    }
}

struct LeaderGuard<'a, K: Eq + Hash + Clone, V: Clone> {
    flight: &'a SingleFlight<K, V>,
    key: Option<K>,
}

impl<K: Eq + Hash + Clone, V: Clone> LeaderGuard<'_, K, V> {
    fn finish(mut self) -> K {
        self.key.take().expect("key present until finish")
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Drop for LeaderGuard<'_, K, V> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.flight.waiters.borrow_mut().remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::future::join_all;
    use std::cell::Cell;

    /// A future that yields once, so several callers can interleave on one thread.
    async fn yield_now() {
        let mut yielded = false;
        futures::future::poll_fn(|cx| {
            if yielded {
                std::task::Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        })
        .await
    }

    #[test]
    fn concurrent_callers_share_one_run() {
        let flight = SingleFlight::<&str, u32>::new();
        let runs = Cell::new(0);
        let calls = (0..10).map(|_| {
            flight.run("k", || async {
                runs.set(runs.get() + 1);
                yield_now().await;
                42
            })
        });
        let results = block_on(join_all(calls));
        assert_eq!(runs.get(), 1);
        assert!(results.iter().all(|r| *r == Ok(42)));
        assert_eq!(flight.in_flight(), 0);
    }

    #[test]
    fn different_keys_run_separately_and_later_calls_rerun() {
        let flight = SingleFlight::<u8, u8>::new();
        let runs = Cell::new(0);
        let work = |v| {
            let runs = &runs;
            move || async move {
                runs.set(runs.get() + 1);
                yield_now().await;
                v
            }
        };
        let results = block_on(join_all([flight.run(1, work(1)), flight.run(2, work(2))]));
        assert_eq!(results, vec![Ok(1), Ok(2)]);
        assert_eq!(block_on(flight.run(1, work(7))), Ok(7));
        assert_eq!(runs.get(), 3);
    }

    #[test]
    fn dropped_leader_abandons_followers() {
        let flight = SingleFlight::<u8, u8>::new();
        let mut leader = Box::pin(flight.run(1, || async {
            futures::future::pending::<()>().await;
            1
        }));
        // Poll the leader once so it registers, then start a follower and drop the leader.
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(leader.as_mut().poll(&mut cx).is_pending());
        let mut follower = Box::pin(flight.run(1, || async { 2 }));
        assert!(follower.as_mut().poll(&mut cx).is_pending());
        drop(leader);
        assert_eq!(block_on(follower), Err(Abandoned));
        assert_eq!(flight.in_flight(), 0);
    }
}
