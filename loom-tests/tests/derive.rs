//! Models 13 and 14: derived values (`map`, `zip`) racing their sources' setters.

#![cfg(keepwatch_loom)]

use std::sync::{Arc, Mutex};

use keepwatch::{Transition, ValueWatcher};
use loom::thread;
use loom_tests::model;

/// Model 13: `map` registered while another thread sets the source twice. The snapshot and the
/// link's registration are one critical section, so the values the map function sees are the
/// source's value at the snapshot and then every later one, each exactly once, in order: a
/// suffix of the source's history. No transition is missed (falls between snapshot and
/// registration) or applied twice. A wait on the derived value completes; dropping the derived
/// value unregisters it.
///
/// The function's record is a plain `std` mutex: instrumentation, not under test (loom runs
/// one thread at a time, so it never contends).
#[test]
fn m13_map_registered_while_the_source_is_set_applies_every_later_transition_once() {
    model("m13 map registration vs set", || {
        let source = ValueWatcher::new(0u8);
        let setter = source.clone();
        let t = thread::spawn(move || {
            assert!(setter.set(1));
            assert!(setter.set(2));
        });
        let calls = Arc::new(Mutex::new(Vec::new()));
        let record = calls.clone();
        let derived = source.map(move |v| {
            record.lock().unwrap().push(*v);
            *v * 10
        });
        let last = derived.wait_for(20);
        t.join().unwrap();
        let seen = calls.lock().unwrap().clone();
        let suffix: Vec<u8> = (seen[0]..=2).collect();
        assert_eq!(
            seen, suffix,
            "not the source's history from the snapshot on"
        );
        assert_eq!(derived.get(), 20);
        assert_eq!(derived.version(), seen.len() as u64 - 1);
        assert_eq!(last.blocking(), Ok(20));
        drop(derived);
        assert!(source.set(3));
        assert_eq!(
            calls.lock().unwrap().len(),
            seen.len(),
            "dropped, still offered"
        );
    });
}

/// Model 14: `zip` with one setter thread per source (`a` goes 0, 1, 2; `b` goes 10, 11). Each
/// source's link offers the pair under the pair's lock, so the pair's history is a merge of
/// the two sources' histories: three transitions, each changing exactly one component, from
/// its source's old value to its new one, each source's in its order, gap-free versions,
/// ending at both last values. A lost offer (a component written back to an old value), a
/// doubled one or a reordered one shows.
#[test]
fn m14_zip_with_two_setter_threads_keeps_each_sources_order() {
    model("m14 zip, two setter threads", || {
        let a = ValueWatcher::new(0u8);
        let b = ValueWatcher::new(10u8);
        let pair = a.zip(&b);
        let mut sub = pair.subscribe();
        let (sa, sb) = (a.clone(), b.clone());
        let ta = thread::spawn(move || {
            assert!(sa.set(1));
            assert!(sa.set(2));
        });
        let tb = thread::spawn(move || assert!(sb.set(11)));
        ta.join().unwrap();
        tb.join().unwrap();
        let seen: Vec<Transition<(u8, u8)>> =
            std::iter::from_fn(|| sub.try_recv().unwrap()).collect();
        assert_eq!(
            seen.len(),
            3,
            "each source transition offered once: {seen:?}"
        );
        let mut prev = (0, 10);
        let mut a_next = 1;
        for (i, t) in seen.iter().enumerate() {
            assert_eq!(t.version, i as u64 + 1);
            assert_eq!(t.old, prev, "broken chain: {seen:?}");
            let a_moved = t.old.0 != t.new.0;
            let b_moved = t.old.1 != t.new.1;
            assert!(a_moved ^ b_moved, "one component per offer: {seen:?}");
            if a_moved {
                assert_eq!(
                    (t.old.0, t.new.0),
                    (a_next - 1, a_next),
                    "a's order: {seen:?}"
                );
                a_next += 1;
            } else {
                assert_eq!((t.old.1, t.new.1), (10, 11), "b's order: {seen:?}");
            }
            prev = t.new;
        }
        assert_eq!(pair.get(), (2, 11));
        assert_eq!(pair.version(), 3);
    });
}
