//! TLS for the API, with rustls on the `ring` provider: either a certificate from PEM files, or a
//! private CA kept in the data folder that issues the server certificate at each start.
//!
//! Appliances pin the CA (`ca.crt`), not the server certificate, so the CA is created once and
//! reused for ever after, while the server certificate is issued afresh at every start from the
//! names configured then: a new `--tls-san` or a renamed host takes effect on restart, and the
//! certificate never ages on disk.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Datelike, NaiveDate, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, string::Ia5String,
};
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// The folder under the data folder that holds the generated CA.
pub const TLS_DIR: &str = "tls";
/// The CA certificate that appliances and `oscctl` pin.
pub const CA_CERT_FILE: &str = "ca.crt";
/// The CA's private key (mode 0600).
pub const CA_KEY_FILE: &str = "ca.key";

/// A TLS configuration ready to serve, from [`from_files`] or [`generated`].
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// What rustls serves, with ALPN for HTTP/2 and HTTP/1.1.
    pub config: Arc<ServerConfig>,
    /// The CA certificate clients should pin, when this server generated it.
    pub ca_cert: Option<PathBuf>,
    /// Whether the CA was created by this start (and so is new to every client).
    pub ca_created: bool,
}

/// Why TLS could not be set up; each message names the file concerned and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read the {what} from {path}: {source}")]
    ReadPem {
        /// Which file: `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The reader's error.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// A certificate file holds no `CERTIFICATE` block.
    #[error("{path} holds no PEM CERTIFICATE block; --tls-cert needs the chain in PEM, leaf first")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the certificate and key, e.g. because the key is not the certificate's.
    #[error("cannot serve the certificate {cert} with the key {key}: {source}")]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
    /// A file in the TLS folder could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS folder or a file in it could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The folder or file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `ca.crt` exists but its key does not (or cannot be read).
    #[error(
        "cannot read the CA key {key} that belongs to {cert}: {source}; restore it from backup, or \
         move {cert} aside to generate a new CA (every appliance must then pin the new one)"
    )]
    CaKey {
        /// `ca.crt`.
        cert: PathBuf,
        /// `ca.key`.
        key: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `ca.crt` or `ca.key` does not parse.
    #[error(
        "cannot use the CA in {cert} and {key}: {source}; restore them from backup, or move both \
         aside to generate a new CA (every appliance must then pin the new one)"
    )]
    CaUnreadable {
        /// `ca.crt`.
        cert: PathBuf,
        /// `ca.key`.
        key: PathBuf,
        /// rcgen's parse error.
        #[source]
        source: rcgen::Error,
    },
    /// A certificate issued by the CA does not verify against it: the key is not the
    /// certificate's, or the CA has expired.
    #[error(
        "the CA in {cert} cannot vouch for the server certificate it issued ({source}): {key} may \
         not be its key, or it may have expired; move both aside to generate a new CA (every \
         appliance must then pin the new one)"
    )]
    CaUnusable {
        /// `ca.crt`.
        cert: PathBuf,
        /// `ca.key`.
        key: PathBuf,
        /// Why verification failed.
        #[source]
        source: rustls::Error,
    },
    /// A `--tls-san` value that is neither an IP address nor a DNS name.
    #[error(
        "--tls-san {name:?} is neither an IP address nor a DNS name (letters, digits, '-', '.', \
         and a leading '*.')"
    )]
    BadSan {
        /// The value as given.
        name: String,
    },
    /// Key or certificate generation failed.
    #[error("cannot generate the {what}: {source}")]
    Generate {
        /// What was being generated.
        what: &'static str,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// rustls refused to build a configuration from parts generated here (a bug).
    #[error("cannot build the TLS configuration: {source}")]
    Config {
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
}

/// Serves the PEM certificate chain in `cert` (leaf first) with the private key in `key`.
pub fn from_files(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|blocks| blocks.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::ReadPem {
            what: "certificate",
            path: cert.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::ReadPem {
        what: "private key",
        path: key.to_owned(),
        source,
    })?;
    let config = server_config(chain, private_key).map_err(|source| TlsError::Rejected {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    })?;
    Ok(ServerTls {
        config,
        ca_cert: None,
        ca_created: false,
    })
}

/// Loads the private CA from `<data_dir>/tls/` (creating it on first use) and issues a server
/// certificate for localhost, the loopback addresses, the host name, `listen`'s address when it
/// is a specific one, and `extra_sans`.
pub fn generated(
    data_dir: &Path,
    listen: SocketAddr,
    extra_sans: &[String],
) -> Result<ServerTls, TlsError> {
    let sans = server_sans(listen, extra_sans)?;
    let dir = data_dir.join(TLS_DIR);
    let (ca, ca_created) = LocalCa::load_or_create(&dir)?;
    let (leaf, leaf_key) = ca.issue(sans)?;
    ca.check_issued(&leaf)?;
    let config =
        server_config(vec![leaf], leaf_key).map_err(|source| TlsError::Config { source })?;
    Ok(ServerTls {
        config,
        ca_cert: Some(ca.cert_path),
        ca_created,
    })
}

/// The crypto provider: `ring`, which builds without cmake (unlike aws-lc-rs), passed explicitly
/// so that nothing depends on a process-wide default.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// How long the CA is valid: long, since every appliance pins it and replacing it means
/// re-pinning the fleet.
const CA_VALID_DAYS: u64 = 20 * 365;
/// How long a server certificate is valid; it is re-issued at every start.
const SERVER_VALID_DAYS: u64 = 2 * 365;

/// The private CA in the TLS folder.
struct LocalCa {
    /// Signs server certificates.
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, as clients pin it.
    cert_der: CertificateDer<'static>,
    /// Where `ca.crt` is.
    cert_path: PathBuf,
    /// Where `ca.key` is.
    key_path: PathBuf,
}

impl LocalCa {
    /// Loads the CA in `dir`, or creates it when `ca.crt` is missing; says whether it created it.
    ///
    /// `ca.crt` is written last (key first, each through a temporary file and a rename), so its
    /// presence means the pair is complete: a crash half-way leaves no `ca.crt` and the next start
    /// simply creates a new CA.
    fn load_or_create(dir: &Path) -> Result<(Self, bool), TlsError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let created = !cert_path.exists();
        if created {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| TlsError::Write {
                    path: dir.to_owned(),
                    source,
                })?;
            let (cert_pem, key_pem) = new_ca()?;
            for (path, pem, mode) in [(&key_path, &key_pem, 0o600), (&cert_path, &cert_pem, 0o644)]
            {
                write_new(path, pem.as_bytes(), mode).map_err(|source| TlsError::Write {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        let cert_pem = fs::read_to_string(&cert_path).map_err(|source| TlsError::Read {
            path: cert_path.clone(),
            source,
        })?;
        let key_pem = fs::read_to_string(&key_path).map_err(|source| TlsError::CaKey {
            cert: cert_path.clone(),
            key: key_path.clone(),
            source,
        })?;
        let unreadable = |source| TlsError::CaUnreadable {
            cert: cert_path.clone(),
            key: key_path.clone(),
            source,
        };
        let key = KeyPair::from_pem(&key_pem).map_err(unreadable)?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(unreadable)?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|_| unreadable(rcgen::Error::CouldNotParseCertificate))?;
        Ok((
            Self {
                issuer,
                cert_der,
                cert_path,
                key_path,
            },
            created,
        ))
    }

    /// Issues a server certificate for `sans` with a fresh key.
    fn issue(
        &self,
        sans: Vec<SanType>,
    ) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), TlsError> {
        let generate = |source| TlsError::Generate {
            what: "server certificate",
            source,
        };
        let key = KeyPair::generate().map_err(generate)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "osc-central");
        params.subject_alt_names = sans;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, SERVER_VALID_DAYS);
        let cert = params.signed_by(&key, &self.issuer).map_err(generate)?;
        let key = PrivateKeyDer::try_from(key.serialize_der()).map_err(|_| TlsError::Generate {
            what: "server key",
            source: rcgen::Error::CouldNotParseKeyPair,
        })?;
        Ok((cert.into(), key))
    }

    /// Verifies `leaf` against the CA certificate as a client would, so that a `ca.key` that is
    /// not `ca.crt`'s, or an expired CA, fails at start with a clear message rather than at every
    /// client's handshake.
    fn check_issued(&self, leaf: &CertificateDer<'static>) -> Result<(), TlsError> {
        let unusable = |source| TlsError::CaUnusable {
            cert: self.cert_path.clone(),
            key: self.key_path.clone(),
            source,
        };
        let mut roots = RootCertStore::empty();
        roots.add(self.cert_der.clone()).map_err(unusable)?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|error| unusable(rustls::Error::General(error.to_string())))?;
        verifier
            .verify_server_cert(
                leaf,
                &[],
                &ServerName::try_from("localhost").expect("a valid DNS name"),
                &[],
                UnixTime::now(),
            )
            .map_err(unusable)?;
        Ok(())
    }
}

