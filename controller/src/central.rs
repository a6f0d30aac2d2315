//! Talking to Central Command: the [`Central`] seam, its HTTP implementation [`HttpCentral`]
//! (the CA pinned, the bearer token from its file) and the in-memory [`FakeCentral`] for tests.
//!
//! The controller only ever calls out (pull-only): this module opens no socket that listens.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use osc_proto::api::Status;
use osc_proto::auth::{EnrollRequest, EnrollResponse};
use osc_proto::chain::{ChainHead, Ingest, decide};
use osc_proto::dsse::{Envelope, PublicKey};
use osc_proto::evidence::{self, Sha256Digest};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::Error;
use crate::config::SecretString;

/// How central (or any receiver) answered a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Stored, or already stored with the same bytes: mark it delivered.
    Accepted,
    /// Central needs evidence from `expected` first (409 with cause `expectedSeq`).
    Gap {
        /// The seq to resend from.
        expected: u64,
    },
    /// Not delivered; try again later. The reason is for the log.
    Retry(String),
    /// Never deliverable and safe to drop (a status patch of an object that no longer exists).
    Obsolete(String),
}

/// The object a status patch is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusTarget {
    /// A Host of the site.
    Host,
    /// The appliance's own Appliance object.
    Appliance,
}

/// A merge patch of an object's `status`, as the outbox stores it (JSON of this struct).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusPatch {
    /// Which kind of object.
    pub target: StatusTarget,
    /// Its name in the site.
    pub name: String,
    /// The merge patch, e.g. `{"status": {"results": {...}}}`.
    pub patch: serde_json::Value,
}

/// What the controller asks of central.
pub trait Central: Send + Sync {
    /// `POST /osc/v1/enroll` (no bearer token).
    fn enroll(
        &self,
        request: &EnrollRequest,
    ) -> impl Future<Output = Result<EnrollResponse, Error>> + Send;

    /// `POST /osc/v1/evidence` with one envelope's JSON.
    fn post_evidence(&self, envelope: &[u8]) -> impl Future<Output = Answer> + Send;

    /// `PATCH .../namespaces/{site}/{hosts|appliances}/{name}/status` (merge patch).
    fn patch_status(&self, site: &str, patch: &StatusPatch) -> impl Future<Output = Answer> + Send;
}

/// Central over HTTPS, trusting only the pinned CA.
#[derive(Clone, Debug)]
pub struct HttpCentral {
    /// Central's base URL.
    base: Url,
    /// The client, with the CA pinned and no system roots.
    client: reqwest::Client,
    /// The appliance's bearer token; `None` before enrollment.
    token: Option<SecretString>,
}

impl HttpCentral {
    /// A client of central at `base` that trusts only the CA in `ca_pem`.
    pub fn new(base: Url, ca_pem: &[u8], token: Option<SecretString>) -> Result<Self, Error> {
        let problem = |message: String| Error::Central {
            url: base.to_string(),
            message,
        };
        let ca = reqwest::Certificate::from_pem(ca_pem)
            .map_err(|e| problem(format!("the pinned CA is not a PEM certificate: {e}")))?;
        let client = reqwest::Client::builder()
            .add_root_certificate(ca)
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| problem(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            base,
            client,
            token,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.as_str().trim_end_matches('/'), path)
    }

    /// `GET path?query` answered with success, as a response still to read (a watch streams);
    /// `timeout` replaces the client's 60 s for the whole exchange.
    pub(crate) async fn open(
        &self,
        path: &str,
        query: &[(&str, String)],
        timeout: Option<std::time::Duration>,
    ) -> Result<reqwest::Response, Error> {
        let mut request = self.request(reqwest::Method::GET, path).query(query);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let failed = |message: String| Error::Central {
            url: self.url(path),
            message,
        };
        let response = request
            .send()
            .await
            .map_err(|e| failed(format!("cannot reach central: {e}")))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let (code, body) = read(response).await;
        Err(failed(explain(code, &body)))
    }

