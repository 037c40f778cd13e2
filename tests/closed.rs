//! `closed()`: close as an event. Completes with `Ok(())` once the value is closed (at once if
//! it already is), through every finisher, on every executor; no transition completes it; it is
//! counted by `watcher_count` while pending and cancel-safe; it works on a `ValueReader` and on
//! a derived value.

mod common;

use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use futures::future::{select, Either};
use keepwatch::{Error, ValueWatcher};

/// A way to finish a wait on a blocked thread.
type Finisher<O> = fn(keepwatch::Wait<O>) -> Result<O, Error>;

#[test]
fn closed_completes_with_ok_when_close_is_called() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let ended = v.closed();
        assert!(!ended.is_ready());
        v.close();
        assert!(ended.is_ready());
        assert_eq!(ended.blocking_timeout(LONG), Ok(()));
    });
}

#[test]
fn closed_completes_when_the_last_watcher_is_dropped() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let other = v.clone();
        let ended = v.closed();
        drop(v);
        assert!(!ended.is_ready(), "a handle is still alive");
        let blocked = thread::spawn(move || ended.blocking_timeout(LONG));
        drop(other);
        assert_eq!(blocked.join().unwrap(), Ok(()));
    });
}

#[test]
fn closed_on_a_closed_value_completes_at_once_and_registers_nothing() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        v.close();
        let mut ended = v.closed();
        assert!(ended.is_ready());
        assert_eq!(v.watcher_count(), 0);
        let (_, waker) = counting_waker();
        assert_eq!(poll_once(&mut ended, &waker), Poll::Ready(Ok(())));
        assert_eq!(v.closed().blocking_timeout(SHORT), Ok(()));
    });
}

#[test]
fn no_transition_completes_closed() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let ended = v.closed();
        for i in 1..=100 {
            assert!(v.set(i));
        }
        assert!(v.modify(|x| *x = 0));
        assert!(!ended.is_ready());
        assert_eq!(ended.blocking_timeout(SHORT), Err(Error::TimedOut));
        let again = v.closed().skip_current();
        v.close();
        assert_eq!(
            again.blocking_timeout(LONG),
            Ok(()),
            "skip_current changes nothing"
        );
    });
}

#[test]
fn closed_is_counted_by_watcher_count_while_pending_and_not_after() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let a = v.closed();
        let b = v.reader().closed();
        assert_eq!(v.watcher_count(), 2);
        drop(a);
        assert_eq!(v.watcher_count(), 1);
        v.close();
        assert_eq!(v.watcher_count(), 0, "ended by the close");
        assert_eq!(b.blocking_timeout(LONG), Ok(()));
    });
}

#[test]
fn closed_finishes_through_every_blocking_finisher() {
    watchdog(|| {
        let cases: [Finisher<()>; 3] = [
            |w| w.blocking(),
            |w| w.blocking_timeout(LONG),
            |w| w.blocking_deadline(Instant::now() + LONG),
        ];
        for finish in cases {
            let v = ValueWatcher::new(0u32);
            let ended = v.closed();
            let blocked = thread::spawn(move || finish(ended));
            v.set(1);
            drop(v);
            assert_eq!(blocked.join().unwrap(), Ok(()));
        }
        let v = ValueWatcher::new(0u32);
        let start = Instant::now();
        assert_eq!(
            v.closed()
                .blocking_deadline(Instant::now() + SHORT)
                .unwrap_err(),
            Error::TimedOut
        );
        assert!(start.elapsed() >= SHORT);
    });
}

#[test]
fn closed_is_awaited_and_timed_out_on_every_executor() {
    watchdog(|| {
        for exec in Exec::ALL {
            let v = ValueWatcher::new(0u32);
            let plain = v.closed();
            let timed = v.closed();
            let closer = v.clone();
            let results = exec.run_tasks(vec![
                task(plain),
                task(async move { timed.timeout(LONG).await }),
                task(async move {
                    yield_now().await;
                    closer.close();
                    Ok(())
                }),
            ]);
            assert_eq!(results, vec![Ok(()), Ok(()), Ok(())], "on {exec:?}");

            let open = ValueWatcher::new(0u32);
            let timed = open.closed();
            let got = exec.block_on(async move { timed.timeout(SHORT).await });
            assert_eq!(got, Err(Error::TimedOut), "on {exec:?}");
            assert_eq!(open.watcher_count(), 0, "on {exec:?}");
        }
    });
}

