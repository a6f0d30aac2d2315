//! Credential secrets against real servers over TLS, on SQLite and PostgreSQL: sealed in the
//! database (checked in the raw SQLite files and every PostgreSQL row), never returned to people,
//! pulled decrypted by the site's appliance only, bound to their place, kept out of every log
//! line, and moved to a new master key by a rotation (through the API with a key file, by a
//! restart with keys in the configuration) while reads go on and across restarts.

#[macro_use]
mod common;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Backend, Reply, TestCentral, credential, json_body, path_of, site};
use osc_central::api::{DATA_KEYS_ANNOTATION, ROTATE_PATH, rotate_master_key};
use osc_central::auth::{Principal, Role};
use osc_central::config::{LogFormat, LogSettings, Options, SecretText};
use osc_central::keyring::{KEY_FILE, SEALED_PREFIX, sealed_key_id};
use osc_central::store::ObjectKey;
use osc_proto::credentials::{CredentialData, MasterKeyRotation};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection as _, PgConnection, Row as _};

const GV: &str = "/apis/osiriscare.net/v1alpha1";

on_every_backend!(
    the_database_holds_no_secret_and_people_never_read_one,
    only_the_sites_appliance_pulls_and_others_learn_nothing,
    a_sealed_value_moved_to_another_credential_does_not_open,
    rotation_reseals_every_credential_while_reads_go_on,
    writes_racing_a_rotation_all_end_under_the_new_key,
    a_rotation_whose_request_is_dropped_still_finishes,
);

