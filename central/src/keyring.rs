//! Master keys, and the sealing of credential secrets under them.
//!
//! A Credential's secret values are stored sealed: each value is encrypted with
//! XChaCha20-Poly1305 under a per-site key that HKDF-SHA256 derives from a master key, with a
//! random 24-byte nonce (safe to draw at random: collisions are negligible at any volume) and
//! associated data that binds the ciphertext to its place (site, credential name, data key,
//! master key id). A sealed value moved to another credential, site or data key does not open.
//!
//! The stored form of one value is text, so that the stored object keeps its shape (and
//! validation still sees which data keys are set):
//!
//! ```text
//! osc-sealed:v1:<key id>:<base64url, no padding, of nonce ‖ ciphertext ‖ tag>
//! ```
//!
//! The key id is a fingerprint of the master key (16 hex digits of a SHA-256 over it), so a
//! sealed value names the key that opens it and the same key has the same id whether it comes
//! from the key file or from the environment. It reveals nothing usable about the key.
//!
//! The master keys live outside the database: in a key file (created on first start, mode 0600,
//! rewritten atomically by a rotation) or in the environment ([`KeySource`]). The first key of
//! the [`KeySet`] seals; the others only open, while a rotation moves values off them.
//!
//! The pure part (derive, seal, open, the key file's text) is separate from the file handling
//! and the shared [`Keyring`] at the end of the module. Plaintext and key material are kept in
//! [`Zeroizing`] buffers and never appear in `Debug` output or errors.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::{Digest as _, Sha256};
use tokio::sync::{Mutex, OwnedMutexGuard, RwLock, RwLockReadGuard};
use zeroize::Zeroizing;

/// The length of a master key, in bytes.
pub const KEY_LEN: usize = 32;

/// The file name of the key file inside the data folder, when `--master-key-file` is not given.
pub const KEY_FILE: &str = "master.key";

/// What every sealed value starts with: the format and its version.
pub const SEALED_PREFIX: &str = "osc-sealed:v1:";

/// The length of an XChaCha20-Poly1305 nonce.
const NONCE_LEN: usize = 24;

/// Why keys could not be loaded or stored, or a value could not be sealed or opened. No variant
/// carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The key file could not be read.
    #[error(
        "cannot read the master key file {path}: {source}; check that it exists and that this user may read it"
    )]
    ReadFile {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key file (or its temporary copy) could not be written.
    #[error(
        "cannot write the master key file {path}: {source}; check the folder's owner and permissions"
    )]
    WriteFile {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of the key file is not a key.
    #[error(
        "master key file {path}, line {line}: {why}; each non-comment line must be the base64 of {KEY_LEN} random bytes"
    )]
    BadKeyFile {
        /// The key file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong (never the line's text).
        why: &'static str,
    },
    /// The key file holds no key.
    #[error(
        "master key file {path} holds no key; restore it from a backup, or remove it to have a new key created (values sealed under the old key are then lost)"
    )]
    EmptyKeyFile {
        /// The key file.
        path: PathBuf,
    },
    /// A key given in the configuration is not a key.
    #[error(
        "{origin}: {why}; give the base64 of {KEY_LEN} random bytes, e.g. from `head -c {KEY_LEN} /dev/urandom | base64`"
    )]
    BadKey {
        /// Where the key came from (an option or variable name).
        origin: String,
        /// What is wrong (never the text given).
        why: &'static str,
    },
    /// The operating system gave no randomness.
    #[error("cannot draw random bytes for a key or nonce: {0}")]
    Random(getrandom::Error),
    /// A stored value is not in the sealed form.
    #[error("the stored value is not a sealed secret (expected {SEALED_PREFIX}<key id>:<data>)")]
    Malformed,
    /// A stored value is sealed under a master key this server does not have.
    #[error(
        "the stored value is sealed under master key {key_id}, which this server does not have; restore that key as a previous key"
    )]
    UnknownKey {
        /// The key id the value names.
        key_id: KeyId,
    },
    /// A stored value does not open: it was altered, or moved from another credential.
    #[error(
        "the stored value sealed under master key {key_id} does not open here: it was altered or moved from another credential"
    )]
    Undecryptable {
        /// The key id the value names.
        key_id: KeyId,
    },
    /// The keys come from the environment, so the server cannot rotate them itself.
    #[error(
        "the master keys come from the configuration (--master-key), which the server cannot rewrite; rotate by restarting with the new key as --master-key and the old one in --previous-master-keys"
    )]
    NotRotatable,
    /// Another rotation is running.
    #[error("a master key rotation is already running; wait for it to finish")]
    RotationRunning,
}

