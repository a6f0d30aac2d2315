//! Test hosts: a real Debian `sshd` in its own network, mount and PID namespaces, reached over a real
//! SSH session from the test.
//!
//! [`TestHost::start`] builds one and [`Drop`] takes it apart, also when the test fails. A host is:
//!
//! - a network namespace `osc-h<N>` joined to the root namespace by a veth pair on the private /30
//!   `10.231.<N / 64>.<(N % 64) * 4>` (the root end is `.1`, the host `.2`), where `N` is the first
//!   free slot; the namespace name is the reservation, so parallel tests (cargo-nextest runs each in its
//!   own process) never share an address;
//! - a mount and PID namespace (`unshare --mount --pid --fork --mount-proc`) in which `/etc` and `/var`
//!   are overlays over the machine's own (writes land in the host's temporary directory, so a runbook
//!   may rename files into `/etc` as it does on a real machine, which a bind mount of single files would
//!   refuse), `/run` and `/tmp` are fresh tmpfs, `/dev` is a tmpfs with the few devices a shell needs
//!   (so `/dev/log` and friends are the host's own), and `/proc` shows only the host's processes;
//! - Debian's `sshd`, PID 1 of that PID namespace, reading the host's `/etc/ssh/sshd_config` (so what a
//!   runbook writes under `/etc/ssh` governs the very sshd the test talks to), with only its port, host
//!   key, authorized keys file and pid file given on the command line.
//!
//! The test logs in as the sudoer `osc` with a key and runs scripts through `sudo`, as the appliance
//! does (the runbook library's contract: root cannot log in over SSH, so `linux-ssh-root-login` can be
//! healed on the very host the test is connected to). `osc` exists only in the host's `/etc`.
//!
//! What a test host cannot provide: systemd (nothing is PID 1 but sshd, so `/run/systemd/system` is
//! absent and runbooks take their no-service-manager paths), kernel state that namespaces do not
//! separate (loaded modules, the audit subsystem, block devices) and packages that are not installed on
//! the machine (there is no network to install them from).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use tempfile::TempDir;

/// The account the test logs in as; a passwordless sudoer on the test host only.
pub const USER: &str = "osc";

/// The port sshd listens on inside the host's own network namespace.
pub const SSH_PORT: u16 = 22;

/// How many /30 slots `10.231.0.0/16` holds.
const SLOTS: u32 = 16_384;

/// Everything that can go wrong while making, using or taking apart a test host.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A program could not be started at all (not installed, not on PATH).
    #[error(
        "cannot run {program} to {what}: {source} (tests/run installs what the test hosts need)"
    )]
    Spawn {
        /// What the program was run for.
        what: String,
        /// The program.
        program: String,
        /// Why it did not start.
        #[source]
        source: std::io::Error,
    },
    /// A program ran and failed.
    #[error("{what} failed (exit code {exit_code}): {stderr}")]
    Failed {
        /// What the program was run for.
        what: String,
        /// Its exit code (128 + the signal when killed by one).
        exit_code: i32,
        /// Its standard error.
        stderr: String,
    },
    /// Reading or writing the host's temporary files failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Every network namespace slot is taken (leftovers of killed test runs: `ip netns list`).
    #[error("no free test host slot: osc-h0 … osc-h{} are all taken; remove stale ones with `ip netns del`", SLOTS - 1)]
    NoFreeSlot,
    /// sshd exited before it listened.
    #[error("sshd did not start on test host {name}; its output:\n{log}")]
    SshdDidNotStart {
        /// The host's namespace name.
        name: String,
        /// What sshd and the setup printed.
        log: String,
    },
}

/// A running test host; dropping it kills every process in it and removes its namespaces, mounts and
/// files.
pub struct TestHost {
    /// The network namespace, also the host's name in messages (`osc-h<N>`).
    name: String,
    /// The host's end of the veth pair, where sshd listens.
    address: Ipv4Addr,
    /// The root namespace's end of the veth pair: where the test can listen for what the host sends.
    peer_address: Ipv4Addr,
    /// `SHA256:…` of sshd's Ed25519 host key.
    host_key_fingerprint: String,
    /// sshd, PID 1 of the host's PID namespace, as the root namespace numbers it; `exec` enters its
    /// namespaces.
    init_pid: u32,
    /// sshd's log (`-e`), kept for failure messages, and a signal for each line added.
    log: Arc<(Mutex<String>, Condvar)>,
    // Fields drop in declaration order: processes first, then files, then the network namespace.
    /// Kills the host's processes when dropped.
    _processes: ProcessGuard,
    /// Keys, known_hosts and the overlays' upper directories.
    dir: TempDir,
    /// Removes the network namespace when dropped.
    _network: NetworkGuard,
}

