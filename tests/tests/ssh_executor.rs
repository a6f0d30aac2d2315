//! The controller's SSH executor (`osc_controller::exec::SshExecutor`) against real test hosts: library
//! runbooks healed over one session with a key and with a password, keys with a passphrase and keys
//! refused, the step timeout killing the remote process, the output cap, host-key pinning, sudo
//! refused, an unreachable host failing alone, and idle sessions closed.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use osc_controller::Error;
use osc_controller::exec::{
    Executor, OUTPUT_CAP, SshCredential, SshExecutor, SshSettings, SshTarget, StepRequest, StepRun,
    judge,
};
use osc_crds::kinds::runbook::Step;
use osc_proto::evidence::{Sha256Digest, Verdict};
use osc_tests::host::TestHost;
use osc_tests::runbook::LibraryRunbook;
use zeroize::Zeroizing;

fn start() -> TestHost {
    TestHost::start().expect("start a test host")
}

fn executor() -> SshExecutor {
    SshExecutor::new(SshSettings {
        connect_timeout: Duration::from_secs(3),
        ..SshSettings::default()
    })
}

/// The host's address with the test's client key as an in-memory credential.
fn key_target(host: &TestHost, pin: Option<String>) -> SshTarget {
    let key = std::fs::read_to_string(host.client_key()).expect("read the client key");
    SshTarget {
        address: host.address().to_string(),
        port: host.port(),
        credential: SshCredential::key("test/key", host.user(), &key, None).expect("decode"),
        host_key: pin,
    }
}

fn step(interpreter: &str, script: &str, timeout: &str) -> Step {
    serde_json::from_value(serde_json::json!({
        "interpreter": interpreter, "script": script, "timeout": timeout,
    }))
    .expect("a step")
}

async fn run(
    executor: &SshExecutor,
    host: &TestHost,
    name: &'static str,
    step: &Step,
    params: &BTreeMap<String, String>,
) -> Result<StepRun, Error> {
    executor
        .run(StepRequest {
            host: host.name(),
            address: Some(&host.address().to_string()),
            name,
            step,
            params,
        })
        .await
}

/// The verdict of a step that must have run, with its output on failure.
async fn verdict(
    executor: &SshExecutor,
    host: &TestHost,
    name: &'static str,
    step: &Step,
    params: &BTreeMap<String, String>,
) -> (Verdict, String) {
    let run = run(executor, host, name, step, params)
        .await
        .unwrap_or_else(|e| panic!("{name} did not run: {e}"));
    let output = String::from_utf8_lossy(&run.output).into_owned();
    (judge(step, &run), output)
}

