//! Single-flight: concurrent callers asking for the same key share one computation —
//! for a bounded time.
//!
//! The first caller (the leader) runs the work on its own task, with whatever borrowed IO
//! it has; later callers (followers) wait for a clone of the leader's result. On Workers
//! a leader whose client went away can be cancelled with its I/O never settling: its
//! future is then neither resumed nor dropped (panva/jose#509 hit exactly this). So a
//! flight has a deadline — the leader's own worst case: a follower waits at most that
//! long and then gets [`Abandoned`] (and does the work itself), and a caller arriving
//! after the deadline starts a new flight instead of joining the stale one. Each flight
//! has a generation, so a late leader can never remove or answer a newer flight. A leader
//! that is dropped mid-flight abandons its followers at once. Single-threaded by design
//! (the worker runtime is), hence `RefCell`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;

use futures_channel::oneshot;

use crate::runtime::Sleeper;

/// The leader went away, or did not finish within the deadline: do the work yourself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned;

/// How a caller joins a flight.
#[derive(Clone, Copy)]
pub struct FlightOptions<'a> {
    /// The caller's clock (ms since the epoch), read at request start.
    pub now_ms: u64,
    /// How long a flight may take before followers stop waiting for it: the leader's
    /// worst case.
    pub deadline_ms: u64,
    /// A follower checks for the result on this timer every `poll_ms`, instead of being
    /// woken by the leader. Needed on Workers: the runtime cancels a request whose only
    /// pending work is a promise another request will resolve ("your Worker's code had
    /// hung"). `None`: wake-ups only (native tests); then only a dropped leader ends the
    /// wait.
    pub poll: Option<(&'a dyn Sleeper, u64)>,
}

struct Flight<V> {
    generation: u64,
    started_ms: u64,
    deadline_ms: u64,
    waiters: Vec<oneshot::Sender<V>>,
}

impl<V> Flight<V> {
    fn is_live(&self, now_ms: u64) -> bool {
        now_ms < self.started_ms.saturating_add(self.deadline_ms)
    }
}

pub struct SingleFlight<K, V> {
    flights: RefCell<HashMap<K, Flight<V>>>,
    next_generation: Cell<u64>,
}

impl<K: Eq + Hash + Clone, V: Clone> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash + Clone, V: Clone> SingleFlight<K, V> {
    pub fn new() -> Self {
        SingleFlight {
            flights: RefCell::new(HashMap::new()),
            next_generation: Cell::new(0),
        }
    }

    /// Number of keys with a computation in flight (stale ones included).
    pub fn in_flight(&self) -> usize {
        self.flights.borrow().len()
    }

    /// Whether a flight for `key` started less than its deadline before `now_ms`.
    pub fn is_live(&self, key: &K, now_ms: u64) -> bool {
        self.flights
            .borrow()
            .get(key)
            .is_some_and(|f| f.is_live(now_ms))
    }

    /// Runs `work` unless a live computation for `key` is in flight, in which case waits
    /// for that one's result (at most until its deadline). `Ok((value, led))`: `led` is
    /// true when this caller ran `work`.
    pub async fn run<F, Fut>(
        &self,
        key: K,
        options: FlightOptions<'_>,
        work: F,
    ) -> Result<(V, bool), Abandoned>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let joined = {
            let mut flights = self.flights.borrow_mut();
            match flights.get_mut(&key) {
                Some(flight) if flight.is_live(options.now_ms) => {
                    let (tx, rx) = oneshot::channel();
                    flight.waiters.push(tx);
                    Err((rx, flight.started_ms + flight.deadline_ms))
                }
                // No flight, or a stale one (its leader never came back): lead a new
                // generation. The stale flight's waiters are dropped: they go on alone.
                _ => {
                    let generation = self.next_generation.get() + 1;
                    self.next_generation.set(generation);
                    flights.insert(
                        key.clone(),
                        Flight {
                            generation,
                            started_ms: options.now_ms,
                            deadline_ms: options.deadline_ms,
                            waiters: Vec::new(),
                        },
                    );
                    Ok(generation)
                }
            }
        };
        let generation = match joined {
            Ok(generation) => generation,
            Err((rx, ends_ms)) => {
                let budget = ends_ms.saturating_sub(options.now_ms);
                return follow(rx, options.poll, budget).await.map(|v| (v, false));
            }
        };
        // Leader. The guard clears this generation's entry if this future is dropped
        // before finishing, which drops the senders and wakes the followers.
        let guard = LeaderGuard {
            flight: self,
            key: Some(key),
            generation,
        };
        let value = work().await;
        let key = guard.finish();
        let waiters = self.take_if_current(&key, generation);
        for tx in waiters {
            let _ = tx.send(value.clone());
        }
        Ok((value, true))
    }

    /// Removes the entry for `key` if it is still `generation`'s, returning its waiters.
    fn take_if_current(&self, key: &K, generation: u64) -> Vec<oneshot::Sender<V>> {
        let mut flights = self.flights.borrow_mut();
        if flights.get(key).is_some_and(|f| f.generation == generation) {
            flights.remove(key).map(|f| f.waiters).unwrap_or_default()
        } else {
            Vec::new()
        }
    }
}

