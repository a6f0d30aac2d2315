//! Every Linux runbook of the library exercised on a real test host over a real SSH session: drift is
//! injected behind the runbook's back, the check fails, remediation fixes it, verify passes, and a
//! second remediation changes nothing (`LibraryRunbook::assert_heals`). What a test host cannot provide
//! (systemd, kernel modules, an encrypted disk) is named in each test's doc comment; the runbook's own
//! description in `desired-state/README.md` says the same.

use std::time::Duration;

use osc_crds::kinds::runbook::Judgement;
use osc_tests::host::TestHost;
use osc_tests::runbook::StepName::{Check, Remediate};
use osc_tests::runbook::{Heal, Healed, LibraryRunbook};

fn start() -> TestHost {
    TestHost::start().expect("start a test host")
}

fn runbook(name: &str) -> LibraryRunbook {
    LibraryRunbook::load(name).expect("load the runbook")
}

fn inject(host: &TestHost, drift: &str) {
    host.exec_ok(drift).expect("inject drift");
}

/// Starts a host, injects `drift` and heals it with runbook `name` (asserting every stage); returns the
/// host and the runs, for the test's own further looks.
fn heals(name: &str, drift: &str, heal: Heal<'_>) -> (TestHost, Healed) {
    let host = start();
    inject(&host, drift);
    let healed = runbook(name).assert_heals(&host, heal);
    (host, healed)
}

/// A local edit of the runbook's own drop-in (root logins allowed again) is undone, and the sshd the test
/// is connected to is reloaded through its pid file.
#[test]
fn linux_ssh_root_login() {
    let (_, healed) = heals(
        "linux-ssh-root-login",
        "printf 'PermitRootLogin yes\\n' >/etc/ssh/sshd_config.d/00-osiriscare-root-login.conf",
        Heal {
            drifted: "PermitRootLogin yes (want no)",
            unchanged: "already in place",
            ..Heal::default()
        },
    );
    assert!(
        healed.remediate.run.stdout.contains("sent SIGHUP to sshd"),
        "{}",
        healed.remediate
    );
}

/// cloud-init's drop-in turning password logins on is outranked by the runbook's earlier drop-in; the
/// cloud-init file itself is left alone.
#[test]
fn linux_ssh_password_auth() {
    let cloud_init = "/etc/ssh/sshd_config.d/50-cloud-init.conf";
    heals(
        "linux-ssh-password-auth",
        &format!("printf 'PasswordAuthentication yes\\n' >{cloud_init}"),
        Heal {
            drifted: "PasswordAuthentication yes (want no)",
            unchanged: "already in place",
            also_compare: &[cloud_init],
            ..Heal::default()
        },
    );
}

/// Debian's default (no ClientAlive probing) drifts; a malformed parameter is "could not decide", not
/// drift.
#[test]
fn linux_ssh_idle_timeout() {
    let host = start();
    let runbook = runbook("linux-ssh-idle-timeout");
    runbook.assert_step(
        &host,
        Check,
        &[("CLIENT_ALIVE_INTERVAL", "5m")],
        Judgement::Undecided,
        "must be whole numbers",
    );
    runbook.assert_heals(
        &host,
        Heal {
            drifted: "ClientAliveInterval 0 (want 300)",
            unchanged: "already in place",
            ..Heal::default()
        },
    );
}

/// The runbook's file edited to no timeout is rewritten; a fresh login shell then gets a read-only,
/// exported TMOUT.
#[test]
fn linux_shell_timeout() {
    heals(
        "linux-shell-timeout",
        "printf 'TMOUT=0\\n' >/etc/profile.d/osiriscare-tmout.sh",
        Heal {
            params: &[("IDLE_SECONDS", "600")],
            drifted: "TMOUT=0 (read-only: no, exported: no",
            unchanged: "already in place",
            ..Heal::default()
        },
    );
}

/// An account whose password was deleted (`passwd -d`) is locked; nobody else's entry changes.
#[test]
fn linux_no_empty_passwords() {
    let (host, _) = heals(
        "linux-no-empty-passwords",
        "useradd -M intern && passwd -q -d intern",
        Heal {
            drifted: "accounts with an empty password: intern",
            unchanged: "nothing changed",
            ..Heal::default()
        },
    );
    let entry = host
        .exec_ok("getent shadow intern | cut -d: -f2")
        .expect("read shadow");
    assert_eq!(entry.trim(), "!", "the account should be locked");
}

