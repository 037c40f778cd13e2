//! Models 12 and 15: the hand-off path: two threads, or two tasks, that take turns through waits.

#![cfg(keepwatch_loom)]

use keepwatch::{Error, ValueWatcher, Wait};
use loom::thread;
use loom_tests::model;

/// Ping-pong of two rounds between two threads, each finishing its waits with `finish` while
/// the other sets. Every wait gets its value (a lost wake is a loom deadlock), nothing stays
/// registered.
fn hand_off_twice(finish: fn(Wait<u8>) -> Result<u8, Error>) {
    let value = ValueWatcher::new(0u8);
    // Registered before the other thread starts: this one surely waits.
    let ping = value.wait_for(1);
    let other = value.clone();
    let t = thread::spawn(move || {
        assert_eq!(finish(ping), Ok(1));
        assert!(other.set(2));
        assert_eq!(finish(other.wait_for(3)), Ok(3));
        assert!(other.set(4));
    });
    assert!(value.set(1));
    assert_eq!(finish(value.wait_for(2)), Ok(2));
    assert!(value.set(3));
    assert_eq!(finish(value.wait_for(4)), Ok(4));
    t.join().unwrap();
    assert_eq!(value.version(), 4);
    assert_eq!(value.watcher_count(), 0);
}

/// Model 12: the thread hand-off, each side blocked in `wait_for(..).blocking()` (a look, the
/// spin on its slot, then register and park): a late unpark from round one does not end round
/// two early with nothing.
#[test]
fn m12_two_threads_hand_off_twice_through_blocking_waits() {
    model("m12 thread hand-off, two rounds", || {
        hand_off_twice(Wait::blocking)
    });
}

/// Model 15: the same hand-off between two tasks, each on its own thread under loom's
/// `block_on`: a task's waker in the wait's slot, the fill and the wake, a completed wait's
/// slot kept as a spare and readied again for the next wait (through `Arc::get_mut`, no lock)
/// while the other thread may still be dropping the `Wait` that used it, and the weak
/// reference to the value a reused slot keeps.
#[test]
fn m15_two_tasks_hand_off_twice_through_reused_slots() {
    model("m15 task hand-off, two rounds, slot reuse", || {
        hand_off_twice(loom::future::block_on)
    });
}
