//! The resource API against real servers on 127.0.0.1:0 over TLS: the behaviour suite runs on
//! SQLite and on PostgreSQL (`OSC_TEST_DATABASE_URL`); request parsing, discovery, OpenAPI and
//! tables, which no backend changes, run on SQLite.
//!
//! Every rejected request is followed by a snapshot of the whole store, which must equal the one
//! taken before: a refused write leaves nothing behind.

#[macro_use]
mod common;

use common::{Backend, TestCentral, collection_of, credential, host, path_of, rv, site};
use osc_crds::{AnyObject, Kind};
use reqwest::Method;
use serde_json::{Value, json};

const GROUP_VERSION: &str = "/apis/osiriscare.net/v1alpha1";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

on_every_backend!(
    create_get_update_list_delete_round_trip,
    a_stale_resource_version_is_a_conflict,
    generation_grows_with_spec_changes_only,
    status_and_spec_are_written_by_separate_endpoints,
    an_invalid_object_gets_every_problem_at_once,
    a_namespaced_object_needs_its_site,
    lists_select_by_labels_and_fields_and_page,
    finalizers_hold_a_deletion_until_they_are_removed,
    a_site_with_objects_cannot_be_deleted,
    delete_preconditions_and_dry_run_are_honoured,
    dry_run_writes_store_nothing,
    credential_secrets_are_never_returned_and_never_lost,
    concurrent_writers_never_lose_an_update,
);

/// Runs a test on SQLite only.
macro_rules! on_sqlite {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let central = crate::TestCentral::start(crate::Backend::Sqlite).await;
                    crate::$test(&central).await;
                    central.stop().await;
                }
            )*
        }
    };
}

on_sqlite!(
    malformed_requests_are_bad_requests_that_say_where,
    bodies_other_than_json_are_unsupported_media,
    unknown_paths_kinds_and_objects_are_not_found,
    discovery_describes_every_kind,
    openapi_v3_serves_every_schema_by_group_version_kind,
    every_kind_prints_as_a_table_with_its_columns,
    generate_name_gives_a_fresh_name,
    a_list_from_the_future_is_a_timeout_to_retry,
    store_sizes_reach_the_metrics,
);

// ---------------------------------------------------------------------------------------------
// Behaviour on both backends

async fn create_get_update_list_delete_round_trip(central: &TestCentral) {
    let created = central
        .create(&site("alpha", json!({"ring": "pilot"})))
        .await;
    let metadata = &created["metadata"];
    assert_eq!(metadata["generation"], 1);
    assert!(uuid::Uuid::parse_str(metadata["uid"].as_str().unwrap()).is_ok());
    assert!(
        metadata["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    // Defaults are applied and stored.
    assert_eq!(created["spec"]["healing"]["mode"], "enforce", "{created}");

    let path = path_of(&created);
    let got = central.get(&path).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, created);

    let mut changed = got.body.clone();
    changed["metadata"]["labels"]["ring"] = json!("early");
    let updated = central.put(&path, &changed).await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(updated.body["metadata"]["labels"]["ring"], "early");
    assert!(rv(&updated.body).parse::<i64>().unwrap() > rv(&created).parse::<i64>().unwrap());

    let list = central.get(&collection_of(&created)).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["kind"], "SiteList");
    assert_eq!(list.body["apiVersion"], "osiriscare.net/v1alpha1");
    assert_eq!(list.body["items"], json!([updated.body]));

    let deleted = central.delete(&path).await;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    assert_eq!(deleted.body["metadata"]["name"], "alpha");
    let gone = central.get(&path).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body["kind"], "Status");
    assert_eq!(gone.body["reason"], "NotFound");
    assert_eq!(
        gone.body["message"],
        r#"sites.osiriscare.net "alpha" not found"#
    );
}

