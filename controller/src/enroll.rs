//! `osc-controller enroll`: an appliance joins its site.
//!
//! The appliance generates its Ed25519 key locally (the private key never leaves it) and writes
//! it before asking, mode 0600; it signs `PAE("application/vnd.osiriscare.enrollment.v1", token)`
//! as proof that it holds the key, posts `EnrollRequest` to `/osc/v1/enroll` (docs/DESIGN.md
//! 5.8) over TLS with the given CA pinned, and writes its bearer token and config file (both
//! 0600). Running it again reuses the key file, so a lost answer costs nothing: central answers
//! the same key and name again with a fresh token.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use osc_proto::auth::{EnrollRequest, EnrollResponse, enrollment_proof_message};
use osc_proto::dsse::Signer;
use url::Url;
use zeroize::Zeroizing;

use crate::Error;
use crate::central::{Central, HttpCentral};
use crate::config::{Config, SecretString, read_signing_key};

/// What `enroll` needs.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// Central's base URL.
    pub central: Url,
    /// The one-time enrollment token (`osce_…`).
    pub token: SecretString,
    /// The PEM file of central's CA, pinned from now on.
    pub ca_file: PathBuf,
    /// This appliance's name (a DNS label).
    pub appliance: String,
    /// Where to write the config file; the key and token files go beside it.
    pub config: PathBuf,
    /// The config's `stateDirectory`.
    pub state_directory: PathBuf,
}

/// What enrollment wrote.
#[derive(Debug)]
pub struct Enrolled {
    /// Central's answer (its `Debug` hides the token).
    pub response: EnrollResponse,
    /// The config as written and read back.
    pub config: Config,
}

/// Enrolls through `central`, writing the key, token and config files.
pub async fn enroll_with(
    central: &impl Central,
    enrollment: &Enrollment,
) -> Result<Enrolled, Error> {
    // Absolute paths: the config resolves relative ones from its own folder, not from where
    // `enroll` ran (regression: `--config osc-data/controller/controller.yaml` wrote paths that
    // resolved to osc-data/controller/osc-data/controller/...).
    let absolute = |path: &Path| {
        std::path::absolute(path).map_err(|source| Error::ReadFile {
            path: path.to_owned(),
            source,
        })
    };
    let dir = absolute(
        &enrollment
            .config
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_owned),
    )?;
    let key_file = dir.join("signing.key");
    let token_file = dir.join("token");
    let signer = if key_file.exists() {
        read_signing_key(&key_file)?
    } else {
        let signer = Signer::generate().map_err(|source| Error::SigningKey {
            path: key_file.clone(),
            source,
        })?;
        write_secret(&key_file, signer.to_base64().as_bytes())?;
        signer
    };
    let proof = signer
        .signing_key()
        .sign(&enrollment_proof_message(enrollment.token.expose()));
    let request = EnrollRequest {
        token: enrollment.token.expose().to_owned(),
        appliance: enrollment.appliance.clone(),
        public_key: signer.public_key().to_base64(),
        proof: base64::engine::general_purpose::STANDARD.encode(proof.to_bytes()),
    };
    let response = central.enroll(&request).await?;
    write_secret(&token_file, response.token.as_bytes())?;
    let ca_file = absolute(&enrollment.ca_file)?;
    let state_directory = absolute(&enrollment.state_directory)?;
    let text = format!(
        "# Written by `osc-controller enroll`; every option is described in docs/controller.md.\n\
         centralUrl: {central}\n\
         caFile: {ca}\n\
         tokenFile: {token}\n\
         site: {site}\n\
         appliance: {appliance}\n\
         signingKeyFile: {key}\n\
         stateDirectory: {state}\n",
        central = yaml_string(enrollment.central.as_str()),
        ca = yaml_string(&ca_file.display().to_string()),
        token = yaml_string(&token_file.display().to_string()),
        site = yaml_string(&response.site),
        appliance = yaml_string(&response.appliance),
        key = yaml_string(&key_file.display().to_string()),
        state = yaml_string(&state_directory.display().to_string()),
    );
    write_secret(&enrollment.config, text.as_bytes())?;
    // Read back what `run` will read, key included, so a config that cannot run fails here.
    let config = Config::load(&enrollment.config)?;
    read_signing_key(&config.signing_key_file)?;
    Ok(Enrolled { response, config })
}

/// Enrolls with central over HTTPS, the CA in `enrollment.ca_file` pinned.
pub async fn enroll(enrollment: &Enrollment) -> Result<Enrolled, Error> {
    let ca = std::fs::read(&enrollment.ca_file).map_err(|source| Error::ReadFile {
        path: enrollment.ca_file.clone(),
        source,
    })?;
    let central = HttpCentral::new(enrollment.central.clone(), &ca, None)?;
    enroll_with(&central, enrollment).await
}

/// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
fn yaml_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// Writes `bytes` to `path` with mode 0600 from the start: a temporary file beside it, synced,
/// then renamed over `path`, so a crash leaves the old file or the new one, never half of one.
pub fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let failed = |source| Error::WriteFile {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let bytes = Zeroizing::new(bytes.to_vec());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(failed)?;
    // A file left by an older run may have had other permissions.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(failed)?;
    file.write_all(&bytes).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}
