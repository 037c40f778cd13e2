//! Model 12: the thread hand-off path: two threads that take turns through blocking waits.

#![cfg(keepwatch_loom)]

use keepwatch::ValueWatcher;
use loom::thread;
use loom_tests::model;

/// Model 12: ping-pong of two rounds between two threads, each blocked in
/// `wait_for(..).blocking()` (a look, the spin on its slot, then register and park) while the
/// other sets. Every wait gets its value (a lost wake is a loom deadlock), a late unpark from
/// round one does not end round two early with nothing, nothing stays registered.
#[test]
fn m12_two_threads_hand_off_twice_through_blocking_waits() {
    model("m12 thread hand-off, two rounds", || {
        let value = ValueWatcher::new(0u8);
        // Registered before the other thread starts: this one surely blocks.
        let ping = value.wait_for(1);
        let other = value.clone();
        let t = thread::spawn(move || {
            assert_eq!(ping.blocking(), Ok(1));
            assert!(other.set(2));
            assert_eq!(other.wait_for(3).blocking(), Ok(3));
            assert!(other.set(4));
        });
        assert!(value.set(1));
        assert_eq!(value.wait_for(2).blocking(), Ok(2));
        assert!(value.set(3));
        assert_eq!(value.wait_for(4).blocking(), Ok(4));
        t.join().unwrap();
        assert_eq!(value.version(), 4);
        assert_eq!(value.watcher_count(), 0);
    });
}
