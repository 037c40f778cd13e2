//! Hostile user code for the fault-injection tests (`tests/faults.rs`): a value type whose
//! `Clone`, `PartialEq` and `Drop` consult a shared [`Plan`], a `Waker` whose `wake`,
//! `wake_by_ref`, `clone` and `drop` do the same, and a runner that executes a scenario in a
//! child process, so that an abort or a hang fails one test instead of the whole binary.
//!
//! One mechanism, many cells: a [`Fault`] says which calls fire (by the `n` of the values
//! involved and by the index of the call among the matching ones) and what firing does: panic,
//! or run a hook (typically a call back into the value under test, which the hook records).

#![allow(dead_code, unreachable_pub)]

use std::cell::Cell;
use std::fmt;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{RawWaker, RawWakerVTable, Waker};
use std::thread;
use std::time::{Duration, Instant};

/// Matches any `n`.
pub const ANY: u64 = u64::MAX;
/// Added to `n` for a value made by [`Plan::tagged`], so a fault can pick that one instance's
/// comparisons (e.g. a wait's target) and not every value numbered `n`.
pub const TAG: u64 = 1 << 32;
/// Fires on every matching call.
pub const ALWAYS: u64 = u64::MAX;

const OFF: u8 = 0;
const PANIC: u8 = 1;
const HOOK: u8 = 2;

/// What a fault does when it fires, given the `n` of the value involved.
pub type Hook = Arc<dyn Fn(u64) + Send + Sync>;

/// One point of user code and when it misbehaves.
#[derive(Default)]
pub struct Fault {
    mode: AtomicU8,
    only: AtomicU64,
    skip: AtomicU64,
    times: AtomicU64,
    /// Matching calls since the fault was armed.
    hits: AtomicU64,
    /// Calls that fired.
    fired: AtomicU64,
    hook: Mutex<Option<Hook>>,
}

thread_local! {
    /// Set while a hook runs on this thread: the hook's own calls into hostile code are plain.
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

impl Fault {
    /// Panics on the matching calls number `skip .. skip + times` (0-based) involving a value
    /// numbered `only` (or [`ANY`]).
    pub fn panic(&self, only: u64, skip: u64, times: u64) {
        self.arm(PANIC, only, skip, times, None);
    }

    /// Runs `hook` instead of panicking.
    pub fn hook(
        &self,
        only: u64,
        skip: u64,
        times: u64,
        hook: impl Fn(u64) + Send + Sync + 'static,
    ) {
        self.arm(HOOK, only, skip, times, Some(Arc::new(hook)));
    }

    fn arm(&self, mode: u8, only: u64, skip: u64, times: u64, hook: Option<Hook>) {
        *self.hook.lock().unwrap_or_else(|e| e.into_inner()) = hook;
        self.only.store(only, Ordering::SeqCst);
        self.skip.store(skip, Ordering::SeqCst);
        self.times.store(times, Ordering::SeqCst);
        self.hits.store(0, Ordering::SeqCst);
        self.fired.store(0, Ordering::SeqCst);
        self.mode.store(mode, Ordering::SeqCst);
    }

    /// Behaves from now on.
    pub fn disarm(&self) {
        self.mode.store(OFF, Ordering::SeqCst);
    }

    /// How many calls fired since the fault was armed.
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::SeqCst)
    }

    /// Called by the hostile code with the numbers of the values involved.
    pub fn check(&self, what: &str, ns: &[u64]) {
        self.check_in(what, ns, false);
    }

    /// As [`check`](Fault::check); a `Drop` passes `unwinding` (its thread is panicking): a
    /// panic then would abort any Rust program, so only a hook fires.
    pub fn check_in(&self, what: &str, ns: &[u64], unwinding: bool) {
        let mode = self.mode.load(Ordering::SeqCst);
        if mode == OFF || IN_HOOK.with(Cell::get) || (unwinding && mode == PANIC) {
            return;
        }
        let only = self.only.load(Ordering::SeqCst);
        if only != ANY && !ns.contains(&only) {
            return;
        }
        let hit = self.hits.fetch_add(1, Ordering::SeqCst);
        let skip = self.skip.load(Ordering::SeqCst);
        let times = self.times.load(Ordering::SeqCst);
        if hit < skip || (times != ALWAYS && hit - skip >= times) {
            return;
        }
        self.fired.fetch_add(1, Ordering::SeqCst);
        let n = ns.first().copied().unwrap_or(0);
        if mode == PANIC {
            panic!("hostile {what} of #{n}");
        }
        let hook = self.hook.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(hook) = hook {
            struct Reset;
            impl Drop for Reset {
                fn drop(&mut self) {
                    IN_HOOK.with(|h| h.set(false));
                }
            }
            IN_HOOK.with(|h| h.set(true));
            let _reset = Reset;
            hook(n);
        }
    }
}

