//! Identities against real servers over TLS: bearer tokens, the tenancy rule (another tenant's
//! object is a 404, never a 403, and never listed or watched), roles, the audit log, the
//! bootstrap token, and appliance enrollment. The flows that touch the token, enrollment and
//! audit tables run on SQLite and PostgreSQL.

#[macro_use]
mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Backend, Reply, TestCentral, host, json_body, site};
use ed25519_dalek::Signer as _;
use osc_central::auth::{BOOTSTRAP_TOKEN_FILE, Role};
use osc_central::store::EnrollmentRow;
use osc_proto::auth::enrollment_proof_message;
use osc_proto::dsse;
use reqwest::Method;
use serde_json::{Value, json};

const GV: &str = "/apis/osiriscare.net/v1alpha1";

on_every_backend!(
    tokens_are_issued_listed_revoked_and_expire,
    tenants_see_only_their_own_sites,
    enrollment_gives_an_appliance_its_site_and_nothing_else,
    enrollment_is_one_time_and_safe_to_retry,
    every_mutating_request_is_audited,
);

/// Two partners' sites: `smile` (acme) with host `dc01`, `river` (zeta) with host `fs01`.
async fn two_tenants(central: &TestCentral) {
    for (name, partner, host_name) in [("smile", "acme", "dc01"), ("river", "zeta", "fs01")] {
        let mut object = site(name, json!({}));
        object["spec"]["partner"] = json!(partner);
        central.create(&object).await;
        central.create(&host(name, host_name, json!({}))).await;
    }
}

fn operator(partners: &[&str]) -> Role {
    Role::Operator {
        partners: partners.iter().map(|p| (*p).to_owned()).collect(),
    }
}

async fn get_as(central: &TestCentral, token: &str, path: &str) -> Reply {
    central.send_as(token, Method::GET, path, None, None).await
}

