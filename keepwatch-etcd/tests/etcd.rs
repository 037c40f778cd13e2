//! keepwatch-etcd against a real etcd on loopback (`scripts/etcd.sh start`). No mocks: every
//! test fails, never passes, when no etcd is reachable.

mod common;

use std::time::{Duration, Instant};

use common::*;
use etcd_client::CompactionOptions;
use keepwatch_etcd::{Entry, Error, Gap, KeyState, Mirror, Options, Status};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Race {
    round: u32,
    winner: Option<String>,
}

fn fast() -> Options {
    Options::new()
        .timeout(Duration::from_secs(3))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .keep_alive(Duration::from_secs(1))
}

async fn open<T>(endpoint: &str, key: &str) -> Mirror<T>
where
    T: Serialize + serde::de::DeserializeOwned + Clone + PartialEq + Send + Sync + 'static,
{
    bounded(Mirror::open_with(&[endpoint], key, fast()))
        .await
        .expect("mirror opens")
}

/// Collects `n` transitions from a subscription, bounded.
async fn collect<T: Clone + PartialEq + Send + 'static>(
    sub: &mut keepwatch::Subscription<KeyState<T>>,
    n: usize,
) -> Vec<keepwatch::Transition<KeyState<T>>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let t = sub.recv().timeout(BOUND).await.unwrap_or_else(|e| {
            panic!("after {} of {n} transitions: {e}", out.len());
        });
        out.push(t);
    }
    out
}

/// The entry point of child processes (see `spawn_child`); ignored in normal runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "entry point of the child processes that the two-process tests spawn"]
async fn child_process() {
    let role = std::env::var("KEEPWATCH_ETCD_CHILD").expect("run by a test, not by hand");
    let endpoint = std::env::var("KW_ENDPOINT").unwrap();
    let key = std::env::var("KW_KEY").unwrap();
    match role.as_str() {
        "racer" => {
            let me = std::env::var("KW_NAME").unwrap();
            let rounds: u32 = std::env::var("KW_ROUNDS").unwrap().parse().unwrap();
            let mirror = open::<Race>(&endpoint, &key).await;
            race(&mirror, &me, rounds, |line| println!("KW {line}")).await;
            println!("KW conflicts {}", mirror.conflicts());
        }
        "writer" => {
            let n: u64 = std::env::var("KW_N").unwrap().parse().unwrap();
            let mirror = open::<u64>(&endpoint, &key).await;
            // Ready: the parent subscribed before spawning us.
            for i in 1..=n {
                let rev = bounded(mirror.set(i))
                    .await
                    .unwrap()
                    .expect("a new value is written");
                println!("KW {i} {rev}");
            }
        }
        other => panic!("unknown role {other}"),
    }
}

