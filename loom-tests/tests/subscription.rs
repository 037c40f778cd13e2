//! Model 3: two setters on two threads against two subscriptions.

#![cfg(keepwatch_loom)]

use keepwatch::{Transition, ValueWatcher};
use loom::thread;
use loom_tests::model;

fn recv_two(sub: &mut keepwatch::Subscription<u8>) -> Vec<Transition<u8>> {
    (0..2).map(|_| sub.recv().blocking().unwrap()).collect()
}

/// Model 3: both subscriptions record the same order, every transition exactly once, with
/// gap-free versions and a consistent chain (`old` of each is `new` of the one before).
#[test]
fn m03_two_setters_two_subscriptions_agree_on_one_gap_free_order() {
    model("m03 two setters vs two subscriptions", || {
        let value = ValueWatcher::new(0u8);
        let mut a = value.subscribe();
        let mut b = value.subscribe();
        let (s1, s2) = (value.clone(), value.clone());
        let t1 = thread::spawn(move || assert!(s1.set(1)));
        let t2 = thread::spawn(move || assert!(s2.set(2)));
        // `a` is read (blocking) while the setters run; `b` once they are done. (A third
        // reader thread makes the model too big to finish in minutes.)
        let seen_a = recv_two(&mut a);
        t1.join().unwrap();
        t2.join().unwrap();
        let seen_b = recv_two(&mut b);

        assert_eq!(seen_a, seen_b, "two subscriptions disagree on the order");
        assert_eq!(seen_a[0].old, 0);
        assert_eq!(seen_a[0].version, 1);
        assert_eq!(seen_a[1].old, seen_a[0].new, "broken chain: {seen_a:?}");
        assert_eq!(seen_a[1].version, 2);
        let mut news = [seen_a[0].new, seen_a[1].new];
        news.sort_unstable();
        assert_eq!(news, [1, 2], "each transition exactly once: {seen_a:?}");
        assert_eq!(value.get(), seen_a[1].new);
        assert_eq!(value.version(), 2);
        assert_eq!(a.try_recv(), Ok(None));
        assert_eq!(b.try_recv(), Ok(None));
        drop((a, b));
        assert_eq!(value.watcher_count(), 0);
    });
}