/// A master key's public name: 16 lowercase hex digits of SHA-256 over a label and the key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// One master key. Its bytes are wiped when it is dropped and never shown by `Debug`.
#[derive(Clone)]
pub struct MasterKey {
    /// The key material.
    bytes: Zeroizing<[u8; KEY_LEN]>,
    /// Its fingerprint.
    id: KeyId,
}

impl MasterKey {
    /// A new random key.
    pub fn generate() -> Result<Self, KeyringError> {
        let mut bytes = Zeroizing::new([0; KEY_LEN]);
        getrandom::fill(bytes.as_mut()).map_err(KeyringError::Random)?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key whose base64 (standard alphabet, padding optional, surrounding whitespace
    /// ignored) is `text`; the error says what is wrong without repeating the text.
    pub fn from_base64(text: &str) -> Result<Self, &'static str> {
        let text = text.trim().trim_end_matches('=');
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(text)
                .map_err(|_| "not valid base64")?,
        );
        let bytes: [u8; KEY_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| "not 32 bytes long")?;
        Ok(Self::from_bytes(Zeroizing::new(bytes)))
    }

    /// The key as standard base64, for the key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.bytes.as_ref()))
    }

    /// The key's id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// Wraps key bytes and computes their id.
    fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let digest = Sha256::new()
            .chain_update(b"osiriscare.net master key id v1\0")
            .chain_update(bytes.as_ref())
            .finalize();
        let id = KeyId(hex::encode(&digest[..8]));
        Self { bytes, id }
    }
}

/// Keys are equal when their ids are: the id is a SHA-256 fingerprint of the bytes.
impl PartialEq for MasterKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

/// Where a sealed value belongs: what its associated data binds it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    /// The site (the Credential's namespace); also selects the derived key.
    pub site: &'a str,
    /// The Credential's name.
    pub credential: &'a str,
    /// The key in `spec.data` (`password`, `privateKey`, …).
    pub field: &'a str,
}

impl Binding<'_> {
    /// The associated data for a value sealed under `key_id`. NUL separates the parts: it cannot
    /// occur in a site, a name or a data key, so no two bindings give the same bytes.
    fn associated_data(&self, key_id: &KeyId) -> Vec<u8> {
        [
            "osiriscare.net/v1alpha1 Credential",
            self.site,
            self.credential,
            self.field,
            key_id.as_str(),
        ]
        .join("\0")
        .into_bytes()
    }
}

/// The key that seals the secrets of `site`: HKDF-SHA256 of the master key, with the site's
/// name in the info, so that sites never share a data key.
pub fn site_key(master: &MasterKey, site: &str) -> Zeroizing<[u8; KEY_LEN]> {
    let hkdf = Hkdf::<Sha256>::new(Some(b"osiriscare.net credentials"), master.bytes.as_ref());
    let mut okm = Zeroizing::new([0; KEY_LEN]);
    let info = [b"site key v1\0".as_slice(), site.as_bytes()].concat();
    // Cannot fail: 32 bytes is far below HKDF-SHA256's 8160-byte limit.
    let _ = hkdf.expand(&info, okm.as_mut());
    okm
}

