//! Stress: 8 setter threads, 8 blocking subscriber threads, 64 async subscribers on a
//! multi-thread tokio runtime and 4 on smol, all on one value. Every subscriber must record the
//! same sequence, complete, without duplicates, in the one global order.
//!
//! CI size by default; `KEEPWATCH_STRESS=full cargo test --release --test stress -- --nocapture`
//! for 1,000,000 transitions.

mod common;
mod support;

use std::thread;
use std::time::{Duration, Instant};

use common::{with_watchdog, LONG};
use futures::StreamExt;
use keepwatch::{Error, Subscription, Transition, ValueWatcher};
use support::{human, live_bytes, peak_bytes, reset_peak, serial, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

const SETTERS: u64 = 8;
const BLOCKING: usize = 8;
const TOKIO_TASKS: usize = 64;
const SMOL_TASKS: usize = 4;

/// A set value: which setter made it and its count there, so every value is new.
fn encode(setter: u64, count: u64) -> u64 {
    (setter << 40) | count
}

/// What a subscriber checks as it goes, instead of keeping 1,000,000 transitions.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    received: u64,
    /// A hash of the sequence of values, in order: equal records saw the same order.
    hash: u64,
    /// Per setter, the count of the last value of it seen: each must be the previous + 1.
    last: [u64; SETTERS as usize],
    prev_new: u64,
}

impl Record {
    fn new(initial: u64) -> Self {
        Record {
            received: 0,
            hash: 0xcbf2_9ce4_8422_2325,
            last: [0; SETTERS as usize],
            prev_new: initial,
        }
    }

    fn push(&mut self, t: &Transition<u64>) {
        assert_eq!(t.version, self.received + 1, "a gap or a duplicate");
        assert_eq!(t.old, self.prev_new, "old is not the previous new");
        let (setter, count) = ((t.new >> 40) as usize, t.new & ((1 << 40) - 1));
        assert_eq!(
            count,
            self.last[setter] + 1,
            "setter {setter}: lost or duplicated"
        );
        self.last[setter] = count;
        self.prev_new = t.new;
        self.received += 1;
        self.hash = (self.hash ^ t.new).wrapping_mul(0x0100_0000_01b3);
    }
}

#[test]
fn every_subscriber_records_the_same_complete_sequence_under_concurrent_setters() {
    let _serial = serial();
    let full = support::env_is("KEEPWATCH_STRESS", "full");
    let per_setter: u64 = if full { 125_000 } else { 1_500 };
    let budget = if full { 1800 } else { 60 };
    let report = with_watchdog(budget, move || stress(per_setter));
    println!("{report}");
}