#[test]
fn a_thread_and_a_task_both_learn_of_the_close_from_a_third_thread() {
    watchdog(|| {
        for exec in Exec::ALL {
            let v = ValueWatcher::new(0u32);
            let reader = v.reader();
            let on_thread = v.closed();
            let blocked = thread::spawn(move || on_thread.blocking_timeout(LONG));
            let closer = thread::spawn(move || {
                v.set(1);
                drop(v);
            });
            let got = exec.block_on(async move { reader.closed().timeout(LONG).await });
            assert_eq!(got, Ok(()), "on {exec:?}");
            assert_eq!(blocked.join().unwrap(), Ok(()));
            closer.join().unwrap();
        }
    });
}

#[test]
fn dropping_closed_waits_at_any_point_deregisters_them() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        // Unpolled.
        drop(v.closed());
        // After a pending poll.
        let mut polled = v.closed();
        let (_, waker) = counting_waker();
        assert!(poll_once(&mut polled, &waker).is_pending());
        assert_eq!(v.watcher_count(), 1);
        drop(polled);
        // Timed out, blocking and async.
        assert_eq!(v.closed().blocking_timeout(SHORT), Err(Error::TimedOut));
        let timed = v.closed();
        assert_eq!(
            futures::executor::block_on(timed.timeout(SHORT)),
            Err(Error::TimedOut)
        );
        // The losing branch of a select, on tokio and on smol.
        let lose = v.closed();
        let win = v.wait_for(1);
        let setter = v.clone();
        tokio_current_thread().block_on(async move {
            tokio::select! {
                _ = lose => panic!("closed() must not win"),
                got = win => assert_eq!(got, Ok(1)),
                _ = async { yield_now().await; setter.set(1); std::future::pending::<()>().await } => {}
            }
        });
        let lose = v.closed();
        let win = v.wait_for(2);
        let setter = v.clone();
        smol::block_on(async move {
            let set = async move {
                yield_now().await;
                setter.set(2);
            };
            let (got, _) = futures::join!(select(lose, win), set);
            match got {
                Either::Right((got, lose)) => {
                    assert_eq!(got, Ok(2));
                    drop(lose);
                }
                Either::Left(_) => panic!("closed() must not win"),
            }
        });
        assert_eq!(v.watcher_count(), 0, "every closed() wait deregistered");
        let last = v.closed();
        v.close();
        assert_eq!(last.blocking_timeout(LONG), Ok(()));
    });
}

#[test]
fn closed_on_a_reader_completes_when_the_watchers_are_gone() {
    watchdog(|| {
        let v = ValueWatcher::new("open");
        let reader = v.reader();
        let ended = reader.closed();
        assert_eq!(reader.watcher_count(), 1);
        drop(v);
        assert_eq!(ended.blocking_timeout(LONG), Ok(()));
        assert_eq!(
            reader.closed().blocking_timeout(SHORT),
            Ok(()),
            "at once now"
        );
        assert_eq!(reader.get(), "open");
    });
}

#[test]
fn closed_on_derived_values_completes_when_their_sources_close() {
    watchdog(|| {
        let a = ValueWatcher::new(1u32);
        let b = ValueWatcher::new(2u32);
        let doubled = a.map(|x| x * 2);
        let pair = a.zip(&b);
        let doubled_closed = doubled.closed();
        let pair_closed = pair.closed();
        a.close();
        assert_eq!(doubled_closed.blocking_timeout(LONG), Ok(()));
        assert_eq!(
            pair_closed.blocking_timeout(Duration::from_millis(30)),
            Err(Error::TimedOut),
            "a pair stays open while one source is"
        );
        let pair_closed = pair.closed();
        drop(b);
        assert_eq!(pair_closed.blocking_timeout(LONG), Ok(()));
    });
}