/// How often sshd logged `text`, once its log shows it at least `at_least` times.
fn sshd_count(host: &TestHost, text: &str, at_least: usize) -> usize {
    for _ in 0..100 {
        let count = host.sshd_log().matches(text).count();
        if count >= at_least {
            return count;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    host.sshd_log().matches(text).count()
}

/// Sends sshd SIGHUP (it re-executes itself and reads its configuration and keys again) and waits
/// until it listens again.
fn reload_sshd(host: &TestHost) {
    let listening = "Server listening on 0.0.0.0";
    let before = host.sshd_log().matches(listening).count();
    host.exec_ok("kill -HUP 1").expect("signal sshd");
    assert!(
        sshd_count(host, listening, before + 1) > before,
        "sshd did not listen again:\n{}",
        host.sshd_log()
    );
}

/// linux-ssh-idle-timeout healed through the executor with a key: a malformed parameter is an error
/// (the runbook's `undecidedExitCode`), not drift; the drifted check, the remediation (which reloads
/// the very sshd the session is on) and the verify all run over one login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_library_runbook_heals_over_one_session_with_a_key() {
    let host = start();
    let executor = executor();
    executor.set_target(host.name(), key_target(&host, None));
    let library = LibraryRunbook::load("linux-ssh-idle-timeout").expect("load");
    let spec = &library.runbook.spec;
    let params: BTreeMap<String, String> =
        library.params(&[]).expect("params").into_iter().collect();
    let mut malformed = params.clone();
    malformed.insert("CLIENT_ALIVE_INTERVAL".into(), "5m".into());

    let (undecided, said) = verdict(&executor, &host, "check", &spec.check, &malformed).await;
    assert_eq!(undecided, Verdict::Error, "{said}");
    assert!(said.contains("must be whole numbers"), "{said}");

    let (check, said) = verdict(&executor, &host, "check", &spec.check, &params).await;
    assert_eq!(check, Verdict::Drifted, "{said}");
    assert!(said.contains("ClientAliveInterval 0 (want 300)"), "{said}");
    let remediate = spec.remediate.as_ref().expect("remediate");
    let fixed = run(&executor, &host, "remediate", remediate, &params)
        .await
        .expect("remediate ran");
    let said = String::from_utf8_lossy(&fixed.output);
    assert_eq!(fixed.exit_code, Some(0), "{said}");
    assert!(said.contains("sent SIGHUP to sshd"), "{said}");
    let verify = spec.verify.as_ref().unwrap_or(&spec.check);
    let (verified, said) = verdict(&executor, &host, "verify", verify, &params).await;
    assert_eq!(verified, Verdict::Compliant, "{said}");

    assert_eq!(
        sshd_count(&host, "Accepted publickey for osc", 1),
        1,
        "every step must reuse the first session:\n{}",
        host.sshd_log()
    );
}

/// A log writer into memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// linux-shell-timeout healed with a password credential, with every log line of the process (ours
/// and russh's, at TRACE) captured: the password appears in none, nor in any Debug output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_login_heals_and_never_logs_the_password() {
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .try_init()
        .expect("the only subscriber of this test process");

    let host = start();
    let password = "Tr0ub4dor-and-3-horses";
    host.exec_ok(&format!(
        "echo 'osc:{password}' | chpasswd && \
         printf 'PasswordAuthentication yes\\n' >/etc/ssh/sshd_config.d/00-test-password.conf"
    ))
    .expect("set a password and allow password logins");
    reload_sshd(&host);
    let target = SshTarget {
        address: host.address().to_string(),
        port: host.port(),
        credential: SshCredential::password(host.user(), Zeroizing::new(password.to_owned())),
        host_key: None,
    };
    let debug = format!("{target:?}");
    let executor = executor();
    executor.set_target(host.name(), target);

    host.exec_ok("printf 'TMOUT=0\\n' >/etc/profile.d/osiriscare-tmout.sh")
        .expect("inject drift");
    let library = LibraryRunbook::load("linux-shell-timeout").expect("load");
    let spec = &library.runbook.spec;
    let params: BTreeMap<String, String> = library
        .params(&[("IDLE_SECONDS", "600")])
        .expect("params")
        .into_iter()
        .collect();
    let (check, said) = verdict(&executor, &host, "check", &spec.check, &params).await;
    assert_eq!(check, Verdict::Drifted, "{said}");
    let remediate = spec.remediate.as_ref().expect("remediate");
    let fixed = run(&executor, &host, "remediate", remediate, &params)
        .await
        .expect("remediate ran");
    assert_eq!(
        fixed.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&fixed.output)
    );
    let verify = spec.verify.as_ref().unwrap_or(&spec.check);
    let (verified, said) = verdict(&executor, &host, "verify", verify, &params).await;
    assert_eq!(verified, Verdict::Compliant, "{said}");
    assert_eq!(sshd_count(&host, "Accepted password for osc", 1), 1);

    let logs = String::from_utf8_lossy(&logs.0.lock().expect("log lock")).into_owned();
    assert!(
        logs.contains("pinned the SSH host key on first contact"),
        "the capture must hold the run's log lines:\n{logs}"
    );
    for shown in [&logs, &debug, &format!("{executor:?}")] {
        assert!(!shown.contains(password), "the password leaked:\n{shown}");
    }
}