/// Check-only: a second UID 0 account is reported, and the check passes again once a person removed
/// it. There is no remediation to exercise, on purpose.
#[test]
fn linux_uid0_only_root() {
    let host = start();
    let runbook = runbook("linux-uid0-only-root");
    runbook.assert_step(
        &host,
        Check,
        &[],
        Judgement::Met,
        "root is the only account",
    );
    inject(&host, "useradd -M -o -u 0 toor");
    runbook.assert_step(&host, Check, &[], Judgement::NotMet, "with UID 0: toor");
    inject(&host, "userdel --force toor");
    runbook.assert_step(
        &host,
        Check,
        &[],
        Judgement::Met,
        "root is the only account",
    );
}

/// A world-writable file in /etc loses the write bit for others and keeps the rest of its mode.
/// Searched: /etc only (`DIRECTORIES`), since walking the machine's /usr several times would make this
/// the slowest test by far without exercising anything more of the runbook.
#[test]
fn linux_world_writable() {
    let (host, _) = heals(
        "linux-world-writable",
        "chmod 0666 /etc/hostname",
        Heal {
            params: &[("DIRECTORIES", "/etc /nonexistent")],
            drifted: "/etc/hostname",
            unchanged: "nothing changed",
            also_compare: &["/etc/hostname"],
        },
    );
    let mode = host.exec_ok("stat -c %a /etc/hostname").expect("stat");
    assert_eq!(mode.trim(), "664");
}

/// A host without the baseline gets it: the table is loaded in the host's own network namespace and
/// included from /etc/nftables.conf; after a ruleset flush the table is loaded again, the files staying
/// as they are. The SSH session survives both. Not exercised: enabling nftables.service (no systemd).
#[test]
fn linux_nftables_baseline() {
    let host = start();
    let runbook = runbook("linux-nftables-baseline");
    let heal = Heal {
        params: &[("ALLOW_TCP_PORTS", "22 443")],
        drifted: "loaded: no",
        unchanged: "already loaded",
        ..Heal::default()
    };
    runbook.assert_heals(&host, heal);
    let table = host
        .exec_ok("nft list table inet osiriscare")
        .expect("list the table");
    assert!(table.contains("policy drop"), "{table}");
    inject(&host, "nft flush ruleset");
    let healed = runbook.assert_heals(
        &host,
        Heal {
            drifted: "loaded: no, in /etc/nftables.conf: yes",
            ..heal
        },
    );
    assert!(
        !healed.remediate.run.stdout.contains("wrote"),
        "{}",
        healed.remediate
    );
    // Closing SSH is refused before anything is written.
    runbook.assert_step(
        &host,
        Remediate,
        &[("ALLOW_TCP_PORTS", "443")],
        Judgement::NotMet,
        "SSH uses port 22",
    );
}

/// Not exercised: a running, enabled auditd. The kernel's audit subsystem is one per machine, not per
/// namespace, so a test host must not run auditd, and without systemd the remediation cannot enable a
/// service; the test checks that the check reports the stopped daemon and that the remediation says
/// why it changes nothing.
#[test]
fn linux_auditd() {
    reports_drift_but_needs_systemd("linux-auditd", "running: no");
}

/// Not exercised: a synchronised clock. chronyd and systemd-timesyncd set the machine's one clock, and
/// the remediation needs systemd; the test checks that the check reports no synchronisation daemon
/// and that the remediation says why it changes nothing.
#[test]
fn linux_time_sync() {
    reports_drift_but_needs_systemd("linux-time-sync", "no time synchronisation daemon");
}

/// On a fresh host the check of runbook `name` is not met and says `observed`; its remediation, which
/// needs systemd, fails saying so.
fn reports_drift_but_needs_systemd(name: &str, observed: &str) {
    let host = start();
    let runbook = runbook(name);
    runbook.assert_step(&host, Check, &[], Judgement::NotMet, observed);
    let says = "systemd is not PID 1";
    runbook.assert_step(&host, Remediate, &[], Judgement::NotMet, says);
}

