//! The evidence log end to end, over real HTTPS with real tokens: appliances post signed
//! envelopes, bad ones are refused without a trace, people query, export (verified offline with
//! `osc_proto::export::verify_export`) and score past moments, and tenancy hides other partners'
//! evidence.

mod common;

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use osc_central::auth::Role;
use osc_proto::chain::ChainBuilder;
use osc_proto::dsse::{self, Envelope, PublicKey, Signer};
use osc_proto::evidence::{
    ActionStep, BUNDLE_VERSION, Bundle, CappedOutput, Control, DeploymentMode, Observation,
    Outcome, PAYLOAD_TYPE, Sha256Digest, Verdict,
};
use osc_proto::export::{EvidenceExport, KnownHead, verify_export};
use osc_proto::merkle::{self, ConsistencyProof, InclusionProof, SignedTreeHead};
use reqwest::Method;
use serde_json::{Value, json};

use common::{Backend, Reply, TestCentral, site};

/// A site whose partner is `msp-1`.
const SITE: &str = "clinic-1";
/// A site of another partner.
const OTHER_SITE: &str = "clinic-2";

/// A central with two sites (of different partners), an enrolled appliance in each, and their
/// tokens and keys.
struct Fleet {
    /// The server.
    central: TestCentral,
    /// The appliance of [`SITE`]: its token and key.
    box1: Appliance,
    /// The appliance of [`OTHER_SITE`].
    box2: Appliance,
}

/// An enrolled appliance as the tests drive it.
struct Appliance {
    /// Its site.
    site: &'static str,
    /// Its bearer token.
    token: String,
    /// Its chain, signing with its key.
    chain: ChainBuilder,
}

impl Appliance {
    /// Enrolls appliance `name` of `site` with the key from `seed`: the Appliance object carries
    /// the public key (and a keyId that central must ignore), the token is the appliance role's.
    async fn enroll(
        central: &TestCentral,
        site: &'static str,
        name: &'static str,
        seed: u8,
    ) -> Self {
        let signer = Signer::from_seed(&[seed; 32]);
        central
            .create(&json!({
                "apiVersion": "osiriscare.net/v1alpha1",
                "kind": "Appliance",
                "metadata": {"name": name, "namespace": site},
                "spec": {"enrollment": {
                    "publicKey": signer.public_key().to_base64(),
                    "keyId": "not-the-real-keyid",
                }},
            }))
            .await;
        let token = central
            .token(Role::Appliance {
                site: site.into(),
                appliance: name.into(),
            })
            .await;
        Self {
            site,
            token,
            chain: ChainBuilder::new(name, signer, None),
        }
    }

    /// The next link of this appliance's chain, a reconcile of `host`/`runbook` ending at `end`.
    fn next(&mut self, host: &str, runbook: &str, outcome: Outcome, end: DateTime<Utc>) -> Vec<u8> {
        let envelope = self
            .chain
            .append(bundle(self.site, host, runbook, outcome, end))
            .unwrap();
        serde_json::to_vec(&envelope).unwrap()
    }
}

impl Appliance {
    /// Posts the next link (runbook `ssh`) to `central` and expects it appended; its log index.
    async fn append(
        &mut self,
        central: &TestCentral,
        host: &str,
        outcome: Outcome,
        end: DateTime<Utc>,
    ) -> u64 {
        let body = self.next(host, "ssh", outcome, end);
        let reply = post(central, &self.token, body).await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        log_index(&reply)
    }
}

impl Fleet {
    async fn start(backend: Backend) -> Self {
        let central = TestCentral::start(backend).await;
        central.create(&site(SITE, json!({}))).await;
        let mut other = site(OTHER_SITE, json!({}));
        other["spec"]["partner"] = json!("msp-2");
        central.create(&other).await;
        let box1 = Appliance::enroll(&central, SITE, "box-1", 1).await;
        let box2 = Appliance::enroll(&central, OTHER_SITE, "box-2", 2).await;
        Self {
            central,
            box1,
            box2,
        }
    }

