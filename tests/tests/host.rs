//! The test host harness itself: a host is reachable over real SSH with its pinned key, runs scripts as
//! root through sudo, keeps its files and processes to itself, and leaves nothing behind.

use std::process::Command;

use osc_tests::host::TestHost;

#[test]
fn a_host_answers_over_ssh_as_root_through_sudo_with_its_pinned_key() {
    let host = TestHost::start().expect("start a test host");
    let run = host
        .run_script(
            "sh",
            "id -un; echo \"$GREETING\"",
            &[("GREETING", "it's me")],
        )
        .expect("ssh");
    assert_eq!(
        run.stdout,
        "root\nit's me\n",
        "{run:?}\n{}",
        host.sshd_log()
    );

    let fingerprint = Command::new("ssh-keyscan")
        .args(["-t", "ed25519", &host.address().to_string()])
        .output()
        .expect("ssh-keyscan");
    let scanned = String::from_utf8_lossy(&fingerprint.stdout).into_owned();
    let listed = Command::new("sh")
        .args([
            "-c",
            &format!("printf '%s\\n' '{}' | ssh-keygen -l -f -", scanned.trim()),
        ])
        .output()
        .expect("ssh-keygen");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(host.host_key_fingerprint()),
        "the host presents another key than {}: {scanned}",
        host.host_key_fingerprint()
    );
}

#[test]
fn a_hosts_files_and_processes_are_its_own_and_go_with_it() {
    let host = TestHost::start().expect("start a test host");
    let other = TestHost::start().expect("start a second test host");
    host.exec_ok("echo drift > /etc/osc-test-marker")
        .expect("write in the host's /etc");
    assert!(
        !std::path::Path::new("/etc/osc-test-marker").exists(),
        "the write reached the machine's /etc"
    );
    let seen = other
        .exec("cat /etc/osc-test-marker")
        .expect("read in the other host");
    assert_ne!(
        seen.exit_code, 0,
        "the other host sees the first one's file"
    );
    let over_ssh = host
        .run_script("sh", "cat /etc/osc-test-marker", &[])
        .expect("ssh");
    assert_eq!(
        over_ssh.stdout, "drift\n",
        "an SSH session sees the host's view"
    );

    // Only the host's own processes are visible: sshd as PID 1 and what runs under it.
    let init = host.exec_ok("cat /proc/1/comm").expect("read PID 1");
    assert_eq!(init.trim(), "sshd");

    let name = host.name().to_owned();
    let dir = host.dir().to_owned();
    drop(host);
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&namespaces.stdout)
            .split_whitespace()
            .any(|n| n == name),
        "namespace {name} is left behind"
    );
    assert!(!dir.exists(), "{} is left behind", dir.display());
}