/// A step past its timeout is killed on the host, with what it started, and reported timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_past_its_timeout_is_killed_on_the_host() {
    let host = start();
    let executor = executor();
    executor.set_target(host.name(), key_target(&host, None));
    let sleeper = step("sh", "echo started\nsleep 600\necho never", "1s");
    let run = run(&executor, &host, "check", &sleeper, &BTreeMap::new())
        .await
        .expect("the step ran");
    assert!(run.timed_out, "{run:?}");
    assert_eq!(run.exit_code, None);
    assert_eq!(judge(&sleeper, &run), Verdict::Error);
    assert_eq!(String::from_utf8_lossy(&run.output), "started\n");
    let mut left = String::new();
    for _ in 0..100 {
        left = host.exec("pgrep -a sleep").expect("pgrep").stdout;
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(left, "", "the step's sleep is still running");
}

/// A step printing 1 MiB keeps the first `OUTPUT_CAP` bytes and counts and hashes all of it; a second
/// step (with parameters, which reach the script but not the command line) reuses the session; once
/// the session is killed on the host, a third step opens a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_is_capped_and_the_session_is_reused_until_it_breaks() {
    let host = start();
    let executor = executor();
    executor.set_target(host.name(), key_target(&host, None));
    let loud = step("sh", "head -c 1048576 /dev/zero | tr '\\0' x", "30s");
    let run1 = run(&executor, &host, "check", &loud, &BTreeMap::new())
        .await
        .expect("ran");
    assert_eq!(run1.exit_code, Some(0));
    assert_eq!(run1.output.len(), OUTPUT_CAP);
    assert_eq!(run1.output_bytes, 1_048_576);
    assert_eq!(run1.output_sha256, Sha256Digest::of(&vec![b'x'; 1_048_576]));

    let params = BTreeMap::from([("SECRET_PARAM".to_owned(), "o'brien $HOME".to_owned())]);
    let show = step(
        "python3",
        "import os, subprocess\n\
         print(os.environ['SECRET_PARAM'])\n\
         ps = subprocess.run(['ps', '-eo', 'args'], capture_output=True, text=True).stdout\n\
         print('on a command line' if 'brien' in ps else 'on no command line')\n",
        "30s",
    );
    let run2 = run(&executor, &host, "check", &show, &params)
        .await
        .expect("ran");
    assert_eq!(
        String::from_utf8_lossy(&run2.output),
        "o'brien $HOME\non no command line\n"
    );
    assert_eq!(sshd_count(&host, "Accepted publickey for osc", 1), 1);

    // The session's server side dies (a host's sshd restarted hard): the next step logs in again.
    host.exec_ok("pkill -KILL -f '^sshd: osc'")
        .expect("kill the session");
    let run3 = run(
        &executor,
        &host,
        "check",
        &step("sh", "echo again", "10s"),
        &params,
    )
    .await
    .expect("ran on a new session");
    assert_eq!(run3.output, b"again\n");
    assert_eq!(sshd_count(&host, "Accepted publickey for osc", 2), 2);
}

/// The first contact pins the host key; once the host's key is replaced, the pinned key (from the
/// Host's status, or pinned in memory) refuses it and nothing runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_key_is_pinned_and_a_replaced_key_is_refused() {
    let host = start();
    let executor = executor();
    executor.set_target(host.name(), key_target(&host, None));
    let first = executor.connect(host.name()).await.expect("connect");
    assert_eq!(first.fingerprint, host.host_key_fingerprint());
    assert!(first.first_contact);
    let again = executor.connect(host.name()).await.expect("connect");
    assert!(!again.first_contact);
    assert_eq!(
        executor.host_key(host.name()).as_deref(),
        Some(host.host_key_fingerprint())
    );

    let replaced = host
        .exec_ok(
            "ssh-keygen -q -t ed25519 -N '' -f /tmp/new_key && \
             cp /tmp/new_key /run/osc-test-host/host_key && \
             ssh-keygen -l -E sha256 -f /tmp/new_key.pub | cut -d' ' -f2",
        )
        .expect("replace the host key");
    reload_sshd(&host);
    let touch = step("sh", "touch /tmp/ran", "10s");
    let pinned = host.host_key_fingerprint().to_owned();
    for pin in [Some(pinned.clone()), None] {
        // A new target drops the session; without a pin of its own it keeps the one in memory.
        executor.set_target(host.name(), key_target(&host, pin));
        let error = run(&executor, &host, "check", &touch, &BTreeMap::new())
            .await
            .expect_err("a replaced key is refused");
        match &error {
            Error::HostKeyMismatch {
                host: name,
                expected,
                presented,
                ..
            } => {
                assert_eq!(name, host.name());
                assert_eq!(expected, &pinned);
                assert_eq!(presented, replaced.trim());
            }
            other => panic!("not a host key error: {other}"),
        }
        let message = error.to_string();
        assert!(
            message.contains(&pinned) && message.contains(replaced.trim()),
            "{message}"
        );
    }
    let ran = host.exec("test -e /tmp/ran").expect("test");
    assert_ne!(ran.exit_code, 0, "the step ran on a host with another key");
}