async fn a_stale_resource_version_is_a_conflict(central: &TestCentral) {
    let created = central.create(&site("alpha", json!({}))).await;
    let path = path_of(&created);
    let mut first = created.clone();
    first["metadata"]["labels"] = json!({"ring": "pilot"});
    assert_eq!(central.put(&path, &first).await.status, 200);

    let before = central.snapshot().await;
    let mut stale = created.clone();
    stale["metadata"]["labels"] = json!({"ring": "stable"});
    let refused = central.put(&path, &stale).await;
    assert_eq!(refused.status, 409, "{:?}", refused.body);
    assert_eq!(refused.body["reason"], "Conflict");
    assert_eq!(
        refused.body["message"],
        "Operation cannot be fulfilled on sites.osiriscare.net \"alpha\": the object has been \
         modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(central.snapshot().await, before);
}

async fn generation_grows_with_spec_changes_only(central: &TestCentral) {
    central.create(&site("alpha", json!({}))).await;
    let created = central.create(&host("alpha", "web-1", json!({}))).await;
    let path = path_of(&created);
    assert_eq!(created["metadata"]["generation"], 1);

    let mut relabelled = created.clone();
    relabelled["metadata"]["labels"] = json!({"role": "web"});
    let relabelled = central.put(&path, &relabelled).await.body;
    assert_eq!(relabelled["metadata"]["generation"], 1, "{relabelled}");

    let mut moved = relabelled.clone();
    moved["spec"]["address"] = json!("10.0.0.6");
    let moved = central.put(&path, &moved).await.body;
    assert_eq!(moved["metadata"]["generation"], 2, "{moved}");

    let mut observed = moved.clone();
    observed["status"] = json!({"observedGeneration": 2});
    let observed = central.put(&format!("{path}/status"), &observed).await.body;
    assert_eq!(observed["metadata"]["generation"], 2, "{observed}");

    // Writing the same object again changes nothing, not even the resourceVersion.
    let again = central.put(&path, &observed).await.body;
    assert_eq!(again, observed);
}

async fn status_and_spec_are_written_by_separate_endpoints(central: &TestCentral) {
    central.create(&site("alpha", json!({}))).await;
    let mut with_status = host("alpha", "web-1", json!({}));
    with_status["status"] = json!({"observedGeneration": 7});
    let created = central.create(&with_status).await;
    assert_eq!(
        created.get("status"),
        None,
        "a create drops status: {created}"
    );
    let path = path_of(&created);

    // /status writes status and nothing else.
    let mut status_write = created.clone();
    status_write["status"] = json!({"observedGeneration": 1});
    status_write["spec"]["address"] = json!("10.9.9.9");
    status_write["metadata"]["labels"] = json!({"sneaked": "in"});
    let written = central.put(&format!("{path}/status"), &status_write).await;
    assert_eq!(written.status, 200, "{:?}", written.body);
    assert_eq!(written.body["status"], json!({"observedGeneration": 1}));
    assert_eq!(written.body["spec"], created["spec"]);
    assert_eq!(written.body["metadata"].get("labels"), None);

    // The object's endpoint writes everything but status.
    let mut spec_write = written.body.clone();
    spec_write["status"] = json!({"observedGeneration": 99});
    spec_write["spec"]["address"] = json!("10.0.0.8");
    let written = central.put(&path, &spec_write).await;
    assert_eq!(written.status, 200, "{:?}", written.body);
    assert_eq!(written.body["status"], json!({"observedGeneration": 1}));
    assert_eq!(written.body["spec"]["address"], "10.0.0.8");

    let status = central.get(&format!("{path}/status")).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body, written.body);
}