/// Seals `plaintext` for `binding` under `master` with the given nonce. Pure: callers that are
/// not tests use [`KeySet::seal`], which draws the nonce.
pub fn seal_with_nonce(
    master: &MasterKey,
    binding: &Binding<'_>,
    plaintext: &str,
    nonce: [u8; NONCE_LEN],
) -> String {
    let key = site_key(master, binding.site);
    let cipher = XChaCha20Poly1305::new(&Key::from(*key));
    let aad = binding.associated_data(master.id());
    let payload = Payload {
        msg: plaintext.as_bytes(),
        aad: &aad,
    };
    // Cannot fail: encryption only fails for messages beyond the cipher's 256 GiB limit, and a
    // request body is at most a few MiB.
    let ciphertext = cipher
        .encrypt(&XNonce::from(nonce), payload)
        .unwrap_or_default();
    let mut bytes = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(&ciphertext);
    format!(
        "{SEALED_PREFIX}{}:{}",
        master.id(),
        URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The key id a sealed value names, or `None` when `sealed` is not in the sealed form.
pub fn sealed_key_id(sealed: &str) -> Option<KeyId> {
    let (id, _) = sealed.strip_prefix(SEALED_PREFIX)?.split_once(':')?;
    let well_formed = id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    well_formed.then(|| KeyId(id.to_owned()))
}

/// The master keys in force: the first seals and opens, the others only open.
#[derive(Debug, Clone, PartialEq)]
pub struct KeySet {
    /// The key new values are sealed under.
    primary: MasterKey,
    /// Older keys, kept to open values not yet moved to the primary key.
    previous: Vec<MasterKey>,
}

impl KeySet {
    /// A key set; a previous key equal to the primary (or to another previous one) is dropped.
    pub fn new(primary: MasterKey, previous: Vec<MasterKey>) -> Self {
        let mut set = Self {
            primary,
            previous: Vec::new(),
        };
        for key in previous {
            if set.find(key.id()).is_none() {
                set.previous.push(key);
            }
        }
        set
    }

    /// The key that seals.
    pub fn primary(&self) -> &MasterKey {
        &self.primary
    }

    /// The ids of the keys that only open.
    pub fn previous_ids(&self) -> Vec<KeyId> {
        self.previous.iter().map(|key| key.id().clone()).collect()
    }

    /// Seals `plaintext` for `binding` under the primary key, with a random nonce.
    pub fn seal(&self, binding: &Binding<'_>, plaintext: &str) -> Result<String, KeyringError> {
        let mut nonce = [0; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(KeyringError::Random)?;
        Ok(seal_with_nonce(&self.primary, binding, plaintext, nonce))
    }

    /// Opens a sealed value with whichever key it names.
    pub fn open(
        &self,
        binding: &Binding<'_>,
        sealed: &str,
    ) -> Result<Zeroizing<String>, KeyringError> {
        let key_id = sealed_key_id(sealed).ok_or(KeyringError::Malformed)?;
        let master = self.find(&key_id).ok_or_else(|| KeyringError::UnknownKey {
            key_id: key_id.clone(),
        })?;
        let undecryptable = || KeyringError::Undecryptable {
            key_id: key_id.clone(),
        };
        let encoded = &sealed[SEALED_PREFIX.len() + key_id.as_str().len() + 1..];
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| KeyringError::Malformed)?;
        if bytes.len() < NONCE_LEN {
            return Err(KeyringError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| KeyringError::Malformed)?;
        let key = site_key(master, binding.site);
        let cipher = XChaCha20Poly1305::new(&Key::from(*key));
        let aad = binding.associated_data(&key_id);
        let plaintext = Zeroizing::new(
            cipher
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| undecryptable())?,
        );
        // Only this server seals, and it seals strings; anything else was tampered with.
        String::from_utf8(plaintext.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| undecryptable())
    }

    /// Whether `sealed` is sealed under the primary key (a rotation leaves such values alone).
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed_key_id(sealed).as_ref() == Some(self.primary.id())
    }

    /// The key file's text: a comment, then one key per line, primary first.
    pub fn to_file_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::from(
            "# OsirisCare Central Command master keys. Keep this file secret (mode 0600) and \
             backed up:\n# without it the stored credentials cannot be decrypted. The first key \
             seals; the\n# others only open values that a rotation has not moved yet.\n",
        ));
        for key in std::iter::once(&self.primary).chain(&self.previous) {
            text.push_str(&key.to_base64());
            text.push('\n');
        }
        text
    }

    /// Parses a key file's text (`path` is named in errors): `#` comments and blank lines are
    /// ignored, every other line is one key, the first the primary.
    pub fn from_file_text(text: &str, path: &Path) -> Result<Self, KeyringError> {
        let mut keys = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = MasterKey::from_base64(line).map_err(|why| KeyringError::BadKeyFile {
                path: path.to_owned(),
                line: index + 1,
                why,
            })?;
            keys.push(key);
        }
        let mut keys = keys.into_iter();
        let primary = keys.next().ok_or_else(|| KeyringError::EmptyKeyFile {
            path: path.to_owned(),
        })?;
        Ok(Self::new(primary, keys.collect()))
    }

    /// The key named `id`, if this set has it.
    fn find(&self, id: &KeyId) -> Option<&MasterKey> {
        std::iter::once(&self.primary)
            .chain(&self.previous)
            .find(|key| key.id() == id)
    }
}