    /// Posts `body` as the holder of `token`.
    async fn post(&self, token: &str, body: Vec<u8>) -> Reply {
        post(&self.central, token, body).await
    }

    /// GETs `path` as the admin, expecting 200.
    async fn read(&self, path: &str) -> Value {
        let reply = self.central.get(path).await;
        assert_eq!(reply.status, 200, "GET {path}: {:?}", reply.body);
        reply.body
    }

    /// Reads `path` as the admin and decodes it.
    async fn read_as<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        serde_json::from_value(self.read(path).await).unwrap()
    }

    /// The log's public key, as published.
    async fn log_key(&self) -> PublicKey {
        let key = self.read("/osc/v1/log/key").await;
        PublicKey::from_base64(key["publicKey"].as_str().unwrap()).unwrap()
    }

    /// Every entry of [`SITE`], as the query lists them.
    async fn entries(&self) -> Vec<Value> {
        let list = self.read(&format!("/osc/v1/sites/{SITE}/evidence")).await;
        list["items"].as_array().unwrap().clone()
    }
}

/// Posts `body` to `central` as the holder of `token`.
async fn post(central: &TestCentral, token: &str, body: Vec<u8>) -> Reply {
    central
        .send_as(
            token,
            Method::POST,
            "/osc/v1/evidence",
            None,
            Some(("application/json", body)),
        )
        .await
}

/// A complete, valid bundle of `site` (chain fields are the builder's).
fn bundle(site: &str, host: &str, runbook: &str, outcome: Outcome, end: DateTime<Utc>) -> Bundle {
    Bundle {
        version: BUNDLE_VERSION,
        bundle_id: uuid::Uuid::new_v4().to_string(),
        site_id: site.into(),
        host_id: host.into(),
        appliance: String::new(),
        seq: 0,
        prev_hash: Sha256Digest::ZERO,
        deployment_mode: DeploymentMode::Direct,
        reseller_id: None,
        timestamp_start: end - Duration::seconds(2),
        timestamp_end: end,
        policy_version: "1".into(),
        ruleset_hash: "sha256:aa".into(),
        runbook: runbook.into(),
        runbook_digest: "sha256:aa".into(),
        controls: vec![Control {
            framework: "HIPAA".into(),
            id: "164.312(b)".into(),
        }],
        nixos_revision: "24.11".into(),
        ntp_offset_ms: Some(3),
        check: format!("{runbook} holds"),
        pre_state: Observation {
            verdict: if outcome == Outcome::Pass {
                Verdict::Compliant
            } else {
                Verdict::Drifted
            },
            exit_code: Some(0),
            output_sha256: Sha256Digest::of(b"out"),
        },
        action_taken: vec![ActionStep {
            step: "remediate".into(),
            exit_code: Some(0),
            output_sha256: Sha256Digest::of(b""),
            duration_ms: 10,
        }],
        post_state: None,
        rollback_available: false,
        outcome,
        check_output: CappedOutput::capture(b"out"),
    }
}

/// The log index a 201 or 200 receipt names.
fn log_index(reply: &Reply) -> u64 {
    reply.body["logIndex"].as_u64().unwrap()
}

/// The machine-readable cause `field` of a refusal.
fn cause<'a>(reply: &'a Reply, field: &str) -> &'a str {
    reply.body["details"]["causes"]
        .as_array()
        .and_then(|causes| causes.iter().find(|cause| cause["field"] == field))
        .and_then(|cause| cause["message"].as_str())
        .unwrap_or_else(|| panic!("no cause {field} in {:?}", reply.body))
}

/// Runs a test on SQLite and on PostgreSQL.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $test() { super::$test(super::Backend::Sqlite).await; })*
        }
        mod postgres {
            $(#[tokio::test] async fn $test() { super::$test(super::Backend::Postgres).await; })*
        }
    };
}

on_both_backends!(
    appends_answer_retries_idempotently_and_refuse_forks_and_gaps,
    bad_envelopes_are_refused_and_leave_the_chain_intact,
);