/// The faults of [`Evil`] values sharing one plan.
#[derive(Default)]
pub struct Plan {
    pub clone: Fault,
    pub eq: Fault,
    pub drop: Fault,
}

impl Plan {
    pub fn new() -> Arc<Plan> {
        Arc::new(Plan::default())
    }

    pub fn disarm_all(&self) {
        self.clone.disarm();
        self.eq.disarm();
        self.drop.disarm();
    }

    /// A value numbered `n` that follows this plan.
    pub fn evil(self: &Arc<Self>, n: u64) -> Evil {
        Evil {
            n,
            tagged: false,
            plan: Arc::clone(self),
        }
    }

    /// As [`evil`](Plan::evil), also matched by `TAG + n` (its clones are tagged too).
    pub fn tagged(self: &Arc<Self>, n: u64) -> Evil {
        Evil {
            n,
            tagged: true,
            plan: Arc::clone(self),
        }
    }
}

/// A value type whose `Clone`, `PartialEq` and `Drop` follow its [`Plan`]. Two values are
/// equal when their `n` are. A `Drop` never panics while its thread is already unwinding (a
/// panic there aborts any Rust program; that is not keepwatch's to contain); its hook runs.
pub struct Evil {
    pub n: u64,
    pub tagged: bool,
    pub plan: Arc<Plan>,
}

impl Evil {
    fn keys(&self) -> [u64; 2] {
        [self.n, if self.tagged { TAG + self.n } else { self.n }]
    }
}

impl Clone for Evil {
    fn clone(&self) -> Self {
        self.plan.clone.check("clone", &self.keys());
        Evil {
            n: self.n,
            tagged: self.tagged,
            plan: Arc::clone(&self.plan),
        }
    }
}

impl PartialEq for Evil {
    fn eq(&self, other: &Self) -> bool {
        let ([a, b], [c, d]) = (self.keys(), other.keys());
        self.plan.eq.check("eq", &[a, c, b, d]);
        self.n == other.n
    }
}

impl Drop for Evil {
    fn drop(&mut self) {
        self.plan
            .drop
            .check_in("drop", &self.keys(), thread::panicking());
    }
}

impl fmt::Debug for Evil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Evil({})", self.n)
    }
}

/// The faults of an [`evil_waker`], and how often it was woken.
#[derive(Default)]
pub struct WakerPlan {
    pub wake: Fault,
    pub clone: Fault,
    pub drop: Fault,
    wakes: AtomicUsize,
}

impl WakerPlan {
    pub fn new() -> Arc<WakerPlan> {
        Arc::new(WakerPlan::default())
    }

