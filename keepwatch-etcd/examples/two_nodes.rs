//! Two nodes coordinate a small state machine through one etcd key.
//!
//! ```sh
//! scripts/etcd.sh start                                 # a throwaway etcd on loopback
//! cargo run -p keepwatch-etcd --example two_nodes       # this
//! ```
//!
//! Each node has a mirror of its own (its own connection: they could be two machines), an
//! async task and an OS thread. The nodes race to claim the key with `set_if`: the winner
//! leads, the other follows. The leader's task drives the stages, the follower's thread
//! answers them with blocking waits, and every node logs every transition it sees, with its
//! etcd revision:
//!
//! `Claimed(leader) → Preparing → Prepared → Serving → Draining → Drained → Stopped`
use std::time::Duration;

use keepwatch_etcd::{Mirror, Options};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Stage {
    Claimed(String),
    Preparing,
    Prepared,
    Serving,
    Draining,
    Drained,
    Stopped,
}

const BOUND: Duration = Duration::from_secs(20);

fn endpoint() -> String {
    std::env::var("KEEPWATCH_ETCD_ENDPOINT")
        .ok()
        .or_else(|| std::fs::read_to_string("/tmp/keepwatch-etcd/endpoint").ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| String::from("http://127.0.0.1:2379"))
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

async fn node(name: &'static str, endpoint: String, key: String) -> Result<()> {
    let options = Options::new().timeout(Duration::from_secs(3));
    let mirror: Mirror<Stage> = Mirror::open_with(&[endpoint], key, options).await?;

    // The log: every transition this node's mirror makes, from an async task.
    let mut changes = mirror.subscribe();
    let log = tokio::spawn(async move {
        while let Ok(t) = changes.recv().timeout(BOUND).await {
            println!("  [{name}] rev {:>4}: {:?}", t.new.revision, t.new.value());
            if t.new.value() == Some(&Stage::Stopped) {
                break;
            }
        }
    });

    // The race: whoever claims the key first leads.
    let claim = Stage::Claimed(name.to_string());
    let leader = mirror.set_if(claim, |s| s.is_absent()).await?.is_some();
    println!(
        "[{name}] {}",
        if leader {
            "claimed the key: leading"
        } else {
            "lost the claim: following"
        }
    );

    // The thread: blocking waits on the same mirror (it could be any legacy worker thread).
    let worker = {
        let mirror = mirror.clone();
        std::thread::spawn(move || -> Result<()> {
            let write = |stage: Stage, from: Stage| {
                futures::executor::block_on(mirror.set_if(stage, |s| s.value() == Some(&from)))
            };
            if leader {
                mirror
                    .wait_for_value(Stage::Serving)
                    .blocking_timeout(BOUND)?;
                println!("[{name}] thread: serving traffic");
            } else {
                // The follower prepares and drains when told, even if the leader has moved on
                // by the time this thread runs: keepwatch keeps the transition.
                mirror
                    .wait_for_value(Stage::Preparing)
                    .blocking_timeout(BOUND)?;
                println!("[{name}] thread: preparing");
                write(Stage::Prepared, Stage::Preparing)?;
                mirror
                    .wait_for_value(Stage::Draining)
                    .blocking_timeout(BOUND)?;
                println!("[{name}] thread: draining");
                write(Stage::Drained, Stage::Draining)?;
            }
            Ok(())
        })
    };

    if leader {
        // The task drives the stages, each a guarded write from the stage it expects.
        let step = |to: Stage, from: Stage| {
            let mirror = mirror.clone();
            async move { mirror.set_if(to, move |s| s.value() == Some(&from)).await }
        };
        step(Stage::Preparing, Stage::Claimed(name.into())).await?;
        mirror
            .wait_for_value(Stage::Prepared)
            .timeout(BOUND)
            .await?;
        step(Stage::Serving, Stage::Prepared).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        step(Stage::Draining, Stage::Serving).await?;
        mirror.wait_for_value(Stage::Drained).timeout(BOUND).await?;
        step(Stage::Stopped, Stage::Drained).await?;
    } else {
        let t = mirror
            .wait_transition(|_, new| new.value() == Some(&Stage::Stopped))
            .timeout(BOUND)
            .await?;
        println!(
            "[{name}] task: the leader stopped at revision {}",
            t.new.revision
        );
    }
    worker.join().map_err(|_| "worker thread panicked")??;
    log.await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let endpoint = endpoint();
    let key = format!("/keepwatch-example/stage/{}", std::process::id());
    println!("etcd at {endpoint}, key {key}");
    let (a, b) = tokio::join!(
        tokio::spawn(node("node-a", endpoint.clone(), key.clone())),
        tokio::spawn(node("node-b", endpoint.clone(), key.clone())),
    );
    a??;
    b??;
    println!("both nodes saw the same sequence and stopped");
    Ok(())
}
