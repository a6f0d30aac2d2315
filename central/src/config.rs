//! How Central Command is configured: command-line flags, `OSC_*` environment variables and an
//! optional YAML file, merged into one checked [`Config`].
//!
//! Precedence is flag, then environment variable, then file, then built-in default, decided per
//! option. [`Options`] is both the clap argument group and the file's schema, so a key in the file
//! is always the long flag's name without `--`, and the two can never drift apart.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use url::Url;

/// The `osc-central` command line.
#[derive(Debug, Parser)]
#[command(
    name = "osc-central",
    version,
    about = "OsirisCare Central Command: the Kubernetes-style API that stores sites, hosts and \
             appliances."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `osc-central`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API until SIGTERM or SIGINT, then finish in-flight requests and exit.
    Serve(Options),
    /// Resolve and check the options exactly as `serve` would, print the effective configuration
    /// as YAML (usable as a `--config` file, with the database password masked), and exit.
    CheckConfig(Options),
    /// Issue a new admin token straight into the store that `serve` with these options would use,
    /// print it once on standard output, and exit: the way back in when every admin token is lost
    /// or revoked. Works beside a running server.
    IssueAdminToken(IssueAdminToken),
}

/// `issue-admin-token`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct IssueAdminToken {
    /// The name the token is listed and audited under.
    #[arg(long, default_value = "recovery-admin")]
    pub name: String,
    /// Where the store is, as for `serve`.
    #[command(flatten)]
    pub options: Options,
}

/// Every option of `serve`, as flags, environment variables or keys of the `--config` file.
///
/// All fields are optional so that "not given" can be told from "given as the default"; that is
/// what lets a flag override the file without the file overriding a default.
#[derive(Debug, Clone, Default, PartialEq, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Options {
    /// Read further options from this YAML file, whose keys are the long flag names below without
    /// `--` (e.g. `listen: 0.0.0.0:8443`); flags and environment variables win over it, relative
    /// paths in it are resolved against its folder, and an unknown key is an error.
    #[arg(long, env = "OSC_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Keep the embedded database and the generated TLS certificates in this folder, which is
    /// created with mode 0700 when missing [default: ./osc-data].
    #[arg(long, env = "OSC_DATA_DIR", value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,

    /// Store objects in this PostgreSQL database (`postgres://user:password@host/db`), needed to
    /// run more than one replica; without it they go to an embedded SQLite file in the data folder.
    #[arg(
        long,
        env = "OSC_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<SecretText>,

    /// Accept connections on this IP address and port [default: 127.0.0.1:8443].
    #[arg(long, env = "OSC_LISTEN", value_name = "ADDR:PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,

    /// Serve this PEM certificate chain (leaf first) instead of generating a private CA; needs
    /// `--tls-key`.
    #[arg(long, env = "OSC_TLS_CERT", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of `--tls-cert`.
    #[arg(long, env = "OSC_TLS_KEY", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,

    /// Also name this DNS name or IP address in the generated server certificate, beside
    /// localhost, 127.0.0.1, ::1 and the host name; repeat the flag or separate values with commas.
    #[arg(long, env = "OSC_TLS_SAN", value_name = "NAME", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_san: Option<Vec<String>>,

    /// Serve plain HTTP without TLS, for development only: refused unless `--listen` is a
    /// loopback address.
    #[arg(
        long,
        env = "OSC_INSECURE_HTTP",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure_http: Option<bool>,

    /// Write logs to standard error as human-readable text or as one JSON object per line
    /// [default: text].
    #[arg(long, env = "OSC_LOG_FORMAT", value_name = "FORMAT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,

    /// Log events at this level and above, in `RUST_LOG` syntax, e.g. `debug` or
    /// `info,osc_central=debug` [default: info].
    #[arg(long, env = "OSC_LOG_LEVEL", value_name = "FILTER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,

    /// Refuse request bodies larger than this many bytes with 413 [default: 3145728, 3 MiB, as
    /// the Kubernetes API server].
    #[arg(long, env = "OSC_MAX_BODY_BYTES", value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,

    /// Answer 504 to a request that has not completed in this time, written as `90s` or `1m`;
    /// watches are exempt [default: 1m].
    #[arg(long, env = "OSC_REQUEST_TIMEOUT", value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<osc_crds::Duration>,

    /// On SIGTERM or SIGINT, give in-flight requests this long to finish before closing their
    /// connections [default: 30s].
    #[arg(long, env = "OSC_SHUTDOWN_GRACE", value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_grace: Option<osc_crds::Duration>,

    /// Before serving, create the objects of the manifests in this file or folder (YAML or JSON,
    /// searched recursively, e.g. a GitOps repo such as `desired-state/`) that the store does not
    /// hold yet, through the API's own admission: Sites first, then other cluster-scoped kinds,
    /// then the sites' objects. Existing objects are kept as stored, never overwritten. The
    /// manifests are checked as one complete set (a site's objects need their Site among them)
    /// before anything is written: any problem, reported with its file and line, stops the start.
    /// Repeat the flag or separate paths with commas.
    #[arg(long, env = "OSC_SEED", value_name = "PATH", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<Vec<PathBuf>>,
}

