//! Bearer tokens: issuing, checking, revoking, and the bootstrap admin token.
//!
//! A token reads `osc_<id>.<secret>`: `id` is 16 hex digits, public (it names the token in the
//! API and the audit log), and `secret` is 256 random bits in URL-safe base64. Only the
//! SHA-256 of the secret is stored; a token is checked by looking its id up and comparing the
//! hashes in constant time. Enrollment tokens have the same shape with the prefix `osce_`.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::{Principal, Role};
use crate::store::{Store, StoreError, TokenRow};

/// The file in the data folder that receives the bootstrap admin token.
pub const BOOTSTRAP_TOKEN_FILE: &str = "admin.token";

/// How long a checked token is trusted without asking the store again. A revocation through
/// this replica takes effect at once; one through another replica within this time.
const CACHE_TTL: Duration = Duration::from_secs(10);

/// The prefix of bearer tokens.
const BEARER_PREFIX: &str = "osc_";

/// The prefix of enrollment tokens.
pub(crate) const ENROLLMENT_PREFIX: &str = "osce_";

/// What a new token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    /// A name people recognise (`alice`, `monitoring`); appliances get `<site>/<appliance>`.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it stops working; `None` for never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token just issued: the only time its secret is seen.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// Its public id.
    pub id: String,
    /// The whole token, to send as `Authorization: Bearer <bearer>`.
    pub bearer: String,
}

