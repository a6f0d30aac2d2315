//! Runbook steps on Linux hosts over SSH ([`SshExecutor`]), with credentials held in memory only.
//!
//! The client is russh (pure Rust), not the system `ssh`: the credentials come from central's
//! credential pull and a private key must never be written to disk for a client program to read.
//!
//! Per host: one authenticated session, reused by every step (a channel each, at most
//! [`SshSettings::channels_per_host`] at once), opened again when it broke. Sessions no step
//! uses are closed when another host connects, if idle past [`SshSettings::idle_close`] or
//! beyond [`SshSettings::max_sessions`] (least recently used first): a host's items run together,
//! then nothing for an interval, and an idle session costs the appliance about 90 KB (russh's
//! channel buffers) and the host a process. The host key is
//! pinned on first contact ([`HostKey::first_contact`]; the caller records the fingerprint in the
//! Host's `status.hostKey` and passes it back in [`SshTarget::host_key`]), and a host presenting
//! another key is refused before anything is sent ([`Error::HostKeyMismatch`]).
//!
//! A step runs as `sh -s` (under `sudo -n` unless the login user is root), which reads from its
//! standard input the parameters as `export NAME='value'` lines and then
//! `exec timeout -k K S <interpreter> 2>&1 <<'END'`, the script as a quoted here-document: the
//! command line that `ps` shows holds no parameter, the interpreter gets the script on standard
//! input as [`LocalExecutor`](super::LocalExecutor) gives it, standard error joins standard
//! output, and GNU `timeout` kills the interpreter's whole process group at the step's timeout
//! (TERM, then KILL `kill_after` later), so a `sleep` the script started dies with it. The
//! client gives up on the channel a little later still, should the host stop answering.
//!
//! Whether `sudo -n` works is asked once per session (`sudo -n true`), so a sudoers problem is an
//! error that names itself instead of an exit code 1 read as drift.
//!
//! Not wiped from memory: russh copies a password into a plain `String` for the login packet,
//! and the base64 text of a private key while decoding it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use osc_crds::kinds::runbook::Step;
use osc_proto::credentials::CredentialData;
use russh::keys::{Algorithm, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, client};
use tokio::sync::{Mutex as AsyncMutex, Semaphore};
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::{Capture, Executor, StepRequest, StepRun, lock, timeout};
use crate::Error;

/// How the SSH executor connects and bounds its steps.
#[derive(Clone, Debug)]
pub struct SshSettings {
    /// How long connecting, key exchange, login and the sudo check may take before the host
    /// counts as unreachable; also the bound on opening a channel.
    pub connect_timeout: StdDuration,
    /// Steps running at once on one host (channels of its one session). OpenSSH's `MaxSessions`
    /// allows 10 per connection by default.
    pub channels_per_host: usize,
    /// How long after the step's timeout the remote `timeout` follows its TERM with KILL.
    pub kill_after: StdDuration,
    /// How often a quiet session is probed, so that a host gone away is noticed during a long
    /// step (three unanswered probes close the session).
    pub keepalive: StdDuration,
    /// Sessions kept open at most (at least 1): connecting beyond closes the least recently used
    /// one that no step is using.
    pub max_sessions: usize,
    /// A session no step has used for this long is closed when another host connects.
    pub idle_close: StdDuration,
}

impl Default for SshSettings {
    fn default() -> Self {
        Self {
            connect_timeout: StdDuration::from_secs(10),
            channels_per_host: 4,
            kill_after: StdDuration::from_secs(5),
            keepalive: StdDuration::from_secs(30),
            max_sessions: 16,
            idle_close: StdDuration::from_secs(60),
        }
    }
}

/// Where and as whom to reach one Host.
#[derive(Debug)]
pub struct SshTarget {
    /// The Host's `spec.address`.
    pub address: String,
    /// Its `spec.transport.port` (22 by default).
    pub port: u16,
    /// The Credential its `transport.credentialRef` names.
    pub credential: SshCredential,
    /// The pinned host key fingerprint (`SHA256:…`), from the Host's `status.hostKey`; `None`
    /// trusts the first key presented and pins it.
    pub host_key: Option<String>,
}