/// One racer: for every round, as soon as its mirror shows the round open, tries to claim it
/// with `set_if`; reports each win.
async fn race(mirror: &Mirror<Race>, me: &str, rounds: u32, mut report: impl FnMut(String)) {
    for round in 1..=rounds {
        mirror
            .wait_until(move |s| s.value().is_some_and(|r| r.round >= round))
            .timeout(BOUND)
            .await
            .expect("round opens");
        let claim = Race {
            round,
            winner: Some(me.to_string()),
        };
        let open = Race {
            round,
            winner: None,
        };
        let won = bounded(mirror.set_if(claim, |s| s.value() == Some(&open)))
            .await
            .unwrap();
        if let Some(rev) = won {
            report(format!("win {round} {rev}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_and_a_task_race_set_if_with_one_winner_per_round() {
    const ROUNDS: u32 = 25;
    let endpoint = endpoint();
    let key = unique_key("race");
    let coordinator = open::<Race>(&endpoint, &key).await;
    bounded(coordinator.set(Race {
        round: 0,
        winner: None,
    }))
    .await
    .unwrap();
    let mut history = coordinator.subscribe();

    let children: Vec<_> = ["b", "c"]
        .iter()
        .map(|name| {
            spawn_child(
                "racer",
                &[
                    ("KW_ENDPOINT", endpoint.clone()),
                    ("KW_KEY", key.clone()),
                    ("KW_NAME", name.to_string()),
                    ("KW_ROUNDS", ROUNDS.to_string()),
                ],
            )
        })
        .collect();
    // The third racer is a task of this process with a mirror (and a client) of its own.
    let local = {
        let (endpoint, key) = (endpoint.clone(), key.clone());
        tokio::spawn(async move {
            let mirror = open::<Race>(&endpoint, &key).await;
            let mut wins = Vec::new();
            race(&mirror, "a", ROUNDS, |line| wins.push(line)).await;
            wins.push(format!("conflicts {}", mirror.conflicts()));
            wins
        })
    };
    // Give the children time to open their mirrors before the first round.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut winners = Vec::new();
    for round in 1..=ROUNDS {
        bounded(coordinator.set(Race {
            round,
            winner: None,
        }))
        .await
        .unwrap();
        let done = coordinator
            .wait_map(move |s| {
                s.value()
                    .filter(|r| r.round == round)
                    .and_then(|r| r.winner.clone())
            })
            .timeout(BOUND)
            .await
            .expect("someone wins the round");
        winners.push(done);
    }

    let mut wins: Vec<(u32, String)> = Vec::new();
    let mut conflicts = 0u64;
    let mut reports = vec![("a", bounded(local).await.unwrap())];
    for (child, name) in children.into_iter().zip(["b", "c"]) {
        reports.push((name, child_report(child).await));
    }
    for (name, lines) in reports {
        for line in lines {
            let mut words = line.split(' ');
            match (
                words.next(),
                words.next().map(|n| n.parse::<u64>().unwrap()),
            ) {
                (Some("win"), Some(round)) => wins.push((round as u32, name.to_string())),
                (Some("conflicts"), Some(n)) => conflicts += n,
                _ => panic!("unexpected report {line:?}"),
            }
        }
    }
    wins.sort();
    // Exactly one set_if returned a win per round, and it is the winner etcd recorded.
    let expected: Vec<(u32, String)> = winners
        .iter()
        .enumerate()
        .map(|(i, w)| (i as u32 + 1, w.clone()))
        .collect();
    assert_eq!(wins, expected, "one winner per round");
    // And the key's history is exactly open, claimed, open, claimed, ...
    let seen = collect(&mut history, 2 * ROUNDS as usize).await;
    for (i, t) in seen.iter().enumerate() {
        let round = i as u32 / 2 + 1;
        let v = t.new.value().unwrap();
        assert_eq!(v.round, round);
        assert_eq!(v.winner.is_some(), i % 2 == 1, "transition {i}: {v:?}");
    }
    assert!(history.try_recv().unwrap().is_none(), "no extra transition");
    let by: std::collections::BTreeSet<_> = winners.iter().collect();
    eprintln!(
        "race: {ROUNDS} rounds, one winner each; winners seen: {by:?}; \
         {conflicts} guarded transactions lost a race and were decided again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_sees_every_transition_another_process_makes_in_order() {
    const N: u64 = 150;
    let endpoint = endpoint();
    let key = unique_key("order");
    let mirror = open::<u64>(&endpoint, &key).await;
    let mut sub = mirror.subscribe();
    // A blocking thread waits on the same mirror for a value that passes only briefly.
    let passing = mirror.wait_for_value(N / 2);
    let thread = std::thread::spawn(move || passing.blocking_timeout(BOUND));

    let child = spawn_child(
        "writer",
        &[
            ("KW_ENDPOINT", endpoint.clone()),
            ("KW_KEY", key.clone()),
            ("KW_N", N.to_string()),
        ],
    );
    let seen = collect(&mut sub, N as usize).await;
    let report = child_report(child).await;
    assert_eq!(report.len(), N as usize);
    let mut last = 0;
    for (i, (t, line)) in seen.iter().zip(&report).enumerate() {
        let (value, rev): (u64, i64) = {
            let mut it = line.split(' ');
            (
                it.next().unwrap().parse().unwrap(),
                it.next().unwrap().parse().unwrap(),
            )
        };
        assert_eq!(t.new.value(), Some(&(i as u64 + 1)));
        assert_eq!(value, i as u64 + 1);
        assert_eq!(t.new.revision, rev, "the mirror's revision is the writer's");
        assert!(t.new.revision > last);
        assert_eq!(t.version, i as u64 + 1, "one transition per revision");
        assert!(t.new.gap.is_none());
        last = t.new.revision;
    }
    let state = thread
        .join()
        .unwrap()
        .expect("the thread saw the passing value");
    assert_eq!(state.value(), Some(&(N / 2)));
    assert!(sub.try_recv().unwrap().is_none(), "nothing repeated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_mirrors_see_the_same_sequence_and_update_loses_no_increment() {
    const WRITERS: u64 = 3;
    const EACH: u64 = 20;
    let endpoint = endpoint();
    let key = unique_key("same");
    let a = open::<u64>(&endpoint, &key).await;
    let b = open::<u64>(&endpoint, &key).await;
    let (mut sa, mut sb) = (a.subscribe(), b.subscribe());
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let m = open::<u64>(&endpoint, &key).await;
        tasks.push(tokio::spawn(async move {
            for _ in 0..EACH {
                let written = bounded(m.update(|s| Some(s.value().copied().unwrap_or(0) + 1)))
                    .await
                    .unwrap();
                assert!(written.is_some());
            }
        }));
    }
    for t in tasks {
        bounded(t).await.unwrap();
    }
    let n = (WRITERS * EACH) as usize;
    let (ta, tb) = (collect(&mut sa, n).await, collect(&mut sb, n).await);
    assert_eq!(ta, tb, "two mirrors, one sequence");
    let values: Vec<u64> = ta.iter().map(|t| *t.new.value().unwrap()).collect();
    assert_eq!(
        values,
        (1..=n as u64).collect::<Vec<_>>(),
        "every increment, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted_mid_stream_loses_and_repeats_nothing() {
    const N: u64 = 120;
    let mut etcd = PrivateEtcd::start("kill").await;
    let key = unique_key("kill");
    let observer = open::<u64>(&etcd.endpoint, &key).await;
    let mut sub = observer.subscribe();
    let mut status = observer.status_reader().subscribe();
    let writer = open::<u64>(&etcd.endpoint, &key).await;
    // The writer goes on through the outage: a failed write is retried, and set_if on the
    // previous value makes the retry of a write that did commit a no-op.
    let writing = tokio::spawn(async move {
        let mut failures = 0;
        for i in 1..=N {
            let deadline = Instant::now() + BOUND;
            loop {
                match writer
                    .set_if(i, |s| s.value().copied().unwrap_or(0) == i - 1)
                    .await
                {
                    Ok(_) => break,
                    Err(_) => {
                        failures += 1;
                        assert!(Instant::now() < deadline, "writer stuck at {i}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }
        failures
    });
    // Kill etcd in the middle of the stream, while the observer is behind or not.
    observer
        .wait_until(|s| s.value().is_some_and(|v| *v >= N / 3))
        .timeout(BOUND)
        .await
        .unwrap();
    etcd.kill();
    eventually("the observer notices", || observer.status() != Status::Live).await;
    let during = observer.get();
    tokio::time::sleep(Duration::from_millis(300)).await;
    etcd.restart().await;
    eventually("the observer resumes", || observer.status() == Status::Live).await;

    let failures = bounded(writing).await.unwrap();
    let seen = collect(&mut sub, N as usize).await;
    let values: Vec<u64> = seen.iter().map(|t| *t.new.value().unwrap()).collect();
    assert_eq!(
        values,
        (1..=N).collect::<Vec<_>>(),
        "no transition lost or repeated"
    );
    assert!(seen
        .windows(2)
        .all(|w| w[0].new.revision < w[1].new.revision));
    assert!(seen.iter().all(|t| t.new.gap.is_none()));
    assert!(sub.try_recv().unwrap().is_none(), "nothing repeated after");
    let statuses: Vec<Status> = std::iter::from_fn(|| status.try_recv().unwrap())
        .map(|t| t.new)
        .collect();
    assert!(
        matches!(statuses.first(), Some(Status::Reconnecting { .. })),
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&Status::Live), "{statuses:?}");
    eprintln!(
        "kill/restart: killed at value {:?}, writer saw {failures} failed writes, observer got all {N} transitions in order",
        during.value()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_while_disconnected_is_reported_as_a_gap() {
    let etcd = PrivateEtcd::start("compact").await;
    let proxy = Proxy::start(&etcd.endpoint).await;
    let key = unique_key("compact");
    let mut raw = raw_client(&etcd.endpoint).await;
    let mirror = open::<u64>(&proxy.endpoint, &key).await;
    let mut sub = mirror.subscribe();
    let mut bounded_sub = mirror.subscribe_bounded(100);
    for i in 1..=5u64 {
        bounded(raw.put(key.as_str(), i.to_string(), None))
            .await
            .unwrap();
    }
    let before = collect(&mut sub, 5).await;
    let last_seen = before.last().unwrap().new.revision;

    proxy.cut();
    eventually("the mirror notices the cut", || {
        mirror.status() != Status::Live
    })
    .await;
    for i in 6..=10u64 {
        bounded(raw.put(key.as_str(), i.to_string(), None))
            .await
            .unwrap();
    }
    let head = bounded(raw.put("/other", "x", None))
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    bounded(raw.compact(head, Some(CompactionOptions::new().with_physical())))
        .await
        .unwrap();
    proxy.restore();

    let t = collect(&mut sub, 1).await.remove(0);
    assert_eq!(t.new.value(), Some(&10));
    assert_eq!(
        t.new.gap,
        Some(Gap {
            after: last_seen,
            compacted: head,
            missed: Some(4)
        }),
        "the skip is flagged, with the exact count of missed writes"
    );
    assert_eq!(mirror.gaps(), 1);
    // After the gap the mirror goes on as usual.
    bounded(raw.put(key.as_str(), "11", None)).await.unwrap();
    let t = collect(&mut sub, 1).await.remove(0);
    assert_eq!((t.new.value(), t.new.gap), (Some(&11), None));
    // A bounded subscriber sees the same: the jump carries the gap.
    let all = collect(&mut bounded_sub, 7).await;
    assert!(all[5].new.gap.is_some());

    // A delete and re-create inside the compacted range: the count is unknown, still flagged.
    proxy.cut();
    eventually("cut again", || mirror.status() != Status::Live).await;
    bounded(raw.delete(key.as_str(), None)).await.unwrap();
    bounded(raw.put(key.as_str(), "12", None)).await.unwrap();
    let head = bounded(raw.put("/other", "y", None))
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    bounded(raw.compact(head, Some(CompactionOptions::new().with_physical())))
        .await
        .unwrap();
    proxy.restore();
    let t = collect(&mut sub, 1).await.remove(0);
    assert_eq!(t.new.value(), Some(&12));
    assert_eq!(t.new.gap.map(|g| g.missed), Some(None));
    assert_eq!(mirror.gaps(), 2);
    eprintln!("compaction: gap reported as {:?}", t.new.gap);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_bytes_from_a_raw_client_are_a_transition_not_a_failure() {
    let endpoint = endpoint();
    let key = unique_key("garbage");
    let mirror = open::<u64>(&endpoint, &key).await;
    let mut sub = mirror.subscribe();
    let mut raw = raw_client(&endpoint).await;
    bounded(mirror.set(1)).await.unwrap();
    bounded(raw.put(key.as_str(), &b"\xffnot json {"[..], None))
        .await
        .unwrap();
    bounded(raw.put(key.as_str(), "\"a string, not a u64\"", None))
        .await
        .unwrap();
    let recovered = mirror.wait_for_value(2);
    bounded(raw.put(key.as_str(), "2", None)).await.unwrap();
    let seen = collect(&mut sub, 4).await;
    assert_eq!(seen[0].new.value(), Some(&1));
    match &seen[1].new.entry {
        Entry::Undecodable(u) => {
            assert_eq!(u.bytes, b"\xffnot json {");
            assert!(!u.error.is_empty());
        }
        other => panic!("expected undecodable, got {other:?}"),
    }
    assert!(seen[2].new.is_undecodable());
    assert_eq!(
        seen[3].new.value(),
        Some(&2),
        "the next good value decodes as usual"
    );
    assert!(recovered.timeout(BOUND).await.is_ok());
    // A write over garbage is guarded like any other.
    bounded(raw.put(key.as_str(), "garbage", None))
        .await
        .unwrap();
    mirror
        .wait_until(|s| s.is_undecodable())
        .timeout(BOUND)
        .await
        .unwrap();
    let r = bounded(mirror.update(|s| s.is_undecodable().then_some(7)))
        .await
        .unwrap();
    assert!(r.is_some());
    assert_eq!(mirror.value(), Some(7));
    assert_eq!(mirror.status(), Status::Live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_key_is_a_transition_to_absent_and_can_be_created_again() {
    let endpoint = endpoint();
    let key = unique_key("delete");
    let mirror = open::<String>(&endpoint, &key).await;
    assert!(mirror.get().is_absent(), "never written: absent");
    let mut sub = mirror.subscribe();
    let r1 = bounded(mirror.set("x".into())).await.unwrap().unwrap();
    let mut raw = raw_client(&endpoint).await;
    let r2 = bounded(raw.delete(key.as_str(), None))
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    assert_eq!(
        bounded(mirror.delete()).await.unwrap(),
        None,
        "already absent"
    );
    let seen = collect(&mut sub, 2).await;
    assert_eq!(
        (seen[0].new.revision, seen[0].new.value()),
        (r1, Some(&"x".to_string()))
    );
    assert_eq!((seen[1].new.revision, seen[1].new.is_absent()), (r2, true));
    // set_if on absence: of two racing writers only one creates the key.
    let other = open::<String>(&endpoint, &key).await;
    let (a, b) = tokio::join!(
        mirror.set_if("a".into(), |s| s.is_absent()),
        other.set_if("b".into(), |s| s.is_absent())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        a.is_some() != b.is_some(),
        "exactly one creates: {a:?} {b:?}"
    );
    let r = bounded(mirror.delete()).await.unwrap().unwrap();
    assert!(mirror.get().is_absent() && mirror.revision() == r);
    // modify does not invent a value for an absent key.
    assert_eq!(bounded(mirror.modify(|s| s.push('!'))).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_update_modify_and_the_mirror_shows_each_write_when_it_returns() {
    let endpoint = endpoint();
    let key = unique_key("writes");
    let mirror = open::<Vec<u32>>(&endpoint, &key).await;
    // Derived values: the whole keepwatch API is there (the mirror derefs to a ValueReader).
    let len = mirror.map(|s| s.value().map_or(0, Vec::len));
    let len_two = len.wait_for(2);
    let reader = mirror.reader();
    let both = len.zip(&reader.map(|s| s.revision));
    let mut both_sub = both.subscribe();
    let r1 = bounded(mirror.set(vec![1])).await.unwrap().unwrap();
    assert_eq!(
        (mirror.value(), mirror.revision()),
        (Some(vec![1]), r1),
        "read your writes"
    );
    assert_eq!(
        bounded(mirror.set(vec![1])).await.unwrap(),
        None,
        "equal: nothing written"
    );
    let r2 = bounded(mirror.modify(|v| v.push(2)))
        .await
        .unwrap()
        .unwrap();
    assert!(r2 > r1);
    assert_eq!(mirror.value(), Some(vec![1, 2]));
    assert_eq!(len_two.timeout(BOUND).await, Ok(2));
    let t = both_sub.recv().timeout(BOUND).await.unwrap();
    assert_eq!(t.new.0, 1, "the derived pair follows the mirror");
    assert_eq!(
        bounded(mirror.modify(|_| {})).await.unwrap(),
        None,
        "unchanged: nothing"
    );
    assert_eq!(bounded(mirror.update(|_| None)).await.unwrap(), None);
    assert_eq!(
        bounded(mirror.set_if(vec![9], |_| false)).await.unwrap(),
        None
    );
    let r3 = bounded(mirror.set_if(vec![1, 2], |_| true)).await.unwrap();
    assert!(
        r3.is_some(),
        "set_if writes an equal value when the condition holds"
    );
    assert_eq!(mirror.version(), 3);
    // From a plain thread: the write future runs under any executor.
    let m = mirror.clone();
    let r = std::thread::spawn(move || futures::executor::block_on(m.set(vec![3])))
        .join()
        .unwrap()
        .unwrap();
    assert!(r.is_some());
    // A stale mirror only costs a retry: a raw write behind its back, then update at once.
    let mut raw = raw_client(&endpoint).await;
    bounded(raw.put(key.as_str(), "[100]", None)).await.unwrap();
    let r = bounded(mirror.update(|s| s.value().map(|v| v.iter().map(|x| x + 1).collect())))
        .await
        .unwrap();
    assert!(r.is_some());
    assert_eq!(
        mirror.value(),
        Some(vec![101]),
        "updated from etcd's state, not a stale one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_and_bad_arguments_fail_fast_with_typed_errors() {
    let dead = format!("http://127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let started = Instant::now();
    let options = Options::new().timeout(Duration::from_millis(800));
    let r = bounded(Mirror::<u64>::open_with(&[dead.as_str()], "/k", options)).await;
    assert!(matches!(r, Err(Error::Unavailable(_))), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the timeout"
    );
    assert!(r
        .unwrap_err()
        .to_string()
        .starts_with("etcd is unavailable"));

    let r = bounded(Mirror::<u64>::open(&[endpoint().as_str()], "")).await;
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    let none: [&str; 0] = [];
    let r = bounded(Mirror::<u64>::open(&none, "/k")).await;
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    let r = bounded(Mirror::<u64>::open(&["not a url at all"], "/k")).await;
    assert!(r.is_err(), "{r:?}");

    // From a plain thread, too.
    let r = std::thread::spawn(move || Mirror::<u64>::open_blocking(&[dead.as_str()], "/k"))
        .join()
        .unwrap();
    assert!(matches!(r, Err(Error::Unavailable(_))), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_while_etcd_is_down_fail_within_the_timeout_and_the_mirror_keeps_its_state() {
    let mut etcd = PrivateEtcd::start("down").await;
    let key = unique_key("down");
    let mirror = open::<u64>(&etcd.endpoint, &key).await;
    bounded(mirror.set(1)).await.unwrap();
    etcd.kill();
    let started = Instant::now();
    let r = bounded(mirror.set(2)).await;
    assert!(matches!(r, Err(Error::Unavailable(_))), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(mirror.value(), Some(1), "what was delivered stays");
    eventually("reconnecting", || {
        matches!(mirror.status(), Status::Reconnecting { .. })
    })
    .await;
    etcd.restart().await;
    let r = bounded(async {
        loop {
            match mirror.set(2).await {
                Ok(r) => break r,
                Err(Error::Unavailable(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    assert!(r.is_some());
    assert_eq!(mirror.value(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_and_drop_end_local_waits_with_closed_and_refuse_writes() {
    let endpoint = endpoint();
    let key = unique_key("close");
    let mirror = open::<u64>(&endpoint, &key).await;
    bounded(mirror.set(1)).await.unwrap();
    let mut sub = mirror.subscribe();
    bounded(mirror.set(2)).await.unwrap();
    let never = mirror.wait_for_value(99);
    let thread_wait = mirror.wait_for_value(98);
    let thread = std::thread::spawn(move || thread_wait.blocking_timeout(BOUND));
    mirror.close();
    assert!(mirror.is_closed());
    assert_eq!(never.timeout(BOUND).await, Err(keepwatch::Error::Closed));
    assert_eq!(thread.join().unwrap(), Err(keepwatch::Error::Closed));
    let t = sub.recv().timeout(BOUND).await.unwrap();
    assert_eq!(
        t.new.value(),
        Some(&2),
        "queued transitions are still delivered"
    );
    assert_eq!(
        sub.recv().timeout(BOUND).await,
        Err(keepwatch::Error::Closed)
    );
    assert_eq!(bounded(mirror.set(3)).await, Err(Error::Closed));
    assert_eq!(mirror.value(), Some(2), "the last state stays readable");
    assert_eq!(mirror.status(), Status::Closed);
    // Nothing reached etcd after the close.
    let mut raw = raw_client(&endpoint).await;
    let got = bounded(raw.get(key.as_str(), None)).await.unwrap();
    assert_eq!(got.kvs()[0].value(), b"2");

    // Dropping the last handle closes too.
    let mirror = open::<u64>(&endpoint, &key).await;
    let wait = mirror.wait_for_value(99);
    drop(mirror);
    assert_eq!(wait.timeout(BOUND).await, Err(keepwatch::Error::Closed));
}
