//! Helpers for the tests: the shared etcd's endpoint, private etcd servers that a test may
//! kill, a loopback TCP proxy that a test may cut, and bounded waits.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::Client;

/// The bound on every wait in these tests.
pub const BOUND: Duration = Duration::from_secs(30);

/// The endpoint of the etcd started by `scripts/etcd.sh start`: `KEEPWATCH_ETCD_ENDPOINT`,
/// else the file the script writes. Panics (the test fails) when there is none or it does
/// not accept connections: these tests never pass without a real etcd.
pub fn endpoint() -> String {
    let endpoint = std::env::var("KEEPWATCH_ETCD_ENDPOINT").ok().or_else(|| {
        let state = std::env::var("KEEPWATCH_ETCD_STATE")
            .unwrap_or_else(|_| String::from("/tmp/keepwatch-etcd"));
        std::fs::read_to_string(PathBuf::from(state).join("endpoint"))
            .ok()
            .map(|s| s.trim().to_string())
    });
    let Some(endpoint) = endpoint.filter(|e| !e.is_empty()) else {
        panic!(
            "NO ETCD: set KEEPWATCH_ETCD_ENDPOINT or run `scripts/etcd.sh start` first \
             (these tests need a real etcd on loopback and never pass without one)"
        );
    };
    let addr: SocketAddr = endpoint
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("bad KEEPWATCH_ETCD_ENDPOINT {endpoint:?}: {e}"));
    if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        panic!("NO ETCD at {endpoint}: {e} (run `scripts/etcd.sh start`)");
    }
    endpoint
}

/// A key no other test (or earlier run) uses.
pub fn unique_key(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "/keepwatch-etcd-test/{name}/{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A plain etcd-client, for writing behind the mirror's back.
pub async fn raw_client(endpoint: &str) -> Client {
    bounded(Client::connect([endpoint], None))
        .await
        .expect("raw client connects")
}

/// Awaits `f` for at most [`BOUND`]; panics (fails the test) past it.
pub async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    match tokio::time::timeout(BOUND, f).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {BOUND:?}"),
    }
}

/// Polls `cond` every 10 ms for at most [`BOUND`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An etcd server of the test's own (same binary as the shared one), so that killing it or
/// compacting it does not disturb the other tests.
pub struct PrivateEtcd {
    pub endpoint: String,
    args: Vec<String>,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateEtcd {
    pub async fn start(name: &str) -> PrivateEtcd {
        let dir = std::env::temp_dir().join(format!(
            "keepwatch-etcd-{name}-{}-{}",
            std::process::id(),
            free_port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let args = vec![
            "--name".into(),
            name.into(),
            "--data-dir".into(),
            dir.join("data").display().to_string(),
            "--listen-client-urls".into(),
            endpoint.clone(),
            "--advertise-client-urls".into(),
            endpoint.clone(),
            "--listen-peer-urls".into(),
            peer_url.clone(),
            "--initial-advertise-peer-urls".into(),
            peer_url.clone(),
            "--initial-cluster".into(),
            format!("{name}={peer_url}"),
            "--log-level".into(),
            "error".into(),
        ];
        let mut etcd = PrivateEtcd {
            endpoint,
            args,
            dir,
            child: None,
        };
        etcd.spawn().await;
        etcd
    }

    async fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.join("log")).unwrap();
        let child = Command::new("etcd")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("NO ETCD BINARY: run `scripts/etcd.sh start` (it installs etcd-server)");
        self.child = Some(child);
        // Ready when it serves a read.
        let deadline = Instant::now() + BOUND;
        loop {
            let ok = async {
                let mut c = Client::connect([&self.endpoint], None).await.ok()?;
                c.get("/", None).await.ok()
            };
            if let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(1), ok).await {
                return;
            }
            assert!(Instant::now() < deadline, "private etcd did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no graceful shutdown.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The same server again: same port, same data (revisions survive).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}

impl Drop for PrivateEtcd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback TCP proxy in front of an etcd: `cut` drops every connection through it and
/// refuses new ones until `restore`, as a network partition between a mirror and etcd would.
pub struct Proxy {
    pub endpoint: String,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let upstream: SocketAddr = upstream.trim_start_matches("http://").parse().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let accept = {
            let (cut, conns) = (cut.clone(), conns.clone());
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    conns.lock().unwrap().push(task.abort_handle());
                }
            })
        };
        Proxy {
            endpoint,
            cut,
            conns,
            accept,
        }
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// Runs this test binary again as a child process in `role` (the ignored test
/// `child_process`), with `args` in its environment. Its lines starting with `KW ` are its
/// report.
pub fn spawn_child(role: &str, args: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "child_process",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("KEEPWATCH_ETCD_CHILD", role)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in args {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn child process")
}

/// Waits (bounded) for a child to exit successfully and returns its `KW ` lines.
pub async fn child_report(child: Child) -> Vec<String> {
    let out = bounded(tokio::task::spawn_blocking(move || {
        child.wait_with_output()
    }))
    .await
    .unwrap()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "child failed: {}\n{text}", out.status);
    // A report line may share its line with the harness's `test child_process ... `.
    text.lines()
        .filter_map(|l| l.find("KW ").map(|i| l[i + 3..].to_string()))
        .collect()
}