async fn appends_answer_retries_idempotently_and_refuse_forks_and_gaps(backend: Backend) {
    let mut fleet = Fleet::start(backend).await;
    let now = Utc::now();
    let token = fleet.box1.token.clone();
    let first = fleet.box1.next("web-1", "ssh", Outcome::Pass, now);
    let created = fleet.post(&token, first.clone()).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(
        (log_index(&created), &created.body["duplicate"]),
        (0, &json!(false))
    );

    let again = fleet.post(&token, first).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(
        (log_index(&again), &again.body["duplicate"]),
        (0, &json!(true))
    );

    // A fork: another history from seq 1, its seq 2 differs from the one stored next.
    let head_after_first = fleet.box1.chain.head();
    let second = fleet.box1.next("web-1", "ssh", Outcome::Healed, now);
    assert_eq!(log_index(&fleet.post(&token, second).await), 1);
    let mut fork = ChainBuilder::new("box-1", Signer::from_seed(&[1; 32]), head_after_first);
    let forked = fork
        .append(bundle(SITE, "web-1", "ssh", Outcome::Failed, now))
        .unwrap();
    let refused = fleet
        .post(&token, serde_json::to_vec(&forked).unwrap())
        .await;
    assert_eq!(refused.status, 409, "{:?}", refused.body);
    assert_eq!(refused.body["reason"], "Conflict");
    assert_eq!(cause(&refused, "seq"), "already used by other bytes");
    let alerts = fleet.read("/osc/v1/evidence/alerts").await;
    let alerts = alerts["items"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        (alerts[0]["seq"].as_u64(), &alerts[0]["reason"]),
        (Some(2), &json!("seq-reused"))
    );
    assert_eq!(
        alerts[0]["receivedPayloadHash"],
        Sha256Digest::of(&forked.payload).to_string()
    );
    let not_admin = fleet
        .central
        .send_as(&token, Method::GET, "/osc/v1/evidence/alerts", None, None)
        .await;
    assert_eq!(not_admin.status, 403, "alerts are for admins");

    // A gap: seq 3 is never sent; seq 4 is refused with the seq to resend from.
    let third = fleet.box1.next("web-2", "ssh", Outcome::Pass, now);
    let fourth = fleet.box1.next("web-2", "ssh", Outcome::Pass, now);
    let gap = fleet.post(&token, fourth.clone()).await;
    assert_eq!(gap.status, 409, "{:?}", gap.body);
    assert_eq!(cause(&gap, "expectedSeq"), "3");
    assert_eq!(fleet.post(&token, third).await.status, 201);
    assert_eq!(log_index(&fleet.post(&token, fourth).await), 3);
    assert_eq!(fleet.entries().await.len(), 4, "refusals stored nothing");

    // The log: a signed head, an inclusion proof per bundle, consistency between sizes.
    let key = fleet.log_key().await;
    let head: SignedTreeHead = fleet.read_as("/osc/v1/log/tree-head").await;
    head.verify(&key).unwrap();
    assert_eq!(head.size, 4);
    for entry in fleet.entries().await {
        let bundle_id = entry["bundleId"].as_str().unwrap();
        let answer = fleet
            .read(&format!("/osc/v1/log/inclusion?bundle={bundle_id}&size=4"))
            .await;
        let proof: InclusionProof = serde_json::from_value(answer["proof"].clone()).unwrap();
        let leaf = merkle::leaf_hash(answer["envelope"].as_str().unwrap().as_bytes());
        proof.verify(&leaf, &head.root).unwrap();
        assert_eq!(answer["logIndex"], entry["logIndex"]);
    }
    let by_index = fleet.read("/osc/v1/log/inclusion?index=2").await;
    let old: SignedTreeHead = serde_json::from_value(by_index["treeHead"].clone()).unwrap();
    assert_eq!(
        old,
        SignedTreeHead {
            timestamp: old.timestamp,
            signature: old.signature,
            ..head.clone()
        }
    );
    let proof: ConsistencyProof = fleet.read_as("/osc/v1/log/consistency?from=2&to=4").await;
    let two = fleet.read("/osc/v1/log/inclusion?index=0&size=2").await;
    let two: SignedTreeHead = serde_json::from_value(two["treeHead"].clone()).unwrap();
    two.verify(&key).unwrap();
    proof.verify(&two.root, &head.root).unwrap();
    let beyond = fleet
        .central
        .get("/osc/v1/log/consistency?from=2&to=9")
        .await;
    assert_eq!(beyond.status, 400, "{:?}", beyond.body);
    fleet.central.stop().await;
}

