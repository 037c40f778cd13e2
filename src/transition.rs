//! One change of the value: what it was, what it became, and where it stands in the order.

/// One transition of a value, `old → new`, as delivered to subscriptions and
/// [`wait_transition`](crate::ValueReader::wait_transition).
///
/// `version` is the value's [`version`](crate::ValueReader::version) right after this
/// transition: 1 for the first transition of a value, then 2, 3, … with no gaps, so a consumer
/// can tell exactly where it is in the value's history.
///
/// # Examples
///
/// ```
/// use keepwatch::{Transition, ValueWatcher};
///
/// let value = ValueWatcher::new("idle");
/// let mut changes = value.subscribe();
/// value.set("busy");
/// assert_eq!(
///     changes.try_recv(),
///     Ok(Some(Transition { old: "idle", new: "busy", version: 1 }))
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Transition<T> {
    /// The value before the transition.
    pub old: T,
    /// The value after the transition.
    pub new: T,
    /// The value's version right after this transition (1 for the first).
    pub version: u64,
}
