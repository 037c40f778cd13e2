//! The one global order: racing setters on threads and tasks, subscribers on threads, tokio
//! tasks and a smol task, and an `on_change` callback all record the same complete, gap-free
//! sequence; threads and tasks waiting on one value agree on the first match.

mod common;

use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use keepwatch::{Error, Subscription, Transition, ValueWatcher};

/// `(setter id, sequence number)`: every value set in these tests is unique, so every `set`
/// is a transition.
type Val = (usize, usize);

const INITIAL: Val = (usize::MAX, 0);

fn as_tuples<T: Clone>(seq: &[Transition<T>]) -> Vec<(T, T, u64)> {
    seq.iter()
        .map(|t| (t.old.clone(), t.new.clone(), t.version))
        .collect()
}

/// Checks that `seq` is a complete record of `setters * per` transitions starting at
/// `initial`: versions `1..=n` without gaps, each `old` the previous `new`, and every setter's
/// values in the order that setter set them.
fn check_complete(name: &str, seq: &[Transition<Val>], setters: usize, per: usize) {
    let n = setters * per;
    assert_eq!(seq.len(), n, "{name}: wrong number of transitions");
    let mut prev = INITIAL;
    let mut next_k = vec![1usize; setters];
    for (i, t) in seq.iter().enumerate() {
        assert_eq!(t.version, i as u64 + 1, "{name}: version gap at index {i}");
        assert_eq!(
            t.old, prev,
            "{name}: old is not the previous new at index {i}"
        );
        let (id, k) = t.new;
        assert!(id < setters, "{name}: unknown setter {id}");
        assert_eq!(k, next_k[id], "{name}: setter {id} out of program order");
        next_k[id] += 1;
        prev = t.new;
    }
}

fn thread_subscriber(mut sub: Subscription<Val>) -> thread::JoinHandle<Vec<Transition<Val>>> {
    thread::spawn(move || {
        let mut out = Vec::new();
        loop {
            match sub.recv().blocking_timeout(LONG) {
                Ok(t) => out.push(t),
                Err(Error::Closed) => return out,
                Err(e) => panic!("thread subscriber: {e}"),
            }
        }
    })
}