async fn bad_envelopes_are_refused_and_leave_the_chain_intact(backend: Backend) {
    let mut fleet = Fleet::start(backend).await;
    let now = Utc::now();
    let token = fleet.box1.token.clone();
    let accepted = fleet.box1.next("web-1", "ssh", Outcome::Pass, now);
    assert_eq!(fleet.post(&token, accepted.clone()).await.status, 201);
    let before = fleet.entries().await;
    let head = fleet.box1.chain.head();
    let next_bundle = || bundle(SITE, "web-1", "ssh", Outcome::Healed, now);
    // The next link, built without moving the real chain.
    let link = |signer: Signer, bundle: Bundle| {
        let envelope = ChainBuilder::new("box-1", signer, head)
            .append(bundle)
            .unwrap();
        serde_json::to_vec(&envelope).unwrap()
    };
    let own_key = || Signer::from_seed(&[1; 32]);

    let tampered = {
        let mut envelope: Envelope =
            serde_json::from_slice(&link(own_key(), next_bundle())).unwrap();
        let text = String::from_utf8(envelope.payload).unwrap();
        envelope.payload = text.replace("\"healed\"", "\"pass\"").into_bytes();
        serde_json::to_vec(&envelope).unwrap()
    };
    let invalid = {
        // Signed by the right key, but the bundle breaks the schema's rules.
        let mut bundle = next_bundle();
        (bundle.appliance, bundle.seq) = ("box-1".into(), 2);
        bundle.prev_hash = head.unwrap().payload_hash;
        bundle.ruleset_hash = "sha256:other".into();
        serde_json::to_vec(&dsse::sign(PAYLOAD_TYPE, bundle.to_payload(), &own_key())).unwrap()
    };
    let bad_base64 = {
        let mut value: Value = serde_json::from_slice(&link(own_key(), next_bundle())).unwrap();
        value["payload"] = json!("not*base64!");
        serde_json::to_vec(&value).unwrap()
    };
    let truncated = {
        let whole = link(own_key(), next_bundle());
        whole[..whole.len() / 2].to_vec()
    };
    let oversize = {
        let mut value: Value = serde_json::from_slice(&link(own_key(), next_bundle())).unwrap();
        value["padding"] = json!("x".repeat(300 * 1024));
        serde_json::to_vec(&value).unwrap()
    };
    let future = link(
        own_key(),
        Bundle {
            timestamp_start: now + Duration::minutes(9),
            timestamp_end: now + Duration::minutes(10),
            ..next_bundle()
        },
    );
    let ancient = link(
        own_key(),
        Bundle {
            timestamp_start: now - Duration::days(40),
            timestamp_end: now - Duration::days(40),
            ..next_bundle()
        },
    );
    let other_site = link(
        own_key(),
        bundle(OTHER_SITE, "web-1", "ssh", Outcome::Pass, now),
    );
    // box-2's own valid first envelope, and one that box-2 signs for box-1's site.
    let box2_envelope = fleet.box2.next("pc-1", "ssh", Outcome::Pass, now);
    let box2_token = fleet.box2.token.clone();
    let box2_claims_site1 = {
        let mut chain = ChainBuilder::new("box-2", Signer::from_seed(&[2; 32]), None);
        serde_json::to_vec(
            &chain
                .append(bundle(SITE, "web-1", "ssh", Outcome::Pass, now))
                .unwrap(),
        )
        .unwrap()
    };
    let readonly = fleet.central.token(Role::ReadOnly).await;

    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("tampered payload", &token, tampered, 403, "does not verify"),
        ("another key", &token, link(Signer::from_seed(&[7; 32]), next_bundle()), 403, "does not verify"),
        ("schema rule broken", &token, invalid, 422, "ruleset_hash"),
        ("bad base64", &token, bad_base64, 400, "not a DSSE envelope"),
        ("truncated", &token, truncated, 400, "not a DSSE envelope"),
        ("oversize", &token, oversize, 413, "the most accepted is"),
        ("timestamp in the future", &token, future, 422, "after central's clock"),
        ("timestamp far in the past", &token, ancient, 422, "before central's clock"),
        ("bundle of another site", &token, other_site, 403, "site_id"),
        ("another site's appliance's envelope, replayed", &token, box2_envelope.clone(), 403, "does not verify"),
        ("box-1's envelope replayed by box-2", &box2_token, accepted, 403, "does not verify"),
        ("box-2 claiming box-1's site", &box2_token, box2_claims_site1, 403, "site_id"),
        ("not an appliance", &readonly, link(own_key(), next_bundle()), 403, "only an enrolled appliance"),
    ];
    for (name, token, body, code, wording) in cases {
        let reply = fleet.post(token, body).await;
        assert_eq!(reply.status, code, "{name}: {:?}", reply.body);
        assert_eq!(reply.body["kind"], "Status", "{name}");
        let message = reply.body["message"].as_str().unwrap_or_default();
        assert!(message.contains(wording), "{name}: {message}");
        assert!(
            !message.contains("healed"),
            "{name}: no payload contents in messages: {message}"
        );
    }
    assert_eq!(fleet.entries().await, before, "nothing refused is stored");
    let head: SignedTreeHead = fleet.read_as("/osc/v1/log/tree-head").await;
    assert_eq!(head.size, 1);

    // The chain is intact: the real next link and box-2's own envelope are accepted.
    let next = fleet.box1.next("web-1", "ssh", Outcome::Healed, now);
    assert_eq!(log_index(&fleet.post(&token, next).await), 1);
    assert_eq!(fleet.post(&box2_token, box2_envelope).await.status, 201);
    fleet.central.stop().await;
}