/// A login: a user and an OpenSSH private key or a password, in memory only. `Debug` shows the
/// user and the kind, never the secret.
pub struct SshCredential {
    /// The account to log in as.
    username: String,
    /// How it proves itself.
    secret: Secret,
}

enum Secret {
    /// A decoded private key (ssh-key wipes it when dropped).
    Key(Arc<PrivateKey>),
    /// A password.
    Password(Zeroizing<String>),
}

/// The host key a session was opened with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostKey {
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// Whether this contact pinned it (nothing was pinned before): record it in the Host's
    /// `status.hostKey`.
    pub first_contact: bool,
}

/// Runs steps on hosts over SSH; see the [module documentation](self). Hosts are made known with
/// [`set_target`](Self::set_target); a step on an unknown host is an error.
pub struct SshExecutor {
    /// Connection and step bounds.
    settings: SshSettings,
    /// russh's client configuration, shared by every session.
    config: Arc<client::Config>,
    /// The known hosts by Host name.
    hosts: Mutex<HashMap<String, Arc<Host>>>,
}

/// One host: its target, its pin and its session.
struct Host {
    /// Address, port and credential.
    target: SshTarget,
    /// The pinned fingerprint, set on first contact when the target had none.
    pin: Mutex<Option<String>>,
    /// The open session, if any; held while connecting, so one host connects once at a time
    /// and other hosts never wait for it.
    session: AsyncMutex<Option<Arc<Session>>>,
    /// Bounds the channels open at once.
    channels: Semaphore,
    /// When a step last ended or a session was opened.
    last_used: Mutex<Instant>,
}

/// An authenticated session.
struct Session {
    /// russh's handle: opens channels.
    handle: client::Handle<Verifier>,
    /// The host key it was opened with.
    fingerprint: String,
}

impl SshCredential {
    /// A credential from central's credential pull: `ssh-key` (`privateKey`, optional
    /// `passphrase`) or `password` (`password`).
    pub fn from_data(data: &CredentialData) -> Result<Self, Error> {
        let name = format!("{}/{}", data.metadata.namespace, data.metadata.name);
        let value = |key: &str| data.data.get(key).map(|v| v.as_str());
        let refuse = |message: String| Error::Credential {
            credential: name.clone(),
            message,
        };
        match data.type_.as_str() {
            "ssh-key" => {
                let key = value("privateKey").ok_or_else(|| {
                    refuse("has no privateKey: set it through the API (kubectl apply with data.privateKey)".into())
                })?;
                Self::key(&name, &data.username, key, value("passphrase"))
            }
            "password" => {
                let password = data
                    .data
                    .get("password")
                    .ok_or_else(|| refuse("has no password: set it through the API".into()))?;
                Ok(Self::password(&data.username, password.clone()))
            }
            other => Err(refuse(format!(
                "is of type {other}; an SSH host needs an ssh-key or password credential"
            ))),
        }
    }

    /// A key credential: `private_key` is an OpenSSH private key (Ed25519 or ECDSA), encrypted
    /// with `passphrase` or not. `name` names the Credential in errors.
    pub fn key(
        name: &str,
        username: &str,
        private_key: &str,
        passphrase: Option<&str>,
    ) -> Result<Self, Error> {
        let refuse = |message: String| Error::Credential {
            credential: name.to_owned(),
            message,
        };
        let key = russh::keys::decode_secret_key(private_key, passphrase).map_err(|e| match e {
            russh::keys::Error::KeyIsEncrypted => refuse(
                "privateKey is encrypted and there is no passphrase: set data.passphrase".into(),
            ),
            e if passphrase.is_some() => refuse(format!(
                "privateKey does not decode with the passphrase given ({e}): check both"
            )),
            e => refuse(format!(
                "privateKey is not an OpenSSH private key ({e}): give the whole file, \
                 from -----BEGIN OPENSSH PRIVATE KEY----- to its END line"
            )),
        })?;
        match key.algorithm() {
            Algorithm::Ed25519 | Algorithm::Ecdsa { .. } => {}
            other => {
                return Err(refuse(format!(
                    "privateKey is an {} key; the appliance logs in with Ed25519 or ECDSA keys \
                     (make one with ssh-keygen -t ed25519)",
                    other.as_str()
                )));
            }
        }
        Ok(Self {
            username: username.to_owned(),
            secret: Secret::Key(Arc::new(key)),
        })
    }