/// Where the master keys come from, which decides how they rotate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A key file the server owns: created on first start, rewritten by a rotation.
    File(PathBuf),
    /// The configuration (an environment variable or flag): rotated by a restart with the new
    /// key as primary and the old one as previous.
    Configuration,
}

/// The master keys of a running server, shared by every request. Cheap to clone.
///
/// Writers of sealed values hold [`Keyring::keys`] (a read lock) from sealing until their write
/// is stored; [`Keyring::rotate_primary`] takes the write lock to switch the primary key, so once
/// it returns no value sealed under the old key is still on its way to the store, and a walk
/// over the stored values afterwards finds them all.
#[derive(Clone, Debug)]
pub struct Keyring {
    /// What the clones share.
    inner: Arc<Inner>,
}

/// The state the clones of a [`Keyring`] share.
#[derive(Debug)]
struct Inner {
    /// The keys in force.
    keys: RwLock<KeySet>,
    /// Where they come from.
    source: KeySource,
    /// Held for the whole of a rotation, so that two never interleave; shared so that the
    /// rotation's own task can own the guard.
    rotation: Arc<Mutex<()>>,
}

impl Keyring {
    /// A keyring over keys given in the configuration.
    pub fn from_configuration(keys: KeySet) -> Self {
        Self::assemble(keys, KeySource::Configuration)
    }

    /// Loads the key file at `path`, or creates it (mode 0600, one new key) when missing; says
    /// whether it created it. Warns when an existing file is open to other users.
    pub fn open_file(path: &Path) -> Result<(Self, bool), KeyringError> {
        let created = !path.exists();
        if created {
            let keys = KeySet::new(MasterKey::generate()?, Vec::new());
            write_key_file(path, &keys)?;
        }
        let read_failed = |source| KeyringError::ReadFile {
            path: path.to_owned(),
            source,
        };
        let mode = fs::metadata(path)
            .map_err(read_failed)?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{:o}", mode & 0o777),
                "the master key file is readable by other users; `chmod 600` it"
            );
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(read_failed)?);
        let keys = KeySet::from_file_text(&text, path)?;
        Ok((
            Self::assemble(keys, KeySource::File(path.to_owned())),
            created,
        ))
    }

    /// The keys in force, held until the guard is dropped (see the type's doc).
    pub async fn keys(&self) -> RwLockReadGuard<'_, KeySet> {
        self.inner.keys.read().await
    }

    /// Starts a rotation: fails with [`KeyringError::RotationRunning`] while another one holds
    /// the returned guard.
    pub fn start_rotation(&self) -> Result<OwnedMutexGuard<()>, KeyringError> {
        Arc::clone(&self.inner.rotation)
            .try_lock_owned()
            .map_err(|_| KeyringError::RotationRunning)
    }

    /// Makes a new random key primary, keeping the old keys to open with, and writes the key
    /// file (atomically) before the new key seals anything. Only for a key file.
    pub async fn rotate_primary(&self) -> Result<KeyId, KeyringError> {
        let KeySource::File(path) = &self.inner.source else {
            return Err(KeyringError::NotRotatable);
        };
        let mut keys = self.inner.keys.write().await;
        let old = keys.clone();
        let mut previous = vec![old.primary];
        previous.extend(old.previous);
        let rotated = KeySet::new(MasterKey::generate()?, previous);
        write_key_file(path, &rotated)?;
        let id = rotated.primary.id().clone();
        *keys = rotated;
        Ok(id)
    }

    /// Forgets every key but the primary, in the key file (atomically) and in memory, and
    /// returns their ids. Call it once no stored value is sealed under them. With keys from the
    /// configuration, nothing changes (the configuration cannot be rewritten) and nothing is
    /// returned.
    pub async fn retire_previous(&self) -> Result<Vec<KeyId>, KeyringError> {
        let KeySource::File(path) = &self.inner.source else {
            return Ok(Vec::new());
        };
        let mut keys = self.inner.keys.write().await;
        if keys.previous.is_empty() {
            return Ok(Vec::new());
        }
        let retired = keys.previous_ids();
        let kept = KeySet::new(keys.primary.clone(), Vec::new());
        write_key_file(path, &kept)?;
        *keys = kept;
        Ok(retired)
    }

    /// Puts the parts together.
    fn assemble(keys: KeySet, source: KeySource) -> Self {
        Self {
            inner: Arc::new(Inner {
                keys: RwLock::new(keys),
                source,
                rotation: Arc::new(Mutex::new(())),
            }),
        }
    }
}

