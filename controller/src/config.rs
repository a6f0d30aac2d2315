//! The controller's configuration file (YAML), whose options match the NixOS module's one for one.
//!
//! Every key is camelCase, as the NixOS module spells its options (`services.osiris-controller.*`).
//! An unknown key is an error naming the key, the file and the line; a missing required key says
//! what to add; values are checked as they are read, so a bad value is reported at its line too.
//! Relative paths are read relative to the directory of the config file. `docs/controller.md`
//! lists the options with an example file.
//!
//! The file holds paths to secrets, never secrets: the bearer token lives in `tokenFile` and the
//! signing key in `signingKeyFile` (both mode 0600), read by [`read_token`] and
//! [`read_signing_key`], whose values never reach a log line or a `Debug` output.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::DateTime;
use crds::Duration;
use crds::kinds::site::{DeploymentMode, SyslogTarget};
use crds::window::MaintenanceWindow;
use osc_crds as crds;
use osc_proto::dsse::{PublicKey, Signer};
use serde::{Deserialize, Deserializer};
use url::Url;
use zeroize::Zeroizing;

use crate::Error;

/// The checked configuration of one appliance.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Central Command's base URL, `https://` (plain `http://` only to a loopback address, for
    /// tests). Required.
    #[serde(deserialize_with = "central_url")]
    pub central_url: Url,
    /// PEM file of the CA that central's certificate must chain to; the only CA trusted, so a
    /// public CA cannot vouch for an impostor. Required.
    pub ca_file: PathBuf,
    /// File holding the appliance's bearer token (written by `enroll`, mode 0600). Required.
    pub token_file: PathBuf,
    /// The Site (a DNS label) this appliance serves. Required.
    #[serde(deserialize_with = "dns_label")]
    pub site: String,
    /// This appliance's name: its Appliance object and the `appliance` of its evidence. Required.
    #[serde(deserialize_with = "dns_label")]
    pub appliance: String,
    /// `direct` (default) or `reseller`, recorded in every evidence bundle.
    #[serde(default = "default_deployment_mode")]
    pub deployment_mode: DeploymentMode,
    /// The reseller's identifier; required with `deploymentMode: reseller`, refused otherwise.
    #[serde(default)]
    pub reseller_id: Option<String>,
    /// File holding the appliance's Ed25519 signing key (base64 of the 32-byte seed, mode 0600),
    /// which signs evidence and proved possession at enrollment. Required.
    pub signing_key_file: PathBuf,
    /// How often the controller re-lists the site's resources even when its watch looks healthy
    /// (default `5m`).
    #[serde(default = "default_resync_interval", deserialize_with = "duration")]
    pub resync_interval: Duration,
    /// The appliance's own maintenance window, for its updates and reboots; runbooks follow the
    /// Site's `maintenanceWindow`. Default: the Site's.
    #[serde(default, deserialize_with = "window")]
    pub maintenance_window: Option<MaintenanceWindow>,
    /// Lets disruptive remediations run outside the Site's maintenance window (default `false`);
    /// for lab appliances and emergencies.
    #[serde(default)]
    pub allow_disruptive_outside_window: bool,
    /// How much delivered evidence stays on the appliance's disk; undelivered entries are never
    /// pruned.
    #[serde(default)]
    pub evidence_retention: Retention,
    /// Largest clock offset from NTP at which healing still runs (default `10s`); past it,
    /// remediations are deferred, since evidence with a wrong time is misleading.
    #[serde(default = "default_ntp_max_skew", deserialize_with = "duration")]
    pub ntp_max_skew: Duration,
    /// How old the cached desired state may grow while central is unreachable before the
    /// controller refuses its items (default `24h`): nothing runs on them, and each Host reports
    /// why once central is back.
    #[serde(default = "default_cache_max_age", deserialize_with = "duration")]
    pub cache_max_age: Duration,
    /// Extra webhook (an RMM's) that receives every escalation, besides the Site's targets.
    #[serde(default, deserialize_with = "optional_url")]
    pub rmm_webhook_url: Option<Url>,
    /// Extra syslog collector (RFC 5424) that receives every escalation: `address` `host:port`,
    /// `protocol` `udp` (default) or `tcp`, `facility` (default `local0`).
    #[serde(default)]
    pub syslog_target: Option<SyslogTarget>,
    /// How long the post-update health gate waits for network, NTP, disk and central before it
    /// fails (default `5m`).
    #[serde(
        default = "default_health_check_timeout",
        deserialize_with = "duration"
    )]
    pub health_check_timeout: Duration,
    /// `error`, `warn`, `info` (default), `debug` or `trace`.
    #[serde(default)]
    pub log_level: LogLevel,
    /// The keys whose signatures make a Runbook trusted: each `keyid` (the DSSE keyid,
    /// `ed25519:` and 32 hex digits) and `publicKey` (base64 of 32 bytes). A runbook signed by none
    /// of them never runs. Empty means no runbook runs.
    #[serde(default)]
    pub trusted_runbook_keys: Vec<TrustedKey>,
    /// Host addresses (as Hosts' `spec.address` spell them) the controller may connect to; empty
    /// allows every address. A Host outside the list is refused, never contacted.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Where durable state lives: `outbox.sqlite3` (evidence, status, notifications, the chain
    /// head) and `cache/` (the site's resources). Default `/var/lib/osiris/controller`.
    #[serde(default = "default_state_directory")]
    pub state_directory: PathBuf,
}