/// A finished command or script: its exit code and output.
#[derive(Clone, Debug)]
pub struct Run {
    /// The exit code; a process killed by a signal counts as 128 + the signal, as shells report it.
    pub exit_code: i32,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl TestHost {
    /// Makes a host and returns once its sshd accepts connections.
    pub fn start() -> Result<Self, HostError> {
        let dir = tempfile::Builder::new()
            .prefix("osc-host-")
            .tempdir()
            .map_err(|source| io("create the host's temporary directory", source))?;
        let client_key = dir.path().join("client_key");
        let host_key = dir.path().join("host_key");
        for (key, comment) in [
            (&client_key, "osc-test-client"),
            (&host_key, "osc-test-host"),
        ] {
            run_checked(
                "generate an SSH key",
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                    .arg(key),
            )?;
        }

        let (slot, network) = reserve_slot()?;
        let name = network.0.clone();
        let base = u32::from(Ipv4Addr::new(10, 231, 0, 0)) + slot * 4;
        let (peer_address, address) = (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2));
        let (root_end, host_end) = (format!("osch{slot}r"), format!("osch{slot}h"));
        for args in [
            vec![
                "addr",
                "add",
                &format!("{peer_address}/30"),
                "dev",
                &root_end,
            ],
            vec!["link", "set", &root_end, "up"],
            vec![
                "-n",
                &name,
                "addr",
                "add",
                &format!("{address}/30"),
                "dev",
                &host_end,
            ],
            vec!["-n", &name, "link", "set", &host_end, "up"],
            vec!["-n", &name, "link", "set", "lo", "up"],
        ] {
            run_checked("set up the host's network", Command::new("ip").args(&args))?;
        }

        let setup = include_str!("host/setup.sh");
        // setpriv: the namespaces die with the test even when it is killed before Drop runs.
        // --kill-child: killing the `unshare` process kills the host's PID 1, and with it the host.
        let namespaces = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--", "ip", "netns", "exec", &name])
            .args(["unshare", "--mount", "--pid", "--fork", "--kill-child"])
            .args(["--mount-proc", "--propagation", "private", "--"])
            .args(["sh", "-c", setup, "setup.sh"])
            .arg(dir.path())
            .arg(USER)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| HostError::Spawn {
                what: "start the test host".into(),
                program: "setpriv".into(),
                source,
            })?;
        let mut processes = ProcessGuard {
            namespaces,
            init_pid: None,
        };

