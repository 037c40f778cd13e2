//! Derived values (`map`, `zip`) are first-class values: every wait kind, subscription,
//! callback and finisher works on them, from threads and from tasks on every executor; they
//! lose nothing (a projected state the source passed through for an instant is still seen);
//! their versions are their own and gap-free; they close with their sources; a panic in `f`
//! closes only them; their registration is atomic under a concurrent setter; they live while
//! observable and then stop costing the source anything.
//!
//! `KEEPWATCH_STRESS=full cargo test --release --test derived` runs the stress tests at full
//! size.

mod common;
mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Instant;

use common::*;
use futures::StreamExt;
use keepwatch::{Error, Transition, ValueReader, ValueWatcher};
use support::env_is;

/// A way to finish a wait on a blocked thread.
type Finisher<O> = fn(keepwatch::Wait<O>) -> Result<O, Error>;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Conn {
    Connecting,
    Connected,
    Closing,
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Starting,
    Up,
    Down,
}

fn phase(c: &Conn) -> Phase {
    match c {
        Conn::Connecting => Phase::Starting,
        Conn::Connected => Phase::Up,
        Conn::Closing | Conn::Closed => Phase::Down,
    }
}

fn full() -> bool {
    env_is("KEEPWATCH_STRESS", "full")
}

/// What is queued for `sub` (stopping at the end of a closed subscription).
fn drain<T: Clone>(sub: &mut keepwatch::Subscription<T>) -> Vec<Transition<T>> {
    std::iter::from_fn(|| match sub.try_recv() {
        Ok(next) => next,
        Err(Error::Closed) => None,
        Err(e) => panic!("unexpected {e:?}"),
    })
    .collect()
}