/// A later drop-in re-admitting a CBC cipher (an old scanner's) is outranked; a client offering only
/// that cipher gets in before and is refused after, by the very sshd the test talks to.
#[test]
fn linux_ssh_crypto() {
    let host = start();
    let legacy = "/etc/ssh/sshd_config.d/50-legacy-scanner.conf";
    // Written and taken into use, as an administrator would.
    inject(
        &host,
        &format!("printf 'Ciphers +aes128-cbc\\n' >{legacy} && kill -HUP $(cat /run/sshd.pid)"),
    );
    let cbc_only = ["-o", "Ciphers=aes128-cbc"];
    let before = host.ssh_with_options(&cbc_only, "true", b"").expect("ssh");
    assert_eq!(before.exit_code, 0, "{before:?}");
    runbook("linux-ssh-crypto").assert_heals(
        &host,
        Heal {
            drifted: "aes128-cbc (want chacha20-poly1305@openssh.com",
            unchanged: "already in place",
            also_compare: &[legacy],
            ..Heal::default()
        },
    );
    let after = host.ssh_with_options(&cbc_only, "true", b"").expect("ssh");
    assert_ne!(after.exit_code, 0, "{after:?}");
    assert!(
        host.wait_for_sshd_log("no matching cipher found", Duration::from_secs(10)),
        "sshd should have refused the cipher:\n{}",
        host.sshd_log()
    );
}

/// The runbook's own modprobe file, emptied by hand, is rewritten; an earlier file that lets the driver
/// load again wins over it, and remediation names that file instead of editing it. Not exercised:
/// unloading a loaded usb-storage (modules are the machine's kernel's, not the host's; this kernel has
/// no loadable modules at all).
#[test]
fn linux_usb_storage_blocked() {
    let host = start();
    let runbook = runbook("linux-usb-storage-blocked");
    inject(
        &host,
        "mkdir -p /etc/modprobe.d && printf '# allowed for the scanner\\n' >/etc/modprobe.d/00-osiriscare-usb-storage.conf",
    );
    runbook.assert_heals(
        &host,
        Heal {
            drifted: "install command: none, blacklisted: no",
            unchanged: "already in place",
            ..Heal::default()
        },
    );
    inject(
        &host,
        "printf 'install usb-storage /sbin/modprobe --ignore-install usb-storage\\n' >/etc/modprobe.d/00-local-scanner.conf",
    );
    runbook.assert_step(
        &host,
        Check,
        &[],
        Judgement::NotMet,
        "install command: /sbin/modprobe --ignore-install usb-storage",
    );
    runbook.assert_step(
        &host,
        Remediate,
        &[],
        Judgement::NotMet,
        "00-local-scanner.conf",
    );
}

/// Debian's defaults (PASS_MAX_DAYS 99999, pwquality's minlen 8) with pam_pwquality switched off by
/// pam-auth-update are all put right, pam_pwquality through pam-auth-update rather than by editing
/// common-password.
#[test]
fn linux_password_policy() {
    let (host, _) = heals(
        "linux-password-policy",
        "pam-auth-update --package --disable pwquality",
        Heal {
            drifted: "pam_pwquality: no, minlen 8, PASS_MAX_DAYS 99999",
            unchanged: "pam_pwquality already checks new passwords",
            ..Heal::default()
        },
    );
    let defs = host
        .exec_ok("grep -E '^PASS_(MAX|MIN)_DAYS|^PASS_WARN_AGE' /etc/login.defs")
        .expect("read login.defs");
    assert_eq!(
        defs,
        "PASS_MAX_DAYS\t365\nPASS_MIN_DAYS\t1\nPASS_WARN_AGE\t14\n"
    );
}

/// The distribution's 20auto-upgrades turned off is outranked by the runbook's later file, as APT's
/// effective configuration shows. Not exercised: installing the package (no network) and enabling the
/// apt-daily timers (no systemd).
#[test]
fn linux_unattended_upgrades() {
    let distribution = "/etc/apt/apt.conf.d/20auto-upgrades";
    heals(
        "linux-unattended-upgrades",
        &format!(
            "printf 'APT::Periodic::Update-Package-Lists \"1\";\\nAPT::Periodic::Unattended-Upgrade \"0\";\\n' >{distribution}"
        ),
        Heal {
            drifted: "Unattended-Upgrade \"0\"",
            unchanged: "already in place",
            also_compare: &[distribution],
            ..Heal::default()
        },
    );
}