    /// `GET path?query`: the body of a success.
    pub(crate) async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        timeout: Option<std::time::Duration>,
    ) -> Result<Vec<u8>, Error> {
        let response = self.open(path, query, timeout).await?;
        response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| Error::Central {
                url: self.url(path),
                message: format!("the answer broke off: {e}"),
            })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match &self.token {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        }
    }
}

/// Reads a response: the status code and the body's `Status` message, if central sent one.
async fn read(response: reqwest::Response) -> (StatusCode, Vec<u8>) {
    let code = response.status();
    let body = response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    (code, body)
}

/// Central's explanation in a `Status` body, else the code.
fn explain(code: StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<Status>(body) {
        Ok(status) => format!("{code}: {}", status.message),
        Err(_) => code.to_string(),
    }
}

impl Central for HttpCentral {
    async fn enroll(&self, request: &EnrollRequest) -> Result<EnrollResponse, Error> {
        let url = self.url("/osc/v1/enroll");
        let failed = |message: String| Error::Central {
            url: url.clone(),
            message,
        };
        let body = serde_json::to_vec(request).expect("an enrollment request serializes");
        let response = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| failed(format!("cannot reach central: {e}")))?;
        let (code, body) = read(response).await;
        if !code.is_success() {
            return Err(failed(explain(code, &body)));
        }
        serde_json::from_slice(&body)
            .map_err(|e| failed(format!("the answer is not an enrollment response: {e}")))
    }

    async fn post_evidence(&self, envelope: &[u8]) -> Answer {
        let sent = self
            .request(reqwest::Method::POST, "/osc/v1/evidence")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(envelope.to_vec())
            .send()
            .await;
        let (code, body) = match sent {
            Ok(response) => read(response).await,
            Err(e) => return Answer::Retry(format!("cannot reach central: {e}")),
        };
        if code.is_success() {
            return Answer::Accepted;
        }
        let expected = serde_json::from_slice::<Status>(&body).ok().and_then(|s| {
            s.details?
                .causes
                .iter()
                .find(|c| c.field == "expectedSeq")
                .and_then(|c| c.message.trim().parse().ok())
        });
        match (code, expected) {
            (StatusCode::CONFLICT, Some(expected)) => Answer::Gap { expected },
            _ => Answer::Retry(explain(code, &body)),
        }
    }

    async fn patch_status(&self, site: &str, patch: &StatusPatch) -> Answer {
        let plural = match patch.target {
            StatusTarget::Host => "hosts",
            StatusTarget::Appliance => "appliances",
        };
        let path = format!(
            "/apis/osiriscare.net/v1alpha1/namespaces/{site}/{plural}/{}/status",
            patch.name
        );
        let sent = self
            .request(reqwest::Method::PATCH, &path)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/merge-patch+json",
            )
            .body(serde_json::to_vec(&patch.patch).expect("a JSON value serializes"))
            .send()
            .await;
        let (code, body) = match sent {
            Ok(response) => read(response).await,
            Err(e) => return Answer::Retry(format!("cannot reach central: {e}")),
        };
        match code {
            c if c.is_success() => Answer::Accepted,
            StatusCode::NOT_FOUND => Answer::Obsolete(explain(code, &body)),
            _ => Answer::Retry(explain(code, &body)),
        }
    }
}

/// Central in memory, for tests: verifies and chains evidence as central does (with proto's
/// `decide`), answers duplicates as accepted, records status patches, and can be told to fail.
#[derive(Debug)]
pub struct FakeCentral {
    /// The appliance and its enrolled key.
    appliance: (String, PublicKey),
    /// Everything else, under one lock.
    state: Mutex<Fake>,
}