/// A login user without passwordless sudo is an error that says so, not a failing step read as drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_sudo_is_refused_with_the_reason() {
    let host = start();
    host.exec_ok("rm /etc/sudoers.d/osc-test-host")
        .expect("take sudo away");
    let executor = executor();
    executor.set_target(host.name(), key_target(&host, None));
    let error = run(
        &executor,
        &host,
        "check",
        &step("sh", "true", "10s"),
        &BTreeMap::new(),
    )
    .await
    .expect_err("no sudo");
    let message = error.to_string();
    assert!(matches!(error, Error::Connect { .. }), "{message}");
    assert!(
        message.contains("cannot run commands as root with `sudo -n`"),
        "{message}"
    );
}

/// A host that drops every packet fails at the connect timeout, while a step on another host runs and
/// ends first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_host_fails_alone() {
    let (good, bad) = (start(), start());
    bad.exec_ok(
        "nft add table inet cut && \
         nft add chain inet cut input '{ type filter hook input priority 0; policy drop; }'",
    )
    .expect("cut the host off");
    let executor = executor();
    executor.set_target(good.name(), key_target(&good, None));
    executor.set_target(bad.name(), key_target(&bad, None));
    let finished = AtomicUsize::new(0);
    let quick = step("sh", "echo fine", "10s");
    let none = BTreeMap::new();
    let (good_run, bad_run) = tokio::join!(
        async {
            let result = run(&executor, &good, "check", &quick, &none).await;
            (result, finished.fetch_add(1, Ordering::SeqCst))
        },
        async {
            let result = run(&executor, &bad, "check", &quick, &none).await;
            (result, finished.fetch_add(1, Ordering::SeqCst))
        },
    );
    let (good_result, good_order) = good_run;
    let (bad_result, bad_order) = bad_run;
    assert_eq!(good_result.expect("the good host ran").output, b"fine\n");
    let error = bad_result.expect_err("the host is unreachable");
    let message = error.to_string();
    assert!(matches!(error, Error::Connect { .. }), "{message}");
    assert!(message.contains("no SSH session within 3s"), "{message}");
    assert!(message.contains(&bad.address().to_string()), "{message}");
    assert!(
        good_order < bad_order,
        "the good host waited for the bad one"
    );
}