/// Writes the key file through a temporary file (mode 0600) that is synced and renamed into
/// place, then syncs the folder: a crash leaves the old file or the new one, never a mix.
fn write_key_file(path: &Path, keys: &KeySet) -> Result<(), KeyringError> {
    let temporary = path.with_extension("tmp");
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |source| KeyringError::WriteFile { path, source }
    };
    if let Some(folder) = path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)
            .map_err(failed(folder))?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(failed(&temporary))?;
    file.write_all(keys.to_file_text().as_bytes())
        .map_err(failed(&temporary))?;
    file.sync_all().map_err(failed(&temporary))?;
    fs::rename(&temporary, path).map_err(failed(path))?;
    if let Some(folder) = path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        fs::File::open(folder)
            .and_then(|folder| folder.sync_all())
            .map_err(failed(folder))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes(Zeroizing::new([byte; KEY_LEN]))
    }

    const HERE: Binding<'static> = Binding {
        site: "clinic-a",
        credential: "linux-ssh",
        field: "password",
    };

    #[test]
    fn a_sealed_value_opens_only_where_it_was_sealed() {
        let keys = KeySet::new(key(1), Vec::new());
        let sealed = keys.seal(&HERE, "hunter2").unwrap();
        assert!(sealed.starts_with(SEALED_PREFIX), "{sealed}");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(keys.open(&HERE, &sealed).unwrap().as_str(), "hunter2");

        let elsewhere = [
            Binding {
                site: "clinic-b",
                ..HERE
            },
            Binding {
                credential: "other",
                ..HERE
            },
            Binding {
                field: "passphrase",
                ..HERE
            },
        ];
        for binding in elsewhere {
            assert!(
                matches!(
                    keys.open(&binding, &sealed),
                    Err(KeyringError::Undecryptable { .. })
                ),
                "{binding:?}"
            );
        }
    }

    #[test]
    fn the_nonce_is_fresh_for_every_seal() {
        let keys = KeySet::new(key(1), Vec::new());
        let first = keys.seal(&HERE, "same").unwrap();
        let second = keys.seal(&HERE, "same").unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn sealing_is_deterministic_given_the_nonce() {
        // Pins the format: a change to it must be a new version, since stored values outlive
        // the code that wrote them.
        let sealed = seal_with_nonce(&key(7), &HERE, "hunter2", [9; NONCE_LEN]);
        let keys = KeySet::new(key(7), Vec::new());
        assert_eq!(keys.open(&HERE, &sealed).unwrap().as_str(), "hunter2");
        assert_eq!(sealed_key_id(&sealed).as_ref(), Some(key(7).id()));
        assert_eq!(
            sealed,
            seal_with_nonce(&key(7), &HERE, "hunter2", [9; NONCE_LEN])
        );
    }

    #[test]
    fn a_tampered_or_truncated_value_does_not_open() {
        let keys = KeySet::new(key(1), Vec::new());
        let sealed = keys.seal(&HERE, "hunter2").unwrap();
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(matches!(
            keys.open(&HERE, &tampered),
            Err(KeyringError::Undecryptable { .. })
        ));
        for broken in [
            "hunter2",
            "osc-sealed:v1:",
            "osc-sealed:v1:zz:abc",
            &sealed[..SEALED_PREFIX.len() + 17 + 10],
        ] {
            assert!(keys.open(&HERE, broken).is_err(), "{broken}");
        }
    }

    #[test]
    fn previous_keys_open_and_only_the_primary_seals() {
        let old = KeySet::new(key(1), Vec::new());
        let sealed_old = old.seal(&HERE, "old secret").unwrap();
        let rotated = KeySet::new(key(2), vec![key(1)]);
        assert_eq!(
            rotated.open(&HERE, &sealed_old).unwrap().as_str(),
            "old secret"
        );
        assert!(!rotated.is_current(&sealed_old));
        let sealed_new = rotated.seal(&HERE, "new").unwrap();
        assert!(rotated.is_current(&sealed_new));
        let retired = KeySet::new(key(2), Vec::new());
        assert!(matches!(
            retired.open(&HERE, &sealed_old),
            Err(KeyringError::UnknownKey { key_id }) if key_id == *key(1).id()
        ));
    }

    #[test]
    fn sites_get_different_keys_from_one_master() {
        let master = key(3);
        assert_ne!(*site_key(&master, "a"), *site_key(&master, "b"));
        assert_ne!(*site_key(&master, "a"), *master.bytes);
        assert_eq!(*site_key(&master, "a"), *site_key(&master, "a"));
    }

    #[test]
    fn the_key_file_text_round_trips_and_bad_lines_are_named_without_their_text() {
        let path = Path::new("/keys/master.key");
        let keys = KeySet::new(key(4), vec![key(5)]);
        let parsed = KeySet::from_file_text(&keys.to_file_text(), path).unwrap();
        assert_eq!(parsed.primary().id(), key(4).id());
        assert_eq!(parsed.previous_ids(), vec![key(5).id().clone()]);

        let error = KeySet::from_file_text("# comment\n\nc2VjcmV0LXRvby1zaG9ydA==\n", path)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 3") && error.contains("32 bytes"),
            "{error}"
        );
        assert!(!error.contains("c2VjcmV0"), "{error}");
        assert!(matches!(
            KeySet::from_file_text("# nothing\n", path),
            Err(KeyringError::EmptyKeyFile { .. })
        ));
    }

    #[test]
    fn debug_shows_key_ids_only() {
        let keys = KeySet::new(key(6), vec![key(8)]);
        let debug = format!("{keys:?}");
        assert!(debug.contains(key(6).id().as_str()), "{debug}");
        for material in [key(6).to_base64(), key(8).to_base64()] {
            assert!(!debug.contains(material.as_str()), "{debug}");
        }
        assert!(!debug.contains("[6, 6"), "{debug}");
    }

    #[tokio::test]
    async fn a_key_file_is_created_private_and_rotated_atomically() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("keys").join(KEY_FILE);
        let (keyring, created) = Keyring::open_file(&path).unwrap();
        assert!(created);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = keyring.keys().await.primary().id().clone();

        let sealed = keyring.keys().await.seal(&HERE, "kept").unwrap();
        let second = keyring.rotate_primary().await.unwrap();
        assert_ne!(first, second);
        // The file now names both keys, new one first, and reopens so.
        let (reopened, created) = Keyring::open_file(&path).unwrap();
        assert!(!created);
        assert_eq!(reopened.keys().await.primary().id(), &second);
        assert_eq!(reopened.keys().await.previous_ids(), vec![first.clone()]);
        assert_eq!(
            reopened.keys().await.open(&HERE, &sealed).unwrap().as_str(),
            "kept"
        );
        assert!(!path.with_extension("tmp").exists());

        assert_eq!(keyring.retire_previous().await.unwrap(), vec![first]);
        let (reopened, _) = Keyring::open_file(&path).unwrap();
        assert!(reopened.keys().await.previous_ids().is_empty());
        assert_eq!(reopened.keys().await.primary().id(), &second);
    }

    #[tokio::test]
    async fn configured_keys_do_not_rotate_in_place() {
        let keyring = Keyring::from_configuration(KeySet::new(key(1), vec![key(2)]));
        assert!(matches!(
            keyring.rotate_primary().await,
            Err(KeyringError::NotRotatable)
        ));
        assert!(keyring.retire_previous().await.unwrap().is_empty());
        assert_eq!(
            keyring.keys().await.previous_ids(),
            vec![key(2).id().clone()]
        );
    }

    #[test]
    fn one_rotation_at_a_time() {
        let keyring = Keyring::from_configuration(KeySet::new(key(1), Vec::new()));
        let running = keyring.start_rotation().unwrap();
        assert!(matches!(
            keyring.start_rotation(),
            Err(KeyringError::RotationRunning)
        ));
        drop(running);
        assert!(keyring.start_rotation().is_ok());
    }
}
