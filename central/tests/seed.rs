//! `--seed` against a real SQLite store: the example GitOps repo (`desired-state/`) is created
//! whole through the API's admission, a second start keeps every object as stored, and a bad
//! manifest or an object the API would refuse stops the start before anything is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use osc_central::api::{self, AppState};
use osc_central::auth::Principal;
use osc_central::config::{Config, Options, SQLITE_FILE};
use osc_central::evidence::EvidenceLog;
use osc_central::metrics::Metrics;
use osc_central::seed::{self, SeedError, Summary};
use osc_central::server::{self, ServeError, Services};
use osc_central::store::{ListOptions, ObjectKey, Store, StoreOptions};
use osc_crds::AnyObject;
use osc_crds::load::load_path;
use osc_proto::dsse::Signer;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// The plurals of the seven kinds.
const PLURALS: [&str; 7] = [
    "sites",
    "hosts",
    "appliances",
    "credentials",
    "runbooks",
    "releases",
    "rollouts",
];

/// A copy of the example repo (so a test can change it) and a data folder, both temporary.
struct Fixture {
    /// Holds the repo copy under `repo/` and the database under `data/`.
    dir: TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = TempDir::new().unwrap();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../desired-state");
        copy_tree(&example, &dir.path().join("repo"));
        std::fs::create_dir(dir.path().join("data")).unwrap();
        Self { dir }
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn database(&self) -> PathBuf {
        self.dir.path().join("data").join(SQLITE_FILE)
    }

    /// Opens the store, as a server start does.
    async fn open(&self) -> Services {
        let store = Store::open_sqlite(&self.database(), StoreOptions::default())
            .await
            .unwrap();
        Services {
            evidence: EvidenceLog::start(store.clone(), Signer::generate().unwrap()),
            store,
            metrics: Metrics::new(),
            stopping: CancellationToken::new(),
            ca_certificate: None,
        }
    }

    /// Loads the repo and seeds it into `services`' store.
    async fn seed(&self, services: &Services) -> Result<Summary, SeedError> {
        seed::apply(services, seed::load(&[self.repo()])?).await
    }

    /// The objects of the repo, read independently of seeding.
    fn manifests(&self) -> Vec<AnyObject> {
        load_path(self.repo())
            .unwrap()
            .into_iter()
            .map(|loaded| loaded.object)
            .collect()
    }
}

#[tokio::test]
async fn seeding_the_example_repo_creates_every_object_then_keeps_them() {
    let fixture = Fixture::new();
    let manifests = fixture.manifests();
    let mut expected: BTreeMap<&str, usize> = BTreeMap::new();
    for object in &manifests {
        *expected.entry(object.kind().plural()).or_default() += 1;
    }

    let services = fixture.open().await;
    let first = fixture.seed(&services).await.unwrap();
    assert_eq!(
        first,
        Summary {
            created: manifests.len(),
            kept: 0
        }
    );
    let stored = everything(&services.store).await;
    let counts: BTreeMap<&str, usize> = PLURALS
        .iter()
        .map(|plural| {
            (
                *plural,
                stored.keys().filter(|key| key.0 == *plural).count(),
            )
        })
        .filter(|(_, count)| *count > 0)
        .collect();
    assert_eq!(counts, expected);
    assert!(
        expected["sites"] >= 2 && expected["hosts"] >= 2,
        "{expected:?}"
    );
    for object in &manifests {
        let key = (
            object.kind().plural(),
            object.namespace().unwrap_or_default().to_owned(),
            object.name().to_owned(),
        );
        let stored = &stored[&key];
        let metadata = &stored["metadata"];
        let uid = metadata["uid"].as_str().unwrap_or_default();
        assert!(
            uuid::Uuid::parse_str(uid).is_ok(),
            "{key:?} has uid {uid:?}"
        );
        assert_eq!(metadata["generation"], json!(1), "{key:?}");
        assert!(metadata["creationTimestamp"].is_string(), "{key:?}");
        // What was written in the manifest is what was stored (admission only adds to it).
        assert_eq!(stored["spec"], defaulted_spec(object), "{key:?}");
    }

    // The repo changes, then the server starts again on the same database: the store holds the
    // truth now, so nothing is rewritten and no resourceVersion moves.
    let site = fixture.repo().join("sites/smile-dental/site.yaml");
    let text = std::fs::read_to_string(&site).unwrap();
    std::fs::write(
        &site,
        text.replace(
            "displayName: Smile Dental of Naperville",
            "displayName: Renamed",
        ),
    )
    .unwrap();
    let version_before = services.store.current_rv().await.unwrap();
    drop(services);
    let services = fixture.open().await;
    let second = fixture.seed(&services).await.unwrap();
    assert_eq!(
        second,
        Summary {
            created: 0,
            kept: manifests.len()
        }
    );
    assert_eq!(services.store.current_rv().await.unwrap(), version_before);
    assert_eq!(everything(&services.store).await, stored);
    let smile = services
        .store
        .get(&ObjectKey::cluster("sites", "smile-dental"))
        .await
        .unwrap();
    assert_eq!(
        smile["spec"]["displayName"],
        json!("Smile Dental of Naperville")
    );
}