/// A key encrypted with a passphrase logs in when the credential carries the passphrase; without it,
/// with a wrong one, or as an RSA key, the credential is refused saying what to set, never echoing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passphrase_keys_log_in_and_unusable_keys_are_refused_with_the_fix() {
    let host = start();
    let dir = host.dir();
    let encrypted = dir.join("encrypted_key");
    std::fs::copy(host.client_key(), &encrypted).expect("copy the client key");
    let passphrase = "correct horse battery staple";
    let rsa = dir.join("rsa_key");
    for args in [
        vec![
            "-q",
            "-p",
            "-P",
            "",
            "-N",
            passphrase,
            "-f",
            encrypted.to_str().unwrap(),
        ],
        vec![
            "-q",
            "-t",
            "rsa",
            "-b",
            "2048",
            "-N",
            "",
            "-f",
            rsa.to_str().unwrap(),
        ],
    ] {
        let status = std::process::Command::new("ssh-keygen")
            .args(&args)
            .status()
            .expect("run ssh-keygen");
        assert!(status.success(), "ssh-keygen {args:?}");
    }
    let encrypted = std::fs::read_to_string(&encrypted).expect("read");
    let rsa = std::fs::read_to_string(&rsa).expect("read");
    let key = |text: &str, passphrase: Option<&str>| {
        SshCredential::key("clinic/linux", host.user(), text, passphrase)
    };

    let refusals = [
        (
            key(&encrypted, None),
            "privateKey is encrypted and there is no passphrase",
        ),
        (
            key(&encrypted, Some("wrong")),
            "does not decode with the passphrase given",
        ),
        (
            key(&rsa, None),
            "the appliance logs in with Ed25519 or ECDSA keys",
        ),
    ];
    for (credential, says) in refusals {
        let message = credential.expect_err("refused").to_string();
        assert!(
            message.starts_with("credential clinic/linux: "),
            "{message}"
        );
        assert!(message.contains(says), "{message}");
        let leaked = (encrypted.lines().chain(rsa.lines()))
            .filter(|line| !line.starts_with("-----"))
            .any(|line| message.contains(line));
        assert!(!message.contains(passphrase) && !leaked, "{message}");
    }

    let executor = executor();
    executor.set_target(
        host.name(),
        SshTarget {
            address: host.address().to_string(),
            port: host.port(),
            credential: key(&encrypted, Some(passphrase)).expect("decrypts"),
            host_key: None,
        },
    );
    let ran = run(
        &executor,
        &host,
        "check",
        &step("sh", "id -un", "10s"),
        &BTreeMap::new(),
    )
    .await
    .expect("logged in with the decrypted key");
    assert_eq!(ran.output, b"root\n");
}

/// Runs `echo` on `name`, one of several Host names that all reach `host`.
async fn echo_on(executor: &SshExecutor, host: &TestHost, name: &str) {
    let run = executor
        .run(StepRequest {
            host: name,
            address: Some(&host.address().to_string()),
            name: "check",
            step: &step("sh", "echo up", "10s"),
            params: &BTreeMap::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(run.output, b"up\n");
}

/// Sessions no step uses are closed when another host connects: the least recently used beyond
/// `max_sessions`, and any idle past `idle_close`; a closed host logs in again when next used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_beyond_the_limit_or_too_old_are_closed() {
    let host = start();
    let executor = SshExecutor::new(SshSettings {
        connect_timeout: Duration::from_secs(3),
        max_sessions: 2,
        idle_close: Duration::from_secs(3600),
        ..SshSettings::default()
    });
    for name in ["a", "b", "c"] {
        executor.set_target(name, key_target(&host, None));
    }
    let logins = |n| sshd_count(&host, "Accepted publickey for osc", n);
    echo_on(&executor, &host, "a").await;
    echo_on(&executor, &host, "b").await;
    assert_eq!(executor.sessions(), ["a", "b"]);
    // A third host: the least recently used, a, is closed.
    echo_on(&executor, &host, "c").await;
    assert_eq!(executor.sessions(), ["b", "c"]);
    // b and c reuse theirs; a logs in again and closes b.
    echo_on(&executor, &host, "c").await;
    assert_eq!(logins(3), 3);
    echo_on(&executor, &host, "a").await;
    assert_eq!(executor.sessions(), ["a", "c"]);
    assert_eq!(logins(4), 4);

    // Under the limit, a session idle past idle_close is closed all the same.
    let executor = SshExecutor::new(SshSettings {
        connect_timeout: Duration::from_secs(3),
        idle_close: Duration::from_millis(300),
        ..SshSettings::default()
    });
    for name in ["a", "b"] {
        executor.set_target(name, key_target(&host, None));
    }
    echo_on(&executor, &host, "a").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    echo_on(&executor, &host, "b").await;
    assert_eq!(executor.sessions(), ["b"]);
}