/// Writers that replace secrets, rewrite a credential without its data (carrying the stored
/// seal over) and create new credentials while a rotation runs: afterwards every stored value is
/// under the new key, opens to what was last written, and the old key is retired. A value sealed
/// or carried over under the old key and stored behind the walk's back would fail this.
async fn writes_racing_a_rotation_all_end_under_the_new_key(central: &TestCentral) {
    two_sites(central).await;
    let credentials = many_credentials(central, 16).await;
    let rotated = AtomicBool::new(false);
    let rotation = rotate_then_flag(central, &rotated);
    let writes = async {
        let mut expected: Vec<(String, String, String)> = credentials.clone();
        let mut round = 0;
        while !rotated.load(Ordering::SeqCst) {
            round += 1;
            for (index, (site, name, password)) in expected.iter_mut().enumerate() {
                let path = format!("{GV}/namespaces/{site}/credentials/{name}");
                let mut object = central.get(&path).await.body;
                if index % 2 == 0 {
                    *password = format!("pw-{site}-{index}-round-{round}");
                    object["spec"]["data"] = json!({ "password": password });
                } else {
                    object["metadata"]["labels"] = json!({ "round": round.to_string() });
                }
                object["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("resourceVersion");
                let reply = central.put(&path, &object).await;
                assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
            }
            let name = format!("new-{round}");
            let password = format!("pw-new-{round}");
            central.create(&credential("alpha", &name, &password)).await;
            expected.push(("alpha".to_owned(), name, password));
        }
        expected
    };
    let (reply, expected) = tokio::join!(rotation, writes);
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let new = reply.body["primaryKeyId"].as_str().unwrap();
    assert!(central.keyring.keys().await.previous_ids().is_empty());
    for (site, name, password) in &expected {
        assert_eq!(
            stored_key_ids(central, site, name).await,
            [new],
            "{site}/{name}"
        );
        assert_eq!(
            central.stored_secret(site, name, "password").await,
            *password
        );
    }
}

/// A rotation whose request is dropped (the client hangs up, or the request timeout fires) once
/// the new key is primary goes on to re-seal everything and retire the old key all the same.
async fn a_rotation_whose_request_is_dropped_still_finishes(central: &TestCentral) {
    two_sites(central).await;
    let credentials = many_credentials(central, 40).await;
    let old = central.keyring.keys().await.primary().id().clone();
    let admin = Principal::system();
    // Boxed, so that dropping it really drops the future, as the server does.
    let mut request = Box::pin(rotate_master_key(&central.state, &admin));
    loop {
        tokio::select! {
            reply = &mut request => panic!("the rotation answered before the test could drop it: {:?}", reply.map(|r| r.status())),
            () = tokio::task::yield_now() => {
                if *central.keyring.keys().await.primary().id() != old {
                    break;
                }
            }
        }
    }
    drop(request);
    // The rotation holds its lock until it is done; wait for it to let go.
    let running = loop {
        match central.keyring.start_rotation() {
            Ok(guard) => break guard,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
        }
    };
    drop(running);
    let new = central.keyring.keys().await.primary().id().to_string();
    assert!(central.keyring.keys().await.previous_ids().is_empty());
    for (site, name, password) in &credentials {
        assert_eq!(stored_key_ids(central, site, name).await, [new.as_str()]);
        assert_eq!(
            central.stored_secret(site, name, "password").await,
            *password
        );
    }
}

/// Like `on_every_backend!`, for tests that restart their server and so take the backend and
/// start it themselves.
macro_rules! restarting_on_every_backend {
    ($($test:ident),* $(,)?) => {
        $(
            mod $test {
                #[tokio::test]
                async fn sqlite() {
                    crate::$test(crate::Backend::Sqlite).await;
                }

                #[tokio::test]
                async fn postgres() {
                    crate::$test(crate::Backend::Postgres).await;
                }
            }
        )*
    };
}

restarting_on_every_backend!(
    an_interrupted_rotation_is_finished_by_the_next_start,
    configured_keys_rotate_by_a_restart,
);

/// A secret no other part of the test (or the server) would produce by chance.
const PLANTED: &str = "planted-secret-7c1e9a42-do-not-log";

fn appliance(site: &str) -> Role {
    Role::Appliance {
        site: site.to_owned(),
        appliance: "gw".to_owned(),
    }
}

fn operator(partner: &str) -> Role {
    Role::Operator {
        partners: [partner.to_owned()].into(),
    }
}

/// The path of a credential's decrypted data.
fn data_path(site: &str, name: &str) -> String {
    format!("{GV}/namespaces/{site}/credentials/{name}/data")
}

/// Sites `alpha` (partner msp-1) and `beta` (partner msp-2).
async fn two_sites(central: &TestCentral) {
    central.create(&site("alpha", json!({}))).await;
    let mut beta = site("beta", json!({}));
    beta["spec"]["partner"] = json!("msp-2");
    central.create(&beta).await;
}

/// Sites `alpha` and `beta`, and the Credential `alpha/linux-ssh` holding [`PLANTED`]; returns
/// it as created.
async fn planted(central: &TestCentral) -> Value {
    two_sites(central).await;
    central
        .create(&credential("alpha", "linux-ssh", PLANTED))
        .await
}

/// Rotates the master key through the API as the admin, then sets `done`, for work that runs
/// until the rotation is over.
async fn rotate_then_flag(central: &TestCentral, done: &AtomicBool) -> Reply {
    let reply = central.send(Method::POST, ROTATE_PATH, None, None).await;
    done.store(true, Ordering::SeqCst);
    reply
}

/// GET of a credential's data with `token`.
async fn pull(central: &TestCentral, token: &str, site: &str, name: &str) -> Reply {
    central
        .send_as(token, Method::GET, &data_path(site, name), None, None)
        .await
}

/// The key ids the stored Credential `site`/`name` is sealed under, one per data key.
async fn stored_key_ids(central: &TestCentral, site: &str, name: &str) -> Vec<String> {
    let stored = central
        .store
        .get(&ObjectKey::namespaced("credentials", site, name))
        .await
        .unwrap();
    stored["spec"]["data"]
        .as_object()
        .expect("stored data")
        .values()
        .map(|sealed| {
            sealed_key_id(sealed.as_str().unwrap())
                .expect("a sealed value")
                .to_string()
        })
        .collect()
}

/// Every byte the database holds, as text: the SQLite files (with the WAL) or every row of every
/// PostgreSQL table.
async fn raw_database(central: &TestCentral) -> String {
    match central.database_url() {
        None => {
            let mut text = String::new();
            for entry in std::fs::read_dir(central.data_dir()).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name.starts_with("central.sqlite3") {
                    text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
                }
            }
            text
        }
        Some(url) => {
            let mut connection = PgConnection::connect(url).await.unwrap();
            let tables: Vec<String> = sqlx::query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_all(&mut connection)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
            assert!(tables.iter().any(|table| table == "events"), "{tables:?}");
            let mut text = String::new();
            for table in tables {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT t::text FROM \"{table}\" t"
                )))
                .fetch_all(&mut connection)
                .await
                .unwrap();
                for row in rows {
                    text.push_str(&row.get::<String, _>(0));
                    text.push('\n');
                }
            }
            text
        }
    }
}