/// The checked configuration the library runs with; build it with [`Config::from_options`].
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Folder of the embedded database and the generated TLS material.
    pub data_dir: PathBuf,
    /// Where objects are stored.
    pub database: Database,
    /// The address the binary binds (library entry points take a bound listener instead).
    pub listen: SocketAddr,
    /// TLS or, on loopback only, plain HTTP.
    pub transport: Transport,
    /// Log output.
    pub log: LogSettings,
    /// Per-request limits.
    pub limits: Limits,
    /// How long in-flight requests get to finish once shutdown starts.
    pub shutdown_grace: Duration,
    /// Manifest files and folders whose missing objects are created at start-up; empty for none.
    pub seed: Vec<PathBuf>,
}

/// Where objects are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded SQLite file [`SQLITE_FILE`] in the data folder.
    Sqlite,
    /// A PostgreSQL server.
    Postgres(DatabaseUrl),
}

/// Text that may hold a password (the `--database-url` as given); `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(***)")
    }
}

impl std::str::FromStr for SecretText {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

/// The name of the embedded database file inside the data folder.
pub const SQLITE_FILE: &str = "central.sqlite3";

/// A PostgreSQL URL; its password never appears in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(Url);

impl DatabaseUrl {
    /// The full URL, password included, for the one place that connects.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut masked = self.0.clone();
        if masked.password().is_some() {
            // Cannot fail: the URL has a password, so it has a host to hang it on.
            let _ = masked.set_password(Some("***"));
        }
        f.write_str(masked.as_str())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// How connections are secured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// TLS with the certificate and key in these PEM files.
    TlsFiles {
        /// The certificate chain, leaf first.
        cert: PathBuf,
        /// The private key of the leaf.
        key: PathBuf,
    },
    /// TLS with a certificate issued at start-up by a private CA kept in the data folder.
    TlsGenerated {
        /// Names beyond the built-in ones (localhost, loopback addresses, host name).
        extra_sans: Vec<String>,
    },
    /// Plain HTTP; [`Config::from_options`] allows it on loopback addresses only.
    InsecureHttp,
}

/// The log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per event, for log collectors.
    Json,
}

/// Log output settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// Text or JSON.
    pub format: LogFormat,
    /// A `RUST_LOG`-style filter, checked to parse.
    pub filter: String,
}

/// Limits applied to every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request body; larger ones get 413.
    pub max_body_bytes: u64,
    /// Longest a non-watch request may take before it gets 504.
    pub request_timeout: Duration,
}