/// The state of a [`FakeCentral`].
#[derive(Debug, Default)]
struct Fake {
    /// Stored payload hashes and envelopes by seq.
    chain: BTreeMap<u64, (Sha256Digest, Envelope)>,
    /// Status patches received, in order.
    patches: Vec<StatusPatch>,
    /// Objects that do not exist (patches to them are 404).
    missing: Vec<String>,
    /// Deliveries to refuse before accepting again.
    outage: u32,
    /// Posts that changed nothing (duplicates).
    duplicates: u32,
}

impl FakeCentral {
    /// A central that knows `appliance` by its enrolled `key`.
    pub fn new(appliance: &str, key: PublicKey) -> Self {
        Self {
            appliance: (appliance.to_owned(), key),
            state: Mutex::new(Fake::default()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Fake) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Refuses the next `n` deliveries as unreachable.
    pub fn fail_next(&self, n: u32) {
        self.with(|f| f.outage = n);
    }

    /// Forgets evidence from `seq` on (a central restored from an older backup).
    pub fn lose_from(&self, seq: u64) {
        self.with(|f| f.chain.retain(|s, _| *s < seq));
    }

    /// Makes patches to object `name` answer 404.
    pub fn remove_object(&self, name: &str) {
        self.with(|f| f.missing.push(name.to_owned()));
    }

    /// The stored envelopes in seq order.
    pub fn evidence(&self) -> Vec<Envelope> {
        self.with(|f| f.chain.values().map(|(_, e)| e.clone()).collect())
    }

    /// Posts answered as duplicates.
    pub fn duplicates(&self) -> u32 {
        self.with(|f| f.duplicates)
    }

    /// The status patches received, in order.
    pub fn patches(&self) -> Vec<StatusPatch> {
        self.with(|f| f.patches.clone())
    }

    fn outage(f: &mut Fake) -> Option<Answer> {
        (f.outage > 0).then(|| {
            f.outage -= 1;
            Answer::Retry("central is down (FakeCentral::fail_next)".to_owned())
        })
    }
}

impl Central for FakeCentral {
    async fn enroll(&self, _request: &EnrollRequest) -> Result<EnrollResponse, Error> {
        Err(Error::Central {
            url: "fake".to_owned(),
            message: "FakeCentral does not enroll; tests enroll against a real central".to_owned(),
        })
    }

    async fn post_evidence(&self, body: &[u8]) -> Answer {
        let (appliance, key) = &self.appliance;
        self.with(|f| {
            if let Some(answer) = Self::outage(f) {
                return answer;
            }
            let opened = serde_json::from_slice::<Envelope>(body)
                .map_err(|e| e.to_string())
                .and_then(|e| {
                    evidence::open(&e, appliance, key)
                        .map(|v| (v, e))
                        .map_err(|e| e.to_string())
                });
            let (verified, envelope) = match opened {
                Ok(opened) => opened,
                Err(e) => return Answer::Retry(format!("403: {e}")),
            };
            let head = f.chain.last_key_value().map(|(seq, (hash, _))| ChainHead {
                seq: *seq,
                payload_hash: *hash,
            });
            let link = verified.link();
            let stored = f.chain.get(&link.seq).map(|(hash, _)| *hash);
            match decide(head.as_ref(), stored.as_ref(), &link) {
                Ingest::Append => {
                    f.chain.insert(link.seq, (link.payload_hash, envelope));
                    Answer::Accepted
                }
                Ingest::Duplicate => {
                    f.duplicates += 1;
                    Answer::Accepted
                }
                Ingest::Gap { expected } => Answer::Gap { expected },
                other => Answer::Retry(format!("409: {other:?}")),
            }
        })
    }

    async fn patch_status(&self, _site: &str, patch: &StatusPatch) -> Answer {
        self.with(|f| {
            if let Some(answer) = Self::outage(f) {
                return answer;
            }
            if f.missing.contains(&patch.name) {
                return Answer::Obsolete(format!("404: {} not found", patch.name));
            }
            f.patches.push(patch.clone());
            Answer::Accepted
        })
    }
}