async fn the_database_holds_no_secret_and_people_never_read_one(central: &TestCentral) {
    let created = planted(central).await;
    let path = path_of(&created);
    // Writes that keep or re-send the secret, and one that changes it, all leave history behind.
    let mut relabelled = central.get(&path).await.body;
    relabelled["metadata"]["labels"] = json!({"edited": "yes"});
    assert_eq!(central.put(&path, &relabelled).await.status, 200);
    let before = central.get(&path).await.body;
    let mut resent = before.clone();
    resent["spec"]["data"] = json!({"password": PLANTED});
    let unchanged = central.put(&path, &resent).await;
    assert_eq!(unchanged.status, 200, "{:?}", unchanged.body);
    assert_eq!(
        common::rv(&unchanged.body),
        common::rv(&before),
        "writing back the same secret changes nothing"
    );
    let mut ssh = credential("beta", "root-key", "unused");
    ssh["spec"] = json!({"type": "ssh-key", "username": "root",
        "data": {"privateKey": format!("{PLANTED}-key"), "passphrase": format!("{PLANTED}-pass")}});
    central.create(&ssh).await;

    let raw = raw_database(central).await;
    assert!(
        raw.contains(SEALED_PREFIX),
        "the stored values are visible to this check"
    );
    assert!(!raw.contains(PLANTED), "a secret is in the database");

    // People see which keys are set, never the values.
    let read = central.get(&path).await.body;
    assert!(read["spec"].get("data").is_none(), "{read}");
    assert_eq!(
        read["metadata"]["annotations"][DATA_KEYS_ANNOTATION],
        "password"
    );
    let listed = central.get(&format!("{GV}/credentials")).await.body;
    let annotations: Vec<&Value> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| &item["metadata"]["annotations"][DATA_KEYS_ANNOTATION])
        .collect();
    assert_eq!(
        annotations,
        [&json!("password"), &json!("passphrase,privateKey")]
    );
    assert!(!listed.to_string().contains(PLANTED));
    // The stored values still open to what was written.
    assert_eq!(
        central
            .stored_secret("beta", "root-key", "passphrase")
            .await,
        format!("{PLANTED}-pass")
    );
}