/// A new self-signed CA: its certificate and key in PEM.
fn new_ca() -> Result<(String, String), TlsError> {
    let generate = |source| TlsError::Generate { what: "CA", source };
    let key = KeyPair::generate().map_err(generate)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "OsirisCare");
    params.distinguished_name.push(
        DnType::CommonName,
        format!("OsirisCare Central CA {}", host_name().unwrap_or_default()).trim(),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, CA_VALID_DAYS);
    let cert = params.self_signed(&key).map_err(generate)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Makes a certificate valid from yesterday (tolerating clients whose clocks are a little
/// behind) for `days` days.
fn set_validity(params: &mut CertificateParams, days: u64) {
    let today = Utc::now().date_naive();
    let day =
        |date: NaiveDate| rcgen::date_time_ymd(date.year(), date.month() as u8, date.day() as u8);
    params.not_before = day(today - chrono::Days::new(1));
    params.not_after = day(today + chrono::Days::new(days));
}

/// The names the server certificate carries, built-in ones first, without duplicates.
fn server_sans(listen: SocketAddr, extra: &[String]) -> Result<Vec<SanType>, TlsError> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    names.extend(host_name());
    let ip = listen.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    names.extend(extra.iter().cloned());
    let mut sans = Vec::with_capacity(names.len());
    for name in names {
        let san = san(&name)?;
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    Ok(sans)
}

/// One subject alternative name: an IP address, or a DNS name (optionally a `*.` wildcard).
fn san(name: &str) -> Result<SanType, TlsError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let bare = name.strip_prefix("*.").unwrap_or(name);
    let valid = !bare.is_empty()
        && bare.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    let bad = || TlsError::BadSan {
        name: name.to_owned(),
    };
    if !valid {
        return Err(bad());
    }
    let name = Ia5String::try_from(name.to_ascii_lowercase()).map_err(|_| bad())?;
    Ok(SanType::DnsName(name))
}

