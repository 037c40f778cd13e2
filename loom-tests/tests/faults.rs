//! Model 11: faults of user code where ordering matters: a waker or a wait predicate that
//! panics during a `set` that completes another waiter in the same critical section.

#![cfg(keepwatch_loom)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Poll;

use keepwatch::ValueWatcher;
use loom::thread;
use loom_tests::{
    model, poll_once, quiet_intended_panics, CountingWaker, PanickingWaker, INTENDED,
};

/// Sets `value` to `new` on a setter thread that must not see a user panic: wakers and wait
/// predicates belong to other parties.
fn set_unharmed(value: &ValueWatcher<u8>, new: u8) {
    let set = catch_unwind(AssertUnwindSafe(|| value.set(new)));
    assert!(
        matches!(set, Ok(true)),
        "a waker's or a predicate's panic reached the setter"
    );
}

/// Model 11: a task whose waker panics and a blocked thread wait for the same value; a `set`
/// on another thread completes both in one critical section, the hostile one first. The
/// waker's panic is contained: the thread is still woken (a lost wake is a loom deadlock), the
/// setter returns normally, the hostile wait still has its value, nothing stays registered.
#[test]
fn m11_a_panicking_waker_does_not_stop_the_wake_of_another_waiter() {
    quiet_intended_panics();
    model("m11 panicking waker vs set", || {
        let value = ValueWatcher::new(0u8);
        // Registered first, so the setter collects (and wakes) its sink before the thread's.
        let mut hostile = value.wait_for(1);
        let good = value.wait_for(1);
        let (panicking, waker) = PanickingWaker::new();
        assert!(poll_once(&mut hostile, &waker).is_pending());
        let setter = value.clone();
        let t = thread::spawn(move || set_unharmed(&setter, 1));
        assert_eq!(good.blocking(), Ok(1));
        t.join().unwrap();
        assert_eq!(panicking.wakes(), 1, "the hostile waker is called once");
        let (_, waker) = CountingWaker::new();
        assert_eq!(poll_once(&mut hostile, &waker), Poll::Ready(Ok(1)));
        assert_eq!(value.watcher_count(), 0);
    });
}

/// Model 11: a wait whose predicate panics on the new value, and a blocked thread whose wait
/// is tested after it in the same `set` on another thread. The panic goes to the hostile
/// wait's finisher and no one else: the other waiter is still completed and woken, the setter
/// returns normally, nothing stays registered.
#[test]
fn m11_a_panicking_predicate_goes_to_its_own_wait_and_the_other_waiter_is_still_woken() {
    quiet_intended_panics();
    model("m11 panicking predicate vs set", || {
        let value = ValueWatcher::new(0u8);
        let hostile = value.wait_until(|v| {
            assert!(*v != 1, "{INTENDED}: a predicate");
            false
        });
        // Tested after the hostile wait (both are predicate waits, in registration order).
        let good = value.wait_until(|v| *v == 1);
        let setter = value.clone();
        let t = thread::spawn(move || set_unharmed(&setter, 1));
        assert_eq!(good.blocking(), Ok(1));
        t.join().unwrap();
        let payload = catch_unwind(AssertUnwindSafe(|| hostile.blocking()))
            .expect_err("the finisher raises the predicate's panic");
        let message = payload.downcast_ref::<String>().map(String::as_str);
        assert!(
            message.is_some_and(|m| m.starts_with(INTENDED)),
            "{message:?}"
        );
        assert_eq!(value.watcher_count(), 0);
    });
}
