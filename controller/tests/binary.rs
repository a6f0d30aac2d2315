//! The `osc-controller` binary: a bad config stops it with the file and line; a good one opens
//! the outbox, listens on no socket (pull-only) even while it retries an unreachable central
//! (loopback port 1), and stops cleanly on SIGTERM.

use std::path::Path;
use std::process::{Command, Stdio};

use osc_proto::dsse::Signer;

const BINARY: &str = env!("CARGO_BIN_EXE_osc-controller");

/// Writes a config for `dir` (with its key and token files) and returns its path.
fn config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let signer = Signer::from_seed(&[21; 32]);
    std::fs::write(dir.join("signing.key"), signer.to_base64().as_bytes()).unwrap();
    std::fs::write(dir.join("token"), "osc_0123456789abcdef.secret").unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["central.test".to_owned()]).unwrap();
    std::fs::write(dir.join("ca.crt"), ca.cert.pem()).unwrap();
    let path = dir.join("controller.yaml");
    std::fs::write(
        &path,
        format!(
            "centralUrl: https://127.0.0.1:1
caFile: ca.crt
tokenFile: token
site: smile
appliance: box1
signingKeyFile: signing.key
stateDirectory: state
{extra}"
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_bad_config_stops_the_controller_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), "resyncIntervall: 1m\n");
    let output = Command::new(BINARY)
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let place = format!("{}:8:1: unknown field `resyncIntervall`", path.display());
    assert!(stderr.contains(&place), "{stderr}");
}

/// The listening (or bound, for datagrams) TCP, UDP, raw and Unix sockets of process `pid`.
fn listening(pid: u32) -> Vec<String> {
    let output = Command::new("ss")
        .args(["-H", "-l", "-n", "-p", "-t", "-u", "-w", "-x"])
        .output()
        .unwrap();
    assert!(output.status.success(), "ss failed: {output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains(&format!("pid={pid},")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn run_opens_the_outbox_listens_on_nothing_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), "");
    let mut child = Command::new(BINARY)
        .args(["run", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its log line says it runs, with the outbox open; read until then.
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let ready = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|line| line.contains("controller running"));
    assert!(ready.is_some(), "the controller never said it was ready");
    assert!(dir.path().join("state/outbox.sqlite3").exists());
    assert!(!ready.unwrap().contains("secret"), "no secret in the log");

    // The check sees a listener when there is one: this test process's own, on loopback.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert!(
        !listening(std::process::id()).is_empty(),
        "ss shows no process owners"
    );
    drop(probe);
    assert_eq!(listening(child.id()), Vec::<String>::new());

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