/// This machine's host name, when it is usable as a DNS name.
fn host_name() -> Option<String> {
    let name = gethostname::gethostname().into_string().ok()?;
    let name = name.trim().to_ascii_lowercase();
    san(&name).ok().map(|_| name)
}

/// Writes `bytes` to `path` with `mode`, through a temporary file renamed into place so that a
/// crash never leaves a truncated file behind. Also writes the evidence log's key.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path)
}

/// A rustls server configuration offering HTTP/2 (which `kubectl` prefers) and HTTP/1.1.
fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_accept_ip_addresses_and_dns_names_only() {
        let cases = [
            ("10.0.0.5", true),
            ("fd00::1", true),
            ("central.example.net", true),
            ("*.sites.example.net", true),
            ("Central-1", true),
            ("", false),
            ("has space", false),
            ("-leading.example", false),
            ("double..dot", false),
            ("under_score", false),
            ("ünïcode.example", false),
        ];
        for (name, ok) in cases {
            assert_eq!(san(name).is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn server_sans_hold_the_built_ins_a_specific_listen_address_and_extras_once() {
        let sans = server_sans(
            "192.168.7.2:8443".parse().unwrap(),
            &["central.example".into(), "localhost".into()],
        )
        .unwrap();
        for expected in [
            san("localhost").unwrap(),
            san("127.0.0.1").unwrap(),
            san("::1").unwrap(),
            san("192.168.7.2").unwrap(),
            san("central.example").unwrap(),
        ] {
            assert_eq!(
                sans.iter().filter(|s| **s == expected).count(),
                1,
                "{expected:?} in {sans:?}"
            );
        }
        let wildcard = server_sans("0.0.0.0:8443".parse().unwrap(), &[]).unwrap();
        assert!(!wildcard.contains(&san("0.0.0.0").unwrap()));
    }

    #[test]
    fn a_bad_extra_san_is_named() {
        let error = server_sans("127.0.0.1:1".parse().unwrap(), &["not valid".into()]).unwrap_err();
        assert!(error.to_string().contains("\"not valid\""), "{error}");
    }
}