/// Local retention of delivered evidence: the oldest delivered entries go first when either bound
/// is passed.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retention {
    /// Delivered entries older than this are pruned (default `720h`, 30 days).
    #[serde(default = "default_retention_age", deserialize_with = "duration")]
    pub max_age: Duration,
    /// At most this many delivered entries are kept (default 100000).
    #[serde(default = "default_retention_entries")]
    pub max_entries: u64,
}

/// One trusted runbook key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKey(pub PublicKey);

/// The log verbosity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// What happens, once per event (the default).
    #[default]
    Info,
    /// Every decision.
    Debug,
    /// Everything.
    Trace,
}

/// A secret read from a file (the bearer token): zeroed on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps `value`.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl Config {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses `text`, the contents of the file at `path` (used for messages and to resolve
    /// relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let mut config: Config = serde_yaml::from_str(text).map_err(|error| {
            let location = error.location();
            Error::Config {
                file: path.to_owned(),
                line: location.as_ref().map(|l| l.line()),
                column: location.as_ref().map(|l| l.column()),
                message: explain(&error.to_string(), location.is_some()),
            }
        })?;
        config.check(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for file in [
            &mut config.ca_file,
            &mut config.token_file,
            &mut config.signing_key_file,
            &mut config.state_directory,
        ] {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        Ok(config)
    }

    /// Rules across keys, which serde cannot place on a line.
    fn check(&self, path: &Path) -> Result<(), Error> {
        let problem = |message: String| Error::Config {
            file: path.to_owned(),
            line: None,
            column: None,
            message,
        };
        match (self.deployment_mode, &self.reseller_id) {
            (DeploymentMode::Reseller, None) => Err(problem(
                "`deploymentMode: reseller` needs `resellerId`: add `resellerId: <the reseller's id>`"
                    .to_owned(),
            )),
            (DeploymentMode::Direct, Some(_)) => Err(problem(
                "`resellerId` is only allowed with `deploymentMode: reseller`: remove it or set the mode"
                    .to_owned(),
            )),
            _ => Ok(()),
        }
    }

    /// The outbox database inside [`Config::state_directory`].
    pub fn outbox_path(&self) -> PathBuf {
        self.state_directory.join("outbox.sqlite3")
    }

    /// The trusted runbook keys, as verification takes them.
    pub fn runbook_keys(&self) -> Vec<PublicKey> {
        self.trusted_runbook_keys
            .iter()
            .map(|k| k.0.clone())
            .collect()
    }
}

/// Reads the bearer token from `path` (surrounding whitespace dropped).
pub fn read_token(path: &Path) -> Result<SecretString, Error> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
            path: path.to_owned(),
            source,
        })?,
    );
    Ok(SecretString::new(text.trim().to_owned()))
}

/// Reads the signing key from `path`; the error never echoes the file's contents.
pub fn read_signing_key(path: &Path) -> Result<Signer, Error> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
            path: path.to_owned(),
            source,
        })?,
    );
    Signer::from_base64(text.trim()).map_err(|source| Error::SigningKey {
        path: path.to_owned(),
        source,
    })
}

/// serde's message without the position it appends (the error leads with it), with what to do
/// added for a missing key.
fn explain(message: &str, placed: bool) -> String {
    let message = match message.rfind(" at line ") {
        Some(at) if placed => &message[..at],
        _ => message,
    };
    match message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        Some(key) => format!("{message}: add `{key}: ...` (see docs/controller.md)"),
        None => message.to_owned(),
    }
}