async fn an_invalid_object_gets_every_problem_at_once(central: &TestCentral) {
    let mut broken = site("Not_A_Label", json!({"bad key!": "x"}));
    broken["spec"]["maintenanceWindow"] =
        json!({"start": "25:00", "end": "04:00", "timezone": "Mars/Olympus"});
    broken["spec"]["partner"] = json!("");
    let mut expected = AnyObject::from_json(broken.clone()).unwrap();
    expected.apply_defaults();
    let expected = expected.validate().unwrap_err().0;
    assert!(
        expected.len() >= 4,
        "the example has several problems: {expected:?}"
    );

    let before = central.snapshot().await;
    let refused = central.post(&collection_of(&broken), &broken).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.body["reason"], "Invalid");
    assert_eq!(refused.body["details"]["kind"], "Site");
    assert_eq!(refused.body["details"]["group"], "osiriscare.net");
    let causes = refused.body["details"]["causes"].as_array().unwrap();
    assert_eq!(causes.len(), expected.len(), "{causes:?}");
    for (cause, error) in causes.iter().zip(&expected) {
        assert_eq!(cause["field"], error.path.as_str());
        assert_eq!(cause["reason"], error.reason.status_cause());
        assert!(
            cause["message"].as_str().unwrap().contains(&error.message),
            "{cause} lacks {error:?}"
        );
    }
    let message = refused.body["message"].as_str().unwrap();
    assert!(
        message.starts_with(r#"Site.osiriscare.net "Not_A_Label" is invalid: ["#),
        "{message}"
    );
    assert!(
        message.contains("spec.maintenanceWindow.start"),
        "{message}"
    );
    assert_eq!(central.snapshot().await, before);
}

async fn a_namespaced_object_needs_its_site(central: &TestCentral) {
    let before = central.snapshot().await;
    let orphan = host("nowhere", "web-1", json!({}));
    let refused = central.post(&collection_of(&orphan), &orphan).await;
    assert_eq!(refused.status, 404, "{:?}", refused.body);
    assert_eq!(refused.body["reason"], "NotFound");
    assert_eq!(
        refused.body["message"],
        r#"sites.osiriscare.net "nowhere" not found"#
    );
    assert_eq!(refused.body["details"]["kind"], "sites");

    // The namespace in the body must be the one in the URL.
    central.create(&site("alpha", json!({}))).await;
    let before_mismatch = central.snapshot().await;
    let elsewhere = host("beta", "web-1", json!({}));
    let refused = central
        .post(
            &format!("{GROUP_VERSION}/namespaces/alpha/hosts"),
            &elsewhere,
        )
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("does not match the namespace sent on the request"),
        "{:?}",
        refused.body
    );
    assert_eq!(central.snapshot().await, before_mismatch);
    assert_ne!(before, before_mismatch);

    // Without a namespace in the body, the URL's is used.
    let mut unplaced = host("alpha", "web-1", json!({}));
    unplaced["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    let created = central
        .post(
            &format!("{GROUP_VERSION}/namespaces/alpha/hosts"),
            &unplaced,
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["metadata"]["namespace"], "alpha");
}