fn triples<T: Clone>(ts: &[Transition<T>]) -> Vec<(T, T, u64)> {
    ts.iter()
        .map(|t| (t.old.clone(), t.new.clone(), t.version))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Values and versions
// ---------------------------------------------------------------------------------------------

#[test]
fn a_map_starts_as_f_of_the_current_value_and_takes_each_new_projection_as_its_own_transition() {
    watchdog(|| {
        let conn = ValueWatcher::new(Conn::Connecting);
        conn.set(Conn::Connected);
        let ph = conn.map(phase);
        assert_eq!((ph.get(), ph.version()), (Phase::Up, 0), "its own version");
        let mut sub = ph.subscribe();
        conn.set(Conn::Closing);
        conn.set(Conn::Closed); // Down again: no transition of the map
        conn.set(Conn::Connecting);
        assert_eq!(
            triples(&drain(&mut sub)),
            [
                (Phase::Up, Phase::Down, 1),
                (Phase::Down, Phase::Starting, 2)
            ]
        );
        assert_eq!(ph.version(), 2);
        assert_eq!(conn.version(), 4);
    });
}

#[test]
fn a_zip_starts_as_both_values_and_each_source_transition_offers_one_pair() {
    watchdog(|| {
        let a = ValueWatcher::new(0u32);
        let b = ValueWatcher::new("x");
        let pair = a.zip(&b.reader());
        assert_eq!(pair.get(), (0, "x"));
        let mut sub = pair.subscribe();
        a.set(1);
        b.set("y");
        a.set(2);
        assert_eq!(
            triples(&drain(&mut sub)),
            [
                ((0, "x"), (1, "x"), 1),
                ((1, "x"), (1, "y"), 2),
                ((1, "y"), (2, "y"), 3)
            ]
        );
        let from_reader = a.reader().zip(&pair.map(|p| p.1));
        assert_eq!(
            from_reader.get(),
            (2, "y"),
            "zip on a reader, with a derived value"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Every wait kind, subscription, callback and finisher
// ---------------------------------------------------------------------------------------------

#[test]
fn every_wait_kind_works_on_a_derived_value() {
    watchdog(|| {
        let n = ValueWatcher::new(0u32);
        let tens = n.map(|x| x / 10);
        let opt = n.map(|x| (*x >= 30).then_some(*x));
        let w_for = tens.wait_for(2);
        let w_not = tens.wait_for_not(0);
        let w_until = tens.wait_until(|t| *t >= 3);
        let w_map = tens.wait_map(|t| (*t == 1).then_some("ten-something"));
        let w_trans = tens.wait_transition(|o, n| n < o);
        let w_change = tens.wait_for_change();
        let w_some = opt.wait_for_not_none();
        let w_skip = tens.wait_for(0).skip_current();
        assert_eq!(tens.watcher_count(), 7);
        assert_eq!(opt.watcher_count(), 1);
        assert_eq!(
            n.watcher_count(),
            0,
            "derived values do not count in the source's"
        );
        for x in [5, 12, 25, 33, 7] {
            n.set(x);
        }
        assert_eq!(w_for.blocking_timeout(LONG), Ok(2));
        assert_eq!(w_not.blocking_timeout(LONG), Ok(1));
        assert_eq!(w_until.blocking_timeout(LONG), Ok(3));
        assert_eq!(w_map.blocking_timeout(LONG), Ok("ten-something"));
        let t = w_trans.blocking_timeout(LONG).unwrap();
        assert_eq!((t.old, t.new, t.version), (3, 0, 4));
        assert_eq!(w_change.blocking_timeout(LONG), Ok(1));
        assert_eq!(w_some.blocking_timeout(LONG), Ok(33));
        assert_eq!(w_skip.blocking_timeout(LONG), Ok(0));
        assert_eq!(tens.watcher_count(), 0);
    });
}

#[test]
fn every_blocking_finisher_works_on_a_derived_value() {
    watchdog(|| {
        let cases: [Finisher<bool>; 3] = [
            |w| w.blocking(),
            |w| w.blocking_timeout(LONG),
            |w| w.blocking_deadline(Instant::now() + LONG),
        ];
        for finish in cases {
            let n = ValueWatcher::new(0u32);
            let big = n.map(|x| *x > 100);
            let wait = big.wait_for(true);
            let blocked = thread::spawn(move || finish(wait));
            n.set(500);
            n.set(0);
            assert_eq!(blocked.join().unwrap(), Ok(true));
        }
        let n = ValueWatcher::new(0u32);
        let big = n.map(|x| *x > 100);
        assert_eq!(
            big.wait_for(true).blocking_timeout(SHORT),
            Err(Error::TimedOut)
        );
        assert_eq!(big.watcher_count(), 0);
    });
}

#[test]
fn a_derived_value_is_awaited_and_timed_out_on_every_executor() {
    watchdog(|| {
        for exec in Exec::ALL {
            let n = ValueWatcher::new(0u32);
            let big = n.map(|x| *x > 100);
            let plain = big.wait_for(true);
            let timed = big.wait_for(true);
            let results = exec.run_tasks(vec![
                task(plain),
                task(async move { timed.timeout(LONG).await }),
                task(async move {
                    yield_now().await;
                    n.set(500);
                    n.set(0);
                    Ok(false)
                }),
            ]);
            assert_eq!(results, [Ok(true), Ok(true), Ok(false)], "on {exec:?}");

            let quiet = ValueWatcher::new(0u32);
            let big = quiet.map(|x| *x > 100);
            let timed = big.wait_for(true);
            let got = exec.block_on(async move { timed.timeout(SHORT).await });
            assert_eq!(got, Err(Error::TimedOut), "on {exec:?}");
            assert_eq!(big.watcher_count(), 0, "on {exec:?}");
        }
    });
}

#[test]
fn subscriptions_on_a_derived_value_get_every_transition_through_recv_try_recv_stream_and_iter() {
    watchdog(|| {
        let n = ValueWatcher::new(0u32);
        let parity = n.map(|x| x % 2);
        let mut by_recv = parity.subscribe();
        let mut by_try = parity.subscribe();
        let mut by_stream = parity.subscribe();
        let mut by_iter = parity.subscribe();
        let mut bounded = parity.subscribe_bounded(2);
        for x in 1..=6 {
            n.set(x);
        }
        n.close();
        let want: Vec<u64> = (1..=6).collect();
        let got: Vec<u64> = (0..6)
            .map(|_| by_recv.recv().blocking_timeout(LONG).unwrap().version)
            .collect();
        assert_eq!(got, want);
        assert_eq!(by_recv.recv().blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(drain_ok(&mut by_try), want);
        let streamed: Vec<u64> =
            futures::executor::block_on(by_stream.by_ref().map(|t| t.version).collect());
        assert_eq!(streamed, want);
        let iterated: Vec<u64> = by_iter.iter().map(|t| t.version).collect();
        assert_eq!(iterated, want);
        assert_eq!(bounded.try_recv(), Err(Error::Lagged(4)));
        assert_eq!(bounded.try_recv().unwrap().unwrap().version, 5);
    });

    fn drain_ok(sub: &mut keepwatch::Subscription<u32>) -> Vec<u64> {
        let mut out = Vec::new();
        loop {
            match sub.try_recv() {
                Ok(Some(t)) => out.push(t.version),
                Err(Error::Closed) => return out,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

#[test]
fn callbacks_on_a_derived_value_run_in_order_and_on_value_fires_once() {
    watchdog(|| {
        let conn = ValueWatcher::new(Conn::Connecting);
        let ph = conn.map(phase);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let _cb = ph.on_change(move |o, n| log.lock().unwrap().push((*o, *n)));
        let downs = Arc::new(AtomicUsize::new(0));
        let d = downs.clone();
        let _once = ph.on_value(Phase::Down, move || {
            d.fetch_add(1, Ordering::SeqCst);
        });
        for c in [
            Conn::Connected,
            Conn::Closing,
            Conn::Closed,
            Conn::Connecting,
            Conn::Closing,
        ] {
            conn.set(c);
        }
        assert_eq!(
            *seen.lock().unwrap(),
            [
                (Phase::Starting, Phase::Up),
                (Phase::Up, Phase::Down),
                (Phase::Down, Phase::Starting),
                (Phase::Starting, Phase::Down)
            ]
        );
        assert_eq!(downs.load(Ordering::SeqCst), 1);
    });
}

// ---------------------------------------------------------------------------------------------
// Nothing lost
// ---------------------------------------------------------------------------------------------

#[test]
fn a_thread_waiting_on_a_map_sees_a_projected_state_the_source_held_for_an_instant() {
    watchdog(|| {
        let conn = ValueWatcher::new(Conn::Connecting);
        let ph = conn.map(phase);
        for round in 0..200 {
            let up = ph.wait_for(Phase::Up);
            let blocked = thread::spawn(move || up.blocking_timeout(LONG));
            conn.set(Conn::Connected);
            conn.set(Conn::Closing); // Up for an instant
            conn.set(Conn::Connecting);
            assert_eq!(blocked.join().unwrap(), Ok(Phase::Up), "round {round}");
        }
    });
}

#[test]
fn a_task_waiting_on_a_map_sees_a_projected_state_the_source_held_for_an_instant_on_every_executor()
{
    watchdog(|| {
        for exec in Exec::ALL {
            let conn = ValueWatcher::new(Conn::Connecting);
            let ph = conn.map(phase);
            let setter = conn.clone();
            let rounds = 50;
            let waiter_ph = ph.clone();
            let results = exec.run_tasks(vec![
                task(async move {
                    let mut got = Vec::new();
                    for _ in 0..rounds {
                        // Registered before the setter may move on: the setter waits for it.
                        let up = waiter_ph.wait_for(Phase::Up).skip_current();
                        got.push(up.timeout(LONG).await);
                    }
                    got
                }),
                task(async move {
                    for _ in 0..rounds {
                        // Start a round once the waiter has registered its wait.
                        while ph.watcher_count() == 0 {
                            yield_now().await;
                        }
                        setter.set(Conn::Connected);
                        setter.set(Conn::Closed);
                        // The wait matched during the first `set` (a single setter: the
                        // derived value has moved when `set` returns), so the count is 0 again
                        // until the waiter registers its next wait.
                        setter.set(Conn::Connecting);
                    }
                    Vec::new()
                }),
            ]);
            assert_eq!(results[0], vec![Ok(Phase::Up); rounds], "on {exec:?}");
        }
    });
}

#[test]
fn a_thread_and_a_task_waiting_on_the_same_zip_both_see_a_pair_that_held_for_an_instant() {
    watchdog(|| {
        for exec in Exec::ALL {
            let link = ValueWatcher::new(Conn::Connecting);
            let limit = ValueWatcher::new(1u32);
            let ready = link.map(phase).zip(&limit.reader());
            let on_thread = ready.wait_for((Phase::Up, 2));
            let on_task = ready.wait_for((Phase::Up, 2));
            let mut feed = ready.subscribe();
            let blocked = thread::spawn(move || on_thread.blocking_timeout(LONG));
            let setter = thread::spawn(move || {
                link.set(Conn::Connected);
                limit.set(2); // (Up, 2) ...
                link.set(Conn::Closing); // ... for an instant
                drop(link);
                drop(limit);
            });
            let got = exec.block_on(async move {
                let got = on_task.timeout(LONG).await;
                let all: Vec<_> = feed.by_ref().map(|t| t.new).collect().await;
                (got, all)
            });
            assert_eq!(got.0, Ok((Phase::Up, 2)), "on {exec:?}");
            assert_eq!(
                got.1,
                [(Phase::Up, 1), (Phase::Up, 2), (Phase::Down, 2)],
                "on {exec:?}: the stream ends when both sources have closed"
            );
            assert_eq!(blocked.join().unwrap(), Ok((Phase::Up, 2)));
            setter.join().unwrap();
        }
    });
}

// ---------------------------------------------------------------------------------------------
// "When": with a single setter, after `set` returns
// ---------------------------------------------------------------------------------------------

#[test]
fn after_set_returns_the_derived_values_its_callbacks_and_values_derived_from_it_are_done() {
    watchdog(|| {
        let n = ValueWatcher::new(0u32);
        let doubled = n.map(|x| x * 2);
        let plus_one = doubled.map(|x| x + 1);
        let pair = plus_one.zip(&n.reader());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let _cb = plus_one.on_change(move |_, new| log.lock().unwrap().push(*new));
        for x in 1..=50 {
            assert!(n.set(x));
            assert_eq!(doubled.get(), x * 2);
            assert_eq!(plus_one.get(), x * 2 + 1);
            assert_eq!(pair.get(), (x * 2 + 1, x));
            assert_eq!(seen.lock().unwrap().last(), Some(&(x * 2 + 1)));
            // Five transitions of the map per round: set, update, set_if, modify, modify.
            assert_eq!(plus_one.version(), 5 * u64::from(x - 1) + 1);
            assert!(n.update(|v| Some(v + 1000)));
            assert_eq!(plus_one.get(), (x + 1000) * 2 + 1, "after update");
            assert!(n.set_if(x, |_| true));
            assert!(n.modify(|v| *v += 1));
            assert!(n.modify(|v| *v -= 1));
            assert_eq!(plus_one.get(), x * 2 + 1, "after set_if and modify");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Chains
// ---------------------------------------------------------------------------------------------

#[test]
fn values_derived_from_derived_values_follow_the_whole_chain_even_when_the_middle_handles_are_gone()
{
    watchdog(|| {
        let n = ValueWatcher::new(0u32);
        let top = {
            let a = n.map(|x| x / 2);
            let b = a.map(|x| x % 3);
            b.map(|x| *x == 2)
        }; // the middle readers are dropped: the chain lives through `top`
        let mut sub = top.subscribe();
        let hit = top.wait_for(true);
        for x in 0..12 {
            n.set(x);
        }
        // x/2 % 3 == 2 first at x = 4.
        assert_eq!(hit.blocking_timeout(LONG), Ok(true));
        let news: Vec<bool> = drain(&mut sub).into_iter().map(|t| t.new).collect();
        // x/2 % 3 over 0..12: 0 0 1 1 2 2 0 0 1 1 2 2 → true at 4..6 and 10..12.
        assert_eq!(news, [true, false, true]);
        n.close();
        assert_eq!(
            top.closed().blocking_timeout(LONG),
            Ok(()),
            "closes down the chain"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Close
// ---------------------------------------------------------------------------------------------

#[test]
fn a_map_closes_with_its_source_and_its_waits_end_with_closed() {
    watchdog(|| {
        for by_drop in [false, true] {
            let n = ValueWatcher::new(0u32);
            let m = n.map(|x| x + 1);
            let pending = m.wait_for(100);
            let mut sub = m.subscribe();
            n.set(1);
            assert!(!m.is_closed());
            if by_drop {
                drop(n);
            } else {
                n.close();
            }
            assert!(m.is_closed(), "by_drop {by_drop}");
            assert_eq!(pending.blocking_timeout(LONG), Err(Error::Closed));
            assert_eq!(sub.recv().blocking_timeout(LONG).map(|t| t.new), Ok(2));
            assert_eq!(sub.recv().blocking_timeout(LONG), Err(Error::Closed));
            assert_eq!(m.get(), 2, "the last value stays readable");
            assert_eq!(m.wait_for(2).blocking_timeout(LONG), Ok(2));
            assert_eq!(m.wait_for(3).blocking_timeout(LONG), Err(Error::Closed));
        }
    });
}

#[test]
fn a_zip_closes_only_when_both_sources_have_closed_and_follows_the_open_one_meanwhile() {
    watchdog(|| {
        let a = ValueWatcher::new(0u32);
        let b = ValueWatcher::new(0u32);
        let pair = a.zip(&b.reader());
        let pending = pair.wait_for((9, 9));
        a.set(1);
        a.close();
        assert!(!pair.is_closed());
        b.set(5);
        assert_eq!(pair.get(), (1, 5), "still follows the open source");
        assert!(!pending.is_ready());
        drop(b);
        assert!(pair.is_closed());
        assert_eq!(pending.blocking_timeout(LONG), Err(Error::Closed));
    });
}

#[test]
fn deriving_from_a_closed_value_gives_a_closed_value_with_the_projection() {
    watchdog(|| {
        let a = ValueWatcher::new(3u32);
        let b = ValueWatcher::new(4u32);
        a.close();
        let m = a.map(|x| x * 10);
        assert!(m.is_closed());
        assert_eq!(m.get(), 30);
        let half_open = a.zip(&b);
        assert!(!half_open.is_closed(), "one source open");
        b.close();
        assert!(half_open.is_closed());
        let both_closed = a.zip(&b);
        assert!(both_closed.is_closed());
        assert_eq!(both_closed.get(), (3, 4));
    });
}

#[test]
fn zip_of_a_value_with_itself_panics_clearly() {
    watchdog(|| {
        let a = ValueWatcher::new(0u32);
        let message = expect_panic(|| a.zip(&a.reader()));
        assert!(message.contains("zip"), "{message}");
        assert!(a.set(1), "the value stays usable");
        let ok = a.zip(&a.map(|x| *x));
        assert_eq!(ok.get(), (1, 1), "zip with a map of itself is fine");
    });
}

// ---------------------------------------------------------------------------------------------
// Panics in f
// ---------------------------------------------------------------------------------------------

#[test]
fn a_panic_in_f_at_creation_reaches_the_caller_of_map_and_registers_nothing() {
    watchdog(|| {
        let n = ValueWatcher::new(13u32);
        let token = Arc::new(());
        let held = token.clone();
        let message = expect_panic(move || {
            n.map(move |x| {
                let _keep = &held;
                assert!(*x != 13, "unlucky");
                *x
            })
        });
        assert!(message.contains("unlucky"), "{message}");
        assert_eq!(
            Arc::strong_count(&token),
            1,
            "f was dropped: nothing registered"
        );
    });
    watchdog(|| {
        let n = ValueWatcher::new(13u32);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let _ = catch(|| {
            n.map(move |x| {
                c.fetch_add(1, Ordering::SeqCst);
                assert!(*x != 13, "unlucky");
                *x
            })
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(n.set(1));
        assert!(n.set(2));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "no link left behind");
        assert_eq!(n.watcher_count(), 0);
    });
}

#[test]
fn a_panic_in_f_for_a_later_transition_closes_the_derived_value_and_does_not_reach_the_setter() {
    watchdog(|| {
        let n = ValueWatcher::new(0u32);
        let fragile = n.map(|x| {
            assert!(*x != 3, "cannot project 3");
            *x
        });
        let sturdy = n.map(|x| x * 2);
        let fragile_waits = fragile.wait_for(100);
        let mut fragile_sub = fragile.subscribe();
        let mut sturdy_sub = sturdy.subscribe();
        let mut source_sub = n.subscribe();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let _cb = n.on_change(move |_, new| log.lock().unwrap().push(*new));
        for x in 1..=5 {
            assert!(n.set(x), "the setter is unaffected");
        }
        assert!(fragile.is_closed());
        assert_eq!(fragile.get(), 2, "the last value it took");
        assert_eq!(fragile_waits.blocking_timeout(LONG), Err(Error::Closed));
        let got: Vec<u32> = drain_until_closed(&mut fragile_sub);
        assert_eq!(got, [1, 2]);
        assert_eq!(
            drain(&mut sturdy_sub)
                .iter()
                .map(|t| t.new)
                .collect::<Vec<_>>(),
            [2, 4, 6, 8, 10]
        );
        assert_eq!(drain(&mut source_sub).len(), 5);
        assert_eq!(*seen.lock().unwrap(), [1, 2, 3, 4, 5]);
        assert!(!n.is_closed());
        assert_eq!(n.watcher_count(), 1);
    });

    fn drain_until_closed(sub: &mut keepwatch::Subscription<u32>) -> Vec<u32> {
        let mut out = Vec::new();
        loop {
            match sub.recv().blocking_timeout(LONG) {
                Ok(t) => out.push(t.new),
                Err(Error::Closed) => return out,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cancel-safety
// ---------------------------------------------------------------------------------------------

#[test]
fn waits_and_receives_on_a_derived_value_cancelled_at_any_point_leave_nothing_registered() {
    watchdog(|| {
        let n = ValueWatcher::new(0u32);
        let m = n.map(|x| x % 5);
        let (_, waker) = counting_waker();
        drop(m.wait_for(4));
        let mut polled = m.wait_until(|x| *x == 4);
        assert!(poll_once(&mut polled, &waker).is_pending());
        drop(polled);
        assert_eq!(m.wait_for(4).blocking_timeout(SHORT), Err(Error::TimedOut));
        assert_eq!(
            futures::executor::block_on(m.wait_for(4).timeout(SHORT)),
            Err(Error::TimedOut)
        );
        let mut sub = m.subscribe();
        {
            let mut recv = sub.recv();
            assert!(poll_once(&mut recv, &waker).is_pending());
        }
        let lose = m.wait_for(4);
        let win = m.wait_for(1);
        let setter = n.clone();
        tokio_current_thread().block_on(async move {
            tokio::select! {
                _ = lose => panic!("must not win"),
                got = win => assert_eq!(got, Ok(1)),
                _ = async { yield_now().await; setter.set(1); std::future::pending::<()>().await } => {}
            }
        });
        assert_eq!(m.watcher_count(), 1, "only the subscription");
        assert_eq!(
            sub.try_recv().unwrap().map(|t| t.new),
            Some(1),
            "nothing lost"
        );
        drop(sub);
        assert_eq!(m.watcher_count(), 0);
        assert_eq!(n.watcher_count(), 0);
    });
}

// ---------------------------------------------------------------------------------------------
// Lifetime
// ---------------------------------------------------------------------------------------------

/// A map whose `f` counts its calls and holds `token`.
fn counted_map(n: &ValueWatcher<u32>, token: &Arc<()>) -> (ValueReader<u32>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, t) = (calls.clone(), token.clone());
    let m = n.map(move |x| {
        let _keep = &t;
        c.fetch_add(1, Ordering::SeqCst);
        x + 1
    });
    (m, calls)
}

#[test]
fn dropping_the_last_reader_of_a_derived_value_unregisters_it_and_f_stops_running() {
    watchdog(|| {
        let n = ValueWatcher::new(0u32);
        let token = Arc::new(());
        let (m, calls) = counted_map(&n, &token);
        let other = m.clone();
        n.set(1);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "creation and one transition"
        );
        drop(m);
        n.set(2);
        assert_eq!(calls.load(Ordering::SeqCst), 3, "a clone still observes it");
        drop(other);
        for x in 3..10 {
            n.set(x);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3, "f no longer called");
        assert_eq!(Arc::strong_count(&token), 1, "f itself was dropped");
    });
}

#[test]
fn a_wait_or_a_subscription_keeps_a_derived_value_alive_until_it_is_gone() {
    watchdog(|| {
        let n = ValueWatcher::new(0u32);
        let token = Arc::new(());
        let (m, calls) = counted_map(&n, &token);
        let wait = m.wait_for(3);
        let mut sub = m.subscribe();
        drop(m);
        n.set(2);
        assert_eq!(wait.blocking_timeout(LONG), Ok(3), "the wait kept it alive");
        n.set(3);
        assert_eq!(
            drain(&mut sub).iter().map(|t| t.new).collect::<Vec<_>>(),
            [3, 4]
        );
        drop(sub);
        let before = calls.load(Ordering::SeqCst);
        n.set(4);
        n.set(5);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            before,
            "unregistered with its last watcher"
        );
        assert_eq!(Arc::strong_count(&token), 1);
    });
}

#[test]
fn a_callback_on_a_derived_value_keeps_it_alive_until_cancelled() {
    watchdog(|| {
        let n = ValueWatcher::new(0u32);
        let token = Arc::new(());
        let (m, calls) = counted_map(&n, &token);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let handle = m.on_change(move |_, new| log.lock().unwrap().push(*new));
        drop(m);
        n.set(1);
        n.set(2);
        assert_eq!(*seen.lock().unwrap(), [2, 3], "alive through its callback");
        handle.cancel();
        let before = calls.load(Ordering::SeqCst);
        n.set(3);
        n.set(4);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            before,
            "unregistered after the cancel"
        );
        assert_eq!(*seen.lock().unwrap(), [2, 3]);
        assert_eq!(Arc::strong_count(&token), 1);
    });
}

#[test]
fn a_value_derived_from_a_derived_value_keeps_it_alive_and_releases_it_when_dropped() {
    watchdog(|| {
        let n = ValueWatcher::new(0u32);
        let token = Arc::new(());
        let (m, calls) = counted_map(&n, &token);
        let top = m.map(|x| x * 10);
        drop(m);
        n.set(1);
        assert_eq!(top.get(), 20);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        drop(top);
        n.set(2);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "the whole chain unregistered"
        );
        assert_eq!(Arc::strong_count(&token), 1);
    });
}

#[test]
fn derived_values_do_not_count_in_their_sources_watcher_count() {
    watchdog(|| {
        let a = ValueWatcher::new(0u32);
        let b = ValueWatcher::new(0u32);
        let m = a.map(|x| x + 1);
        let z = a.zip(&b);
        let _w = m.wait_for(5);
        let _s = z.subscribe();
        let _c = m.on_change(|_, _| {});
        assert_eq!((a.watcher_count(), b.watcher_count()), (0, 0));
        assert_eq!((m.watcher_count(), z.watcher_count()), (1, 1));
    });
}

#[test]
fn derived_values_created_and_dropped_in_a_burst_leave_the_source_costing_nothing() {
    watchdog(|| {
        let n = ValueWatcher::new(0u32);
        let token = Arc::new(());
        let mut total = Arc::new(AtomicUsize::new(0));
        for _ in 0..2_000 {
            let (m, calls) = counted_map(&n, &token);
            let z = m.zip(&n);
            n.set(n.get() + 1);
            drop((m, z));
            total = calls;
        }
        let before = total.load(Ordering::SeqCst);
        n.set(0);
        assert_eq!(total.load(Ordering::SeqCst), before);
        assert_eq!(Arc::strong_count(&token), 1, "every f dropped");
        assert_eq!(n.watcher_count(), 0);
    });
}

// ---------------------------------------------------------------------------------------------
// Stress: registration under a concurrent setter; zip with two setter threads
// ---------------------------------------------------------------------------------------------

#[test]
fn a_map_registered_while_another_thread_sets_sees_exactly_the_sources_suffix_from_its_snapshot() {
    let (n_sets, max_maps) = if full() {
        (1_000_000u64, 256)
    } else {
        (20_000u64, 48)
    };
    with_watchdog(120, move || {
        let src = ValueWatcher::new(0u64);
        let done = Arc::new(AtomicBool::new(false));
        let setter = {
            let src = src.clone();
            let done = done.clone();
            thread::spawn(move || {
                for x in 1..=n_sets {
                    assert!(src.set(x));
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        // Each map records every input its `f` sees (the snapshot first).
        let mut maps = Vec::new();
        let mut last_version = u64::MAX;
        while !done.load(Ordering::SeqCst) && maps.len() < max_maps {
            let at = src.version();
            if at == last_version {
                thread::yield_now();
                continue;
            }
            last_version = at;
            let inputs = Arc::new(Mutex::new(Vec::new()));
            let rec = inputs.clone();
            let m = src.map(move |x| {
                rec.lock().unwrap().push(*x);
                x * 3
            });
            let sub = m.subscribe();
            let chained = m.map(|x| x / 3);
            maps.push((m, sub, chained, inputs));
        }
        setter.join().unwrap();
        assert!(!maps.is_empty());
        for (i, (m, mut sub, chained, inputs)) in maps.into_iter().enumerate() {
            let inputs = inputs.lock().unwrap().clone();
            let x0 = inputs[0];
            let want: Vec<u64> = (x0..=n_sets).collect();
            assert!(
                inputs == want,
                "map #{i}: f saw a gap or a repeat after its snapshot {x0} (len {} vs {})",
                inputs.len(),
                want.len()
            );
            assert_eq!(m.get(), n_sets * 3, "map #{i}");
            assert_eq!(
                m.version(),
                n_sets - x0,
                "map #{i}: one transition per source one"
            );
            assert_eq!(chained.get(), n_sets, "map #{i}: the chain");
            let got = drain(&mut sub);
            let s0 = *sub.initial();
            let mut prev = s0;
            for t in &got {
                assert_eq!(t.old, prev, "map #{i}");
                assert_eq!(t.new, prev + 3, "map #{i}: f of the next source value");
                assert_eq!(
                    t.version,
                    t.new / 3 - x0,
                    "map #{i}: its own gap-free versions"
                );
                prev = t.new;
            }
            assert_eq!(prev, n_sets * 3, "map #{i}");
        }
    });
}

#[test]
fn a_zip_keeps_each_sources_own_order_with_two_setter_threads() {
    let n = if full() { 200_000u32 } else { 5_000u32 };
    with_watchdog(120, move || {
        let a = ValueWatcher::new(0u32);
        let b = ValueWatcher::new(0u32);
        let pair = a.zip(&b);
        let mut sub = pair.subscribe();
        let (tx, rx) = mpsc::channel();
        let task_feed = pair.subscribe();
        let task_side = thread::spawn(move || {
            smol::block_on(async move {
                let all: Vec<(u32, u32)> = task_feed.map(|t| t.new).collect().await;
                tx.send(all).unwrap();
            })
        });
        let setters: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|v| {
                thread::spawn(move || {
                    for x in 1..=n {
                        assert!(v.set(x));
                    }
                })
            })
            .collect();
        for s in setters {
            s.join().unwrap();
        }
        drop((a, b));
        let got = drain(&mut sub);
        assert_eq!(
            got.len() as u32,
            2 * n,
            "one transition per source transition"
        );
        let mut prev = (0u32, 0u32);
        for (i, t) in got.iter().enumerate() {
            assert_eq!(t.old, prev);
            assert_eq!(t.version, i as u64 + 1);
            let step = (t.new.0 - prev.0, t.new.1 - prev.1);
            assert!(
                step == (1, 0) || step == (0, 1),
                "each pair moves one source one step: {prev:?} -> {:?}",
                t.new
            );
            prev = t.new;
        }
        assert_eq!(prev, (n, n));
        let from_task = rx.recv_timeout(LONG).expect("the task's stream ended");
        task_side.join().unwrap();
        assert_eq!(
            from_task,
            got.iter().map(|t| t.new).collect::<Vec<_>>(),
            "a task sees the same merge"
        );
    });
}

/// A wait keeps the derived value it waits on alive: `source.map(f).wait_for(x)` drops the
/// only reader at once, and the wait still completes from the source's later sets, on a thread
/// and in a task. Once the wait is gone, the derived value is too (the source stops running
/// its function).
#[test]
fn a_wait_keeps_its_derived_value_alive_after_the_last_reader_goes() {
    watchdog(|| {
        let source = ValueWatcher::new(0u32);
        let on_thread = source.map(|x| x / 10).wait_for(2);
        let in_task = source.map(|x| x % 2 == 1).wait_for(true);
        let setter = source.clone();
        let t = thread::spawn(move || {
            for x in 1..=25 {
                setter.set(x);
            }
        });
        assert_eq!(on_thread.blocking_timeout(LONG), Ok(2));
        assert_eq!(futures::executor::block_on(in_task.timeout(LONG)), Ok(true));
        t.join().unwrap();
        // A dropped (cancelled) wait lets go of its derived value: `f` stops running.
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let pending = source
            .map(move |x| {
                counted.fetch_add(1, Ordering::SeqCst);
                x + 1
            })
            .wait_for(1_000);
        source.set(100);
        assert_eq!(calls.load(Ordering::SeqCst), 2, "at creation, then the set");
        drop(pending);
        source.set(101);
        assert_eq!(calls.load(Ordering::SeqCst), 2, "the derived value is gone");
    });
}