/// A follower's wait: woken by the leader, or polling on its own timer until `budget_ms`
/// is used up.
async fn follow<V>(
    mut rx: oneshot::Receiver<V>,
    poll: Option<(&dyn Sleeper, u64)>,
    budget_ms: u64,
) -> Result<V, Abandoned> {
    let Some((sleeper, poll_ms)) = poll else {
        return rx.await.map_err(|_| Abandoned);
    };
    let mut waited_ms = 0;
    loop {
        match rx.try_recv() {
            Ok(Some(value)) => return Ok(value),
            Err(_) => return Err(Abandoned),
            Ok(None) if waited_ms >= budget_ms => return Err(Abandoned),
            Ok(None) => {
                sleeper.sleep(poll_ms).await;
                waited_ms += poll_ms.max(1);
            }
        }
    }
}

struct LeaderGuard<'a, K: Eq + Hash + Clone, V: Clone> {
    flight: &'a SingleFlight<K, V>,
    key: Option<K>,
    generation: u64,
}

impl<K: Eq + Hash + Clone, V: Clone> LeaderGuard<'_, K, V> {
    fn finish(mut self) -> K {
        self.key.take().expect("key present until finish")
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Drop for LeaderGuard<'_, K, V> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            // Dropping the senders wakes this generation's followers with `Abandoned`.
            drop(self.flight.take_if_current(&key, self.generation));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use futures::executor::block_on;
    use futures::future::join_all;
    use std::task::{Context, Poll};

    /// A future that yields once, so several callers can interleave on one thread.
    async fn yield_now() {
        let mut yielded = false;
        futures::future::poll_fn(|cx| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await
    }

    /// A timer that only yields, counting the milliseconds asked for.
    #[derive(Default)]
    struct Timer(Cell<u64>);

    #[async_trait(?Send)]
    impl Sleeper for Timer {
        async fn sleep(&self, ms: u64) {
            self.0.set(self.0.get() + ms);
            yield_now().await;
        }
    }

    fn at(now_ms: u64) -> FlightOptions<'static> {
        FlightOptions {
            now_ms,
            deadline_ms: 1_000,
            poll: None,
        }
    }

    #[test]
    fn concurrent_callers_share_one_run() {
        let flight = SingleFlight::<&str, u32>::new();
        let runs = Cell::new(0);
        let calls = (0..10).map(|_| {
            flight.run("k", at(0), || async {
                runs.set(runs.get() + 1);
                yield_now().await;
                42
            })
        });
        let results = block_on(join_all(calls));
        assert_eq!(runs.get(), 1);
        assert_eq!(results.iter().filter(|r| **r == Ok((42, true))).count(), 1);
        assert_eq!(results.iter().filter(|r| **r == Ok((42, false))).count(), 9);
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
        let results = block_on(join_all([
            flight.run(1, at(0), work(1)),
            flight.run(2, at(0), work(2)),
        ]));
        assert_eq!(results, vec![Ok((1, true)), Ok((2, true))]);
        assert_eq!(block_on(flight.run(1, at(0), work(7))), Ok((7, true)));
        assert_eq!(runs.get(), 3);
    }

    #[test]
    fn dropped_leader_abandons_followers() {
        let flight = SingleFlight::<u8, u8>::new();
        let mut leader = Box::pin(flight.run(1, at(0), || async {
            futures::future::pending::<()>().await;
            1
        }));
        // Poll the leader once so it registers, then start a follower and drop the leader.
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(leader.as_mut().poll(&mut cx).is_pending());
        let mut follower = Box::pin(flight.run(1, at(0), || async { 2 }));
        assert!(follower.as_mut().poll(&mut cx).is_pending());
        drop(leader);
        assert_eq!(block_on(follower), Err(Abandoned));
        assert_eq!(flight.in_flight(), 0);
    }

    /// The Workers hazard: a leader that is never polled again *and never dropped*.
    /// Followers stop waiting at the deadline; later callers lead a new generation; when
    /// the old leader does come back, it cannot touch the new flight.
    #[test]
    fn a_leader_that_never_resumes_cannot_wedge_the_key() {
        let flight = SingleFlight::<u8, u8>::new();
        let timer = Timer::default();
        let polling = |now_ms| FlightOptions {
            now_ms,
            deadline_ms: 1_000,
            poll: Some((&timer as &dyn Sleeper, 5)),
        };
        let resume = Cell::new(false);
        let mut stuck = Box::pin(flight.run(1, polling(0), || async {
            // Pending until `resume` is set, and nobody wakes it: a cancelled request.
            futures::future::poll_fn(|_| {
                if resume.get() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            1
        }));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(stuck.as_mut().poll(&mut cx).is_pending());
        // A follower inside the deadline waits its remaining budget on its own timer, then
        // gives up.
        assert_eq!(
            block_on(flight.run(1, polling(400), || async { 2 })),
            Err(Abandoned)
        );
        assert_eq!(
            timer.0.get(),
            600,
            "waited exactly the rest of the deadline"
        );
        assert!(flight.is_live(&1, 999) && !flight.is_live(&1, 1_000));
        // After the deadline a caller leads a new flight instead of joining the stale one.
        let mut fresh = Box::pin(flight.run(1, polling(1_500), || async {
            yield_now().await;
            3
        }));
        assert!(fresh.as_mut().poll(&mut cx).is_pending());
        // The old leader resumes now and finishes: it must not end the new flight.
        resume.set(true);
        assert_eq!(block_on(stuck.as_mut()), Ok((1, true)));
        assert!(
            flight.is_live(&1, 1_600),
            "the new generation is still in flight"
        );
        let follower = flight.run(1, polling(1_600), || async { 4 });
        let (follower, fresh) = block_on(futures::future::join(follower, fresh));
        assert_eq!((fresh, follower), (Ok((3, true)), Ok((3, false))));
        assert_eq!(flight.in_flight(), 0);
    }
}