fn stress(per_setter: u64) -> String {
    let total = SETTERS * per_setter;
    let start_bytes = live_bytes();
    reset_peak();
    let began = Instant::now();
    let value = ValueWatcher::new(0u64);

    // Subscribe everyone first: each then sees every transition.
    let blocking: Vec<Subscription<u64>> = (0..BLOCKING).map(|_| value.subscribe()).collect();
    let tokio_subs: Vec<Subscription<u64>> = (0..TOKIO_TASKS).map(|_| value.subscribe()).collect();
    let smol_subs: Vec<Subscription<u64>> = (0..SMOL_TASKS).map(|_| value.subscribe()).collect();
    assert_eq!(value.watcher_count(), BLOCKING + TOKIO_TASKS + SMOL_TASKS);

    // Blocking readers: half with `recv().blocking_timeout`, half with the iterator.
    let blocking_readers: Vec<_> = blocking
        .into_iter()
        .enumerate()
        .map(|(i, mut sub)| {
            thread::spawn(move || {
                let mut record = Record::new(*sub.initial());
                if i % 2 == 0 {
                    loop {
                        match sub.recv().blocking_timeout(LONG) {
                            Ok(t) => record.push(&t),
                            Err(Error::Closed) => break,
                            Err(e) => panic!("blocking reader {i}: {e}"),
                        }
                    }
                } else {
                    for t in sub.iter() {
                        record.push(&t);
                    }
                }
                record
            })
        })
        .collect();

    // Tokio: 64 tasks on a 4-worker runtime, half awaiting `recv`, half the `Stream`.
    let tokio_reader = thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let handles: Vec<_> = tokio_subs
                .into_iter()
                .enumerate()
                .map(|(i, sub)| tokio::spawn(read_async(i, sub)))
                .collect();
            let mut records = Vec::new();
            for h in handles {
                records.push(h.await.expect("tokio subscriber panicked"));
            }
            records
        })
    });

    // smol: 4 tasks on smol's global executor.
    let smol_reader = thread::spawn(move || {
        smol::block_on(async {
            let handles: Vec<_> = smol_subs
                .into_iter()
                .enumerate()
                .map(|(i, sub)| smol::spawn(read_async(i, sub)))
                .collect();
            let mut records = Vec::new();
            for h in handles {
                records.push(h.await);
            }
            records
        })
    });

    let setters: Vec<_> = (0..SETTERS)
        .map(|s| {
            let value = value.clone();
            thread::spawn(move || {
                for count in 1..=per_setter {
                    assert!(value.set(encode(s, count)), "every value is new");
                }
            })
        })
        .collect();
    for s in setters {
        s.join().unwrap();
    }
    assert_eq!(value.version(), total);
    let set_done = began.elapsed();
    value.close();

    let mut records: Vec<Record> = blocking_readers
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let blocking_records = records.len();
    records.extend(tokio_reader.join().unwrap());
    records.extend(smol_reader.join().unwrap());
    let elapsed = began.elapsed();
    assert_eq!(records.len(), BLOCKING + TOKIO_TASKS + SMOL_TASKS);
    assert_eq!(blocking_records, BLOCKING);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            r.received,
            total,
            "subscriber {i}: lost {}",
            total - r.received
        );
        assert_eq!(r.last, [per_setter; SETTERS as usize], "subscriber {i}");
        assert_eq!(r, &records[0], "subscriber {i} saw another order");
    }
    assert_eq!(value.watcher_count(), 0);
    let peak = peak_bytes();
    drop(value);
    drop(records);
    let end_bytes = live_bytes();
    format!(
        "stress: {total} transitions from {SETTERS} setter threads; {} subscribers \
         ({BLOCKING} blocking threads, {TOKIO_TASKS} tokio tasks on 4 workers, {SMOL_TASKS} smol \
         tasks), each received {total}: lost 0, duplicated 0, same order; sets done in {:.2}s, \
         all read in {:.2}s ({:.1} M deliveries/s); peak heap {} (start {}, end {})",
        BLOCKING + TOKIO_TASKS + SMOL_TASKS,
        set_done.as_secs_f64(),
        elapsed.as_secs_f64(),
        (total as f64 * (BLOCKING + TOKIO_TASKS + SMOL_TASKS) as f64) / elapsed.as_secs_f64() / 1e6,
        human(peak),
        human(start_bytes),
        human(end_bytes),
    )
}

async fn read_async(i: usize, mut sub: Subscription<u64>) -> Record {
    let mut record = Record::new(*sub.initial());
    if i % 2 == 0 {
        loop {
            match sub.recv().timeout(LONG).await {
                Ok(t) => record.push(&t),
                Err(Error::Closed) => break,
                Err(e) => panic!("async reader {i}: {e}"),
            }
        }
    } else {
        while let Some(t) = sub.next().await {
            record.push(&t);
        }
    }
    record
}

#[test]
fn subscribers_that_join_mid_stream_see_a_gap_free_suffix_of_the_same_order() {
    let _serial = serial();
    with_watchdog(60, || {
        let value = ValueWatcher::new(0u64);
        let mut first = value.subscribe();
        let setters: Vec<_> = (0..4)
            .map(|s| {
                let value = value.clone();
                thread::spawn(move || {
                    for count in 1..=2_000 {
                        value.set(encode(s, count));
                    }
                })
            })
            .collect();
        // Join while the setters run.
        thread::sleep(Duration::from_millis(2));
        let mut late = value.subscribe();
        for s in setters {
            s.join().unwrap();
        }
        value.close();
        let all: Vec<Transition<u64>> = first.iter().collect();
        let suffix: Vec<Transition<u64>> = late.iter().collect();
        assert_eq!(all.len(), 8_000);
        let skip = all.len() - suffix.len();
        assert_eq!(&all[skip..], &suffix[..]);
        if let Some(t) = suffix.first() {
            assert_eq!(&t.old, late.initial());
        }
    });
}