        // sshd -e logs to standard error; it is ready once it says it listens on IPv4.
        let mut stderr =
            BufReader::new(processes.namespaces.stderr.take().expect("stderr is piped"));
        let log = Arc::new((Mutex::new(String::new()), Condvar::new()));
        let mut listening = false;
        let mut line = String::new();
        while !listening {
            line.clear();
            match stderr.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    listening = line.starts_with("Server listening on 0.0.0.0");
                    log.0.lock().expect("log lock").push_str(&line);
                }
            }
        }
        if !listening {
            drop(processes);
            let mut rest = String::new();
            let _ = stderr.read_to_string(&mut rest);
            let log = format!("{}{rest}", log.0.lock().expect("log lock"));
            return Err(HostError::SshdDidNotStart { name, log });
        }
        let drain = Arc::clone(&log);
        thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let (log, grew) = &*drain;
                let mut log = log.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
                grew.notify_all();
            }
        });

        let unshare = processes.namespaces.id();
        let children = fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
            .map_err(|source| io("find the host's PID 1", source))?;
        let init_pid = children
            .split_whitespace()
            .next()
            .and_then(|pid| pid.parse().ok())
            .ok_or_else(|| io("find the host's PID 1", std::io::Error::other("no child")))?;
        processes.init_pid = Some(init_pid);

        let public_host_key = fs::read_to_string(host_key.with_extension("pub"))
            .map_err(|source| io("read the host key", source))?;
        let key: Vec<&str> = public_host_key.split_whitespace().take(2).collect();
        fs::write(
            dir.path().join("known_hosts"),
            format!("{address} {}\n", key.join(" ")),
        )
        .map_err(|source| io("write known_hosts", source))?;
        let fingerprint = run_checked(
            "fingerprint the host key",
            Command::new("ssh-keygen")
                .args(["-l", "-E", "sha256", "-f"])
                .arg(host_key.with_extension("pub")),
        )?;
        let host_key_fingerprint = fingerprint
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();

        Ok(Self {
            name,
            address,
            peer_address,
            host_key_fingerprint,
            init_pid,
            log,
            _processes: processes,
            dir,
            _network: network,
        })
    }

    /// The host's name (its network namespace), for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address sshd listens on.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The root namespace's end of the host's link: an address the host can reach and the test can
    /// listen on (a syslog collector, say).
    pub fn peer_address(&self) -> Ipv4Addr {
        self.peer_address
    }

    /// The port sshd listens on.
    pub fn port(&self) -> u16 {
        SSH_PORT
    }

    /// The SHA-256 fingerprint of sshd's host key (`SHA256:…`), as `ssh-keygen -l` prints it.
    pub fn host_key_fingerprint(&self) -> &str {
        &self.host_key_fingerprint
    }

    /// The client's private key file (OpenSSH format, no passphrase).
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// A known_hosts file that pins the host's key.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The user to log in as.
    pub fn user(&self) -> &'static str {
        USER
    }

    /// What sshd has logged so far.
    pub fn sshd_log(&self) -> String {
        self.log.0.lock().expect("log lock").clone()
    }

    /// Waits until sshd's log contains `text`, for at most `limit` (its lines arrive through a pipe,
    /// a moment after the event); returns whether it did.
    pub fn wait_for_sshd_log(&self, text: &str, limit: Duration) -> bool {
        let (log, grew) = &*self.log;
        let log = log.lock().expect("log lock");
        let (log, _) = grew
            .wait_timeout_while(log, limit, |log| !log.contains(text))
            .expect("log lock");
        log.contains(text)
    }

    /// Runs `command` with `sh -c` as root inside the host's namespaces, without SSH: for injecting
    /// drift and reading state behind the runbook's back.
    pub fn exec(&self, command: &str) -> Result<Run, HostError> {
        let output = Command::new("nsenter")
            .args(["--target", &self.init_pid.to_string()])
            .args([
                "--mount", "--pid", "--net", "--wd=/", "--", "sh", "-c", command,
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| HostError::Spawn {
                what: format!("run {command:?} on {}", self.name),
                program: "nsenter".into(),
                source,
            })?;
        Ok(Run::from(output))
    }

    /// [`exec`](Self::exec) that must exit 0; returns its standard output.
    pub fn exec_ok(&self, command: &str) -> Result<String, HostError> {
        let run = self.exec(command)?;
        if run.exit_code == 0 {
            Ok(run.stdout)
        } else {
            Err(HostError::Failed {
                what: format!("{command:?} on {}", self.name),
                exit_code: run.exit_code,
                stderr: run.stderr,
            })
        }
    }

    /// Runs `remote_command` over a real SSH session with the system OpenSSH client, as [`USER`],
    /// feeding `stdin` to it; the host key must be the pinned one.
    pub fn ssh(&self, remote_command: &str, stdin: &[u8]) -> Result<Run, HostError> {
        self.ssh_with_options(&[], remote_command, stdin)
    }

    /// [`ssh`](Self::ssh) with extra client options (`["-o", "Ciphers=aes128-cbc"]`), for testing what
    /// the host's sshd accepts.
    pub fn ssh_with_options(
        &self,
        options: &[&str],
        remote_command: &str,
        stdin: &[u8],
    ) -> Result<Run, HostError> {
        let mut child = Command::new("ssh")
            .args(options)
            .args(["-F", "/dev/null", "-i"])
            .arg(self.client_key())
            .args(["-p", &SSH_PORT.to_string()])
            .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
            .args(["-o", "StrictHostKeyChecking=yes", "-o"])
            .arg(format!(
                "UserKnownHostsFile={}",
                self.known_hosts().display()
            ))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
            ])
            // A runbook that reloads sshd leaves a moment in which nothing listens; the client retries
            // the connection (once a second) instead of failing the next step.
            .args(["-o", "ConnectionAttempts=5"])
            .arg(format!("{USER}@{}", self.address))
            .arg(remote_command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| HostError::Spawn {
                what: format!("log in to {}", self.name),
                program: "ssh".into(),
                source,
            })?;
        let mut input = child.stdin.take().expect("stdin is piped");
        let stdin = stdin.to_vec();
        // Written from a thread so that a script that prints a lot before reading cannot deadlock us.
        let writer = thread::spawn(move || input.write_all(&stdin));
        let output = child
            .wait_with_output()
            .map_err(|source| io("wait for ssh", source))?;
        // A script that exits before reading all of its input closes the pipe; that is not an error.
        let _ = writer.join();
        Ok(Run::from(output))
    }

    /// Runs `script` as root through `sudo` over SSH, given to `interpreter` (`sh`, `bash`, `python3`)
    /// on standard input with `env` as its environment, as the appliance runs a runbook step.
    pub fn run_script(
        &self,
        interpreter: &str,
        script: &str,
        env: &[(&str, &str)],
    ) -> Result<Run, HostError> {
        let mut command = String::from("sudo -n env");
        for (name, value) in env {
            command.push(' ');
            command.push_str(&shell_quote(&format!("{name}={value}")));
        }
        command.push(' ');
        command.push_str(interpreter);
        command.push_str(" -s");
        self.ssh(&command, script.as_bytes())
    }

    /// Reads `path` inside the host's view: its bytes and `stat`'s mode, owner and group, or `None` when
    /// it does not exist. For comparing what a runbook wrote, byte for byte.
    pub fn file_state(&self, path: &str) -> Result<Option<FileState>, HostError> {
        let quoted = shell_quote(path);
        let run = self.exec(&format!(
            "[ -e {quoted} ] || exit 3; stat -c '%a %U:%G' {quoted} && base64 -w0 {quoted}"
        ))?;
        if run.exit_code == 3 {
            return Ok(None);
        }
        if run.exit_code != 0 {
            return Err(HostError::Failed {
                what: format!("read {path} on {}", self.name),
                exit_code: run.exit_code,
                stderr: run.stderr,
            });
        }
        let (meta, content) = run.stdout.split_once('\n').unwrap_or((&run.stdout, ""));
        Ok(Some(FileState {
            meta: meta.to_owned(),
            content_base64: content.trim().to_owned(),
        }))
    }

    /// The directory holding the host's private files (keys, overlays).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A file as a runbook left it: mode, owner and group, and its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileState {
    /// `stat -c '%a %U:%G'`, e.g. `644 root:root`.
    pub meta: String,
    /// The content, base64 (files may be binary).
    pub content_base64: String,
}

