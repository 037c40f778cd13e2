//! `ValueReader`: the read-only handle. Every reading and waiting method of `ValueWatcher`
//! with the same meaning; a `ValueWatcher` dereferences to one; it does not keep the value
//! open but keeps the last value readable; `Clone`, `Send`, `Sync`, `Debug`; usable from
//! threads and from tasks on every executor.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use common::*;
use futures::StreamExt;
use keepwatch::{Error, ValueReader, ValueWatcher};

/// Takes only the read side: a watcher goes here through `Deref`.
fn describe(r: &ValueReader<u32>) -> String {
    format!("{} at v{}", r.get(), r.version())
}

#[test]
fn a_reader_reads_what_the_watcher_sets() {
    watchdog(|| {
        let v = ValueWatcher::new(1u32);
        let r = v.reader();
        assert_eq!((r.get(), r.version(), r.is_closed()), (1, 0, false));
        v.set(2);
        assert_eq!(r.get(), 2);
        assert_eq!(r.with(|x| x * 10), 20);
        assert_eq!(describe(&r), "2 at v1");
        assert_eq!(describe(&v), "2 at v1", "a watcher derefs to a reader");
        let from: ValueReader<u32> = (&v).into();
        assert_eq!(from.get(), 2);
        let as_ref: &ValueReader<u32> = v.as_ref();
        assert_eq!(as_ref.version(), 1);
    });
}

#[test]
fn a_reader_has_every_wait_kind_with_the_same_meaning() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let r = v.reader();
        let w_for = r.wait_for(2);
        let w_not = r.wait_for_not(0);
        let w_until = r.wait_until(|x| *x >= 3);
        let w_map = r.wait_map(|x| (*x == 2).then_some("two"));
        let w_trans = r.wait_transition(|o, n| n < o);
        let w_change = r.wait_for_change();
        let w_closed = r.closed();
        assert_eq!(r.watcher_count(), 7);
        for x in [1, 2, 3, 1] {
            v.set(x);
        }
        assert_eq!(w_for.blocking_timeout(LONG), Ok(2));
        assert_eq!(w_not.blocking_timeout(LONG), Ok(1));
        assert_eq!(w_until.blocking_timeout(LONG), Ok(3));
        assert_eq!(w_map.blocking_timeout(LONG), Ok("two"));
        let t = w_trans.blocking_timeout(LONG).unwrap();
        assert_eq!((t.old, t.new, t.version), (3, 1, 4));
        assert_eq!(w_change.blocking_timeout(LONG), Ok(1));
        assert_eq!(r.watcher_count(), 1, "closed() still pending");
        v.close();
        assert_eq!(w_closed.blocking_timeout(LONG), Ok(()));

        let peer = ValueWatcher::new(None);
        let r = peer.reader();
        let some = r.wait_for_not_none();
        peer.set(Some("10.0.0.7"));
        assert_eq!(some.blocking_timeout(LONG), Ok("10.0.0.7"));
    });
}

