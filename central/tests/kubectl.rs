//! The real `kubectl` against a real server: discovery, tables, YAML, selectors, describe,
//! explain, apply of the whole example repo, and delete. kubectl talks TLS with the generated CA
//! (`certificate-authority` in its kubeconfig) and sends a bearer token, which any value passes
//! until authentication is built. Its discovery and OpenAPI cache goes to the test's folder.

mod common;

use common::{Backend, TestCentral, host, site};
use osc_crds::Kind;
use serde_json::{Value, json};

/// The example GitOps repo's path, as kubectl is given it.
fn desired_state() -> String {
    common::repo_path("desired-state").display().to_string()
}

/// The pilot sites' Site manifests.
fn site_manifests() -> Vec<String> {
    ["smile-dental", "riverside-family-medicine"]
        .map(|site| format!("{}/sites/{site}/site.yaml", desired_state()))
        .to_vec()
}

/// The non-empty lines of kubectl's output, split into columns.
fn rows(output: &str) -> Vec<Vec<String>> {
    output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn api_resources_lists_every_kind() {
    let central = TestCentral::start(Backend::Sqlite).await;
    let output = central
        .kubectl_ok(&["api-resources", "--api-group=osiriscare.net"])
        .await;
    let table = rows(&output);
    assert_eq!(
        table[0],
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"],
        "{output}"
    );
    for kind in Kind::ALL {
        let row = table
            .iter()
            .find(|row| row[0] == kind.plural())
            .unwrap_or_else(|| panic!("{kind} missing in\n{output}"));
        assert_eq!(
            row[1..],
            [
                kind.short_names().join(","),
                "osiriscare.net/v1alpha1".to_owned(),
                kind.namespaced().to_string(),
                kind.as_str().to_owned(),
            ],
            "{output}"
        );
    }
    central.stop().await;
}

#[tokio::test]
async fn get_prints_the_printer_columns_yaml_and_selections() {
    let central = TestCentral::start(Backend::Sqlite).await;
    central
        .create(&site("alpha", json!({"ring": "pilot"})))
        .await;
    central
        .create(&site("beta", json!({"ring": "stable"})))
        .await;

    let output = central.kubectl_ok(&["get", "sites"]).await;
    let table = rows(&output);
    assert_eq!(
        table[0],
        [
            "NAME",
            "PARTNER",
            "READY",
            "COMPLIANT",
            "APPLIANCEONLINE",
            "HOSTS",
            "AGE"
        ],
        "{output}"
    );
    assert_eq!(table.len(), 3, "{output}");
    // No status yet: the condition and count cells are empty; the age is in seconds.
    assert_eq!(table[1].len(), 3, "{output}");
    assert_eq!(table[1][..2], ["alpha", "msp-1"], "{output}");
    assert!(table[1][2].ends_with('s'), "{output}");

    let selected = central.kubectl_ok(&["get", "st", "-l", "ring=pilot"]).await;
    let selected_rows = rows(&selected);
    assert_eq!(selected_rows.len(), 2, "{selected}");
    assert_eq!(selected_rows[1][0], "alpha", "{selected}");

    let yaml = central
        .kubectl_ok(&["get", "site", "alpha", "-o", "yaml"])
        .await;
    let object: Value = serde_yaml::from_str(&yaml).expect("kubectl prints YAML");
    assert_eq!(object["kind"], "Site");
    assert_eq!(object["metadata"]["name"], "alpha");
    assert_eq!(object["metadata"]["generation"], 1);
    assert_eq!(object["spec"]["partner"], "msp-1");

    let missing = central.kubectl(&["get", "site", "nowhere"]).await;
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains(r#"sites.osiriscare.net "nowhere" not found"#),
        "{stderr}"
    );
    central.stop().await;
}

#[tokio::test]
async fn describe_shows_a_host() {
    let central = TestCentral::start(Backend::Sqlite).await;
    central.create(&site("alpha", json!({}))).await;
    central
        .create(&host("alpha", "web-1", json!({"role": "web"})))
        .await;
    let output = central
        .kubectl_ok(&["describe", "host", "web-1", "-n", "alpha"])
        .await;
    for expected in [
        "Name:         web-1",
        "Namespace:    alpha",
        "role=web",
        "API Version:  osiriscare.net/v1alpha1",
        "Kind:         Host",
        "Address:",
        "10.0.0.5",
        "Credential Ref:",
    ] {
        assert!(
            output.contains(expected),
            "{expected:?} missing in\n{output}"
        );
    }
    central.stop().await;
}

#[tokio::test]
async fn explain_reads_the_openapi_schema() {
    let central = TestCentral::start(Backend::Sqlite).await;
    let output = central.kubectl_ok(&["explain", "site.spec"]).await;
    for expected in [
        "GROUP:      osiriscare.net",
        "KIND:       Site",
        "VERSION:    v1alpha1",
        "FIELD: spec <Object>",
        "partner\t<string> -required-",
        "maintenanceWindow\t<Object>",
    ] {
        assert!(
            output.contains(expected),
            "{expected:?} missing in\n{output}"
        );
    }
    let nested = central
        .kubectl_ok(&["explain", "host.spec.transport"])
        .await;
    assert!(nested.contains("credentialRef"), "{nested}");
    central.stop().await;
}

#[tokio::test]
async fn apply_creates_the_example_repo_then_finds_it_unchanged_and_delete_removes_it() {
    let central = TestCentral::start(Backend::Sqlite).await;
    let tree = desired_state();
    let expected = osc_crds::load::load_path(&tree).expect("desired-state/ loads");

    // As with namespaces in Kubernetes, a site's objects need the site: apply the sites first.
    let sites = site_manifests();
    let mut first = vec!["apply"];
    for manifest in &sites {
        first.extend(["-f", manifest]);
    }
    let output = central.kubectl_ok(&first).await;
    assert_eq!(output.matches(" created").count(), 2, "{output}");

    let output = central.kubectl_ok(&["apply", "-R", "-f", &tree]).await;
    assert_eq!(
        output.matches(" created").count(),
        expected.len() - 2,
        "{output}"
    );
    for loaded in &expected {
        let object = &loaded.object;
        let stored = central.get(&common::path_of(&object.to_json())).await;
        assert_eq!(stored.status, 200, "{} {}", object.kind(), object.name());
        // kubectl records what it applied, for the next apply's three-way diff.
        assert!(
            stored.body["metadata"]["annotations"]
                ["kubectl.kubernetes.io/last-applied-configuration"]
                .is_string(),
            "{}",
            stored.body
        );
    }

    // Nothing changed: a second apply writes nothing. kubectl still sends a (no-op) patch, and
    // says "configured", for objects whose lists the server completed with defaults (a Site's
    // syslog facility, a Rollout's waves) or normalised (`expires` in UTC): a merge patch
    // replaces a list whole. The server finds the patched object equal to the stored one and
    // stores nothing.
    let version = || async {
        central
            .get("/apis/osiriscare.net/v1alpha1/sites")
            .await
            .body["metadata"]["resourceVersion"]
            .clone()
    };
    let before = version().await;
    let output = central.kubectl_ok(&["apply", "-R", "-f", &tree]).await;
    let unchanged = output.matches(" unchanged").count();
    let configured = output.matches(" configured").count();
    assert_eq!(unchanged + configured, expected.len(), "{output}");
    assert_eq!(
        version().await,
        before,
        "a re-apply wrote something:\n{output}"
    );

    let hosts = central
        .kubectl_ok(&["get", "hosts", "-A", "-l", "role=domain-controller"])
        .await;
    let table = rows(&hosts);
    assert_eq!(table.len(), 3, "{hosts}");
    assert_eq!(table[0][..3], ["NAMESPACE", "NAME", "ADDRESS"], "{hosts}");

    // Deleting the tree in file order removes each site's objects before the site.
    let output = central.kubectl_ok(&["delete", "-R", "-f", &tree]).await;
    assert_eq!(
        output.matches(" deleted").count(),
        expected.len(),
        "{output}"
    );
    for kind in Kind::ALL {
        let left = central
            .get(&format!("/apis/osiriscare.net/v1alpha1/{}", kind.plural()))
            .await;
        assert_eq!(left.body["items"], json!([]), "{kind}");
    }
    central.stop().await;
}

#[tokio::test]
async fn apply_reports_every_problem_of_an_invalid_manifest() {
    let central = TestCentral::start(Backend::Sqlite).await;
    let folder = tempfile::tempdir().unwrap();
    let manifest = folder.path().join("bad-site.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: osiriscare.net/v1alpha1\nkind: Site\nmetadata:\n  name: bad\nspec:\n  \
         displayName: Bad\n  partner: msp-1\n  maintenanceWindow:\n    start: \"25:00\"\n    \
         end: \"04:00\"\n    timezone: Mars/Olympus\n",
    )
    .unwrap();
    let output = central
        .kubectl(&["apply", "-f", &manifest.display().to_string()])
        .await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        // kubectl rewords the Status message from its causes.
        r#"The Site "bad" is invalid"#,
        "spec.maintenanceWindow.start",
        "spec.maintenanceWindow.timezone",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected:?} missing in\n{stderr}"
        );
    }

    // An unknown field is refused by the server's strict decoding.
    std::fs::write(
        &manifest,
        "apiVersion: osiriscare.net/v1alpha1\nkind: Site\nmetadata:\n  name: bad\nspec:\n  \
         displayName: Bad\n  partner: msp-1\n  partnr: typo\n",
    )
    .unwrap();
    let output = central
        .kubectl(&["apply", "-f", &manifest.display().to_string()])
        .await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("partnr"), "{stderr}");
    assert_eq!(
        central
            .get("/apis/osiriscare.net/v1alpha1/sites")
            .await
            .body["items"],
        json!([])
    );
    central.stop().await;
}