/// A host whose AIDE policy covers /etc/ssh and has no baseline gets one, and a second remediation
/// never replaces it. Without the aide program (hidden in the host's view) the check answers "not
/// applicable". Not exercised: Debian's full policy from aide-common, whose first database takes minutes.
#[test]
fn linux_aide() {
    let host = start();
    let runbook = runbook("linux-aide");
    inject(
        &host,
        "mkdir -p /etc/aide && printf 'database_in=file:/var/lib/aide/aide.db\\ndatabase_out=file:/var/lib/aide/aide.db.new\\n/etc/ssh R\\n' >/etc/aide/aide.conf",
    );
    runbook.assert_heals(
        &host,
        Heal {
            drifted: "no baseline database: /var/lib/aide/aide.db does not exist",
            unchanged: "already present",
            ..Heal::default()
        },
    );
    inject(&host, "mount --bind /dev/null /usr/bin/aide");
    runbook.assert_step(
        &host,
        Check,
        &[],
        Judgement::NotApplicable,
        "aide is not installed",
    );
}

/// Report-only. The host's /var is an overlay, which the check cannot judge (undecided); the root
/// filesystem is judged by its block device stack, as the test reads it from the machine. Not exercised:
/// an encrypted filesystem, since dm-crypt needs device-mapper and a block device that a test host
/// cannot create, so the compliant answer is seen only on a machine whose root is encrypted.
#[test]
fn linux_disk_encryption() {
    let host = start();
    let runbook = runbook("linux-disk-encryption");
    runbook.assert_step(
        &host,
        Check,
        &[("MOUNTS", "/var")],
        Judgement::Undecided,
        "/var: osc-var (overlay) is not a block device",
    );
    runbook.assert_step(
        &host,
        Check,
        &[("MOUNTS", "var")],
        Judgement::Undecided,
        "MOUNTS must list absolute paths",
    );
    let root = std::process::Command::new("sh")
        .args([
            "-c",
            "d=$(findmnt -n -o SOURCE /); [ -b \"$d\" ] || exit 3; lsblk --inverse -n -o TYPE \"$d\" | grep -qx crypt",
        ])
        .status()
        .expect("inspect the machine's root");
    let (judgement, says) = match root.code() {
        Some(0) => (Judgement::Met, "encrypted"),
        Some(1) => (Judgement::NotMet, "not encrypted"),
        _ => (Judgement::Undecided, "not a block device"),
    };
    runbook.assert_step(&host, Check, &[("MOUNTS", "/")], judgement, says);
}

/// Check-only: no marker, a marker 30 hours old, a fresh one, and a malformed age. There is no
/// remediation to exercise, on purpose: a failed backup needs a person to learn why.
#[test]
fn linux_backup_recency() {
    let host = start();
    let runbook = runbook("linux-backup-recency");
    let marker = [("BACKUP_MARKER", "/var/backups/ehr-succeeded")];
    runbook.assert_step(&host, Check, &marker, Judgement::NotMet, "does not exist");
    inject(&host, "touch -d '30 hours ago' /var/backups/ehr-succeeded");
    runbook.assert_step(&host, Check, &marker, Judgement::NotMet, "30 h ago");
    inject(&host, "touch /var/backups/ehr-succeeded");
    runbook.assert_step(&host, Check, &marker, Judgement::Met, "0 h ago");
    runbook.assert_step(
        &host,
        Check,
        &[marker[0], ("MAX_AGE_HOURS", "a day")],
        Judgement::Undecided,
        "MAX_AGE_HOURS must be a whole number",
    );
}

/// A real rsyslogd in the host, started by the remediation (no service manager runs there), forwards a
/// message logged on the host to a UDP collector the test listens on at the host's link. The host's
/// rsyslog.conf loses its kernel-log input first, as set-up rather than drift: the kernel log is the
/// machine's. Not exercised: restarting through systemd, and TCP.
#[test]
fn linux_syslog_forwarding() {
    let host = start();
    let collector = std::net::UdpSocket::bind((host.peer_address(), 0)).expect("bind a collector");
    let target = collector
        .local_addr()
        .expect("collector address")
        .to_string();
    let params = [("SYSLOG_TARGET", target.as_str())];
    inject(&host, "sed -i '/imklog/d' /etc/rsyslog.conf");
    runbook("linux-syslog-forwarding").assert_heals(
        &host,
        Heal {
            params: &params,
            drifted: "configured: no, rsyslogd running: no",
            unchanged: "nothing changed",
            ..Heal::default()
        },
    );
    inject(&host, "logger -t osc-test 'hello from the host'");
    collector
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buffer = [0u8; 2048];
    loop {
        let (length, _) = collector
            .recv_from(&mut buffer)
            .expect("the host forwards its log to the collector");
        if String::from_utf8_lossy(&buffer[..length]).contains("hello from the host") {
            break;
        }
    }
}