async fn send_json(
    central: &TestCentral,
    token: &str,
    method: Method,
    path: &str,
    body: &Value,
) -> Reply {
    central
        .send_as(token, method, path, None, Some(json_body(body)))
        .await
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["items"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|item| item["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

async fn tokens_are_issued_listed_revoked_and_expire(central: &TestCentral) {
    // No token, a malformed one and an unknown one: 401 with a Status and the challenge.
    let anonymous = central
        .client
        .get(central.url(&format!("{GV}/sites")))
        .header("Authorization", "")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    for bad in ["nonsense", "osc_0123456789abcdef.wrong"] {
        let reply = get_as(central, bad, &format!("{GV}/sites")).await;
        assert_eq!(reply.status, 401, "{bad}: {reply:?}");
        assert_eq!(reply.body["reason"], "Unauthorized");
    }

    // An admin creates a readonly token; the secret is in the answer once and never listed.
    let created = send_json(
        central,
        &central.admin_token,
        Method::POST,
        "/osc/v1/tokens",
        &json!({"name": "auditor", "role": {"role": "readonly"}}),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    let token = created.body["token"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("osc_{id}.")));
    assert_eq!(
        get_as(central, &token, &format!("{GV}/sites")).await.status,
        200
    );
    let listed = get_as(central, &central.admin_token, "/osc/v1/tokens").await;
    assert_eq!(listed.status, 200);
    let secret = token.split_once('.').unwrap().1;
    assert!(!listed.body.to_string().contains(secret), "{listed:?}");
    assert!(
        listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id.as_str())
    );

    // Only admins manage tokens.
    let refused = get_as(central, &token, "/osc/v1/tokens").await;
    assert_eq!(refused.status, 403, "{refused:?}");

    // Bad requests say what to fix.
    let bad = send_json(
        central,
        &central.admin_token,
        Method::POST,
        "/osc/v1/tokens",
        &json!({"name": "x", "role": {"role": "operator", "partners": "acme"}}),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body["message"].as_str().unwrap().contains("role"),
        "{bad:?}"
    );

    // Revoked: refused at once.
    let revoked = central
        .send_as(
            &central.admin_token,
            Method::DELETE,
            &format!("/osc/v1/tokens/{id}"),
            None,
            None,
        )
        .await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    assert!(revoked.body["revokedAt"].is_string());
    assert_eq!(
        get_as(central, &token, &format!("{GV}/sites")).await.status,
        401
    );

    // Expired: refused.
    let expiring = send_json(
        central,
        &central.admin_token,
        Method::POST,
        "/osc/v1/tokens",
        &json!({"name": "brief", "role": {"role": "readonly"},
                "expiresAt": (chrono::Utc::now() + chrono::Duration::milliseconds(300)).to_rfc3339()}),
    )
    .await;
    assert_eq!(expiring.status, 201, "{expiring:?}");
    let brief = expiring.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        get_as(central, &brief, &format!("{GV}/sites")).await.status,
        200
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        get_as(central, &brief, &format!("{GV}/sites")).await.status,
        401
    );
}

async fn tenants_see_only_their_own_sites(central: &TestCentral) {
    two_tenants(central).await;
    let acme = central.token(operator(&["acme"])).await;

    // Lists and gets: zeta's site and its objects do not exist for acme's operator.
    let sites = get_as(central, &acme, &format!("{GV}/sites")).await;
    assert_eq!(names(&sites.body), ["smile"]);
    let hosts = get_as(central, &acme, &format!("{GV}/hosts")).await;
    assert_eq!(names(&hosts.body), ["dc01"]);
    let hidden = get_as(central, &acme, &format!("{GV}/sites/river")).await;
    let missing = get_as(central, &acme, &format!("{GV}/sites/no-such-site")).await;
    assert_eq!(hidden.status, 404);
    assert_eq!(
        hidden.body["message"]
            .as_str()
            .unwrap()
            .replace("river", "X"),
        missing.body["message"]
            .as_str()
            .unwrap()
            .replace("no-such-site", "X"),
        "a hidden site answers exactly as a missing one"
    );
    let hidden_host = get_as(central, &acme, &format!("{GV}/namespaces/river/hosts/fs01")).await;
    assert_eq!(hidden_host.status, 404);
    let hidden_list = get_as(central, &acme, &format!("{GV}/namespaces/river/hosts")).await;
    assert_eq!(hidden_list.status, 200);
    assert!(names(&hidden_list.body).is_empty());

    // Writes into the other tenant: 404, and nothing changes.
    let before = central.snapshot().await;
    let into_river = send_json(
        central,
        &acme,
        Method::POST,
        &format!("{GV}/namespaces/river/hosts"),
        &host("river", "sneaky", json!({})),
    )
    .await;
    assert_eq!(into_river.status, 404, "{into_river:?}");
    let delete_river = central
        .send_as(
            &acme,
            Method::DELETE,
            &format!("{GV}/namespaces/river/hosts/fs01"),
            None,
            None,
        )
        .await;
    assert_eq!(delete_river.status, 404);
    // A site for a partner it does not hold, or moving its own site there: 403.
    let mut foreign = site("stolen", json!({}));
    foreign["spec"]["partner"] = json!("zeta");
    let create_foreign = send_json(
        central,
        &acme,
        Method::POST,
        &format!("{GV}/sites"),
        &foreign,
    )
    .await;
    assert_eq!(create_foreign.status, 403, "{create_foreign:?}");
    let moved = central
        .send_as(
            &acme,
            Method::PATCH,
            &format!("{GV}/sites/smile"),
            None,
            Some((
                "application/merge-patch+json",
                br#"{"spec":{"partner":"zeta"}}"#.to_vec(),
            )),
        )
        .await;
    assert_eq!(moved.status, 403, "{moved:?}");
    // The shared catalogue is read-only to operators.
    let runbooks = get_as(central, &acme, &format!("{GV}/runbooks")).await;
    assert_eq!(runbooks.status, 200);
    assert_eq!(
        central.snapshot().await,
        before,
        "refused writes leave nothing behind"
    );

    // Inside its own tenant an operator works freely.
    let own = send_json(
        central,
        &acme,
        Method::POST,
        &format!("{GV}/namespaces/smile/hosts"),
        &host("smile", "pc02", json!({})),
    )
    .await;
    assert_eq!(own.status, 201, "{own:?}");

    // A watch of every host shows acme's changes only.
    let mut watch = central
        .client
        .get(central.url(&format!("{GV}/hosts?watch=1&timeoutSeconds=5")))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap();
    central.create(&host("river", "fs02", json!({}))).await;
    central.create(&host("smile", "pc03", json!({}))).await;
    let mut seen = Vec::new();
    let mut buffer = String::new();
    while let Some(chunk) = watch.chunk().await.unwrap() {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find('\n') {
            let line: Value = serde_json::from_str(&buffer[..end]).unwrap();
            seen.push(
                line["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
            buffer.drain(..=end);
        }
        if seen.contains(&"pc03".to_owned()) {
            break;
        }
    }
    assert_eq!(
        seen,
        ["dc01", "pc02", "pc03"],
        "initial list, then acme's changes only"
    );

    // readonly reads everything and changes nothing.
    let readonly = central.token(Role::ReadOnly).await;
    assert_eq!(
        names(
            &get_as(central, &readonly, &format!("{GV}/sites"))
                .await
                .body
        ),
        ["river", "smile"]
    );
    let write = central
        .send_as(
            &readonly,
            Method::DELETE,
            &format!("{GV}/namespaces/smile/hosts/pc02"),
            None,
            None,
        )
        .await;
    assert_eq!(write.status, 403, "{write:?}");
}

/// An appliance's fresh key and the enrollment request for `token`.
fn enroll_request(signer: &dsse::Signer, token: &str, appliance: &str) -> Value {
    let proof = signer.signing_key().sign(&enrollment_proof_message(token));
    json!({
        "token": token,
        "appliance": appliance,
        "publicKey": signer.public_key().to_base64(),
        "proof": STANDARD.encode(proof.to_bytes()),
    })
}

/// Creates an enrollment token for `site` as `by`.
async fn enrollment_token(central: &TestCentral, by: &str, site: &str) -> Reply {
    central
        .send_as(
            by,
            Method::POST,
            &format!("/osc/v1/sites/{site}/enrollment-tokens"),
            None,
            None,
        )
        .await
}

/// Enrolls without a bearer token, as an appliance does.
async fn enroll(central: &TestCentral, request: &Value) -> Reply {
    let response = central
        .client
        .post(central.url("/osc/v1/enroll"))
        .header("Authorization", "")
        .json_body(request)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or(Value::Null);
    Reply {
        status,
        content_type: String::new(),
        body,
    }
}

/// `RequestBuilder::json` is behind a reqwest feature this workspace leaves off.
trait JsonBody {
    fn json_body(self, body: &Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, body: &Value) -> Self {
        self.header("Content-Type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
    }
}

async fn enrollment_gives_an_appliance_its_site_and_nothing_else(central: &TestCentral) {
    two_tenants(central).await;
    let acme = central.token(operator(&["acme"])).await;
    // An operator may create enrollment tokens for its own sites only; others are 404.
    assert_eq!(enrollment_token(central, &acme, "river").await.status, 404);
    let readonly = central.token(Role::ReadOnly).await;
    assert_eq!(
        enrollment_token(central, &readonly, "smile").await.status,
        403
    );
    let created = enrollment_token(central, &acme, "smile").await;
    assert_eq!(created.status, 201, "{created:?}");
    let token = created.body["token"].as_str().unwrap();

    let signer = dsse::Signer::generate().unwrap();
    let enrolled = enroll(central, &enroll_request(&signer, token, "box1")).await;
    assert_eq!(enrolled.status, 200, "{enrolled:?}");
    assert_eq!(enrolled.body["site"], "smile");
    assert_eq!(enrolled.body["keyId"], signer.keyid());
    let ca = std::fs::read_to_string(central.ca()).unwrap();
    assert_eq!(enrolled.body["caCertificate"], ca.as_str(), "the CA to pin");
    let appliance_token = enrolled.body["token"].as_str().unwrap().to_owned();

    // The Appliance object carries the enrolled key.
    let object = central
        .get(&format!("{GV}/namespaces/smile/appliances/box1"))
        .await;
    assert_eq!(object.status, 200);
    assert_eq!(
        object.body["spec"]["enrollment"]["publicKey"],
        signer.public_key().to_base64()
    );

    // The appliance reads its site, and nothing of another.
    let sites = get_as(central, &appliance_token, &format!("{GV}/sites")).await;
    assert_eq!(names(&sites.body), ["smile"]);
    assert_eq!(
        names(
            &get_as(central, &appliance_token, &format!("{GV}/hosts"))
                .await
                .body
        ),
        ["dc01"]
    );
    assert_eq!(
        get_as(central, &appliance_token, &format!("{GV}/sites/river"))
            .await
            .status,
        404
    );
    assert_eq!(
        get_as(
            central,
            &appliance_token,
            &format!("{GV}/namespaces/river/hosts/fs01")
        )
        .await
        .status,
        404
    );
    assert!(
        names(
            &get_as(central, &appliance_token, &format!("{GV}/rollouts"))
                .await
                .body
        )
        .is_empty()
    );

    // It writes status of its site's hosts and of itself, nothing else.
    let status = json!({"status": {"conditions": [{"type": "Reachable", "status": "True",
        "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "Connected", "message": "ssh ok"}]}});
    let merge = |body: &Value| {
        Some((
            "application/merge-patch+json",
            serde_json::to_vec(body).unwrap(),
        ))
    };
    let host_status = central
        .send_as(
            &appliance_token,
            Method::PATCH,
            &format!("{GV}/namespaces/smile/hosts/dc01/status"),
            None,
            merge(&status),
        )
        .await;
    assert_eq!(host_status.status, 200, "{host_status:?}");
    let own_status = central
        .send_as(
            &appliance_token,
            Method::PATCH,
            &format!("{GV}/namespaces/smile/appliances/box1/status"),
            None,
            merge(&json!({"status": {"currentVersion": "1.0.0"}})),
        )
        .await;
    assert_eq!(own_status.status, 200, "{own_status:?}");
    let spec = central
        .send_as(
            &appliance_token,
            Method::PATCH,
            &format!("{GV}/namespaces/smile/hosts/dc01"),
            None,
            merge(&json!({"spec": {"address": "10.9.9.9"}})),
        )
        .await;
    assert_eq!(spec.status, 403, "{spec:?}");
    let other = central
        .send_as(
            &appliance_token,
            Method::PATCH,
            &format!("{GV}/namespaces/river/hosts/fs01/status"),
            None,
            merge(&status),
        )
        .await;
    assert_eq!(other.status, 404, "{other:?}");
}

async fn enrollment_is_one_time_and_safe_to_retry(central: &TestCentral) {
    two_tenants(central).await;
    let token = enrollment_token(central, &central.admin_token, "smile")
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let signer = dsse::Signer::generate().unwrap();

    // A proof by another key, and a bad name: refused, and the token is not spent.
    let impostor = dsse::Signer::generate().unwrap();
    let mut forged = enroll_request(&signer, &token, "box1");
    forged["proof"] = enroll_request(&impostor, &token, "box1")["proof"].clone();
    assert_eq!(enroll(central, &forged).await.status, 401);
    let bad_name = enroll(central, &enroll_request(&signer, &token, "Box_1")).await;
    assert_eq!(bad_name.status, 422, "{bad_name:?}");
    let garbled = enroll(central, &json!({"token": token, "appliance": "box1"})).await;
    assert_eq!(garbled.status, 400, "{garbled:?}");

    let request = enroll_request(&signer, &token, "box1");
    let first = enroll(central, &request).await;
    assert_eq!(first.status, 200, "{first:?}");
    let first_token = first.body["token"].as_str().unwrap().to_owned();

    // The same request again (its answer was lost): the same Appliance, a fresh token, the old
    // one revoked, no duplicate.
    let again = enroll(central, &request).await;
    assert_eq!(again.status, 200, "{again:?}");
    let second_token = again.body["token"].as_str().unwrap().to_owned();
    assert_ne!(first_token, second_token);
    assert_eq!(
        get_as(central, &first_token, &format!("{GV}/sites"))
            .await
            .status,
        401
    );
    assert_eq!(
        get_as(central, &second_token, &format!("{GV}/sites"))
            .await
            .status,
        200
    );
    let appliances = central
        .get(&format!("{GV}/namespaces/smile/appliances"))
        .await;
    assert_eq!(names(&appliances.body), ["box1"]);

    // A new enrollment token for the same appliance (a reinstalled box keeping its key): the
    // token of the earlier enrollment ends, and there is still one Appliance.
    let fresh = enrollment_token(central, &central.admin_token, "smile")
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let reenrolled = enroll(central, &enroll_request(&signer, &fresh, "box1")).await;
    assert_eq!(reenrolled.status, 200, "{reenrolled:?}");
    assert_eq!(
        get_as(central, &second_token, &format!("{GV}/sites"))
            .await
            .status,
        401
    );
    let third_token = reenrolled.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        get_as(central, &third_token, &format!("{GV}/sites"))
            .await
            .status,
        200
    );
    assert_eq!(
        names(
            &central
                .get(&format!("{GV}/namespaces/smile/appliances"))
                .await
                .body
        ),
        ["box1"]
    );

    // Another key or name with the spent token: refused.
    let other_key = dsse::Signer::generate().unwrap();
    assert_eq!(
        enroll(central, &enroll_request(&other_key, &token, "box1"))
            .await
            .status,
        401
    );
    assert_eq!(
        enroll(central, &enroll_request(&signer, &token, "box2"))
            .await
            .status,
        401
    );

    // An expired token: refused, saying so.
    let now = chrono::Utc::now().timestamp_millis();
    central
        .store
        .insert_enrollment(&EnrollmentRow {
            id: "00000000000000aa".to_owned(),
            secret_sha256: hex::encode(sha2_of(b"old-secret")),
            site: "smile".to_owned(),
            created_by: "test".to_owned(),
            created_at_ms: now - 10_000,
            expires_at_ms: now - 1_000,
            used: None,
        })
        .await
        .unwrap();
    let expired = enroll(
        central,
        &enroll_request(&signer, "osce_00000000000000aa.old-secret", "box3"),
    )
    .await;
    assert_eq!(expired.status, 401, "{expired:?}");
    assert!(
        expired.body["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{expired:?}"
    );
}

fn sha2_of(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

async fn every_mutating_request_is_audited(central: &TestCentral) {
    two_tenants(central).await;
    let acme = central.token(operator(&["acme"])).await;
    let created = send_json(
        central,
        &acme,
        Method::POST,
        &format!("{GV}/namespaces/smile/hosts"),
        &host("smile", "pc09", json!({})),
    )
    .await;
    assert_eq!(created.status, 201);
    let refused = send_json(
        central,
        &acme,
        Method::POST,
        &format!("{GV}/runbooks"),
        &json!({}),
    )
    .await;
    assert_eq!(refused.status, 403);
    // Reads are not audited.
    get_as(central, &acme, &format!("{GV}/sites")).await;

    let log = get_as(
        central,
        &central.admin_token,
        "/osc/v1/audit?principal=test-user",
    )
    .await;
    assert_eq!(log.status, 200, "{log:?}");
    let entries: Vec<(String, String, u64)> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap().to_owned(),
                e["path"].as_str().unwrap().to_owned(),
                e["code"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (
                "POST".to_owned(),
                format!("{GV}/namespaces/smile/hosts"),
                201
            ),
            ("POST".to_owned(), format!("{GV}/runbooks"), 403),
        ]
    );
    // The admin's own writes are there too, and paging goes on from `next`.
    let page = get_as(central, &central.admin_token, "/osc/v1/audit?limit=2").await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    let next = page.body["next"].as_str().unwrap();
    let rest = get_as(
        central,
        &central.admin_token,
        &format!("/osc/v1/audit?after={next}"),
    )
    .await;
    assert!(rest.body["items"][0]["id"].as_i64().unwrap() > next.parse::<i64>().unwrap());
    // Only admins read it; a bad parameter says what is accepted.
    assert_eq!(get_as(central, &acme, "/osc/v1/audit").await.status, 403);
    let bad = get_as(central, &central.admin_token, "/osc/v1/audit?limit=many").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body["message"].as_str().unwrap().contains("limit="),
        "{bad:?}"
    );
}

/// The first start writes an admin token to a private file that works; the second start
/// leaves it alone.
#[tokio::test]
async fn the_first_start_writes_a_private_bootstrap_admin_token() {
    let data = tempfile::TempDir::new().unwrap();
    let start = || {
        let options = osc_central::config::Options {
            data_dir: Some(data.path().join("data")),
            listen: Some("127.0.0.1:0".parse().unwrap()),
            insecure_http: Some(true),
            ..Default::default()
        };
        osc_central::config::Config::from_options(options).unwrap()
    };
    let file = data.path().join("data").join(BOOTSTRAP_TOKEN_FILE);
    for round in 0..2 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(osc_central::server::run(
            start(),
            listener,
            |services| osc_central::api::app(osc_central::api::AppState::new(services)),
            async {
                let _ = stopped.await;
            },
        ));
        let client = reqwest::Client::new();
        let url = format!("http://{addr}{GV}/sites");
        let mut answer = None;
        for _ in 0..100 {
            if file.exists()
                && let Ok(response) = client
                    .get(&url)
                    .bearer_auth(std::fs::read_to_string(&file).unwrap().trim())
                    .send()
                    .await
            {
                answer = Some(response.status().as_u16());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            answer,
            Some(200),
            "round {round}: the token in {} works",
            file.display()
        );
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let written = std::fs::metadata(&file).unwrap().modified().unwrap();
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        if round == 1 {
            assert_eq!(
                std::fs::metadata(&file).unwrap().modified().unwrap(),
                written
            );
        }
    }
}

/// `osc-central issue-admin-token` writes a working admin token into the store of a running
/// server: the way back in when every admin token is lost.
#[tokio::test]
async fn issue_admin_token_recovers_access_beside_a_running_server() {
    let central = TestCentral::start(Backend::Sqlite).await;
    let data_dir = central.data_dir();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_osc-central"))
            .args(["issue-admin-token", "--name", "rescue", "--data-dir"])
            .arg(data_dir)
            .env_remove("OSC_DATABASE_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert_eq!(
        get_as(&central, &token, &format!("{GV}/sites"))
            .await
            .status,
        200
    );
    let listed = get_as(&central, &token, "/osc/v1/tokens").await;
    assert!(
        listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "rescue")
    );
    central.stop().await;
}

/// kubectl with an operator's token lists that operator's sites only.
#[tokio::test]
async fn kubectl_with_an_operator_token_sees_its_partners_sites() {
    let central = TestCentral::start(Backend::Sqlite).await;
    two_tenants(&central).await;
    let acme = central.token(operator(&["acme"])).await;
    let output = central
        .kubectl_as(&acme, &["get", "sites", "-o", "name"])
        .await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "site.osiriscare.net/smile\n"
    );
    let hidden = central.kubectl_as(&acme, &["get", "site", "river"]).await;
    assert!(!hidden.status.success());
    assert!(
        String::from_utf8_lossy(&hidden.stderr).contains("not found"),
        "{hidden:?}"
    );
    central.stop().await;
}