/// Why the options do not make a configuration; each message names the option and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        /// The file named by `--config`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The `--config` file is not valid YAML for [`Options`] (including an unknown key, which the
    /// message names along with the keys that are allowed).
    #[error("config file {path}: {source}")]
    ParseFile {
        /// The file named by `--config`.
        path: PathBuf,
        /// The YAML error, with line and column.
        #[source]
        source: serde_yaml::Error,
    },
    /// `--insecure-http` with an address other machines can reach.
    #[error(
        "--insecure-http serves the API without TLS, so it is refused on {listen}, which is not a \
         loopback address; listen on 127.0.0.1 or [::1], or drop --insecure-http to serve TLS"
    )]
    InsecureNotLoopback {
        /// The `--listen` address.
        listen: SocketAddr,
    },
    /// `--insecure-http` together with TLS options that it would silently ignore.
    #[error("--insecure-http cannot be combined with --{option}; choose plain HTTP or TLS")]
    InsecureWithTls {
        /// The TLS option given (`tls-cert`, `tls-key` or `tls-san`).
        option: &'static str,
    },
    /// Only one of `--tls-cert` and `--tls-key`.
    #[error("--{given} needs --{missing} too: give both, or neither to use the generated CA")]
    TlsPairIncomplete {
        /// The option given.
        given: &'static str,
        /// The option missing.
        missing: &'static str,
    },
    /// `--tls-san` with a certificate from files, where it could not take effect.
    #[error(
        "--tls-san only applies to the generated certificate, not to --tls-cert; put the names in \
         your certificate or drop --tls-cert"
    )]
    SanWithCertFiles,
    /// `--database-url` is not a PostgreSQL URL.
    #[error(
        "--database-url must be a postgres:// or postgresql:// URL such as \
         postgres://user:password@host:5432/osc, got {given}; leave it out to use embedded SQLite"
    )]
    DatabaseUrl {
        /// What was given, with any password masked.
        given: String,
    },
    /// `--log-level` does not parse as a filter.
    #[error(
        "--log-level {given:?} is not a valid filter: {reason}; try `info` or `info,osc_central=debug`"
    )]
    LogLevel {
        /// The filter as given.
        given: String,
        /// The parser's explanation.
        reason: String,
    },
    /// A zero limit or duration, which would refuse everything.
    #[error("--{option} must be greater than zero")]
    Zero {
        /// The option.
        option: &'static str,
    },
}

/// Built-in defaults, named for the docs and the tests.
pub mod defaults {
    use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
    use std::time::Duration;

    /// `--data-dir`.
    pub const DATA_DIR: &str = "./osc-data";
    /// `--listen`: loopback, so a fresh install exposes nothing until told to.
    pub const LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8443));
    /// `--max-body-bytes`: the Kubernetes API server's 3 MiB.
    pub const MAX_BODY_BYTES: u64 = 3 * 1024 * 1024;
    /// `--request-timeout`: the Kubernetes API server's one minute.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
    /// `--shutdown-grace`.
    pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
    /// `--log-level`.
    pub const LOG_LEVEL: &str = "info";
}

impl Config {
    /// Reads the `--config` file named in `options` (if any), layers `options` over it, applies
    /// defaults and checks the result.
    pub fn from_options(options: Options) -> Result<Self, ConfigError> {
        let merged = match &options.config {
            Some(path) => options.clone().over(Options::from_file(path)?),
            None => options,
        };
        Self::resolve(merged)
    }

    /// The configuration as a `--config` file would state it, every option spelled out, with the
    /// database password masked.
    pub fn to_yaml(&self) -> String {
        let (tls_cert, tls_key, tls_san, insecure_http) = match &self.transport {
            Transport::TlsFiles { cert, key } => {
                (Some(cert.clone()), Some(key.clone()), None, false)
            }
            Transport::TlsGenerated { extra_sans } => (None, None, Some(extra_sans.clone()), false),
            Transport::InsecureHttp => (None, None, None, true),
        };
        let options = Options {
            config: None,
            data_dir: Some(self.data_dir.clone()),
            database_url: match &self.database {
                Database::Sqlite => None,
                Database::Postgres(url) => Some(SecretText(url.to_string())),
            },
            listen: Some(self.listen),
            tls_cert,
            tls_key,
            tls_san,
            insecure_http: Some(insecure_http),
            log_format: Some(self.log.format),
            log_level: Some(self.log.filter.clone()),
            max_body_bytes: Some(self.limits.max_body_bytes),
            request_timeout: Some(self.limits.request_timeout.into()),
            shutdown_grace: Some(self.shutdown_grace.into()),
            seed: (!self.seed.is_empty()).then(|| self.seed.clone()),
        };
        // Serializing plain strings, numbers and lists cannot fail.
        serde_yaml::to_string(&options).unwrap_or_default()
    }