#[tokio::test]
async fn queries_page_and_filter_and_hide_other_partners_sites() {
    let mut fleet = Fleet::start(Backend::Sqlite).await;
    let start = Utc::now() - Duration::hours(1);
    for n in 0..7 {
        let (host, outcome) = if n % 2 == 0 {
            ("web-1", Outcome::Pass)
        } else {
            ("web-2", Outcome::Failed)
        };
        let end = start + Duration::minutes(n);
        fleet.box1.append(&fleet.central, host, outcome, end).await;
    }
    fleet
        .box2
        .append(&fleet.central, "pc-1", Outcome::Pass, start)
        .await;
    let box2_token = fleet.box2.token.clone();

    let seqs = |list: &Value| -> Vec<u64> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["seq"].as_u64().unwrap())
            .collect()
    };
    let path = format!("/osc/v1/sites/{SITE}/evidence");
    assert_eq!(
        seqs(&fleet.read(&path).await),
        [1, 2, 3, 4, 5, 6, 7],
        "only the site's own"
    );
    assert_eq!(
        seqs(&fleet.read(&format!("{path}?host=web-2")).await),
        [2, 4, 6]
    );
    assert_eq!(
        seqs(
            &fleet
                .read(&format!("{path}?outcome=pass&runbook=ssh"))
                .await
        ),
        [1, 3, 5, 7]
    );
    let since = (start + Duration::minutes(2)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let until = (start + Duration::minutes(4)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let ranged = fleet
        .read(&format!(
            "{path}?since={}&until={}",
            since.replace('+', "%2B"),
            until.replace('+', "%2B")
        ))
        .await;
    assert_eq!(seqs(&ranged), [3, 4]);
    let mut pages = Vec::new();
    let mut next = format!("{path}?limit=3");
    loop {
        let page = fleet.read(&next).await;
        pages.push(seqs(&page));
        match page["continue"].as_str() {
            Some(token) => next = format!("{path}?limit=3&continue={token}"),
            None => break,
        }
    }
    assert_eq!(pages, [vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
    for bad in [
        "?limit=x",
        "?since=yesterday",
        "?continue=abc",
        "?hots=web-1",
    ] {
        assert_eq!(
            fleet.central.get(&format!("{path}{bad}")).await.status,
            400,
            "{bad}"
        );
    }

    // An operator of msp-2 sees clinic-2 only: clinic-1's evidence does not exist for it.
    let operator = fleet
        .central
        .token(Role::Operator {
            partners: ["msp-2".to_owned()].into(),
        })
        .await;
    let bundle_of_site1 = fleet.read(&path).await["items"][0]["bundleId"]
        .as_str()
        .unwrap()
        .to_owned();
    for hidden in [
        path.clone(),
        format!("{path}/export"),
        format!("/osc/v1/sites/{SITE}/compliance?at=2026-01-01T00:00:00Z"),
        format!("/osc/v1/log/inclusion?bundle={bundle_of_site1}"),
        "/osc/v1/log/inclusion?index=0".to_owned(),
    ] {
        let reply = fleet
            .central
            .send_as(&operator, Method::GET, &hidden, None, None)
            .await;
        assert_eq!(reply.status, 404, "{hidden}: {:?}", reply.body);
    }
    let own = fleet
        .central
        .send_as(
            &operator,
            Method::GET,
            &format!("/osc/v1/sites/{OTHER_SITE}/evidence"),
            None,
            None,
        )
        .await;
    assert_eq!(own.status, 200);
    assert_eq!(seqs(&own.body), [1]);
    // An appliance reads its own site's evidence, not another's.
    let reply = fleet
        .central
        .send_as(&box2_token, Method::GET, &path, None, None)
        .await;
    assert_eq!(reply.status, 404);
    fleet.central.stop().await;
}

#[tokio::test]
async fn an_export_verifies_offline_and_tampering_is_caught() {
    let mut fleet = Fleet::start(Backend::Sqlite).await;
    let start = Utc::now() - Duration::hours(3);
    let every_ten = |n: i64| start + Duration::minutes(10 * n);
    for n in 0..6 {
        let central = &fleet.central;
        fleet
            .box1
            .append(central, "web-1", Outcome::Pass, every_ten(n))
            .await;
        // Another site's entries interleave in the log.
        fleet
            .box2
            .append(central, "pc-1", Outcome::Pass, start)
            .await;
    }
    let key = fleet.log_key().await;
    let since = (start + Duration::minutes(15)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let export: EvidenceExport = fleet
        .read_as(&format!(
            "/osc/v1/sites/{SITE}/evidence/export?since={since}"
        ))
        .await;
    assert_eq!(export.entries.len(), 4, "seqs 3 to 6");
    assert_eq!(
        export.appliances["box-1"].start.map(|link| link.seq),
        Some(2)
    );
    let verified = verify_export(&export, &key, None).unwrap();
    assert_eq!(verified.heads["box-1"].unwrap().seq, 6);
    assert_eq!(verified.tree_size, 12);

    // box-1 is enrolled again with a new key and its chain goes on: seqs 7 and 8.
    let path = "/apis/osiriscare.net/v1alpha1/namespaces/clinic-1/appliances/box-1";
    let mut appliance = fleet.read(path).await;
    let new_key = Signer::from_seed(&[11; 32]);
    appliance["spec"]["enrollment"]["publicKey"] = json!(new_key.public_key().to_base64());
    assert_eq!(fleet.central.put(path, &appliance).await.status, 200);
    fleet.box1.chain = ChainBuilder::new("box-1", new_key, fleet.box1.chain.head());
    for n in 6..8 {
        let central = &fleet.central;
        fleet
            .box1
            .append(central, "web-1", Outcome::Pass, every_ten(n))
            .await;
    }

    // The whole chain verifies, each key from its seq, and its head extends the first export's.
    let whole: EvidenceExport = fleet
        .read_as(&format!("/osc/v1/sites/{SITE}/evidence/export"))
        .await;
    assert_eq!(whole.appliances["box-1"].start, None);
    let keys: Vec<u64> = whole.appliances["box-1"]
        .keys
        .iter()
        .map(|k| k.from_seq)
        .collect();
    assert_eq!(keys, [1, 7]);
    let proof: ConsistencyProof = fleet.read_as("/osc/v1/log/consistency?from=12&to=14").await;
    let known = KnownHead {
        head: &export.tree_head,
        proof: &proof,
    };
    let verified = verify_export(&whole, &key, Some(known)).unwrap();
    assert_eq!(verified.heads["box-1"].unwrap().seq, 8);

    let mut tampered = export.clone();
    let mut envelope: Envelope = serde_json::from_str(&tampered.entries[2].envelope).unwrap();
    envelope.payload = String::from_utf8(envelope.payload)
        .unwrap()
        .replace("\"pass\"", "\"failed\"")
        .into_bytes();
    tampered.entries[2].envelope = serde_json::to_string(&envelope).unwrap();
    assert!(
        verify_export(&tampered, &key, None).is_err(),
        "an altered envelope"
    );
    let mut dropped = export.clone();
    dropped.entries.remove(1);
    assert!(
        verify_export(&dropped, &key, None).is_err(),
        "a dropped envelope"
    );
    let other_log = Signer::from_seed(&[99; 32]).public_key();
    assert!(
        verify_export(&export, &other_log, None).is_err(),
        "another log's key"
    );
    fleet.central.stop().await;
}

#[tokio::test]
async fn compliance_at_a_past_moment_is_recomputed_from_the_log() {
    let mut fleet = Fleet::start(Backend::Sqlite).await;
    // Whole seconds, so that `at` written with milliseconds is exactly a result's end.
    let t1 = (Utc::now() - Duration::hours(3)).trunc_subsecs(0);
    let (t2, t3) = (t1 + Duration::minutes(5), t1 + Duration::minutes(10));
    for (host, outcome, at) in [
        ("web-1", Outcome::Pass, t1),
        ("web-1", Outcome::Failed, t2),
        ("web-1", Outcome::Healed, t3),
        ("web-2", Outcome::Pass, t3),
    ] {
        fleet.box1.append(&fleet.central, host, outcome, at).await;
    }
    let score_at = |at: DateTime<Utc>| {
        let path = format!(
            "/osc/v1/sites/{SITE}/compliance?at={}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        let fleet = &fleet;
        async move { fleet.read(&path).await }
    };
    let before = score_at(t1 - Duration::seconds(1)).await;
    assert_eq!(before["compliance"], json!({}), "no results: no score");
    assert_eq!(
        score_at(t1).await["compliance"]["HIPAA"],
        json!(1.0),
        "a result at exactly t1 counts"
    );
    let between = score_at(t2 + Duration::minutes(1)).await;
    assert_eq!(between["compliance"]["HIPAA"], json!(0.0));
    assert_eq!(between["counts"]["failing"], json!(1));
    let later = score_at(t3 + Duration::minutes(1)).await;
    assert_eq!(later["compliance"]["HIPAA"], json!(1.0));
    assert_eq!(
        (
            later["counts"]["compliant"].as_u64(),
            later["counts"]["hosts"].as_u64()
        ),
        (Some(2), Some(2))
    );
    // Two default intervals (15m) after t3 the results are stale: no answer, not compliant.
    let stale = score_at(t3 + Duration::minutes(31)).await;
    assert_eq!(stale["compliance"]["HIPAA"], json!(0.0));
    assert_eq!(stale["counts"]["noAnswer"], json!(2));
    let missing = fleet
        .central
        .get(&format!("/osc/v1/sites/{SITE}/compliance"))
        .await;
    assert_eq!(missing.status, 400);
    fleet.central.stop().await;
}

#[tokio::test]
async fn the_log_key_is_created_once_with_mode_0600() {
    let fleet = Fleet::start(Backend::Sqlite).await;
    let published = fleet.log_key().await;
    let path = fleet
        .central
        .ca()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("evidence-log.key");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = osc_central::evidence::load_or_create_key(path.parent().unwrap()).unwrap();
    assert_eq!(again.public_key(), published, "a restart keeps the key");
    fleet.central.stop().await;
}