    /// A password credential.
    pub fn password(username: &str, password: Zeroizing<String>) -> Self {
        Self {
            username: username.to_owned(),
            secret: Secret::Password(password),
        }
    }

    /// The account it logs in as.
    pub fn username(&self) -> &str {
        &self.username
    }

    fn kind(&self) -> &'static str {
        match self.secret {
            Secret::Key(_) => "ssh-key",
            Secret::Password(_) => "password",
        }
    }
}

/// Shows the user and the kind of secret, never the secret.
impl fmt::Debug for SshCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshCredential")
            .field("username", &self.username)
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SshExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts = lock(&self.hosts);
        let mut names: Vec<&String> = hosts.keys().collect();
        names.sort();
        f.debug_struct("SshExecutor")
            .field("settings", &self.settings)
            .field("hosts", &names)
            .finish_non_exhaustive()
    }
}

impl SshExecutor {
    /// An executor that knows no host yet.
    pub fn new(settings: SshSettings) -> Self {
        let config = client::Config {
            keepalive_interval: Some(settings.keepalive),
            keepalive_max: 3,
            nodelay: true,
            ..client::Config::default()
        };
        Self {
            settings,
            config: Arc::new(config),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// Makes `host` reachable as `target`, replacing what was known of it: the next step opens
    /// a new session (steps running keep theirs). Without `target.host_key`, a key pinned in
    /// this process for the same address and port stays pinned.
    pub fn set_target(&self, host: &str, mut target: SshTarget) {
        let mut hosts = lock(&self.hosts);
        if target.host_key.is_none()
            && let Some(old) = hosts.get(host).filter(|old| {
                old.target.address == target.address && old.target.port == target.port
            })
        {
            target.host_key = lock(&old.pin).clone();
        }
        let host_entry = Host {
            pin: Mutex::new(target.host_key.clone()),
            target,
            session: AsyncMutex::new(None),
            channels: Semaphore::new(self.settings.channels_per_host.max(1)),
            last_used: Mutex::new(Instant::now()),
        };
        hosts.insert(host.to_owned(), Arc::new(host_entry));
    }

    /// Forgets `host` and, once its running steps end, closes its session.
    pub fn remove_target(&self, host: &str) {
        lock(&self.hosts).remove(host);
    }

    /// The host key fingerprint pinned for `host`, if any.
    pub fn host_key(&self, host: &str) -> Option<String> {
        let entry = lock(&self.hosts).get(host).cloned()?;
        lock(&entry.pin).clone()
    }

    /// Reaches `host`: reuses its session, or connects, checks the host key, logs in and checks
    /// `sudo -n`. Answers the host key, saying whether this contact pinned it. For the Host's
    /// `Reachable` condition as much as for the steps.
    pub async fn connect(&self, host: &str) -> Result<HostKey, Error> {
        let entry = self.entry(host, "connect")?;
        self.session(host, &entry).await.map(|(_, key)| key)
    }

    fn entry(&self, host: &str, step: &'static str) -> Result<Arc<Host>, Error> {
        lock(&self.hosts)
            .get(host)
            .cloned()
            .ok_or_else(|| Error::Exec {
                host: host.to_owned(),
                step,
                message:
                    "no SSH address and credential are known for it yet (SshExecutor::set_target)"
                        .into(),
            })
    }

    /// The host's session, opened if there is none or it broke.
    async fn session(&self, name: &str, host: &Host) -> Result<(Arc<Session>, HostKey), Error> {
        let mut current = host.session.lock().await;
        if let Some(session) = current.as_ref().filter(|s| !s.handle.is_closed()) {
            let key = HostKey {
                fingerprint: session.fingerprint.clone(),
                first_contact: false,
            };
            return Ok((Arc::clone(session), key));
        }
        *current = None;
        self.close_idle(name).await;
        let limit = self.settings.connect_timeout;
        let (session, key) = tokio::time::timeout(limit, self.login(name, host))
            .await
            .map_err(|_| {
                host.connect_error(
                    name,
                    format!(
                        "no SSH session within {limit:?}: check that the host is up and that \
                         port {} is open to the appliance",
                        host.target.port
                    ),
                )
            })??;
        let session = Arc::new(session);
        *current = Some(Arc::clone(&session));
        *lock(&host.last_used) = Instant::now();
        Ok((session, key))
    }

    /// The hosts with an open session, by name (sorted).
    pub fn sessions(&self) -> Vec<String> {
        let hosts: Vec<(String, Arc<Host>)> = lock(&self.hosts)
            .iter()
            .map(|(name, host)| (name.clone(), Arc::clone(host)))
            .collect();
        let mut open: Vec<String> = hosts
            .into_iter()
            .filter(|(_, host)| {
                host.session
                    .try_lock()
                    .map_or(true, |s| s.as_ref().is_some_and(|s| !s.handle.is_closed()))
            })
            .map(|(name, _)| name)
            .collect();
        open.sort();
        open
    }

    /// Before `opening` connects: closes the sessions of other hosts that no step uses and that
    /// are idle past `idle_close`, then the least recently used of them while the open ones (the
    /// new one counted) would exceed `max_sessions`. A host busy connecting is left alone.
    async fn close_idle(&self, opening: &str) {
        let hosts: Vec<Arc<Host>> = lock(&self.hosts)
            .iter()
            .filter(|(name, _)| name.as_str() != opening)
            .map(|(_, host)| Arc::clone(host))
            .collect();
        let all_permits = self.settings.channels_per_host.max(1);
        let mut open = 0;
        let mut idle: Vec<(Instant, Arc<Host>)> = vec![];
        for host in hosts {
            let Ok(session) = host.session.try_lock() else {
                open += 1;
                continue;
            };
            if session.as_ref().is_some_and(|s| !s.handle.is_closed()) {
                open += 1;
                if host.channels.available_permits() == all_permits {
                    idle.push((*lock(&host.last_used), Arc::clone(&host)));
                }
            }
        }
        idle.sort_by_key(|(last_used, _)| *last_used);
        let room = self.settings.max_sessions.max(1) - 1;
        for (last_used, host) in idle {
            if open <= room && last_used.elapsed() < self.settings.idle_close {
                break;
            }
            let Ok(mut session) = host.session.try_lock() else {
                continue;
            };
            if host.channels.available_permits() != all_permits {
                continue;
            }
            if let Some(session) = session.take() {
                open -= 1;
                let _ = session
                    .handle
                    .disconnect(russh::Disconnect::ByApplication, "idle", "en")
                    .await;
            }
        }
    }

    /// Connects, checks the host key, logs in and checks `sudo -n`; pins the key on first
    /// contact, once logged in.
    async fn login(&self, name: &str, host: &Host) -> Result<(Session, HostKey), Error> {
        let pinned = lock(&host.pin).clone();
        let presented = Arc::new(Mutex::new(None));
        let verifier = Verifier {
            pinned: pinned.clone(),
            presented: Arc::clone(&presented),
        };
        let address = (host.target.address.as_str(), host.target.port);
        let connected = client::connect(Arc::clone(&self.config), address, verifier).await;
        let presented = lock(&presented).clone();
        let mut handle = match connected {
            Ok(handle) => handle,
            Err(russh::Error::UnknownKey) => {
                return Err(Error::HostKeyMismatch {
                    host: name.to_owned(),
                    address: host.address(),
                    expected: pinned.unwrap_or_default(),
                    presented: presented.unwrap_or_default(),
                });
            }
            Err(e) => return Err(host.connect_error(name, format!("cannot connect: {e}"))),
        };
        let fingerprint = presented
            .ok_or_else(|| host.connect_error(name, "the host presented no host key".into()))?;
        let credential = &host.target.credential;
        let user = credential.username.clone();
        let answer = match &credential.secret {
            Secret::Key(key) => {
                let key = PrivateKeyWithHashAlg::new(Arc::clone(key), None);
                handle.authenticate_publickey(user.as_str(), key).await
            }
            Secret::Password(password) => {
                handle
                    .authenticate_password(user.as_str(), password.as_str())
                    .await
            }
        }
        .map_err(|e| host.connect_error(name, format!("login failed: {e}")))?;
        if !answer.success() {
            let hint = match credential.secret {
                Secret::Key(_) => "is the key's public half in the user's authorized_keys?",
                Secret::Password(_) => {
                    "is the password current, and does sshd allow PasswordAuthentication?"
                }
            };
            return Err(host.connect_error(
                name,
                format!(
                    "the host refused the {} credential for user {user}: {hint}",
                    credential.kind()
                ),
            ));
        }
        let session = Session {
            handle,
            fingerprint: fingerprint.clone(),
        };
        if user != "root" {
            self.check_sudo(name, host, &session).await?;
        }
        let first_contact = {
            let mut pin = lock(&host.pin);
            let first = pin.is_none();
            pin.get_or_insert_with(|| fingerprint.clone());
            first
        };
        if first_contact {
            tracing::info!(host = name, %fingerprint, "pinned the SSH host key on first contact");
        }
        let key = HostKey {
            fingerprint,
            first_contact,
        };
        Ok((session, key))
    }

    /// Fails unless the login user may run commands as root through `sudo -n`.
    async fn check_sudo(&self, name: &str, host: &Host, session: &Session) -> Result<(), Error> {
        let refused = |message: String| host.connect_error(name, message);
        let channel = session
            .handle
            .channel_open_session()
            .await
            .map_err(|e| refused(format!("cannot open a channel: {e}")))?;
        let mut output = Capture::new();
        let exchanged = exchange(channel, "sudo -n true", b"", &mut output, None)
            .await
            .map_err(|e| refused(format!("checking sudo: {e}")))?;
        if exchanged == Exchanged::Exited(Some(0)) {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&output.kept);
        Err(refused(format!(
            "user {} cannot run commands as root with `sudo -n` ({}): give it a NOPASSWD \
             sudoers rule, or log in as root",
            host.target.credential.username,
            said.trim()
        )))
    }

    /// A new channel on the host's session, reconnecting once if the session turns out broken.
    async fn channel(&self, name: &str, host: &Host) -> Result<russh::Channel<client::Msg>, Error> {
        let limit = self.settings.connect_timeout;
        let mut last = String::new();
        for _ in 0..2 {
            let (session, _) = self.session(name, host).await?;
            match tokio::time::timeout(limit, session.handle.channel_open_session()).await {
                Ok(Ok(channel)) => return Ok(channel),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("no answer within {limit:?}"),
            }
            tracing::debug!(host = name, error = %last, "SSH session broken; reconnecting");
            host.forget(&session).await;
        }
        Err(host.connect_error(name, format!("cannot open a channel: {last}")))
    }
}

impl Host {
    fn address(&self) -> String {
        format!("{}:{}", self.target.address, self.target.port)
    }

    fn connect_error(&self, name: &str, message: String) -> Error {
        Error::Connect {
            host: name.to_owned(),
            address: self.address(),
            message,
        }
    }

    /// Drops `session` if it is still the host's current one.
    async fn forget(&self, session: &Arc<Session>) {
        let mut current = self.session.lock().await;
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, session)) {
            *current = None;
        }
    }
}