    /// Calls of `wake` or `wake_by_ref` (counted before the fault fires).
    pub fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(w_clone, w_wake, w_wake_by_ref, w_drop);

fn raw(plan: Arc<WakerPlan>) -> RawWaker {
    RawWaker::new(Arc::into_raw(plan).cast::<()>(), &VTABLE)
}

/// The plan behind `data`, borrowed.
///
/// # Safety
///
/// `data` came from `raw` and its reference is still owned by a waker.
unsafe fn plan_ref<'a>(data: *const ()) -> &'a WakerPlan {
    // SAFETY: per the contract, `data` is a live `Arc<WakerPlan>` pointer.
    unsafe { &*data.cast::<WakerPlan>() }
}

unsafe fn w_clone(data: *const ()) -> RawWaker {
    // SAFETY: called by `Waker::clone` on a waker built by `evil_waker`.
    let plan = unsafe { plan_ref(data) };
    plan.clone.check("waker clone", &[0]);
    // SAFETY: `data` is a live `Arc<WakerPlan>` pointer; the new waker owns the new count.
    unsafe { Arc::increment_strong_count(data.cast::<WakerPlan>()) };
    RawWaker::new(data, &VTABLE)
}

unsafe fn w_wake(data: *const ()) {
    // SAFETY: `wake` consumes the waker's reference: take it back, so it is released even if
    // the fault panics.
    let plan = unsafe { Arc::from_raw(data.cast::<WakerPlan>()) };
    plan.wakes.fetch_add(1, Ordering::SeqCst);
    plan.wake.check("wake", &[0]);
}

unsafe fn w_wake_by_ref(data: *const ()) {
    // SAFETY: the waker is alive for this call.
    let plan = unsafe { plan_ref(data) };
    plan.wakes.fetch_add(1, Ordering::SeqCst);
    plan.wake.check("wake_by_ref", &[0]);
}

unsafe fn w_drop(data: *const ()) {
    // SAFETY: `drop` releases the waker's reference: taken back first, so it is released even
    // if the fault panics.
    let plan = unsafe { Arc::from_raw(data.cast::<WakerPlan>()) };
    plan.drop.check("waker drop", &[0]);
}

/// A waker that follows `plan`.
pub fn evil_waker(plan: &Arc<WakerPlan>) -> Waker {
    // SAFETY: the vtable's functions uphold `RawWaker`'s contract: the data is an
    // `Arc<WakerPlan>` whose count each waker owns once; clone adds one, wake and drop release
    // it; `WakerPlan` is `Send + Sync`.
    unsafe { Waker::from_raw(raw(Arc::clone(plan))) }
}

/// A panic payload whose own `Drop` panics (while `armed`).
pub struct PanickyPayload {
    pub drops: Arc<AtomicUsize>,
}

impl Drop for PanickyPayload {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if !thread::panicking() {
            panic!("hostile drop of a panic payload");
        }
    }
}

/// Something whose `Drop` runs `f` (captured by closures and predicates to see where their
/// state is dropped).
pub struct OnDrop<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// Runs `f`, catching a panic; the panic's message if it did.
pub fn caught<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        if let Some(s) = p.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = p.downcast_ref::<String>() {
            s.clone()
        } else {
            "<non-string panic payload>".to_owned()
        }
    })
}

/// Set in the child process that runs one scenario.
pub const CHILD_ENV: &str = "KEEPWATCH_FAULT_CHILD";

/// Runs `body` (bounded by a watchdog of `secs`) in a child process that runs only the test
/// `name` of this binary, and fails with the child's output if the child fails, aborts or
/// hangs. In the child, runs `body` itself.
pub fn isolated<F: FnOnce() + Send + 'static>(name: &str, secs: u64, body: F) {
    if std::env::var_os(CHILD_ENV).is_some() {
        return crate::common::with_watchdog(secs, body);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child test process");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(secs + 20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("child status") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(5));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let how = match status {
        None => "hung (killed after its deadline)".to_owned(),
        Some(s) if s.success() => {
            assert!(
                stdout.contains("1 passed"),
                "the child ran no test named {name}:\n{stdout}"
            );
            return;
        }
        Some(s) => match s.code() {
            Some(code) => format!("failed (exit code {code})"),
            None => {
                use std::os::unix::process::ExitStatusExt;
                format!("ABORTED (signal {:?})", s.signal())
            }
        },
    };
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("at ")
                || t.split(':')
                    .next()
                    .is_some_and(|p| p.parse::<u32>().is_ok()))
        })
        .collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    panic!("{name}: the scenario {how}; its stderr ends with:\n{tail}");
}