/// Reads a string and checks it while the parser still points at it, so that a refusal carries
/// the value's line and column.
fn checked<'de, D, T>(d: D, check: fn(&str) -> Result<T, String>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct Checked<T>(fn(&str) -> Result<T, String>);
    impl<T> serde::de::Visitor<'_> for Checked<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            (self.0)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(Checked(check))
}

fn central_url<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    checked(d, |text| {
        let url = parse_url(text)?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        };
        match url.scheme() {
            "https" => Ok(url),
            "http" if loopback => Ok(url),
            _ => Err(format!(
                "centralUrl must be https:// (http:// only to a loopback address), got {url}"
            )),
        }
    })
}

fn optional_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Url>, D::Error> {
    checked(d, |text| {
        let url = parse_url(text)?;
        match url.scheme() {
            "http" | "https" => Ok(Some(url)),
            other => Err(format!(
                "expected an http:// or https:// URL, got scheme {other:?}"
            )),
        }
    })
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    checked(d, |text| {
        text.parse::<Duration>().map_err(|e| e.to_string())
    })
}

fn parse_url(text: &str) -> Result<Url, String> {
    Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))
}

fn dns_label<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    checked(d, |name| {
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if ok {
            Ok(name.to_owned())
        } else {
            Err(format!(
                "{name:?} is not a DNS label: use 1-63 lowercase letters, digits and '-', not at either end"
            ))
        }
    })
}

fn window<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MaintenanceWindow>, D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        #[serde(deserialize_with = "clock_time")]
        start: String,
        #[serde(deserialize_with = "clock_time")]
        end: String,
        #[serde(default, deserialize_with = "timezone")]
        timezone: Option<String>,
        #[serde(default)]
        days: Vec<osc_crds::window::Weekday>,
    }
    fn clock_time<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        checked(d, |text| {
            probe(text, "00:00", None)
                .map(|()| text.to_owned())
                .ok_or_else(|| {
                    format!("{text:?} is not a time: write HH:MM in 24-hour time, e.g. \"02:00\"")
                })
        })
    }
    fn timezone<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        checked(d, |text| {
            probe("00:00", "01:00", Some(text))
                .map(|()| Some(text.to_owned()))
                .ok_or_else(|| format!("{text:?} is not an IANA timezone, e.g. America/New_York"))
        })
    }
    /// Whether a window made of these parts is valid; any fixed instant will do to ask, since an
    /// invalid window never opens and a valid one always opens again.
    fn probe(start: &str, end: &str, timezone: Option<&str>) -> Option<()> {
        let start = if start == end { "23:59" } else { start };
        MaintenanceWindow {
            start: start.to_owned(),
            end: end.to_owned(),
            timezone: timezone.map(str::to_owned),
            days: Vec::new(),
        }
        .next_start(DateTime::UNIX_EPOCH)
        .map(|_| ())
    }
    let raw = Raw::deserialize(d)?;
    if raw.start == raw.end {
        return Err(serde::de::Error::custom(
            "maintenanceWindow: start and end are equal, which is an empty window; make it at least a minute long",
        ));
    }
    Ok(Some(MaintenanceWindow {
        start: raw.start,
        end: raw.end,
        timezone: raw.timezone,
        days: raw.days,
    }))
}

impl<'de> Deserialize<'de> for TrustedKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Raw {
            keyid: String,
            #[serde(deserialize_with = "public_key")]
            public_key: PublicKey,
        }
        fn public_key<'de, D: Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
            checked(d, |text| {
                PublicKey::from_base64(text)
                    .map_err(|e| format!("publicKey is not an Ed25519 public key: {e}"))
            })
        }
        let raw = Raw::deserialize(d)?;
        let key = raw.public_key;
        if key.keyid() != raw.keyid {
            return Err(serde::de::Error::custom(format!(
                "keyid {:?} does not belong to this publicKey, whose keyid is {:?}: fix the keyid or the key",
                raw.keyid,
                key.keyid()
            )));
        }
        Ok(Self(key))
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: default_retention_age(),
            max_entries: default_retention_entries(),
        }
    }
}