/// Never prints the secret.
impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a bearer token was not accepted. The client is told only that it is not valid; the
/// reason goes to the log (never the secret).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not of the form `osc_<id>.<secret>`.
    #[error("the token is not an OsirisCare token (osc_<id>.<secret>)")]
    Malformed,
    /// No token has this id, or its secret does not match.
    #[error("no token {id} with this secret")]
    Unknown {
        /// The id the token names.
        id: String,
    },
    /// Revoked.
    #[error("token {id} was revoked")]
    Revoked {
        /// Its id.
        id: String,
    },
    /// Past its expiry.
    #[error("token {id} expired at {at}")]
    Expired {
        /// Its id.
        id: String,
        /// When it expired.
        at: DateTime<Utc>,
    },
    /// Its stored role does not decode (a newer server wrote it, or the row was edited).
    #[error("token {id} has an unreadable role: {source}")]
    BadRole {
        /// Its id.
        id: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Issues and checks tokens. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct Auth {
    /// Where tokens are stored.
    store: Store,
    /// Tokens checked recently, by id.
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

/// A token as the cache keeps it.
#[derive(Clone)]
struct Cached {
    /// The stored hash of its secret.
    secret_sha256: [u8; 32],
    /// Who it is.
    principal: Principal,
    /// Its expiry.
    expires_at: Option<DateTime<Utc>>,
    /// When it was read from the store.
    read_at: Instant,
}

impl Auth {
    /// Tokens kept in `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: Arc::default(),
        }
    }

    /// Issues a token created by the system (the bootstrap token, an enrollment).
    pub async fn issue(&self, spec: TokenSpec) -> Result<IssuedToken, StoreError> {
        self.issue_by(spec, "system").await
    }

    /// Issues a token on behalf of `created_by` and returns it; only its hash is stored.
    pub async fn issue_by(
        &self,
        spec: TokenSpec,
        created_by: &str,
    ) -> Result<IssuedToken, StoreError> {
        let (id, secret) = new_secret();
        let row = TokenRow {
            id: id.clone(),
            secret_sha256: hex::encode(sha256(secret.as_bytes())),
            name: spec.name,
            role: serde_json::to_string(&spec.role).expect("a role serializes"),
            created_by: created_by.to_owned(),
            created_at_ms: Utc::now().timestamp_millis(),
            expires_at_ms: spec.expires_at.map(|at| at.timestamp_millis()),
            revoked_at_ms: None,
        };
        self.store.insert_token(&row).await?;
        Ok(IssuedToken {
            bearer: format!("{BEARER_PREFIX}{id}.{}", secret.as_str()),
            id,
        })
    }

    /// The principal a bearer token stands for, if it is valid at `now`.
    pub async fn authenticate(
        &self,
        bearer: &str,
        now: DateTime<Utc>,
    ) -> Result<Principal, TokenError> {
        let (id, secret) = split(bearer, BEARER_PREFIX).ok_or(TokenError::Malformed)?;
        let cached = self.cached(id);
        let entry = match cached {
            Some(entry) => entry,
            None => {
                let row = self
                    .store
                    .token(id)
                    .await?
                    .ok_or_else(|| TokenError::Unknown { id: id.to_owned() })?;
                if row.revoked_at_ms.is_some() {
                    return Err(TokenError::Revoked { id: id.to_owned() });
                }
                let entry = cached_entry(&row)?;
                self.cache
                    .lock()
                    .expect("the token cache lock")
                    .insert(id.to_owned(), entry.clone());
                entry
            }
        };
        if !bool::from(sha256(secret.as_bytes()).ct_eq(&entry.secret_sha256)) {
            return Err(TokenError::Unknown { id: id.to_owned() });
        }
        if let Some(at) = entry.expires_at.filter(|at| *at <= now) {
            return Err(TokenError::Expired {
                id: id.to_owned(),
                at,
            });
        }
        Ok(entry.principal)
    }

    /// Revokes the token `id` and forgets it at once; `None` when there is no such token.
    pub async fn revoke(&self, id: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = self
            .store
            .revoke_token(id, Utc::now().timestamp_millis())
            .await?;
        self.cache.lock().expect("the token cache lock").remove(id);
        Ok(row)
    }

    /// Revokes every unrevoked token of exactly this role (an appliance's, when it is
    /// re-enrolled with a new key).
    pub async fn revoke_role(&self, role: &Role) -> Result<(), StoreError> {
        for row in self.store.tokens().await? {
            let same = serde_json::from_str::<Role>(&row.role).is_ok_and(|stored| &stored == role);
            if same && row.revoked_at_ms.is_none() {
                self.revoke(&row.id).await?;
            }
        }
        Ok(())
    }

    /// On a store without any token, issues an admin token and writes it to
    /// `<data_dir>/admin.token` (mode 0600, created new); returns that path. With tokens
    /// already stored, does nothing and returns `None`.
    pub async fn bootstrap(&self, data_dir: &Path) -> Result<Option<PathBuf>, BootstrapError> {
        if !self.store.tokens().await?.is_empty() {
            return Ok(None);
        }
        let path = data_dir.join(BOOTSTRAP_TOKEN_FILE);
        let token = self
            .issue(TokenSpec {
                name: "bootstrap-admin".to_owned(),
                role: Role::Admin,
                expires_at: None,
            })
            .await?;
        let failed = |source| BootstrapError::Write {
            path: path.clone(),
            source,
        };
        // A stale file from an emptied database is replaced, never appended to.
        let _ = std::fs::remove_file(&path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(failed)?;
        file.write_all(format!("{}\n", token.bearer).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(failed)?;
        Ok(Some(path))
    }

    /// The cache entry for `id` if it is fresh.
    fn cached(&self, id: &str) -> Option<Cached> {
        let mut cache = self.cache.lock().expect("the token cache lock");
        match cache.get(id) {
            Some(entry) if entry.read_at.elapsed() < CACHE_TTL => Some(entry.clone()),
            Some(_) => {
                cache.remove(id);
                None
            }
            None => None,
        }
    }
}

/// Why the bootstrap token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The store failed.
    #[error("cannot store the bootstrap admin token: {0}")]
    Store(#[from] StoreError),
    /// The file could not be written.
    #[error("cannot write the bootstrap admin token to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A new random (id, secret) pair: 64 and 256 bits.
pub(crate) fn new_secret() -> (String, Zeroizing<String>) {
    let mut id = [0_u8; 8];
    let mut secret = Zeroizing::new([0_u8; 32]);
    getrandom::fill(&mut id).expect("the operating system's random numbers");
    getrandom::fill(secret.as_mut()).expect("the operating system's random numbers");
    (
        hex::encode(id),
        Zeroizing::new(URL_SAFE_NO_PAD.encode(secret.as_ref())),
    )
}

/// Splits `<prefix><id>.<secret>` into id and secret.
pub(crate) fn split<'a>(token: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let (id, secret) = token.strip_prefix(prefix)?.split_once('.')?;
    let hex_id = id.len() == 16 && id.bytes().all(|byte| byte.is_ascii_hexdigit());
    (hex_id && !secret.is_empty()).then_some((id, secret))
}

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Whether `secret` hashes to the stored lower-case hex `expected`, compared in constant time.
pub(crate) fn secret_matches(secret: &str, expected: &str) -> bool {
    let mut stored = [0_u8; 32];
    hex::decode_to_slice(expected, &mut stored).is_ok()
        && bool::from(sha256(secret.as_bytes()).ct_eq(&stored))
}

/// The cache entry of a stored, unrevoked token.
fn cached_entry(row: &TokenRow) -> Result<Cached, TokenError> {
    let role = serde_json::from_str(&row.role).map_err(|source| TokenError::BadRole {
        id: row.id.clone(),
        source,
    })?;
    let mut secret_sha256 = [0_u8; 32];
    hex::decode_to_slice(&row.secret_sha256, &mut secret_sha256)
        .map_err(|_| TokenError::Unknown { id: row.id.clone() })?;
    Ok(Cached {
        secret_sha256,
        principal: Principal {
            name: row.name.clone(),
            token_id: row.id.clone(),
            role,
        },
        expires_at: row
            .expires_at_ms
            .and_then(DateTime::<Utc>::from_timestamp_millis),
        read_at: Instant::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_reads_only_well_formed_tokens() {
        assert_eq!(
            split("osc_0123456789abcdef.c2VjcmV0", BEARER_PREFIX),
            Some(("0123456789abcdef", "c2VjcmV0"))
        );
        for bad in [
            "",
            "osc_",
            "osc_0123456789abcdef",
            "osc_0123456789abcdef.",
            "osc_0123.secret",
            "osc_0123456789abcdeg.secret",
            "osce_0123456789abcdef.secret",
            "Bearer osc_0123456789abcdef.secret",
        ] {
            assert_eq!(split(bad, BEARER_PREFIX), None, "{bad:?}");
        }
    }

    #[test]
    fn secrets_are_fresh_and_match_their_hash_only() {
        let (id1, secret1) = new_secret();
        let (id2, secret2) = new_secret();
        assert_ne!(id1, id2);
        assert_ne!(secret1, secret2);
        assert_eq!(secret1.len(), 43, "256 bits in unpadded base64");
        let stored = hex::encode(sha256(secret1.as_bytes()));
        assert!(secret_matches(&secret1, &stored));
        assert!(!secret_matches(&secret2, &stored));
        assert!(!secret_matches(&secret1, "not hex"));
    }

    #[test]
    fn an_issued_token_never_prints_its_secret() {
        let token = IssuedToken {
            id: "0123456789abcdef".to_owned(),
            bearer: "osc_0123456789abcdef.very-secret".to_owned(),
        };
        assert!(!format!("{token:?}").contains("very-secret"));
    }
}