/// The process holding a host's mount and PID namespaces, and the host's PID 1 once known; dropping it
/// kills them all.
struct ProcessGuard {
    /// `setpriv … ip netns exec … unshare …`.
    namespaces: Child,
    /// The host's PID 1 (sshd), as the root namespace numbers it.
    init_pid: Option<u32>,
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        // Killing PID 1 of the host's PID namespace kills every process in it; `unshare` then reaps it
        // and exits, and the mount namespace (with its overlays and tmpfs) goes with its last process.
        if let Some(pid) = self.init_pid {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.namespaces.kill();
        let _ = self.namespaces.wait();
    }
}

impl std::fmt::Debug for TestHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHost")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("host_key_fingerprint", &self.host_key_fingerprint)
            .finish_non_exhaustive()
    }
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        use std::os::unix::process::ExitStatusExt;
        let exit_code = output
            .status
            .code()
            .or_else(|| output.status.signal().map(|signal| 128 + signal))
            .unwrap_or(-1);
        Self {
            exit_code,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Removes a network namespace when dropped.
struct NetworkGuard(String);

impl Drop for NetworkGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

/// Takes the first free slot: creates its `osc-h<N>` namespace and the veth pair into it (root end
/// `osch<N>r`, host end `osch<N>h`). A slot is taken when the namespace exists, or when the root end's
/// name is still in use: the kernel destroys a deleted namespace's devices asynchronously, so a slot
/// freed a moment ago may still hold its veth. The search starts from the process id and moves on with
/// every host the process makes, so parallel test processes and successive hosts rarely probe the same
/// slots.
fn reserve_slot() -> Result<(u32, NetworkGuard), HostError> {
    static MADE: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SLOTS;
    let ip = |args: &[&str]| {
        Command::new("ip")
            .args(args)
            .stderr(Stdio::null())
            .status()
            .map_err(|source| HostError::Spawn {
                what: "create a test host's network".into(),
                program: "ip".into(),
                source,
            })
    };
    for _ in 0..SLOTS {
        let slot = (start + MADE.fetch_add(1, Ordering::Relaxed) * 37) % SLOTS;
        let name = format!("osc-h{slot}");
        if !ip(&["netns", "add", &name])?.success() {
            continue;
        }
        let network = NetworkGuard(name.clone());
        let (root_end, host_end) = (format!("osch{slot}r"), format!("osch{slot}h"));
        let veth = [
            "link", "add", &root_end, "type", "veth", "peer", "name", &host_end, "netns", &name,
        ];
        if ip(&veth)?.success() {
            return Ok((slot, network));
        }
    }
    Err(HostError::NoFreeSlot)
}

/// Runs a command that must succeed and returns its standard output.
fn run_checked(what: &str, command: &mut Command) -> Result<String, HostError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| HostError::Spawn {
            what: what.into(),
            program,
            source,
        })?;
    let run = Run::from(output);
    if run.exit_code != 0 {
        return Err(HostError::Failed {
            what: what.into(),
            exit_code: run.exit_code,
            stderr: run.stderr,
        });
    }
    Ok(run.stdout)
}

fn io(what: &str, source: std::io::Error) -> HostError {
    HostError::Io {
        what: what.into(),
        source,
    }
}

/// Quotes `text` for a POSIX shell.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