    /// Applies defaults to merged options and checks that they fit together.
    fn resolve(options: Options) -> Result<Self, ConfigError> {
        let listen = options.listen.unwrap_or(defaults::LISTEN);
        let transport = transport(&options, listen)?;
        let database = match options.database_url {
            None => Database::Sqlite,
            Some(SecretText(text)) => Database::Postgres(database_url(&text)?),
        };
        let filter = options
            .log_level
            .unwrap_or_else(|| defaults::LOG_LEVEL.to_owned());
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&filter) {
            return Err(ConfigError::LogLevel {
                given: filter,
                reason: error.to_string(),
            });
        }
        let limits = Limits {
            max_body_bytes: nonzero(
                "max-body-bytes",
                options.max_body_bytes.unwrap_or(defaults::MAX_BODY_BYTES),
                0,
            )?,
            request_timeout: nonzero(
                "request-timeout",
                duration_or(options.request_timeout, defaults::REQUEST_TIMEOUT),
                Duration::ZERO,
            )?,
        };
        Ok(Self {
            data_dir: options
                .data_dir
                .unwrap_or_else(|| PathBuf::from(defaults::DATA_DIR)),
            database,
            listen,
            transport,
            log: LogSettings {
                format: options.log_format.unwrap_or_default(),
                filter,
            },
            limits,
            shutdown_grace: duration_or(options.shutdown_grace, defaults::SHUTDOWN_GRACE),
            seed: options.seed.unwrap_or_default(),
        })
    }
}

impl Options {
    /// Keeps every option set in `self` and takes the others from `under`.
    pub fn over(self, under: Options) -> Options {
        Options {
            config: self.config.or(under.config),
            data_dir: self.data_dir.or(under.data_dir),
            database_url: self.database_url.or(under.database_url),
            listen: self.listen.or(under.listen),
            tls_cert: self.tls_cert.or(under.tls_cert),
            tls_key: self.tls_key.or(under.tls_key),
            tls_san: self.tls_san.or(under.tls_san),
            insecure_http: self.insecure_http.or(under.insecure_http),
            log_format: self.log_format.or(under.log_format),
            log_level: self.log_level.or(under.log_level),
            max_body_bytes: self.max_body_bytes.or(under.max_body_bytes),
            request_timeout: self.request_timeout.or(under.request_timeout),
            shutdown_grace: self.shutdown_grace.or(under.shutdown_grace),
            seed: self.seed.or(under.seed),
        }
    }

    /// Reads a config file, resolving its relative paths against its folder so that the file
    /// means the same whatever the working directory of the process.
    pub fn from_file(path: &Path) -> Result<Options, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text, path)
    }

    /// Parses the text of the config file at `path` (named in errors).
    fn from_yaml(text: &str, path: &Path) -> Result<Options, ConfigError> {
        // An empty file (or one with only comments) is a valid file that sets nothing.
        if text.lines().all(|line| {
            let line = line.trim();
            line.is_empty() || line.starts_with('#')
        }) {
            return Ok(Options::default());
        }
        let mut options: Options =
            serde_yaml::from_str(text).map_err(|source| ConfigError::ParseFile {
                path: path.to_owned(),
                source,
            })?;
        let folder = path.parent().unwrap_or(Path::new(""));
        let seeds = options.seed.iter_mut().flatten();
        for file in [
            &mut options.data_dir,
            &mut options.tls_cert,
            &mut options.tls_key,
        ]
        .into_iter()
        .flatten()
        .chain(seeds)
        {
            *file = folder.join(&*file);
        }
        Ok(options)
    }
}

/// Decides the transport from the TLS options and checks that they fit together.
fn transport(options: &Options, listen: SocketAddr) -> Result<Transport, ConfigError> {
    if options.insecure_http == Some(true) {
        let tls_option = [
            ("tls-cert", options.tls_cert.is_some()),
            ("tls-key", options.tls_key.is_some()),
            ("tls-san", options.tls_san.is_some()),
        ]
        .into_iter()
        .find_map(|(name, given)| given.then_some(name));
        if let Some(option) = tls_option {
            return Err(ConfigError::InsecureWithTls { option });
        }
        if !listen.ip().is_loopback() {
            return Err(ConfigError::InsecureNotLoopback { listen });
        }
        return Ok(Transport::InsecureHttp);
    }
    match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => {
            if options.tls_san.is_some() {
                return Err(ConfigError::SanWithCertFiles);
            }
            Ok(Transport::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })
        }
        (Some(_), None) => Err(ConfigError::TlsPairIncomplete {
            given: "tls-cert",
            missing: "tls-key",
        }),
        (None, Some(_)) => Err(ConfigError::TlsPairIncomplete {
            given: "tls-key",
            missing: "tls-cert",
        }),
        (None, None) => Ok(Transport::TlsGenerated {
            extra_sans: options.tls_san.clone().unwrap_or_default(),
        }),
    }
}