#[test]
fn subscribers_on_threads_and_tasks_all_record_the_same_complete_gap_free_sequence() {
    watchdog(|| {
        const SETTER_THREADS: usize = 2;
        const SETTERS: usize = SETTER_THREADS + 1; // plus one tokio task
        const PER: usize = 200;

        let v = ValueWatcher::new(INITIAL);
        let rt = tokio_multi_thread();

        // Every subscriber exists before the first set.
        let recv_thread = thread_subscriber(v.subscribe());
        let iter_thread = {
            let mut sub = v.subscribe();
            thread::spawn(move || sub.iter().collect::<Vec<_>>())
        };
        let stream_task = rt.spawn(v.subscribe().collect::<Vec<_>>());
        let recv_task = {
            let mut sub = v.subscribe();
            rt.spawn(async move {
                let mut out = Vec::new();
                loop {
                    match sub.recv().timeout(LONG).await {
                        Ok(t) => out.push(t),
                        Err(Error::Closed) => return out,
                        Err(e) => panic!("tokio subscriber: {e}"),
                    }
                }
            })
        };
        let smol_task = smol::spawn(v.subscribe().collect::<Vec<_>>());
        let callback_log = Arc::new(Mutex::new(Vec::new()));
        let log2 = Arc::clone(&callback_log);
        let _cb = v.on_change(move |old: &Val, new: &Val| log2.lock().unwrap().push((*old, *new)));

        let start = Arc::new(Barrier::new(SETTER_THREADS + 1));
        let setter_threads: Vec<_> = (0..SETTER_THREADS)
            .map(|id| {
                let v = v.clone();
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    for k in 1..=PER {
                        assert!(v.set((id, k)));
                    }
                })
            })
            .collect();
        let setter_task = {
            let v = v.clone();
            rt.spawn(async move {
                for k in 1..=PER {
                    assert!(v.set((SETTER_THREADS, k)));
                    if k % 16 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        };
        start.wait();
        for h in setter_threads {
            h.join().unwrap();
        }
        rt.block_on(join_tokio(setter_task));
        assert_eq!(v.version(), (SETTERS * PER) as u64);
        v.close();

        let reference = recv_thread.join().unwrap();
        check_complete("thread recv", &reference, SETTERS, PER);
        let others = [
            ("thread iter", iter_thread.join().unwrap()),
            ("tokio stream", rt.block_on(join_tokio(stream_task))),
            ("tokio recv", rt.block_on(join_tokio(recv_task))),
            ("smol stream", smol::block_on(smol_task)),
        ];
        for (name, seq) in &others {
            check_complete(name, seq, SETTERS, PER);
            assert_eq!(
                as_tuples(seq),
                as_tuples(&reference),
                "{name} disagrees on order"
            );
        }
        let from_callback = callback_log.lock().unwrap().clone();
        let from_sub: Vec<_> = reference.iter().map(|t| (t.old, t.new)).collect();
        assert_eq!(
            from_callback, from_sub,
            "the on_change callback disagrees on order"
        );
    });
}

#[test]
fn two_subscriptions_and_a_callback_agree_on_racing_set_if_and_update() {
    watchdog(|| {
        const THREADS: u64 = 2;
        const PER: u64 = 300;
        let v = ValueWatcher::new(0u64);
        let mut a = v.subscribe();
        let mut b = v.subscribe();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = Arc::clone(&log);
        let _cb = v.on_change(move |old: &u64, new: &u64| log2.lock().unwrap().push((*old, *new)));
        let handles: Vec<_> = (0..THREADS)
            .map(|id| {
                let v = v.clone();
                thread::spawn(move || {
                    let mut done = 0;
                    while done < PER {
                        let ok = if (done + id) % 2 == 0 {
                            v.update(|x| Some(x + 1))
                        } else {
                            let cur = v.get();
                            v.set_if(cur + 1, move |x| *x == cur)
                        };
                        if ok {
                            done += 1;
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        v.close();
        let n = THREADS * PER;
        let want: Vec<_> = (1..=n).map(|i| (i - 1, i, i)).collect();
        assert_eq!(as_tuples(&a.iter().collect::<Vec<_>>()), want);
        assert_eq!(as_tuples(&b.iter().collect::<Vec<_>>()), want);
        let want_log: Vec<_> = (1..=n).map(|i| (i - 1, i)).collect();
        assert_eq!(*log.lock().unwrap(), want_log);
    });
}

#[test]
fn a_subscription_created_while_setters_race_sees_an_exact_gap_free_suffix() {
    watchdog(|| {
        const SETTERS: usize = 2;
        const PER: usize = 300;
        let v = ValueWatcher::new(INITIAL);
        let full = v.subscribe();
        let start = Arc::new(Barrier::new(SETTERS + 1));
        let handles: Vec<_> = (0..SETTERS)
            .map(|id| {
                let v = v.clone();
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    for k in 1..=PER {
                        assert!(v.set((id, k)));
                    }
                })
            })
            .collect();
        start.wait();
        thread::sleep(Duration::from_micros(200));
        let mut late = v.subscribe();
        for h in handles {
            h.join().unwrap();
        }
        v.close();
        let full = futures::executor::block_on(full.collect::<Vec<_>>());
        check_complete("full", &full, SETTERS, PER);
        let initial = *late.initial();
        let suffix: Vec<_> = late.iter().collect();
        let skipped = full.len() - suffix.len();
        assert_eq!(
            as_tuples(&suffix),
            as_tuples(&full[skipped..]),
            "the late subscription is a suffix"
        );
        let expected_initial = if skipped == 0 {
            INITIAL
        } else {
            full[skipped - 1].new
        };
        assert_eq!(
            initial, expected_initial,
            "initial is the old of its first transition"
        );
    });
}

#[test]
fn threads_and_tasks_waiting_on_one_value_all_get_the_first_match() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let rt = tokio_multi_thread();

        // Created before any set: registered from the start.
        let thread_wait = v.wait_until(|x| *x >= 3);
        let thread_waiter = thread::spawn(move || thread_wait.blocking_timeout(LONG));
        let tokio_waiter = rt.spawn(v.wait_until(|x| *x >= 3).timeout(LONG));
        let smol_waiter = smol::spawn(v.wait_until(|x| *x >= 3).timeout(LONG));
        let futures_wait = v.wait_until(|x| *x >= 3);
        let futures_waiter =
            thread::spawn(move || futures::executor::block_on(futures_wait.timeout(LONG)));
        let mut sub = v.subscribe();

        let setter = {
            let v = v.clone();
            thread::spawn(move || {
                for i in 1..=5 {
                    assert!(v.set(i));
                }
            })
        };
        // A task on the tokio runtime sets the value too, after the thread is done.
        setter.join().unwrap();
        let task_setter = {
            let v = v.clone();
            rt.spawn(async move { v.set(10) })
        };
        assert!(rt.block_on(join_tokio(task_setter)));

        assert_eq!(thread_waiter.join().unwrap(), Ok(3));
        assert_eq!(rt.block_on(join_tokio(tokio_waiter)), Ok(3));
        assert_eq!(smol::block_on(smol_waiter), Ok(3));
        assert_eq!(futures_waiter.join().unwrap(), Ok(3));
        let news: Vec<u32> = std::iter::from_fn(|| sub.try_recv().unwrap())
            .map(|t| t.new)
            .collect();
        assert_eq!(news, vec![1, 2, 3, 4, 5, 10]);
    });
}

#[test]
fn a_thread_and_a_task_setting_and_waiting_on_each_other_never_lose_a_step() {
    // Ping-pong: a thread waits for odd values and sets the next even one; a task on each
    // executor waits for even values and sets the next odd one. A lost transition hangs.
    watchdog(|| {
        const ROUNDS: u32 = 50;
        for exec in Exec::ALL {
            let v = ValueWatcher::new(0u32);
            let thread_side = {
                let v = v.clone();
                thread::spawn(move || {
                    let mut x = 1;
                    while x < 2 * ROUNDS {
                        assert_eq!(v.wait_for(x).blocking_timeout(LONG), Ok(x));
                        assert!(v.set(x + 1));
                        x += 2;
                    }
                })
            };
            let task_v = v.clone();
            exec.block_on(async move {
                let mut x = 0;
                while x < 2 * ROUNDS {
                    assert_eq!(
                        task_v.wait_for(x).timeout(LONG).await,
                        Ok(x),
                        "waiting for {x}"
                    );
                    assert!(task_v.set(x + 1));
                    x += 2;
                }
            });
            thread_side.join().unwrap();
            assert_eq!(v.version(), u64::from(2 * ROUNDS), "on {exec:?}");
        }
    });
}
