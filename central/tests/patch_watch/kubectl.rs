//! The real `kubectl` against a server: `get -w` sees changes, `wait --for=condition` returns when
//! a status write sets the condition, and `apply --server-side` of the example repository works
//! and is a no-op the second time.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::json;
use tempfile::TempDir;
use tokio::sync::mpsc;

use crate::harness::{PATIENCE, TestCentral, host, site};

/// A kubeconfig (and discovery cache) for one server, in a temporary folder.
struct Kubectl {
    /// Holds the kubeconfig and the cache.
    dir: TempDir,
}

impl Kubectl {
    fn for_central(central: &TestCentral) -> Self {
        let dir = TempDir::new().unwrap();
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    \
             certificate-authority: {}\n\
             users:\n- name: test\n  user: {{token: {}}}\ncontexts:\n- name: test\n  context:\n    \
             cluster: test\n    user: test\ncurrent-context: test\n",
            central.base,
            central.ca.display(),
            central.token
        );
        std::fs::write(dir.path().join("config"), config).unwrap();
        Self { dir }
    }

    /// `kubectl args` with this kubeconfig and cache, output piped.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("kubectl");
        command
            .env("KUBECONFIG", self.dir.path().join("config"))
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Starts `kubectl args` in the background.
    fn spawn(&self, args: &[&str]) -> Running {
        let child = self
            .command(args)
            .spawn()
            .expect("kubectl runs (it must be on PATH)");
        Running { child }
    }

    /// Runs `kubectl args` to its end, which must be a success; its stdout.
    async fn run(&self, args: &[&str]) -> String {
        let mut command = self.command(args);
        let output: Output = tokio::time::timeout(
            PATIENCE,
            tokio::task::spawn_blocking(move || command.output()),
        )
        .await
        .expect("kubectl finishes in time")
        .unwrap()
        .expect("kubectl runs (it must be on PATH)");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

/// A kubectl running in the background; killed when dropped.
struct Running {
    /// The process.
    child: Child,
}

impl Running {
    /// Its stdout, line by line, read on a thread.
    fn lines(&mut self) -> mpsc::UnboundedReceiver<String> {
        let stdout = self.child.stdout.take().unwrap();
        let (send, receive) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        receive
    }

    /// Waits for the process to end; `None` if it is still running after `wait`.
    async fn exit(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its whole stdout and stderr (after it ended).
    fn output(&mut self) -> (String, String) {
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stdout.take() {
            pipe.read_to_string(&mut stdout).unwrap();
        }
        if let Some(mut pipe) = self.child.stderr.take() {
            pipe.read_to_string(&mut stderr).unwrap();
        }
        (stdout, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Receives lines until one starts with `prefix`; fails after [`PATIENCE`].
async fn read_until(lines: &mut mpsc::UnboundedReceiver<String>, prefix: &str) -> String {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let line = lines
                .recv()
                .await
                .unwrap_or_else(|| panic!("kubectl ended before printing {prefix:?}"));
            if line.starts_with(prefix) {
                return line;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("kubectl printed no line starting with {prefix:?}"))
}

#[tokio::test]
async fn kubectl_get_watch_prints_a_change_made_meanwhile() {
    let (central, _database) = TestCentral::sqlite().await;
    central.create("/sites", site("alpha")).await;
    central
        .create("/namespaces/alpha/hosts", host("web-1", "web"))
        .await;
    let kubectl = Kubectl::for_central(&central);
    let mut watching = kubectl.spawn(&["get", "hosts", "-n", "alpha", "-w"]);
    let mut lines = watching.lines();
    read_until(&mut lines, "NAME").await;
    read_until(&mut lines, "web-1").await;
    central
        .create("/namespaces/alpha/hosts", host("web-2", "db"))
        .await;
    read_until(&mut lines, "web-2").await;
}

#[tokio::test]
async fn kubectl_wait_returns_once_a_status_write_sets_the_condition() {
    let (central, _database) = TestCentral::sqlite().await;
    central.create("/sites", site("alpha")).await;
    let kubectl = Kubectl::for_central(&central);
    let mut waiting = kubectl.spawn(&[
        "wait",
        "--for=condition=Ready",
        "site/alpha",
        "--timeout=60s",
    ]);
    // It waits: the condition is not there yet.
    if let Some(status) = waiting.exit(Duration::from_secs(2)).await {
        panic!(
            "kubectl wait ended early ({status}): {:?}",
            waiting.output()
        );
    }
    let condition = json!({
        "type": "Ready", "status": "True", "reason": "ApplianceReporting", "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    });
    central
        .merge(
            "/sites/alpha/status",
            json!({"status": {"conditions": [condition]}}),
        )
        .await;
    let status = waiting
        .exit(PATIENCE)
        .await
        .expect("kubectl wait returns after the status write");
    let (stdout, stderr) = waiting.output();
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("condition met"), "{stdout}");
}

/// The example GitOps repository.
fn desired_state() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../desired-state")
}

#[tokio::test]
async fn kubectl_apply_server_side_of_the_example_repository_is_idempotent() {
    let (central, _database) = TestCentral::sqlite().await;
    let kubectl = Kubectl::for_central(&central);
    let repository = desired_state();
    // Sites first: the objects of a site live in its namespace, which must exist, as in
    // Kubernetes.
    for entry in std::fs::read_dir(repository.join("sites")).unwrap() {
        let site = entry.unwrap().path().join("site.yaml");
        kubectl
            .run(&["apply", "--server-side", "-f", site.to_str().unwrap()])
            .await;
    }
    let everything = [
        "apply",
        "--server-side",
        "-R",
        "-f",
        repository.to_str().unwrap(),
    ];
    let first = kubectl.run(&everything).await;
    assert!(first.contains("serverside-applied"), "{first}");
    let hosts = kubectl.run(&["get", "hosts", "-A", "-o", "name"]).await;
    assert!(hosts.lines().count() >= 2, "{hosts}");
    let before = central.store.current_rv().await.unwrap();

    let second = kubectl.run(&everything).await;
    assert_eq!(
        first.lines().count(),
        second.lines().count(),
        "{first}\n{second}"
    );
    assert_eq!(
        central.store.current_rv().await.unwrap(),
        before,
        "the second apply wrote something:\n{second}"
    );
}