impl Executor for SshExecutor {
    async fn run(&self, request: StepRequest<'_>) -> Result<StepRun, Error> {
        let (name, step) = (request.host, request.name);
        let host = self.entry(name, step)?;
        let input = remote_input(request.step, request.params, self.settings.kill_after).map_err(
            |message| Error::Exec {
                host: name.to_owned(),
                step,
                message,
            },
        )?;
        let _permit = host.channels.acquire().await.expect("never closed");
        let ran = self.run_on(name, step, &host, &input, request.step).await;
        *lock(&host.last_used) = Instant::now();
        ran
    }
}

impl SshExecutor {
    /// [`Executor::run`] once the step holds one of the host's channels.
    async fn run_on(
        &self,
        name: &str,
        step: &'static str,
        host: &Host,
        input: &[u8],
        request_step: &Step,
    ) -> Result<StepRun, Error> {
        let command = remote_command(&host.target.credential.username);
        let channel = self.channel(name, host).await?;
        let limit = timeout(request_step);
        // The remote `timeout` ends the step; this only bounds a host that stopped answering.
        let give_up = limit + self.settings.kill_after + self.settings.connect_timeout;
        let started = Instant::now();
        let mut output = Capture::new();
        let exchanged = exchange(channel, command, input, &mut output, Some(give_up))
            .await
            .map_err(|e| Error::Exec {
                host: name.to_owned(),
                step,
                message: format!("the SSH channel failed: {e}"),
            })?;
        let elapsed = started.elapsed();
        let timed_out = match exchanged {
            Exchanged::GaveUp => {
                let session = host.session.lock().await.clone();
                if let Some(session) = session {
                    host.forget(&session).await;
                }
                true
            }
            // GNU timeout exits 124 after its TERM, 137 when it had to KILL; the time tells a
            // script's own 124 apart.
            Exchanged::Exited(code) => matches!(code, Some(124 | 137)) && elapsed >= limit,
        };
        let exit_code = match exchanged {
            Exchanged::Exited(code) if !timed_out => code,
            _ => None,
        };
        Ok(output.into_run(exit_code, elapsed, timed_out))
    }
}