#[test]
fn a_reader_subscribes_and_registers_callbacks_like_a_watcher() {
    watchdog(|| {
        let v = ValueWatcher::new(0u32);
        let r = v.reader();
        let mut sub = r.subscribe();
        let mut bounded = r.subscribe_bounded(1);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let _cb = r.on_change(move |o, n| log.lock().unwrap().push((*o, *n)));
        let fired = Arc::new(AtomicUsize::new(0));
        let f = fired.clone();
        let _once = r.on_value(2, move || {
            f.fetch_add(1, Ordering::SeqCst);
        });
        for x in 1..=3 {
            v.set(x);
        }
        let versions: Vec<u64> = sub.iter().take(3).map(|t| t.version).collect();
        assert_eq!(versions, [1, 2, 3]);
        assert_eq!(bounded.try_recv(), Err(Error::Lagged(2)));
        assert_eq!(bounded.try_recv().unwrap().unwrap().new, 3);
        assert_eq!(*seen.lock().unwrap(), [(0, 1), (1, 2), (2, 3)]);
        assert_eq!(fired.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_reader_does_not_keep_the_value_open() {
    watchdog(|| {
        let v = ValueWatcher::new(5u32);
        let r = v.reader();
        let r2 = r.clone();
        let pending = r.wait_for(6);
        let mut sub = r.subscribe();
        v.set(7);
        drop(v);
        assert!(r.is_closed(), "closed by the last watcher's drop");
        assert!(r2.is_closed());
        assert_eq!(pending.blocking_timeout(LONG), Err(Error::Closed));
        assert_eq!(sub.recv().blocking_timeout(LONG).map(|t| t.new), Ok(7));
        assert_eq!(sub.recv().blocking_timeout(LONG), Err(Error::Closed));
    });
}

#[test]
fn get_on_a_reader_works_after_close_and_after_every_watcher_is_gone() {
    watchdog(|| {
        let v = ValueWatcher::new(String::from("first"));
        let r = v.reader();
        v.set("last".to_owned());
        v.close();
        assert_eq!(r.get(), "last");
        let weak = v.downgrade();
        drop(v);
        assert!(weak.upgrade().is_none(), "no watcher left");
        assert_eq!(r.get(), "last");
        assert_eq!(r.version(), 1);
        assert_eq!(r.with(|s| s.len()), 4);
        assert_eq!(
            r.wait_for("last".to_owned()).blocking_timeout(LONG),
            Ok("last".to_owned())
        );
        assert_eq!(
            r.wait_for_change().blocking_timeout(LONG),
            Err(Error::Closed)
        );
        let mut sub = r.subscribe();
        assert_eq!(sub.try_recv(), Err(Error::Closed));
    });
}

#[test]
fn a_reader_is_clone_send_sync_and_debug() {
    fn clone_send_sync<X: Clone + Send + Sync + 'static>() {}
    clone_send_sync::<ValueReader<u32>>();
    clone_send_sync::<ValueReader<Vec<String>>>();
    watchdog(|| {
        let v = ValueWatcher::new(3u32);
        v.set(4);
        let shown = format!("{:?}", v.reader());
        assert!(shown.starts_with("ValueReader"), "{shown}");
        assert!(shown.contains('4') && shown.contains("version"), "{shown}");
        let shown = format!("{:?}", v.map(|x| x + 1));
        assert!(shown.contains('5'), "{shown}");
    });
}

#[test]
fn readers_on_a_thread_and_in_a_task_see_a_brief_state_on_every_executor() {
    watchdog(|| {
        for exec in Exec::ALL {
            let v = ValueWatcher::new("idle");
            let thread_reader = v.reader();
            let task_reader = v.reader();
            let on_thread = thread_reader.wait_for("busy");
            let on_task = task_reader.wait_for("busy");
            let mut feed = task_reader.subscribe();
            let blocked = thread::spawn(move || on_thread.blocking_timeout(LONG));
            let results = exec.run_tasks(vec![
                task(async move {
                    let got = on_task.timeout(LONG).await.unwrap();
                    let mut news = vec![got];
                    while let Some(t) = feed.next().await {
                        news.push(t.new);
                    }
                    news
                }),
                task(async move {
                    yield_now().await;
                    v.set("busy");
                    v.set("idle");
                    drop(v); // closes: the stream ends
                    Vec::new()
                }),
            ]);
            assert_eq!(results[0], ["busy", "busy", "idle"], "on {exec:?}");
            assert_eq!(blocked.join().unwrap(), Ok("busy"));
            assert_eq!(thread_reader.get(), "idle");
        }
    });
}

/// A `T` whose `Debug` prints a reader of its own value (user code under the lock calling back
/// into the value): the inner handle shows as locked; nothing panics or hangs.
#[test]
fn a_debug_of_t_that_prints_its_own_value_shows_it_locked_instead_of_panicking() {
    use std::sync::{Arc, Mutex};

    /// Holds a reader of the value it is the value of (a cycle, broken at the end).
    #[derive(Clone)]
    struct SelfAware(Arc<Mutex<Option<keepwatch::ValueReader<SelfAware>>>>);
    impl PartialEq for SelfAware {
        fn eq(&self, _: &Self) -> bool {
            true
        }
    }
    impl std::fmt::Debug for SelfAware {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SelfAware({:?})", self.0.lock().unwrap().as_ref())
        }
    }

    let cell = Arc::new(Mutex::new(None));
    let value = keepwatch::ValueWatcher::new(SelfAware(cell.clone()));
    *cell.lock().unwrap() = Some(value.reader());
    let shown = format!("{value:?}");
    assert!(shown.contains("<locked>"), "{shown}");
    assert!(shown.contains("version: 0"), "{shown}");
    // Break the cycle, so that nothing leaks (the sanitizer run checks).
    cell.lock().unwrap().take();
}