/// Checks that `text` is a PostgreSQL URL; the error masks any password in it.
fn database_url(text: &str) -> Result<DatabaseUrl, ConfigError> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "postgres" | "postgresql") => Ok(DatabaseUrl(url)),
        Ok(url) => Err(ConfigError::DatabaseUrl {
            given: DatabaseUrl(url).to_string(),
        }),
        // Unparseable text may hold a password anywhere, so none of it is echoed.
        Err(error) => Err(ConfigError::DatabaseUrl {
            given: format!("an unparseable URL ({error})"),
        }),
    }
}

/// `value`, unless it equals `zero`.
fn nonzero<T: PartialEq>(option: &'static str, value: T, zero: T) -> Result<T, ConfigError> {
    if value == zero {
        Err(ConfigError::Zero { option })
    } else {
        Ok(value)
    }
}

/// The given duration, or `default`.
fn duration_or(given: Option<osc_crds::Duration>, default: Duration) -> Duration {
    given.map_or(default, |duration| duration.as_std())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<Options, ConfigError> {
        Options::from_yaml(text, Path::new("/etc/osc/central.yaml"))
    }

    fn resolve(options: Options) -> Result<Config, ConfigError> {
        Config::resolve(options)
    }

    #[test]
    fn defaults_apply_when_nothing_is_given() {
        let config = resolve(Options::default()).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("./osc-data"));
        assert_eq!(config.database, Database::Sqlite);
        assert_eq!(config.listen, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(
            config.transport,
            Transport::TlsGenerated {
                extra_sans: Vec::new()
            }
        );
        assert_eq!(config.log.format, LogFormat::Text);
        assert_eq!(config.log.filter, "info");
        assert_eq!(config.limits.max_body_bytes, 3 * 1024 * 1024);
        assert_eq!(config.limits.request_timeout, Duration::from_secs(60));
        assert_eq!(config.shutdown_grace, Duration::from_secs(30));
        assert!(config.seed.is_empty());
    }

    #[test]
    fn a_set_option_wins_over_the_layer_under_it() {
        let top = Options {
            listen: Some("127.0.0.1:1".parse().unwrap()),
            ..Options::default()
        };
        let under = Options {
            listen: Some("127.0.0.1:2".parse().unwrap()),
            log_level: Some("debug".into()),
            ..Options::default()
        };
        let merged = top.over(under);
        assert_eq!(merged.listen, Some("127.0.0.1:1".parse().unwrap()));
        assert_eq!(merged.log_level.as_deref(), Some("debug"));
    }

    #[test]
    fn file_keys_are_the_flag_names_and_relative_paths_follow_the_file() {
        let options = yaml(
            "# comment\n\
             data-dir: data\n\
             tls-cert: /abs/cert.pem\n\
             tls-key: key.pem\n\
             listen: 0.0.0.0:9443\n\
             log-format: json\n\
             request-timeout: 90s\n\
             tls-san: [central.example, 10.0.0.5]\n\
             seed: [desired-state, /srv/gitops]\n",
        )
        .unwrap();
        assert_eq!(options.data_dir, Some(PathBuf::from("/etc/osc/data")));
        assert_eq!(options.tls_cert, Some(PathBuf::from("/abs/cert.pem")));
        assert_eq!(options.tls_key, Some(PathBuf::from("/etc/osc/key.pem")));
        assert_eq!(options.listen, Some("0.0.0.0:9443".parse().unwrap()));
        assert_eq!(options.log_format, Some(LogFormat::Json));
        assert_eq!(
            options.request_timeout.map(|d| d.as_std()),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            options.tls_san,
            Some(vec!["central.example".into(), "10.0.0.5".into()])
        );
        assert_eq!(
            options.seed,
            Some(vec![
                PathBuf::from("/etc/osc/desired-state"),
                PathBuf::from("/srv/gitops")
            ])
        );
    }

    #[test]
    fn an_empty_file_sets_nothing() {
        for text in ["", "\n", "# only a comment\n"] {
            assert_eq!(yaml(text).unwrap(), Options::default(), "{text:?}");
        }
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_the_key_and_the_file() {
        let error = yaml("listen: 127.0.0.1:1\nlisten-address: 0.0.0.0:1\n").unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, ConfigError::ParseFile { .. }), "{error:?}");
        assert!(message.contains("/etc/osc/central.yaml"), "{message}");
        assert!(message.contains("listen-address"), "{message}");
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn a_bad_value_in_the_file_names_the_file_and_line() {
        let message = yaml("max-body-bytes: lots\n").unwrap_err().to_string();
        assert!(message.contains("/etc/osc/central.yaml"), "{message}");
        assert!(message.contains("max-body-bytes"), "{message}");
        assert!(message.contains("line 1"), "{message}");
    }

    /// Option combinations that must be refused, each with a word its message must contain.
    #[test]
    fn inconsistent_options_are_refused_with_the_fix() {
        let cases: Vec<(&str, Options, &str)> = vec![
            (
                "insecure on all interfaces",
                Options {
                    insecure_http: Some(true),
                    listen: Some("0.0.0.0:8080".parse().unwrap()),
                    ..Options::default()
                },
                "not a loopback address",
            ),
            (
                "insecure on a LAN address",
                Options {
                    insecure_http: Some(true),
                    listen: Some("192.168.1.10:8080".parse().unwrap()),
                    ..Options::default()
                },
                "192.168.1.10:8080",
            ),
            (
                "insecure with a certificate",
                Options {
                    insecure_http: Some(true),
                    tls_cert: Some("c.pem".into()),
                    tls_key: Some("k.pem".into()),
                    ..Options::default()
                },
                "--tls-cert",
            ),
            (
                "certificate without key",
                Options {
                    tls_cert: Some("c.pem".into()),
                    ..Options::default()
                },
                "--tls-cert needs --tls-key",
            ),
            (
                "key without certificate",
                Options {
                    tls_key: Some("k.pem".into()),
                    ..Options::default()
                },
                "--tls-key needs --tls-cert",
            ),
            (
                "extra SANs with a given certificate",
                Options {
                    tls_cert: Some("c.pem".into()),
                    tls_key: Some("k.pem".into()),
                    tls_san: Some(vec!["x".into()]),
                    ..Options::default()
                },
                "--tls-san",
            ),
            (
                "a MySQL URL",
                Options {
                    database_url: Some(SecretText("mysql://u:hunter2@db/osc".into())),
                    ..Options::default()
                },
                "postgres://",
            ),
            (
                "a filter that does not parse",
                Options {
                    log_level: Some("info,[".into()),
                    ..Options::default()
                },
                "--log-level",
            ),
            (
                "no body at all",
                Options {
                    max_body_bytes: Some(0),
                    ..Options::default()
                },
                "--max-body-bytes must be greater than zero",
            ),
            (
                "no time at all",
                Options {
                    request_timeout: Some("0s".parse().unwrap()),
                    ..Options::default()
                },
                "--request-timeout must be greater than zero",
            ),
        ];
        for (name, options, expected) in cases {
            let message = resolve(options).unwrap_err().to_string();
            assert!(message.contains(expected), "{name}: {message}");
            assert!(
                !message.contains("hunter2"),
                "{name} leaks a password: {message}"
            );
        }
    }

    #[test]
    fn insecure_http_is_allowed_on_loopback() {
        for listen in ["127.0.0.1:8080", "[::1]:8080"] {
            let config = resolve(Options {
                insecure_http: Some(true),
                listen: Some(listen.parse().unwrap()),
                ..Options::default()
            })
            .unwrap();
            assert_eq!(config.transport, Transport::InsecureHttp, "{listen}");
        }
    }

    #[test]
    fn the_database_password_is_never_shown() {
        let options = Options {
            database_url: Some(SecretText(
                "postgres://osc:hunter2@db.internal:5432/osc".into(),
            )),
            ..Options::default()
        };
        assert!(!format!("{options:?}").contains("hunter2"));
        let config = resolve(options).unwrap();
        let Database::Postgres(url) = &config.database else {
            panic!("expected PostgreSQL, got {:?}", config.database);
        };
        assert_eq!(url.expose(), "postgres://osc:hunter2@db.internal:5432/osc");
        for shown in [format!("{config:?}"), url.to_string(), config.to_yaml()] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("osc:***@db.internal"), "{shown}");
        }
    }

    #[test]
    fn the_printed_configuration_reads_back_as_the_same_configuration() {
        let config = resolve(Options {
            data_dir: Some("/var/lib/osc".into()),
            listen: Some("[::]:8443".parse().unwrap()),
            tls_san: Some(vec!["central.example".into()]),
            log_format: Some(LogFormat::Json),
            request_timeout: Some("90s".parse().unwrap()),
            seed: Some(vec!["/srv/gitops".into()]),
            ..Options::default()
        })
        .unwrap();
        let again = resolve(yaml(&config.to_yaml()).unwrap()).unwrap();
        assert_eq!(again, config);
    }
}