fn default_deployment_mode() -> DeploymentMode {
    crds::defaults::DEPLOYMENT_MODE
}
fn default_resync_interval() -> Duration {
    Duration::from_std(std::time::Duration::from_secs(5 * 60))
}
fn default_ntp_max_skew() -> Duration {
    Duration::from_std(std::time::Duration::from_secs(10))
}
fn default_cache_max_age() -> Duration {
    Duration::from_std(std::time::Duration::from_secs(24 * 3600))
}
fn default_health_check_timeout() -> Duration {
    Duration::from_std(std::time::Duration::from_secs(5 * 60))
}
fn default_retention_age() -> Duration {
    Duration::from_std(std::time::Duration::from_secs(30 * 24 * 3600))
}
fn default_retention_entries() -> u64 {
    100_000
}
fn default_state_directory() -> PathBuf {
    PathBuf::from("/var/lib/osiris/controller")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A complete file using every option.
    fn full(key: &PublicKey) -> String {
        format!(
            "centralUrl: https://central.example.net:8443
caFile: ca.crt
tokenFile: /etc/osiris/token
site: smile-dental
appliance: box1
deploymentMode: reseller
resellerId: acme-resale
signingKeyFile: /etc/osiris/signing.key
resyncInterval: 2m
maintenanceWindow: {{start: \"01:00\", end: \"03:00\", timezone: America/New_York}}
allowDisruptiveOutsideWindow: true
evidenceRetention: {{maxAge: 48h, maxEntries: 500}}
ntpMaxSkew: 2s
cacheMaxAge: 1h
rmmWebhookUrl: https://rmm.example.net/hook
syslogTarget: {{address: \"10.0.0.5:514\", protocol: tcp}}
healthCheckTimeout: 90s
logLevel: debug
trustedRunbookKeys:
  - keyid: {}
    publicKey: {}
allowedHosts: [10.0.0.7, ehr.smile.local]
stateDirectory: state
",
            key.keyid(),
            key.to_base64()
        )
    }

    fn minimal() -> &'static str {
        "centralUrl: https://central.example.net
caFile: /etc/osiris/ca.crt
tokenFile: /etc/osiris/token
site: smile-dental
appliance: box1
signingKeyFile: /etc/osiris/signing.key
"
    }

    fn key() -> PublicKey {
        Signer::from_seed(&[7; 32]).public_key()
    }

    #[test]
    fn a_full_file_reads_every_option_and_resolves_relative_paths() {
        let config =
            Config::parse(&full(&key()), Path::new("/etc/osiris/controller.yaml")).unwrap();
        assert_eq!(
            config.central_url.as_str(),
            "https://central.example.net:8443/"
        );
        assert_eq!(config.ca_file, Path::new("/etc/osiris/ca.crt"));
        assert_eq!(config.state_directory, Path::new("/etc/osiris/state"));
        assert_eq!(
            config.outbox_path(),
            Path::new("/etc/osiris/state/outbox.sqlite3")
        );
        assert_eq!(config.deployment_mode, DeploymentMode::Reseller);
        assert_eq!(config.reseller_id.as_deref(), Some("acme-resale"));
        assert_eq!(config.resync_interval.as_str(), "2m");
        assert!(config.allow_disruptive_outside_window);
        assert_eq!(config.evidence_retention.max_entries, 500);
        assert_eq!(config.evidence_retention.max_age.as_str(), "48h");
        assert_eq!(config.ntp_max_skew.as_str(), "2s");
        assert_eq!(config.cache_max_age.as_str(), "1h");
        assert_eq!(
            config.rmm_webhook_url.as_ref().map(Url::as_str),
            Some("https://rmm.example.net/hook")
        );
        assert_eq!(
            config.syslog_target.as_ref().unwrap().address,
            "10.0.0.5:514"
        );
        assert_eq!(config.health_check_timeout.as_str(), "90s");
        assert_eq!(config.log_level, LogLevel::Debug);
        assert_eq!(config.runbook_keys(), vec![key()]);
        assert_eq!(config.allowed_hosts, ["10.0.0.7", "ehr.smile.local"]);
        assert_eq!(
            config.maintenance_window.unwrap().timezone.as_deref(),
            Some("America/New_York")
        );
    }

    #[test]
    fn a_minimal_file_gets_the_documented_defaults() {
        let config = Config::parse(minimal(), Path::new("/etc/osiris/controller.yaml")).unwrap();
        assert_eq!(config.deployment_mode, DeploymentMode::Direct);
        assert_eq!(config.reseller_id, None);
        assert_eq!(config.resync_interval.as_std().as_secs(), 300);
        assert_eq!(config.ntp_max_skew.as_std().as_secs(), 10);
        assert_eq!(config.cache_max_age.as_std().as_secs(), 86_400);
        assert_eq!(config.health_check_timeout.as_std().as_secs(), 300);
        assert_eq!(config.evidence_retention, Retention::default());
        assert_eq!(config.log_level, LogLevel::Info);
        assert!(!config.allow_disruptive_outside_window);
        assert!(config.trusted_runbook_keys.is_empty());
        assert_eq!(config.state_directory, default_state_directory());
    }

    #[test]
    fn bad_files_are_refused_with_file_line_and_what_to_do() {
        let path = Path::new("/etc/osiris/controller.yaml");
        let k = key();
        let other = Signer::from_seed(&[8; 32]).public_key();
        let cases: Vec<(&str, String, Option<usize>, &str)> = vec![
            (
                "an unknown key names the key and its line",
                format!("{}resyncIntervall: 1m\n", minimal()),
                Some(7),
                "unknown field `resyncIntervall`",
            ),
            (
                "a missing required key says what to add",
                minimal().replace("site: smile-dental\n", ""),
                Some(1),
                "missing field `site`: add `site: ...`",
            ),
            (
                "central over plain http to another host",
                minimal().replace("https://central.example.net", "http://central.example.net"),
                Some(1),
                "centralUrl must be https://",
            ),
            (
                "a site that is not a DNS label",
                minimal().replace("smile-dental", "Smile_Dental"),
                Some(4),
                "is not a DNS label",
            ),
            (
                "a bad duration",
                format!("{}ntpMaxSkew: 5 seconds\n", minimal()),
                Some(7),
                "ntpMaxSkew",
            ),
            (
                "a keyid that is not the key's",
                format!(
                    "{}trustedRunbookKeys:\n  - keyid: {}\n    publicKey: {}\n",
                    minimal(),
                    other.keyid(),
                    k.to_base64()
                ),
                Some(8),
                "does not belong to this publicKey",
            ),
            (
                "a public key that is not one",
                format!(
                    "{}trustedRunbookKeys:\n  - keyid: x\n    publicKey: c2hvcnQ=\n",
                    minimal()
                ),
                Some(9),
                "is not an Ed25519 public key",
            ),
            (
                "an invalid maintenance window",
                format!(
                    "{}maintenanceWindow: {{start: \"25:00\", end: \"03:00\"}}\n",
                    minimal()
                ),
                Some(7),
                "\"25:00\" is not a time",
            ),
            (
                "an unknown key inside a nested option",
                format!("{}evidenceRetention: {{maxAge: 1h, keep: 3}}\n", minimal()),
                Some(7),
                "unknown field `keep`",
            ),
            (
                "reseller mode without a reseller",
                format!("{}deploymentMode: reseller\n", minimal()),
                None,
                "add `resellerId:",
            ),
            (
                "a reseller in direct mode",
                format!("{}resellerId: acme\n", minimal()),
                None,
                "only allowed with `deploymentMode: reseller`",
            ),
            (
                "an unknown log level",
                format!("{}logLevel: verbose\n", minimal()),
                Some(7),
                "unknown variant `verbose`",
            ),
        ];
        for (name, text, line, wanted) in cases {
            let error = Config::parse(&text, path).expect_err(name);
            let Error::Config {
                file,
                line: got,
                message,
                ..
            } = &error
            else {
                panic!("{name}: {error:?}");
            };
            assert_eq!(file, path, "{name}");
            assert_eq!(*got, line, "{name}: {message}");
            let shown = error.to_string();
            assert!(shown.contains(wanted), "{name}: {shown}");
            assert!(
                shown.starts_with("/etc/osiris/controller.yaml"),
                "{name}: {shown}"
            );
        }
    }

    #[test]
    fn secrets_are_read_from_their_files_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "osc_0123456789abcdef.hush\n").unwrap();
        let secret = read_token(&token).unwrap();
        assert_eq!(secret.expose(), "osc_0123456789abcdef.hush");
        assert!(!format!("{secret:?}").contains("hush"));

        let key = dir.path().join("signing.key");
        let signer = Signer::from_seed(&[9; 32]);
        std::fs::write(&key, signer.to_base64().as_bytes()).unwrap();
        assert_eq!(read_signing_key(&key).unwrap().keyid(), signer.keyid());

        std::fs::write(&key, "not-a-key-but-a-secret").unwrap();
        let error = read_signing_key(&key).unwrap_err().to_string();
        assert!(error.contains("signing.key"), "{error}");
        assert!(!error.contains("not-a-key-but-a-secret"), "{error}");
    }
}