/// How a channel's command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exchanged {
    /// It closed, with this exit status (none when killed by a signal).
    Exited(Option<i32>),
    /// The client's own limit passed first; the channel was closed.
    GaveUp,
}

/// Runs `command` on `channel`, feeds it `input`, and reads its output into `output` until the
/// channel closes or `limit` passes.
async fn exchange(
    channel: russh::Channel<client::Msg>,
    command: &str,
    input: &[u8],
    output: &mut Capture,
    limit: Option<StdDuration>,
) -> Result<Exchanged, russh::Error> {
    let (mut reader, writer) = channel.split();
    writer.exec(true, command).await?;
    let feed = async {
        // A script that exits without reading its input closes it; that is its business.
        let _ = writer.data(input).await;
        let _ = writer.eof().await;
    };
    let read = async {
        let mut exit = None;
        while let Some(message) = reader.wait().await {
            match message {
                ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => {
                    output.add(&data);
                }
                ChannelMsg::ExitStatus { exit_status } => exit = i32::try_from(exit_status).ok(),
                ChannelMsg::Failure => return Err(russh::Error::RequestDenied),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        Ok(Exchanged::Exited(exit))
    };
    let both = async { tokio::join!(feed, read).1 };
    let ended = match limit {
        Some(limit) => tokio::time::timeout(limit, both)
            .await
            .unwrap_or(Ok(Exchanged::GaveUp)),
        None => both.await,
    };
    if matches!(ended, Ok(Exchanged::GaveUp)) {
        let _ = writer.close().await;
    }
    ended
}

/// Checks the server's host key against the pin and remembers what it presented.
struct Verifier {
    /// The pinned fingerprint; `None` trusts the first key.
    pinned: Option<String>,
    /// The fingerprint presented, for the caller's pin or error.
    presented: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let presented = fingerprint(key);
        let trusted = self.pinned.as_ref().is_none_or(|pin| *pin == presented);
        *lock(&self.presented) = Some(presented);
        Ok(trusted)
    }
}

/// `SHA256:…` of a host key (of the key inside, for a certificate).
fn fingerprint(key: &PublicKeyOrCertificate) -> String {
    match key {
        PublicKeyOrCertificate::PublicKey { key, .. } => key.fingerprint(HashAlg::Sha256),
        PublicKeyOrCertificate::Certificate(cert) => cert.public_key().fingerprint(HashAlg::Sha256),
    }
    .to_string()
}

/// The command line of a step: fixed text, nothing of the step in it.
fn remote_command(user: &str) -> &'static str {
    if user == "root" {
        "sh -s"
    } else {
        "sudo -n sh -s"
    }
}

