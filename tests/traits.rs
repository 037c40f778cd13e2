//! Compile-time checks of the documented auto traits and trait impls, and the `Error` type.

use std::cell::Cell;
use std::fmt::Debug;
use std::future::Future;

use keepwatch::{
    CallbackHandle, Error, Iter, Recv, Subscription, Timeout, Transition, ValueWatcher, Wait,
    WeakValueWatcher,
};

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}
fn assert_unpin<T: Unpin>() {}
fn assert_static<T: 'static>() {}
fn assert_clone<T: Clone>() {}
fn assert_debug<T: Debug>() {}
fn assert_partial_eq<T: PartialEq>() {}
fn assert_error<T: std::error::Error + Clone + PartialEq + Send + Sync + 'static>() {}
fn assert_future<F: Future<Output = O>, O>() {}
fn assert_stream<S: futures::Stream<Item = Transition<u32>>>() {}
fn assert_iterator<I: Iterator<Item = Transition<u32>>>() {}

#[test]
fn wait_is_send_unpin_static_and_a_future_of_result() {
    assert_send::<Wait<u32>>();
    assert_unpin::<Wait<u32>>();
    assert_static::<Wait<u32>>();
    assert_send::<Wait<String>>();
    assert_unpin::<Wait<String>>();
    assert_send::<Wait<Transition<u32>>>();
    assert_future::<Wait<u32>, Result<u32, Error>>();
    assert_future::<Wait<Transition<String>>, Result<Transition<String>, Error>>();
}

#[test]
fn wait_and_subscription_are_send_for_a_send_but_not_sync_value() {
    // `Cell<u32>` is `Send` but not `Sync`: the docs promise `Send` "for `T: Send`".
    assert_send::<ValueWatcher<Cell<u32>>>();
    assert_send::<Wait<Cell<u32>>>();
    assert_send::<Subscription<Cell<u32>>>();
}

#[test]
fn subscription_recv_and_iter_are_send_and_unpin() {
    // Auto traits do not depend on lifetimes: `'static` stands for any borrow.
    assert_send::<Recv<'static, u32>>();
    assert_unpin::<Recv<'static, u32>>();
    assert_future::<Recv<'static, u32>, Result<Transition<u32>, Error>>();
    assert_send::<Timeout<Recv<'static, u32>>>();
    assert_unpin::<Timeout<Recv<'static, u32>>>();
    assert_future::<Timeout<Recv<'static, u32>>, Result<Transition<u32>, Error>>();
    assert_send::<Recv<'static, Cell<u32>>>();
    assert_iterator::<Iter<'static, u32>>();
    assert_send::<Subscription<u32>>();
    assert_unpin::<Subscription<u32>>();
    assert_static::<Subscription<u32>>();
    assert_send::<Subscription<String>>();
    assert_unpin::<Subscription<String>>();
    assert_stream::<Subscription<u32>>();
}

#[test]
fn timeout_futures_are_send_unpin_and_static() {
    assert_send::<Timeout<Wait<u32>>>();
    assert_unpin::<Timeout<Wait<u32>>>();
    assert_static::<Timeout<Wait<u32>>>();
    assert_send::<Timeout<Wait<String>>>();
    assert_future::<Timeout<Wait<u32>>, Result<u32, Error>>();
}

#[test]
fn value_watcher_and_weak_value_watcher_are_send_sync_and_clone() {
    assert_send::<ValueWatcher<u32>>();
    assert_sync::<ValueWatcher<u32>>();
    assert_clone::<ValueWatcher<u32>>();
    assert_static::<ValueWatcher<u32>>();
    assert_send::<WeakValueWatcher<u32>>();
    assert_sync::<WeakValueWatcher<u32>>();
    assert_clone::<WeakValueWatcher<u32>>();
    assert_send::<ValueWatcher<String>>();
    assert_sync::<ValueWatcher<String>>();
    assert_send::<WeakValueWatcher<Vec<String>>>();
    assert_sync::<WeakValueWatcher<Vec<String>>>();
}

#[test]
fn callback_handle_is_a_public_type() {
    assert_static::<CallbackHandle>();
}

#[test]
fn transition_is_clone_debug_and_partial_eq_with_public_fields() {
    assert_clone::<Transition<u32>>();
    assert_debug::<Transition<u32>>();
    assert_partial_eq::<Transition<u32>>();
    let t = Transition {
        old: String::from("a"),
        new: String::from("b"),
        version: 1,
    };
    let u = t.clone();
    assert_eq!(t, u);
    assert_eq!((t.old.as_str(), t.new.as_str(), t.version), ("a", "b", 1));
    assert_ne!(
        t,
        Transition {
            old: String::from("a"),
            new: String::from("b"),
            version: 2
        }
    );
    let debug = format!("{t:?}");
    assert!(
        debug.contains("\"a\"") && debug.contains("\"b\""),
        "{debug}"
    );
}

#[test]
fn error_is_a_std_error_that_is_clone_and_partial_eq() {
    assert_error::<Error>();
    assert_debug::<Error>();
    let e = Error::Lagged(3);
    assert_eq!(e.clone(), Error::Lagged(3));
    assert_ne!(Error::Closed, Error::TimedOut);
    assert_ne!(Error::Lagged(1), Error::Lagged(2));
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Error::Closed);
    assert!(boxed.source().is_none());
}

#[test]
fn error_display_is_lowercase_without_a_trailing_period() {
    for e in [Error::Closed, Error::TimedOut, Error::Lagged(3)] {
        let text = e.to_string();
        let first = text.chars().next().expect("non-empty message");
        assert!(
            !first.is_uppercase(),
            "{e:?} displays as {text:?}: starts uppercase"
        );
        assert!(
            !text.ends_with('.'),
            "{e:?} displays as {text:?}: ends with a period"
        );
        assert!(!text.trim().is_empty());
    }
    assert!(
        Error::Lagged(3).to_string().contains('3'),
        "the lag count is shown"
    );
    assert_ne!(Error::Closed.to_string(), Error::TimedOut.to_string());
}

#[test]
fn error_helpers_classify_each_variant() {
    assert!(Error::Closed.is_closed());
    assert!(!Error::Closed.is_timed_out());
    assert!(Error::TimedOut.is_timed_out());
    assert!(!Error::TimedOut.is_closed());
    assert!(!Error::Lagged(1).is_closed());
    assert!(!Error::Lagged(1).is_timed_out());
}

#[test]
fn error_converts_into_a_boxed_error_for_the_question_mark_operator() {
    fn run() -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
        let v = ValueWatcher::new(1u32);
        let got = v
            .wait_for(1)
            .blocking_timeout(std::time::Duration::from_secs(5))?;
        v.close();
        v.wait_for(2)
            .blocking_timeout(std::time::Duration::from_secs(5))?;
        Ok(got)
    }
    let err = run().expect_err("the second wait ends with Closed");
    assert_eq!(err.downcast_ref::<Error>(), Some(&Error::Closed));
}
