//! Model 9: ordered callback dispatch with two setters and a callback that sets.

#![cfg(keepwatch_loom)]

use std::sync::Arc;

use keepwatch::ValueWatcher;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Mutex;
use loom::thread;
use loom_tests::model;

/// Model 9: two setters on two threads and an `on_change` callback that itself calls `set`
/// (through a weak handle): no deadlock, every transition reaches the callback exactly once,
/// in the global order a subscription records, with a consistent chain; by the time every
/// setter has returned, every callback has run. An `on_value` callback fires exactly once.
#[test]
fn m09_callbacks_observe_the_global_order_even_when_a_callback_sets() {
    model("m09 callbacks: two setters + a setting callback", || {
        let value = ValueWatcher::new(0u8);
        let mut sub = value.subscribe();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let weak = value.downgrade();
        let _on_change = value.on_change(move |old, new| {
            log.lock().unwrap().push((*old, *new));
            if *new == 1 {
                if let Some(value) = weak.upgrade() {
                    assert!(value.set(3));
                }
            }
        });
        let fired = Arc::new(AtomicUsize::new(0));
        let count = fired.clone();
        let _on_value = value.on_value(3, move || {
            count.fetch_add(1, Ordering::SeqCst);
        });
        let (s1, s2) = (value.clone(), value.clone());
        let t1 = thread::spawn(move || assert!(s1.set(1)));
        let t2 = thread::spawn(move || assert!(s2.set(2)));
        t1.join().unwrap();
        t2.join().unwrap();

        let seen = seen.lock().unwrap().clone();
        let logged: Vec<(u8, u8)> = std::iter::from_fn(|| sub.try_recv().unwrap())
            .map(|t| (t.old, t.new))
            .collect();
        assert_eq!(seen, logged, "callbacks and the subscription disagree");
        assert_eq!(seen.len(), 3);
        assert_eq!(value.version(), 3);
        assert_eq!(seen[0].0, 0);
        for pair in seen.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "broken chain: {seen:?}");
        }
        assert_eq!(seen[2].1, value.get());
        assert_eq!(fired.load(Ordering::SeqCst), 1);
    });
}