/// What `sh -s` reads: the parameters exported, then the interpreter under `timeout` with the
/// script as a quoted here-document.
fn remote_input(
    step: &Step,
    params: &BTreeMap<String, String>,
    kill_after: StdDuration,
) -> Result<Vec<u8>, String> {
    let mut text = String::new();
    for (name, value) in params {
        if !is_env_name(name) {
            return Err(format!(
                "parameter {name:?} is not an environment variable name"
            ));
        }
        text.push_str(&format!("export {name}={}\n", shell_quote(value)));
    }
    let script = &step.script;
    let mut end = String::from("OSC_SCRIPT_END");
    while script.lines().any(|line| line == end) {
        end.push('_');
    }
    text.push_str(&format!(
        "exec timeout -k {}s {}s {} 2>&1 <<'{end}'\n{script}",
        whole_seconds(kill_after),
        whole_seconds(timeout(step)),
        step.interpreter.as_str(),
    ));
    if !script.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&end);
    text.push('\n');
    Ok(text.into_bytes())
}

/// Seconds, rounded up, at least one.
fn whole_seconds(d: StdDuration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Quotes `text` for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::exec::tests::step;

    #[test]
    fn params_travel_in_the_input_and_the_script_as_a_quoted_here_document() {
        let step = step(json!({"interpreter": "bash", "timeout": "90s",
            "script": "echo \"$NAME\"\nOSC_SCRIPT_END\necho $HOME"}));
        let params = BTreeMap::from([
            ("NAME".to_owned(), "it's $(rm -rf /)\nline two".to_owned()),
            ("EMPTY".to_owned(), String::new()),
        ]);
        let input = remote_input(&step, &params, StdDuration::from_millis(2500)).unwrap();
        assert_eq!(
            String::from_utf8(input).unwrap(),
            "export EMPTY=''\n\
             export NAME='it'\\''s $(rm -rf /)\nline two'\n\
             exec timeout -k 3s 90s bash 2>&1 <<'OSC_SCRIPT_END_'\n\
             echo \"$NAME\"\nOSC_SCRIPT_END\necho $HOME\n\
             OSC_SCRIPT_END_\n"
        );
        assert_eq!(remote_command("osc"), "sudo -n sh -s");
        assert_eq!(remote_command("root"), "sh -s");
    }

    #[test]
    fn a_parameter_name_the_shell_cannot_take_is_refused() {
        let step = step(json!({"interpreter": "sh", "script": "true"}));
        let params = BTreeMap::from([("A;B".to_owned(), "x".to_owned())]);
        let error = remote_input(&step, &params, StdDuration::from_secs(5)).unwrap_err();
        assert!(error.contains("\"A;B\""), "{error}");
    }

    #[test]
    fn credentials_refuse_what_cannot_log_in_and_never_show_a_secret() {
        let data = |type_: &str, entries: &[(&str, &str)]| CredentialData {
            api_version: "osiriscare.net/v1alpha1".into(),
            kind: "CredentialData".into(),
            metadata: osc_proto::credentials::CredentialDataMeta {
                name: "linux".into(),
                namespace: "clinic".into(),
                resource_version: "3".into(),
            },
            type_: type_.into(),
            username: "osc".into(),
            data: entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Zeroizing::new((*v).to_owned())))
                .collect(),
        };
        let password = SshCredential::from_data(&data("password", &[("password", "s3cr3t")]));
        let debug = format!("{:?}", password.unwrap());
        assert!(
            !debug.contains("s3cr3t") && debug.contains("password"),
            "{debug}"
        );
        let cases = [
            (data("winrm", &[("password", "x")]), "is of type winrm"),
            (data("ssh-key", &[]), "has no privateKey"),
            (data("password", &[]), "has no password"),
            (
                data("ssh-key", &[("privateKey", "not a key s3cr3t")]),
                "is not an OpenSSH private key",
            ),
        ];
        for (data, want) in cases {
            let error = SshCredential::from_data(&data).unwrap_err().to_string();
            assert!(error.starts_with("credential clinic/linux: "), "{error}");
            assert!(error.contains(want), "{error}");
            assert!(!error.contains("s3cr3t"), "{error}");
        }
    }
}