async fn lists_select_by_labels_and_fields_and_page(central: &TestCentral) {
    for name in ["alpha", "beta"] {
        central.create(&site(name, json!({}))).await;
    }
    let hosts = [
        ("alpha", "db-1", "db"),
        ("alpha", "web-1", "web"),
        ("alpha", "web-2", "web"),
        ("beta", "web-1", "web"),
        ("beta", "ws-1", "workstation"),
    ];
    for (site, name, role) in hosts {
        central
            .create(&host(site, name, json!({"role": role})))
            .await;
    }
    let names = |reply: &common::Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{reply:?}"))
            .iter()
            .map(|item| {
                format!(
                    "{}/{}",
                    item["metadata"]["namespace"].as_str().unwrap(),
                    item["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    let cases = [
        (
            "/hosts",
            vec![
                "alpha/db-1",
                "alpha/web-1",
                "alpha/web-2",
                "beta/web-1",
                "beta/ws-1",
            ],
        ),
        ("/namespaces/beta/hosts", vec!["beta/web-1", "beta/ws-1"]),
        (
            "/hosts?labelSelector=role%3Dweb",
            vec!["alpha/web-1", "alpha/web-2", "beta/web-1"],
        ),
        (
            "/hosts?labelSelector=role+notin+(web,db)",
            vec!["beta/ws-1"],
        ),
        (
            "/namespaces/alpha/hosts?labelSelector=role!%3Dweb",
            vec!["alpha/db-1"],
        ),
        (
            "/hosts?fieldSelector=metadata.name%3Dweb-1",
            vec!["alpha/web-1", "beta/web-1"],
        ),
        (
            "/hosts?fieldSelector=metadata.namespace%3Dbeta,metadata.name!%3Dweb-1",
            vec!["beta/ws-1"],
        ),
    ];
    for (query, expected) in cases {
        let reply = central.get(&format!("{GROUP_VERSION}{query}")).await;
        assert_eq!(reply.status, 200, "{query}: {reply:?}");
        assert_eq!(names(&reply), expected, "{query}");
    }

    // Pages of two, selected, carry everything once, in order.
    let mut seen = Vec::new();
    let mut next = format!("{GROUP_VERSION}/hosts?limit=2&labelSelector=role");
    loop {
        let page = central.get(&next).await;
        assert_eq!(page.status, 200, "{page:?}");
        let items = names(&page);
        assert!(items.len() <= 2, "{items:?}");
        seen.extend(items);
        match page.body["metadata"]["continue"].as_str() {
            Some(token) => {
                next = format!("{GROUP_VERSION}/hosts?limit=2&labelSelector=role&continue={token}")
            }
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "alpha/db-1",
            "alpha/web-1",
            "alpha/web-2",
            "beta/web-1",
            "beta/ws-1"
        ]
    );
}

async fn finalizers_hold_a_deletion_until_they_are_removed(central: &TestCentral) {
    central.create(&site("alpha", json!({}))).await;
    let mut guarded = host("alpha", "web-1", json!({}));
    guarded["metadata"]["finalizers"] = json!(["osiriscare.net/evidence"]);
    let created = central.create(&guarded).await;
    let path = path_of(&created);

    let deleting = central.delete(&path).await;
    assert_eq!(deleting.status, 200, "{:?}", deleting.body);
    assert!(deleting.body["metadata"]["deletionTimestamp"].is_string());
    let still = central.get(&path).await;
    assert_eq!(still.status, 200);
    assert_eq!(still.body, deleting.body);

    // A second delete changes nothing; no finalizer can be added now.
    assert_eq!(central.delete(&path).await.body, deleting.body);
    let before = central.snapshot().await;
    let mut more = still.body.clone();
    more["metadata"]["finalizers"] = json!(["osiriscare.net/evidence", "other.example/x"]);
    let refused = central.put(&path, &more).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(
        refused.body["details"]["causes"][0]["field"],
        "metadata.finalizers"
    );
    assert_eq!(central.snapshot().await, before);

    // Removing the last finalizer completes the deletion.
    let mut released = still.body.clone();
    released["metadata"]["finalizers"] = json!([]);
    let done = central.put(&path, &released).await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(central.get(&path).await.status, 404);
}

async fn a_site_with_objects_cannot_be_deleted(central: &TestCentral) {
    central.create(&site("alpha", json!({}))).await;
    let web = central.create(&host("alpha", "web-1", json!({}))).await;
    let secret = central
        .create(&credential("alpha", "linux-ssh", "pw"))
        .await;
    let site_path = format!("{GROUP_VERSION}/sites/alpha");

    let before = central.snapshot().await;
    let refused = central.delete(&site_path).await;
    assert_eq!(refused.status, 409, "{:?}", refused.body);
    let message = refused.body["message"].as_str().unwrap();
    assert!(message.contains("hosts, credentials"), "{message}");
    assert_eq!(central.snapshot().await, before);

    for object in [&web, &secret] {
        assert_eq!(central.delete(&path_of(object)).await.status, 200);
    }
    assert_eq!(central.delete(&site_path).await.status, 200);
}

async fn delete_preconditions_and_dry_run_are_honoured(central: &TestCentral) {
    let created = central.create(&site("alpha", json!({}))).await;
    let path = path_of(&created);
    let refusals = [
        json!({"preconditions": {"resourceVersion": "999"}}),
        json!({"preconditions": {"uid": "00000000-0000-4000-8000-000000000000"}}),
    ];
    let before = central.snapshot().await;
    for options in refusals {
        let refused = central.delete_with(&path, &options).await;
        assert_eq!(refused.status, 409, "{options}: {:?}", refused.body);
        assert_eq!(refused.body["reason"], "Conflict");
    }
    let dry = central
        .delete_with(
            &path,
            &json!({"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]}),
        )
        .await;
    assert_eq!(dry.status, 200, "{:?}", dry.body);
    assert_eq!(central.snapshot().await, before);

    let exact = json!({
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "propagationPolicy": "Background",
        "preconditions": {"resourceVersion": rv(&created), "uid": created["metadata"]["uid"]},
    });
    assert_eq!(central.delete_with(&path, &exact).await.status, 200);
    assert_eq!(central.get(&path).await.status, 404);
}

async fn dry_run_writes_store_nothing(central: &TestCentral) {
    let created = central.create(&site("alpha", json!({}))).await;
    let before = central.snapshot().await;

    let candidate = site("beta", json!({}));
    let dry = central
        .post(
            &format!("{}?dryRun=All", collection_of(&candidate)),
            &candidate,
        )
        .await;
    assert_eq!(dry.status, 201, "{:?}", dry.body);
    assert_eq!(dry.body["metadata"]["generation"], 1);

    let mut changed = created.clone();
    changed["spec"]["partner"] = json!("msp-2");
    let dry = central
        .put(&format!("{}?dryRun=All", path_of(&created)), &changed)
        .await;
    assert_eq!(dry.status, 200, "{:?}", dry.body);
    assert_eq!(dry.body["spec"]["partner"], "msp-2");
    assert_eq!(central.snapshot().await, before);

    let refused = central
        .post(
            &format!("{}?dryRun=Some", collection_of(&candidate)),
            &candidate,
        )
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(central.snapshot().await, before);
}

async fn credential_secrets_are_never_returned_and_never_lost(central: &TestCentral) {
    const SECRET: &str = "correct-horse-battery-staple";
    central.create(&site("alpha", json!({}))).await;
    let created = central
        .create(&credential("alpha", "linux-ssh", SECRET))
        .await;
    let path = path_of(&created);
    let stored_secret = || central.stored_secret("alpha", "linux-ssh", "password");
    // People see which keys are set, not their values.
    assert_eq!(
        central.get(&path).await.body["metadata"]["annotations"]["osiriscare.net/data-keys"],
        "password"
    );

    let mut answers = vec![created.clone()];
    answers.push(central.get(&path).await.body);
    answers.push(central.get(&collection_of(&created)).await.body);
    answers.push(
        central
            .get_as(
                &format!("{}?includeObject=Object", collection_of(&created)),
                TABLE,
            )
            .await
            .body,
    );
    answers.push(
        central
            .get(&format!("{GROUP_VERSION}/credentials"))
            .await
            .body,
    );

    // Reading and writing back (as kubectl edit does) keeps the secret.
    let mut relabelled = central.get(&path).await.body;
    relabelled["metadata"]["labels"] = json!({"rotated": "no"});
    let written = central.put(&path, &relabelled).await;
    assert_eq!(written.status, 200, "{:?}", written.body);
    answers.push(written.body);
    assert_eq!(stored_secret().await, SECRET);

    // A write with data replaces the secret.
    let mut rotated = central.get(&path).await.body;
    rotated["spec"]["data"] = json!({"password": "new-secret-value"});
    let written = central.put(&path, &rotated).await;
    assert_eq!(written.status, 200, "{:?}", written.body);
    answers.push(written.body);
    assert_eq!(stored_secret().await, "new-secret-value");

    answers.push(central.delete(&path).await.body);
    for answer in answers {
        let text = answer.to_string();
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("new-secret-value"), "{text}");
        assert!(!text.contains("\"data\""), "{text}");
    }
}

async fn concurrent_writers_never_lose_an_update(central: &TestCentral) {
    const WRITERS: usize = 8;
    const INCREMENTS: usize = 5;
    let created = central.create(&site("alpha", json!({}))).await;
    let path = path_of(&created);
    let count = |object: &Value| -> usize {
        object["metadata"]["annotations"]["count"]
            .as_str()
            .map_or(0, |text| text.parse().unwrap())
    };
    let conflicts = std::sync::atomic::AtomicUsize::new(0);
    let writer = || async {
        for _ in 0..INCREMENTS {
            loop {
                let mut object = central.get(&path).await.body;
                let next = count(&object) + 1;
                object["metadata"]["annotations"] = json!({"count": next.to_string()});
                match central.put(&path, &object).await.status {
                    200 => break,
                    409 => {
                        conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    other => panic!("unexpected status {other}"),
                }
            }
        }
    };
    futures::future::join_all((0..WRITERS).map(|_| writer())).await;
    let last = central.get(&path).await.body;
    assert_eq!(count(&last), WRITERS * INCREMENTS, "{last}");
    // The writers did race: otherwise this test proves nothing.
    assert!(conflicts.into_inner() > 0);
}

// ---------------------------------------------------------------------------------------------
// Requests and documents (SQLite)

async fn malformed_requests_are_bad_requests_that_say_where(central: &TestCentral) {
    central.create(&site("alpha", json!({}))).await;
    let before = central.snapshot().await;
    let sites = format!("{GROUP_VERSION}/sites");
    let mut unknown_field = site("beta", json!({}));
    unknown_field["spec"]["partnr"] = json!("x");
    let mut wrong_type = site("beta", json!({}));
    wrong_type["spec"]["displayName"] = json!(7);
    let mut wrong_kind = site("beta", json!({}));
    wrong_kind["kind"] = json!("Host");
    let cases: Vec<(Method, String, Vec<u8>, &str)> = vec![
        (
            Method::POST,
            sites.clone(),
            b"{\"apiVersion\": \"osiriscare.net/v1alpha1\",\n \"kind\": }".to_vec(),
            "line 2 column 10",
        ),
        (
            Method::POST,
            sites.clone(),
            serde_json::to_vec(&unknown_field).unwrap(),
            "spec.partnr: unknown field `partnr`",
        ),
        (
            Method::POST,
            sites.clone(),
            serde_json::to_vec(&wrong_type).unwrap(),
            "spec.displayName: invalid type: integer `7`, expected a string",
        ),
        (
            Method::POST,
            sites.clone(),
            serde_json::to_vec(&wrong_kind).unwrap(),
            "does not match the resource in the URL",
        ),
        (
            Method::PUT,
            format!("{sites}/alpha"),
            serde_json::to_vec(&site("beta", json!({}))).unwrap(),
            "the name of the object (beta) does not match the name on the URL (alpha)",
        ),
        (
            Method::GET,
            format!("{sites}?labelSelector=role%3D%3D(x"),
            Vec::new(),
            "at position 6",
        ),
        (
            Method::GET,
            format!("{sites}?fieldSelector=spec.partner%3Dx"),
            Vec::new(),
            "\"spec.partner\" is not a known field selector",
        ),
        (
            Method::GET,
            format!("{sites}?limit=ten"),
            Vec::new(),
            "limit",
        ),
        (
            Method::GET,
            format!("{sites}?continue=garbage"),
            Vec::new(),
            "invalid continue token",
        ),
    ];
    for (method, path, body, expected) in cases {
        let body = (!body.is_empty()).then_some(("application/json", body));
        let reply = central.send(method.clone(), &path, None, body).await;
        assert_eq!(reply.status, 400, "{method} {path}: {:?}", reply.body);
        assert_eq!(reply.body["kind"], "Status");
        assert_eq!(reply.body["reason"], "BadRequest");
        let message = reply.body["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }
    assert_eq!(central.snapshot().await, before);
}

async fn bodies_other_than_json_are_unsupported_media(central: &TestCentral) {
    let before = central.snapshot().await;
    let yaml = "apiVersion: osiriscare.net/v1alpha1\nkind: Site\nmetadata:\n  name: a\n";
    for content_type in [
        "application/yaml",
        "text/plain",
        "application/x-www-form-urlencoded",
    ] {
        let reply = central
            .send(
                Method::POST,
                &format!("{GROUP_VERSION}/sites"),
                None,
                Some((content_type, yaml.as_bytes().to_vec())),
            )
            .await;
        assert_eq!(reply.status, 415, "{content_type}: {:?}", reply.body);
        assert_eq!(reply.body["reason"], "UnsupportedMediaType");
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "{:?}",
            reply.body
        );
    }
    let not_acceptable = central
        .get_as(
            &format!("{GROUP_VERSION}/sites"),
            "application/vnd.kubernetes.protobuf",
        )
        .await;
    assert_eq!(not_acceptable.status, 406, "{not_acceptable:?}");
    assert_eq!(central.snapshot().await, before);
}

async fn unknown_paths_kinds_and_objects_are_not_found(central: &TestCentral) {
    let cases = [
        (format!("{GROUP_VERSION}/pods"), None),
        (format!("{GROUP_VERSION}/namespaces/alpha/sites"), None),
        (format!("{GROUP_VERSION}/hosts/web-1"), None),
        ("/api/v1/namespaces/alpha/events".to_owned(), None),
        ("/apis/apps/v1/deployments".to_owned(), None),
        (
            format!("{GROUP_VERSION}/runbooks/linux-auditd"),
            Some(r#"runbooks.osiriscare.net "linux-auditd" not found"#),
        ),
        (
            format!("{GROUP_VERSION}/namespaces/alpha/hosts/web-1/status"),
            Some(r#"hosts.osiriscare.net "web-1" not found"#),
        ),
    ];
    for (path, message) in cases {
        let reply = central.get(&path).await;
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        assert_eq!(reply.body["kind"], "Status", "{path}");
        assert_eq!(reply.body["reason"], "NotFound", "{path}");
        let expected = message.unwrap_or("the server could not find the requested resource");
        assert_eq!(reply.body["message"], expected, "{path}");
    }
    let not_allowed = central
        .send(
            Method::DELETE,
            &format!("{GROUP_VERSION}/sites"),
            None,
            None,
        )
        .await;
    assert_eq!(not_allowed.status, 405, "{not_allowed:?}");
    assert_eq!(not_allowed.body["reason"], "MethodNotAllowed");
}

async fn discovery_describes_every_kind(central: &TestCentral) {
    let core = central.get("/api").await;
    assert_eq!(
        (core.status, &core.body["kind"]),
        (200, &json!("APIVersions"))
    );
    assert_eq!(core.body["versions"], json!([]));

    let groups = central.get("/apis").await.body;
    assert_eq!(groups["kind"], "APIGroupList");
    assert_eq!(groups["groups"][0]["name"], "osiriscare.net");
    assert_eq!(
        groups["groups"][0]["preferredVersion"]["groupVersion"],
        "osiriscare.net/v1alpha1"
    );

    let resources = central.get(GROUP_VERSION).await.body;
    assert_eq!(resources["kind"], "APIResourceList");
    assert_eq!(resources["groupVersion"], "osiriscare.net/v1alpha1");
    for kind in Kind::ALL {
        let entry = resources["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|resource| resource["name"] == kind.plural())
            .unwrap_or_else(|| panic!("{kind} is listed"));
        assert_eq!(entry["kind"], kind.as_str());
        assert_eq!(entry["singularName"], kind.singular());
        assert_eq!(entry["namespaced"], kind.namespaced());
        assert_eq!(entry["shortNames"], json!(kind.short_names()));
        assert!(entry["verbs"].as_array().unwrap().contains(&json!("watch")));
    }

    let version = central.get("/version").await.body;
    assert_eq!(version["major"], "1");
    assert!(version["gitVersion"].as_str().unwrap().starts_with("v1."));
}

async fn openapi_v3_serves_every_schema_by_group_version_kind(central: &TestCentral) {
    let index = central.get("/openapi/v3").await;
    assert_eq!(index.status, 200);
    let url = index.body["paths"]["apis/osiriscare.net/v1alpha1"]["serverRelativeURL"]
        .as_str()
        .expect("the group-version is indexed");
    assert!(url.contains("?hash="), "{url}");
    let document = central.get(url).await;
    assert_eq!(document.status, 200);
    let schemas = document.body["components"]["schemas"].as_object().unwrap();
    for kind in Kind::ALL {
        let schema = schemas
            .values()
            .find(|schema| schema["x-kubernetes-group-version-kind"][0]["kind"] == kind.as_str())
            .unwrap_or_else(|| panic!("{kind}"));
        assert_eq!(
            schema["properties"]["spec"],
            osc_crds::schema::structural_schema(kind)["properties"]["spec"]
        );
    }
}

async fn every_kind_prints_as_a_table_with_its_columns(central: &TestCentral) {
    let tree = common::repo_path("desired-state");
    let loaded = osc_crds::load::load_path(&tree).expect("desired-state/ loads");
    // Sites first: the other namespaced objects need them.
    let mut objects: Vec<Value> = loaded.into_iter().map(|l| l.object.to_json()).collect();
    objects.sort_by_key(|object| object["kind"] != "Site");
    for object in &objects {
        central.create(object).await;
    }
    for kind in Kind::ALL {
        let expected = objects
            .iter()
            .filter(|object| object["kind"] == kind.as_str())
            .count();
        assert!(expected > 0, "desired-state/ has a {kind}");
        let reply = central
            .get_as(&format!("{GROUP_VERSION}/{}", kind.plural()), TABLE)
            .await;
        assert_eq!(reply.status, 200, "{kind}: {reply:?}");
        let table = &reply.body;
        assert_eq!(table["kind"], "Table", "{kind}");
        assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
        let columns: Vec<&str> = table["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|column| column["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns.first(), Some(&"Name"), "{kind}");
        assert_eq!(columns.last(), Some(&"Age"), "{kind}");
        let rows = table["rows"].as_array().unwrap();
        assert_eq!(rows.len(), expected, "{kind}");
        for row in rows {
            assert_eq!(row["cells"].as_array().unwrap().len(), columns.len());
            assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
            let age = row["cells"][columns.len() - 1].as_str().unwrap();
            assert!(age.ends_with('s'), "just created: {age}");
        }
    }
    let sites = central
        .get_as(&format!("{GROUP_VERSION}/sites/smile-dental"), TABLE)
        .await
        .body;
    assert_eq!(sites["rows"][0]["cells"][0], "smile-dental");
    assert_eq!(sites["rows"][0]["cells"][1], "bluelake-msp", "Partner");
}

async fn generate_name_gives_a_fresh_name(central: &TestCentral) {
    let mut template = site("ignored", json!({}));
    template["metadata"] = json!({"generateName": "clinic-"});
    let first = central.create(&template).await;
    let second = central.create(&template).await;
    let name = first["metadata"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("clinic-") && name.len() == "clinic-".len() + 5,
        "{name}"
    );
    assert_ne!(first["metadata"]["name"], second["metadata"]["name"]);
}

async fn a_list_from_the_future_is_a_timeout_to_retry(central: &TestCentral) {
    let reply = central
        .get(&format!("{GROUP_VERSION}/sites?resourceVersion=999999"))
        .await;
    assert_eq!(reply.status, 504, "{reply:?}");
    assert_eq!(reply.body["reason"], "Timeout");
    assert_eq!(
        reply.body["details"]["causes"][0]["reason"],
        "ResourceVersionTooLarge"
    );
    let now = central.get(&format!("{GROUP_VERSION}/sites")).await.body;
    let current = now["metadata"]["resourceVersion"].as_str().unwrap();
    let reply = central
        .get(&format!("{GROUP_VERSION}/sites?resourceVersion={current}"))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

async fn store_sizes_reach_the_metrics(central: &TestCentral) {
    let sample = |text: &str, series: &str| -> Option<String> {
        text.lines().find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')
                .map(str::to_owned)
        })
    };
    let scrape = || async {
        let response = central
            .client
            .get(central.url("/metrics"))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    };
    central.create(&site("alpha", json!({}))).await;
    central.create(&site("beta", json!({}))).await;
    central.create(&host("alpha", "web-1", json!({}))).await;
    let text = scrape().await;
    assert_eq!(
        sample(&text, r#"osc_store_objects{resource="sites"}"#).as_deref(),
        Some("2"),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"osc_store_objects{resource="hosts"}"#).as_deref(),
        Some("1"),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"osc_store_objects{resource="rollouts"}"#).as_deref(),
        Some("0"),
        "{text}"
    );

    central.delete(&format!("{GROUP_VERSION}/sites/beta")).await;
    let text = scrape().await;
    assert_eq!(
        sample(&text, r#"osc_store_objects{resource="sites"}"#).as_deref(),
        Some("1"),
        "{text}"
    );
}