async fn only_the_sites_appliance_pulls_and_others_learn_nothing(central: &TestCentral) {
    planted(central).await;
    central
        .create(&credential("beta", "other", "beta-pw"))
        .await;

    let own = central.token(appliance("alpha")).await;
    let pulled = pull(central, &own, "alpha", "linux-ssh").await;
    assert_eq!(pulled.status, 200, "{:?}", pulled.body);
    assert_eq!(pulled.body["kind"], "CredentialData");
    let document: CredentialData = serde_json::from_value(pulled.body.clone()).unwrap();
    assert_eq!(document.data["password"].as_str(), PLANTED);
    assert_eq!(pulled.body["type"], "password");
    assert_eq!(pulled.body["username"], "svc");
    assert_eq!(pulled.body["data"], json!({"password": PLANTED}));
    assert_eq!(pulled.body["metadata"]["namespace"], "alpha");
    // The appliance reads the object itself without the values, like everyone else.
    let object = central
        .send_as(
            &own,
            Method::GET,
            &format!("{GV}/namespaces/alpha/credentials/linux-ssh"),
            None,
            None,
        )
        .await;
    assert_eq!(object.status, 200, "{:?}", object.body);
    assert!(object.body["spec"].get("data").is_none());

    let cases = [
        // Who can see the site but is not its appliance: 403.
        (Role::Admin, "alpha", "linux-ssh", 403),
        (Role::ReadOnly, "alpha", "linux-ssh", 403),
        (operator("msp-1"), "alpha", "linux-ssh", 403),
        // Who cannot see the site: 404, the same as for a site that does not exist.
        (operator("msp-2"), "alpha", "linux-ssh", 404),
        (operator("msp-2"), "nowhere", "linux-ssh", 404),
        (appliance("beta"), "alpha", "linux-ssh", 404),
        (appliance("alpha"), "beta", "other", 404),
        // The site's appliance asking for a credential that does not exist.
        (appliance("alpha"), "alpha", "missing", 404),
    ];
    for (role, site, name, code) in cases {
        let token = central.token(role.clone()).await;
        let reply = pull(central, &token, site, name).await;
        assert_eq!(
            reply.status, code,
            "{role:?} on {site}/{name}: {:?}",
            reply.body
        );
        assert!(
            !reply.body.to_string().contains(PLANTED),
            "{:?}",
            reply.body
        );
        assert!(
            !reply.body.to_string().contains("beta-pw"),
            "{:?}",
            reply.body
        );
    }
    // Without a token: 401; other verbs: 405.
    let ca = std::fs::read(central.ca()).unwrap();
    let anonymous = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap()
        .get(central.url(&data_path("alpha", "linux-ssh")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let posted = central
        .send_as(
            &own,
            Method::POST,
            &data_path("alpha", "linux-ssh"),
            None,
            Some(json_body(&json!({}))),
        )
        .await;
    assert_eq!(posted.status, 405, "{:?}", posted.body);
}

async fn a_sealed_value_moved_to_another_credential_does_not_open(central: &TestCentral) {
    planted(central).await;
    central
        .create(&credential("alpha", "decoy", "decoy-pw"))
        .await;
    // Someone with write access to the database copies the sealed value into another
    // credential's row, bypassing the API.
    let source = ObjectKey::namespaced("credentials", "alpha", "linux-ssh");
    let target = ObjectKey::namespaced("credentials", "alpha", "decoy");
    let sealed = central.store.get(&source).await.unwrap()["spec"]["data"].clone();
    let mut moved = central.store.get(&target).await.unwrap();
    moved["spec"]["data"] = sealed;
    central.store.update(&target, moved, None).await.unwrap();

    let own = central.token(appliance("alpha")).await;
    let reply = pull(central, &own, "alpha", "decoy").await;
    assert_eq!(reply.status, 500, "{:?}", reply.body);
    assert!(
        !reply.body.to_string().contains(PLANTED),
        "{:?}",
        reply.body
    );
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .contains("\"decoy\""),
        "{:?}",
        reply.body
    );
    // The original still opens where it belongs.
    assert_eq!(pull(central, &own, "alpha", "linux-ssh").await.status, 200);
}

/// Credentials `c0`… in both sites, each with its own password.
async fn many_credentials(central: &TestCentral, count: usize) -> Vec<(String, String, String)> {
    let mut made = Vec::new();
    for index in 0..count {
        let site = if index % 2 == 0 { "alpha" } else { "beta" };
        let name = format!("c{index}");
        let password = format!("pw-{site}-{index}");
        central.create(&credential(site, &name, &password)).await;
        made.push((site.to_owned(), name, password));
    }
    made
}

async fn rotation_reseals_every_credential_while_reads_go_on(central: &TestCentral) {
    two_sites(central).await;
    let credentials = many_credentials(central, 24).await;
    let old = central.keyring.keys().await.primary().id().to_string();
    let tokens = [
        central.token(appliance("alpha")).await,
        central.token(appliance("beta")).await,
    ];

    // Only admins rotate.
    for role in [Role::ReadOnly, operator("msp-1"), appliance("alpha")] {
        let token = central.token(role.clone()).await;
        let reply = central
            .send_as(&token, Method::POST, ROTATE_PATH, None, None)
            .await;
        assert_eq!(reply.status, 403, "{role:?}: {:?}", reply.body);
    }
    assert_eq!(central.keyring.keys().await.primary().id().to_string(), old);

    // Appliances keep pulling while the rotation runs.
    let rotated = AtomicBool::new(false);
    let rotation = rotate_then_flag(central, &rotated);
    let reads = async {
        let mut reads = 0;
        while !rotated.load(Ordering::SeqCst) {
            for (index, (site, name, password)) in credentials.iter().enumerate() {
                let reply = pull(central, &tokens[index % 2], site, name).await;
                assert_eq!(reply.status, 200, "{site}/{name}: {:?}", reply.body);
                assert_eq!(reply.body["data"]["password"], password.as_str());
                reads += 1;
            }
        }
        reads
    };
    let (reply, reads) = tokio::join!(rotation, reads);
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let report: MasterKeyRotation = serde_json::from_value(reply.body.clone()).unwrap();
    assert_eq!(report.kind, "MasterKeyRotation");
    assert!(reads > 0);
    let new = reply.body["primaryKeyId"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(reply.body["retiredKeyIds"], json!([old]));
    assert_eq!(reply.body["resealed"], credentials.len());

    for (site, name, password) in &credentials {
        assert_eq!(stored_key_ids(central, site, name).await, [new.as_str()]);
        assert_eq!(
            central.stored_secret(site, name, "password").await,
            *password
        );
    }
    // The key file holds the new key alone: the old one is gone for good.
    let file = std::fs::read_to_string(central.data_dir().join(KEY_FILE)).unwrap();
    let keys: Vec<&str> = file
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .collect();
    assert_eq!(keys.len(), 1, "{} keys in the file", keys.len());
    assert!(central.keyring.keys().await.previous_ids().is_empty());
}

/// A rotation that stopped after the new key became primary (the key file holds both keys) goes
/// on serving every value, and the next start moves the rest and retires the old key.
async fn an_interrupted_rotation_is_finished_by_the_next_start(backend: Backend) {
    let central = TestCentral::start(backend).await;
    two_sites(&central).await;
    let credentials = many_credentials(&central, 6).await;
    let old = central.keyring.keys().await.primary().id().to_string();
    // The first step of a rotation, then a crash before the walk.
    let new = central.keyring.rotate_primary().await.unwrap().to_string();
    let token = central.token(appliance("alpha")).await;
    // Mid-rotation: values under the old key and the new one both open.
    central
        .create(&credential("alpha", "after", "sealed-under-new"))
        .await;
    assert_eq!(
        stored_key_ids(&central, "alpha", "after").await,
        [new.as_str()]
    );
    assert_eq!(
        stored_key_ids(&central, "alpha", "c0").await,
        [old.as_str()]
    );
    for (site, name, password) in credentials.iter().filter(|(site, ..)| site == "alpha") {
        let reply = pull(&central, &token, site, name).await;
        assert_eq!(
            reply.body["data"]["password"],
            password.as_str(),
            "{reply:?}"
        );
    }

    let central = central.restart(Options::default()).await;
    for (site, name, password) in &credentials {
        assert_eq!(stored_key_ids(&central, site, name).await, [new.as_str()]);
        assert_eq!(
            central.stored_secret(site, name, "password").await,
            *password
        );
    }
    assert_eq!(central.keyring.keys().await.primary().id().to_string(), new);
    assert!(central.keyring.keys().await.previous_ids().is_empty());
    // Tokens are in the database, so the appliance's token still works after the restart.
    let reply = pull(&central, &token, "alpha", "after").await;
    assert_eq!(
        reply.body["data"]["password"], "sealed-under-new",
        "{reply:?}"
    );
    central.stop().await;
}

fn configured(primary: u8, previous: Option<u8>) -> Options {
    let key = |byte: u8| SecretText(STANDARD.encode([byte; 32]));
    Options {
        master_key: Some(key(primary)),
        previous_master_keys: previous.map(|byte| vec![key(byte)]),
        ..Options::default()
    }
}

/// Keys in the configuration: the API cannot rotate them (409); a restart with the new key and
/// the old one as previous re-seals everything, after which the old key can go.
async fn configured_keys_rotate_by_a_restart(backend: Backend) {
    let central = TestCentral::start_with(backend, configured(1, None)).await;
    assert!(
        !central.data_dir().join(KEY_FILE).exists(),
        "no key file with configured keys"
    );
    two_sites(&central).await;
    let credentials = many_credentials(&central, 6).await;
    let old = central.keyring.keys().await.primary().id().to_string();
    let refused = central.send(Method::POST, ROTATE_PATH, None, None).await;
    assert_eq!(refused.status, 409, "{:?}", refused.body);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("--previous-master-keys"),
        "{:?}",
        refused.body
    );

    let central = central.restart(configured(2, Some(1))).await;
    let new = central.keyring.keys().await.primary().id().to_string();
    assert_ne!(new, old);
    for (site, name, password) in &credentials {
        assert_eq!(stored_key_ids(&central, site, name).await, [new.as_str()]);
        assert_eq!(
            central.stored_secret(site, name, "password").await,
            *password
        );
    }

    // The old key can now be dropped from the configuration.
    let central = central.restart(configured(2, None)).await;
    let token = central.token(appliance("beta")).await;
    for (site, name, password) in credentials.iter().filter(|(site, ..)| site == "beta") {
        let reply = pull(&central, &token, site, name).await;
        assert_eq!(
            reply.body["data"]["password"],
            password.as_str(),
            "{reply:?}"
        );
    }
    central.stop().await;
}

/// Log lines written by the server, captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A full server with every log line captured at debug level (trace for central itself): a
/// planted secret is written, read back by the appliance, sent in refused writes, asked for by
/// callers who may not have it, moved to a new key, and searched for in every line and in
/// `/metrics`. Its own process (nextest) or the first to install the subscriber (cargo test).
#[tokio::test]
async fn no_secret_reaches_a_log_line_or_a_metric() {
    let captured = Captured::default();
    let settings = LogSettings {
        format: LogFormat::Json,
        filter: "debug,osc_central=trace".to_owned(),
    };
    let subscriber =
        osc_central::telemetry::subscriber(&settings, captured.clone(), false).unwrap();
    tracing::subscriber::set_global_default(subscriber)
        .expect("this test owns the process's log subscriber");

    let central = TestCentral::start(Backend::Sqlite).await;
    let created = planted(&central).await;
    let path = path_of(&created);
    let own = central.token(appliance("alpha")).await;
    let reply = pull(&central, &own, "alpha", "linux-ssh").await;
    assert_eq!(reply.body["data"]["password"], PLANTED);

    // Refused writes carrying the secret: an unknown data key, a stale version, a body that
    // is not JSON, a field the kind does not have.
    let mut unknown_key = credential("alpha", "bad", PLANTED);
    unknown_key["spec"]["data"] = json!({"password": PLANTED, "token": PLANTED});
    assert_eq!(
        central
            .post(&format!("{GV}/namespaces/alpha/credentials"), &unknown_key)
            .await
            .status,
        422
    );
    let mut stale = central.get(&path).await.body;
    stale["metadata"]["resourceVersion"] = json!("1");
    stale["spec"]["data"] = json!({"password": PLANTED});
    assert_eq!(central.put(&path, &stale).await.status, 409);
    let garbage = format!("{{\"spec\": {{\"data\": {{\"password\": \"{PLANTED}\"");
    let reply = central
        .send(
            Method::PUT,
            &path,
            None,
            Some(("application/json", garbage.into_bytes())),
        )
        .await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    let mut extra = credential("alpha", "extra", PLANTED);
    extra["spec"]["secretish"] = json!(PLANTED);
    assert_eq!(
        central
            .post(&format!("{GV}/namespaces/alpha/credentials"), &extra)
            .await
            .status,
        400
    );
    // Reads that are refused.
    let other = central.token(appliance("beta")).await;
    assert_eq!(
        pull(&central, &other, "alpha", "linux-ssh").await.status,
        404
    );
    let reader = central.token(Role::ReadOnly).await;
    assert_eq!(
        pull(&central, &reader, "alpha", "linux-ssh").await.status,
        403
    );
    // A rotation, and a value that does not open.
    assert_eq!(
        central
            .send(Method::POST, ROTATE_PATH, None, None)
            .await
            .status,
        200
    );
    let key = ObjectKey::namespaced("credentials", "alpha", "linux-ssh");
    let mut tampered = central.store.get(&key).await.unwrap();
    let sealed = tampered["spec"]["data"]["password"]
        .as_str()
        .unwrap()
        .to_owned();
    tampered["spec"]["data"]["password"] = json!(format!("{}AAAA", &sealed[..sealed.len() - 4]));
    central.store.update(&key, tampered, None).await.unwrap();
    assert_eq!(pull(&central, &own, "alpha", "linux-ssh").await.status, 500);
    let metrics = central.metrics().await;
    assert!(metrics.contains("osc_http_requests_total"), "{metrics}");
    central.stop().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The capture saw the requests above (so an empty capture cannot pass), including the
    // server's own account of the failed pull.
    assert!(
        logs.contains("/credentials/linux-ssh/data"),
        "no request lines captured"
    );
    assert!(
        logs.contains("does not open here"),
        "the failed pull is not logged"
    );
    assert!(logs.lines().count() > 50, "{} lines", logs.lines().count());
    for line in logs.lines() {
        assert!(!line.contains(PLANTED), "a secret in the log: {line}");
    }
    assert!(!metrics.contains(PLANTED));
}
