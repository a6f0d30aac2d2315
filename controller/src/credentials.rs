//! The credential pull: the secrets of the site's Credentials, fetched with the appliance's
//! token from `GET .../namespaces/{site}/credentials/{name}/data` and held in memory only
//! (`CredentialData` keeps its values in `Zeroizing` strings, wiped when dropped, and its
//! `Debug` shows keys only). A secret is pulled again when its Credential's resourceVersion in
//! the desired state moves, and dropped when the Credential is gone.
//!
//! The pull is behind [`Pull`]: [`HttpCentral`] in production, a map in tests.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use osc_proto::credentials::CredentialData;

use crate::Error;
use crate::cache::Snapshot;
use crate::central::HttpCentral;

/// Fetches one Credential's secret.
pub trait Pull: Send + Sync {
    /// The data of Credential `name` in `site`.
    fn pull(
        &self,
        site: &str,
        name: &str,
    ) -> impl Future<Output = Result<CredentialData, Error>> + Send;
}

impl Pull for HttpCentral {
    async fn pull(&self, site: &str, name: &str) -> Result<CredentialData, Error> {
        let path =
            format!("/apis/osiriscare.net/v1alpha1/namespaces/{site}/credentials/{name}/data");
        let body = zeroize::Zeroizing::new(self.get(&path, &[], None).await?);
        // serde's message may quote a value it did not expect: only its position is kept.
        serde_json::from_slice(&body).map_err(|e| Error::Central {
            url: path.clone(),
            message: format!(
                "the answer is not a CredentialData document (line {}, column {})",
                e.line(),
                e.column()
            ),
        })
    }
}

/// The secrets held, by Credential name.
#[derive(Debug, Default)]
pub struct Credentials {
    /// Each secret with the resourceVersion it was read at.
    held: Mutex<BTreeMap<String, Arc<CredentialData>>>,
}

impl Credentials {
    /// The secret of Credential `name`, if held.
    pub fn get(&self, name: &str) -> Option<Arc<CredentialData>> {
        self.lock().get(name).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<CredentialData>>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Brings the held secrets in line with `snapshot`: drops those whose Credential is gone,
    /// pulls those not held or held at another resourceVersion. Returns the pulls that failed
    /// (each is tried again on the next refresh; the old secret, if any, stays until then).
    pub async fn refresh(
        &self,
        source: &impl Pull,
        site: &str,
        snapshot: &Snapshot,
    ) -> Vec<(String, Error)> {
        self.lock()
            .retain(|name, _| snapshot.credentials.contains_key(name));
        let mut failed = vec![];
        for (name, credential) in &snapshot.credentials {
            let current = credential.metadata.resource_version.as_deref();
            let held = self.get(name);
            if held.is_some_and(|h| Some(h.metadata.resource_version.as_str()) == current) {
                continue;
            }
            match source.pull(site, name).await {
                Ok(data) => {
                    tracing::info!(
                        credential = name,
                        version = data.metadata.resource_version,
                        "credential pulled"
                    );
                    self.lock().insert(name.clone(), Arc::new(data));
                }
                Err(error) => failed.push((name.clone(), error)),
            }
        }
        failed
    }
}

/// Credentials in memory, for tests: each pull answers the data set for the name, or 404.
#[derive(Debug, Default)]
pub struct MapPull {
    /// The data by name.
    pub data: Mutex<BTreeMap<String, CredentialData>>,
    /// Pulls so far.
    pub pulls: Mutex<Vec<String>>,
}

impl Pull for MapPull {
    async fn pull(&self, _site: &str, name: &str) -> Result<CredentialData, Error> {
        self.pulls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.to_owned());
        let data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        data.get(name).cloned().ok_or_else(|| Error::Central {
            url: format!("credentials/{name}/data"),
            message: "404 Not Found".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use osc_proto::credentials::CredentialDataMeta;
    use serde_json::json;
    use zeroize::Zeroizing;

    use super::*;

    fn data(name: &str, version: &str, password: &str) -> CredentialData {
        CredentialData {
            api_version: "osiriscare.net/v1alpha1".into(),
            kind: "CredentialData".into(),
            metadata: CredentialDataMeta {
                name: name.into(),
                namespace: "smile".into(),
                resource_version: version.into(),
            },
            type_: "password".into(),
            username: "admin".into(),
            data: BTreeMap::from([("password".into(), Zeroizing::new(password.into()))]),
        }
    }

    fn snapshot(credentials: &[(&str, &str)]) -> Snapshot {
        let mut s = Snapshot::default();
        for (name, version) in credentials {
            let object = json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": "Credential",
                "metadata": {"name": name, "namespace": "smile", "resourceVersion": version},
                "spec": {"type": "password", "username": "admin"}});
            s.credentials
                .insert((*name).to_owned(), serde_json::from_value(object).unwrap());
        }
        s
    }

    #[tokio::test]
    async fn secrets_are_pulled_once_per_version_and_dropped_with_their_credential() {
        let central = MapPull::default();
        central
            .data
            .lock()
            .unwrap()
            .insert("hook".into(), data("hook", "4", "s3cret"));
        let held = Credentials::default();
        assert!(
            held.refresh(&central, "smile", &snapshot(&[("hook", "4")]))
                .await
                .is_empty()
        );
        assert!(
            held.refresh(&central, "smile", &snapshot(&[("hook", "4")]))
                .await
                .is_empty()
        );
        assert_eq!(
            *central.pulls.lock().unwrap(),
            ["hook"],
            "the same version is not pulled again"
        );
        assert_eq!(&*held.get("hook").unwrap().data["password"], "s3cret");

        // A new version is pulled again.
        central
            .data
            .lock()
            .unwrap()
            .insert("hook".into(), data("hook", "9", "n3w"));
        held.refresh(&central, "smile", &snapshot(&[("hook", "9")]))
            .await;
        assert_eq!(&*held.get("hook").unwrap().data["password"], "n3w");
        assert!(!format!("{:?}", held.get("hook").unwrap()).contains("n3w"));

        // A failed pull is reported, and the Credential's removal drops the secret.
        let failed = held
            .refresh(&central, "smile", &snapshot(&[("hook", "9"), ("ssh", "1")]))
            .await;
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, "ssh");
        held.refresh(&central, "smile", &snapshot(&[])).await;
        assert!(held.get("hook").is_none());
    }
}