#[tokio::test]
async fn seeding_only_adds_what_is_missing() {
    let fixture = Fixture::new();
    let services = fixture.open().await;
    fixture.seed(&services).await.unwrap();
    let gone = ObjectKey::namespaced("hosts", "smile-dental", "front-desk");
    services.store.delete(&gone, None).await.unwrap();
    let version = services.store.current_rv().await.unwrap();

    let total = fixture.manifests().len();
    let summary = fixture.seed(&services).await.unwrap();
    assert_eq!(
        summary,
        Summary {
            created: 1,
            kept: total - 1
        }
    );
    let again = services.store.get(&gone).await.unwrap();
    assert_eq!(
        again["metadata"]["resourceVersion"],
        json!((version + 1).to_string())
    );
}

/// The server refuses to start: the manifest's file and line are in the error, and the store
/// (which exists from an earlier start) gets no write.
#[tokio::test]
async fn a_bad_manifest_stops_the_start_with_its_place_and_writes_nothing() {
    let fixture = Fixture::new();
    let services = fixture.open().await;
    let empty = services.store.current_rv().await.unwrap();
    drop(services);
    let broken = fixture
        .repo()
        .join("sites/smile-dental/hosts/zz-broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: osiriscare.net/v1alpha1\n\
         kind: Host\n\
         metadata:\n  \
           name: zz-broken\n  \
           namespace: smile-dental\n\
         spec:\n  \
           platform: linux\n  \
           adress: 192.168.10.99\n",
    )
    .unwrap();

    let config = Config::from_options(Options {
        data_dir: Some(fixture.dir.path().join("data")),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        insecure_http: Some(true),
        seed: Some(vec![fixture.repo()]),
        ..Options::default()
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = |services| api::app(AppState::new(services));
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        server::run(config, listener, api, std::future::pending()),
    )
    .await
    .expect("the start fails instead of serving");
    let error = result.unwrap_err();
    assert!(
        matches!(error, ServeError::Seed(SeedError::Load { .. })),
        "{error:?}"
    );
    let message = chain(&error);
    assert!(
        message.contains(&format!("{}:8", broken.display())),
        "{message}"
    );
    assert!(message.contains("adress"), "{message}");
    assert!(message.contains("nothing was written"), "{message}");

    let services = fixture.open().await;
    assert_eq!(services.store.current_rv().await.unwrap(), empty);
}

/// Every missing object is checked by admission before the first write: here smile-dental's
/// Site is being deleted, so its objects are refused, and riverside's Site, which comes first
/// and is fine, is not created either.
#[tokio::test]
async fn objects_the_api_refuses_stop_the_seed_before_any_write() {
    let fixture = Fixture::new();
    let services = fixture.open().await;
    let state = AppState::new(services.clone());
    let site = fixture
        .manifests()
        .into_iter()
        .find(|object| object.name() == "smile-dental")
        .unwrap();
    let mut held = site.to_json();
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    let held = AnyObject::from_json(held).unwrap();
    let mut stored = api::create_object(&state, &Principal::system(), &held, false)
        .await
        .unwrap();
    stored["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    let key = ObjectKey::cluster("sites", "smile-dental");
    services.store.update(&key, stored, None).await.unwrap();
    let version = services.store.current_rv().await.unwrap();

    let error = fixture.seed(&services).await.unwrap_err();
    let SeedError::Refused { refusals, .. } = &error else {
        panic!("{error:?}");
    };
    let smile_objects = fixture
        .manifests()
        .iter()
        .filter(|object| object.namespace() == Some("smile-dental"))
        .count();
    assert_eq!(refusals.len(), smile_objects, "{error}");
    for refusal in refusals {
        let line = refusal.to_string();
        assert!(refusal.at.source.contains("sites/smile-dental/"), "{line}");
        assert!(line.contains("being terminated"), "{line}");
    }
    assert_eq!(services.store.current_rv().await.unwrap(), version);
    assert!(
        services
            .store
            .get(&ObjectKey::cluster("sites", "riverside-family-medicine"))
            .await
            .is_err()
    );
}

/// Every stored object by (plural, namespace, name).
async fn everything(store: &Store) -> BTreeMap<(&'static str, String, String), Value> {
    let mut all = BTreeMap::new();
    for plural in PLURALS {
        let list = store
            .list(plural, &ListOptions::default(), |_| true)
            .await
            .unwrap();
        for object in list.items {
            let metadata = &object["metadata"];
            let key = (
                plural,
                metadata["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                metadata["name"].as_str().unwrap().to_owned(),
            );
            all.insert(key, object);
        }
    }
    all
}

/// The spec of `object` with its defaults, as admission stores it.
fn defaulted_spec(object: &AnyObject) -> Value {
    let mut object = object.clone();
    object.apply_defaults();
    object.to_json()["spec"].clone()
}

/// An error and its sources, one per line, as the binary prints them.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(next) = source {
        text.push('\n');
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}

/// Copies the folder `from` to `to`, recursively.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
