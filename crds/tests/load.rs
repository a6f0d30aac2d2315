//! Loading manifests: every error class with its exact place, multi-document offsets, JSON, directory
//! walks, duplicates and the aggregation of all problems into one report.

use std::fs;
use std::path::Path;

use osc_crds::load::{Loaded, load_path, load_paths, load_str};
use osc_crds::{AnyObject, Kind};

const SITE: &str = "\
apiVersion: osiriscare.net/v1alpha1
kind: Site
metadata:
  name: smile-dental
spec:
  displayName: Smile Dental
  partner: acme-msp
";

const CREDENTIAL: &str = "\
apiVersion: osiriscare.net/v1alpha1
kind: Credential
metadata:
  name: admin
  namespace: smile-dental
spec:
  type: password
  username: administrator
";

const HOST: &str = "\
apiVersion: osiriscare.net/v1alpha1
kind: Host
metadata:
  name: fileserver
  namespace: smile-dental
spec:
  address: 10.0.0.5
  platform: linux
  transport:
    type: ssh
    credentialRef: admin
";

/// The messages of a failed load, one string per problem, in report order.
fn problems(result: Result<Vec<Loaded>, osc_crds::load::LoadErrors>) -> Vec<String> {
    match result {
        Ok(objects) => panic!("expected errors, loaded {} objects", objects.len()),
        Err(errors) => errors.errors().iter().map(ToString::to_string).collect(),
    }
}

/// Kind, name and document line of each loaded object.
fn summary(objects: &[Loaded]) -> Vec<(Kind, String, usize)> {
    objects
        .iter()
        .map(|loaded| {
            let name = loaded.object.metadata().name.clone();
            (loaded.object.kind(), name, loaded.location.line)
        })
        .collect()
}

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn multi_document_yaml_loads_every_object_with_its_first_line() {
    let text = format!("# the practice\n---\n{SITE}---\n---\n{CREDENTIAL}---\n# a host\n{HOST}");
    let objects = load_str("site.yaml", &text).unwrap();
    assert_eq!(
        summary(&objects),
        [
            (Kind::Site, "smile-dental".to_owned(), 3),
            (Kind::Credential, "admin".to_owned(), 12),
            (Kind::Host, "fileserver".to_owned(), 22),
        ]
    );
    assert!(
        objects
            .iter()
            .all(|loaded| loaded.location.source == "site.yaml")
    );
}

#[test]
fn decoding_error_in_the_third_document_has_its_absolute_file_position() {
    let host = HOST.replace("    credentialRef: admin", "    prot: 22");
    let text = format!("{SITE}---\n{CREDENTIAL}---\n{host}");
    // Lines: Site 1-7, `---` 8, Credential 9-16, `---` 17, Host 18-28; `prot` is the host's line 11.
    assert_eq!(
        problems(load_str("hosts.yaml", &text)),
        [
            "hosts.yaml:28:5: Host \"smile-dental/fileserver\": spec.transport: unknown field `prot`, \
             expected one of `type`, `port`, `credentialRef`"
        ]
    );
}

#[test]
fn header_problems_name_the_document_line_and_what_is_allowed() {
    let cases = [
        (
            "kind: Site\nmetadata: {name: a}\n",
            "x.yaml:1: apiVersion is missing; OsirisCare objects use apiVersion: osiriscare.net/v1alpha1",
        ),
        (
            "apiVersion: v1\nkind: Site\n",
            "x.yaml:1: apiVersion \"v1\" is not served here; OsirisCare objects use osiriscare.net/v1alpha1",
        ),
        (
            "apiVersion: osiriscare.net/v1alpha1\nkind: Pod\n",
            "x.yaml:1: unknown kind \"Pod\"; expected one of Site, Host, Appliance, Credential, Runbook, \
             Release, Rollout (apiVersion osiriscare.net/v1alpha1) or List",
        ),
        (
            "apiVersion: osiriscare.net/v1alpha1\nkind: [Site]\n",
            "x.yaml:1: kind is missing; expected one of Site, Host, Appliance, Credential, Runbook, \
             Release, Rollout (apiVersion osiriscare.net/v1alpha1) or List",
        ),
        (
            "- just\n- a list\n",
            "x.yaml:1: expected an object (a mapping with apiVersion, kind, metadata and spec), found a sequence",
        ),
        (
            "---\n\n# comment\nhello\n",
            "x.yaml:4: expected an object (a mapping with apiVersion, kind, metadata and spec), found a string",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            problems(load_str("x.yaml", text)),
            [expected],
            "for {text:?}"
        );
    }
}

#[test]
fn yaml_syntax_error_is_reported_once_and_stops_the_file() {
    // serde_yaml repeats a syntax error for every later document forever; the loader must stop.
    let text = format!("{SITE}---\nspec: [unclosed\n---\n{HOST}");
    assert_eq!(
        problems(load_str("broken.yaml", &text)),
        [
            "broken.yaml:10:1: did not find expected ',' or ']', while parsing a flow sequence at line 9 column 7"
        ]
    );
}

#[test]
fn unknown_anchor_is_reported_without_panicking() {
    // Regression: decoding past an unknown anchor makes serde_yaml panic ("unexpected end of mapping").
    let text = format!("{SITE}---\nspec: *nowhere\n---\n{HOST}");
    assert_eq!(
        problems(load_str("a.yaml", &text)),
        ["a.yaml:9:7: unknown anchor"]
    );
}

#[test]
fn empty_documents_and_empty_files_load_nothing() {
    for text in ["", "\n\n", "# only a comment\n", "---\n---\n", "~\n"] {
        assert!(
            load_str("empty.yaml", text).unwrap().is_empty(),
            "for {text:?}"
        );
    }
    assert!(load_str("empty.json", " \n").unwrap().is_empty());
}

#[test]
fn json_object_loads_and_its_errors_carry_position_and_field_path() {
    let json = r#"
{
  "apiVersion": "osiriscare.net/v1alpha1",
  "kind": "Host",
  "metadata": {"name": "fileserver", "namespace": "smile-dental"},
  "spec": {"platform": "linux", "transport": {"type": "ssh", "prot": 22}}
}"#;
    // serde_json places an unknown field just after its key, serde_yaml at its start.
    assert_eq!(
        problems(load_str("host.json", json)),
        [
            "host.json:6:67: Host \"smile-dental/fileserver\": spec.transport.prot: unknown field `prot`, \
             expected one of `type`, `port`, `credentialRef`"
        ]
    );

    let site = load_str("site.json", &format!("\n\n{}", yaml_to_json(SITE))).unwrap();
    assert_eq!(summary(&site), [(Kind::Site, "smile-dental".to_owned(), 3)]);
}

#[test]
fn json_syntax_error_has_its_position() {
    assert_eq!(
        problems(load_str("bad.json", "{\n  \"kind\": \"Site\",\n}")),
        ["bad.json:3:1: trailing comma"]
    );
}

#[test]
fn list_documents_load_each_item_and_check_each_header() {
    let list = r#"{
  "apiVersion": "v1",
  "kind": "List",
  "items": [
    {"apiVersion": "osiriscare.net/v1alpha1", "kind": "Site",
     "metadata": {"name": "smile-dental"}, "spec": {"displayName": "Smile", "partner": "acme"}},
    {"apiVersion": "osiriscare.net/v1alpha1", "kind": "Site",
     "metadata": {"name": "bright-clinic"}, "spec": {"displayName": "Bright", "partner": "acme"}}
  ]
}"#;
    let objects = load_str("sites.json", list).unwrap();
    assert_eq!(
        summary(&objects),
        [
            (Kind::Site, "smile-dental".to_owned(), 1),
            (Kind::Site, "bright-clinic".to_owned(), 1)
        ]
    );
    assert_eq!(objects[1].list_item, Some(1));

    let yaml = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: osiriscare.net/v1alpha1\n  kind: Sight\n- apiVersion: osiriscare.net/v1alpha1\n  kind: Site\n  metadata: {name: a}\n  spec: {displayName: A, partner: p, colour: red}\n";
    assert_eq!(
        problems(load_str("list.yaml", yaml)),
        [
            "list.yaml:1: unknown kind \"Sight\"; expected one of Site, Host, Appliance, Credential, Runbook, \
             Release, Rollout (apiVersion osiriscare.net/v1alpha1) or List",
            "list.yaml:9:38: Site \"a\": items[1].spec: unknown field `colour`, expected one of \
             `displayName`, `partner`, `deploymentMode`, `resellerId`, `maintenanceWindow`, `healing`, \
             `runbooks`, `frameworks`, `exceptions`, `notifications`",
        ]
    );
}

#[test]
fn directory_walk_is_recursive_sorted_and_skips_hidden_and_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "sites/smile-dental/site.yaml", SITE);
    write(root, "sites/smile-dental/hosts/fileserver.yml", HOST);
    write(
        root,
        "sites/smile-dental/credentials.json",
        &yaml_to_json(CREDENTIAL),
    );
    write(root, "sites/smile-dental/README.md", "not a manifest: {{{");
    write(root, "sites/.drafts/broken.yaml", "kind: [");
    write(root, "sites/smile-dental/.hidden.yaml", "kind: [");

    let objects = load_path(root).unwrap();
    let files: Vec<String> = objects
        .iter()
        .map(|loaded| {
            Path::new(&loaded.location.source)
                .strip_prefix(root)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        files,
        [
            "sites/smile-dental/credentials.json",
            "sites/smile-dental/hosts/fileserver.yml",
            "sites/smile-dental/site.yaml",
        ]
    );
}

#[test]
fn a_file_named_explicitly_loads_whatever_its_extension() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "site.manifest", SITE);
    let objects = load_path(dir.path().join("site.manifest")).unwrap();
    assert_eq!(
        summary(&objects),
        [(Kind::Site, "smile-dental".to_owned(), 1)]
    );
}

#[test]
fn missing_path_is_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let errors = problems(load_path(&missing));
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with(&format!("{}: cannot read: ", missing.display())),
        "{}",
        errors[0]
    );
}

#[test]
fn duplicates_across_files_name_both_places() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", SITE);
    write(dir.path(), "b/again.yaml", &format!("---\n{SITE}"));
    let a = dir.path().join("a.yaml").display().to_string();
    let b = dir.path().join("b/again.yaml").display().to_string();
    assert_eq!(
        problems(load_path(dir.path())),
        [format!(
            "{b}:2: Site \"smile-dental\" is already defined at {a}:1; define each object once"
        )]
    );

    // The same name in another namespace is no duplicate.
    let smile = format!("{SITE}---\n{CREDENTIAL}---\n{HOST}");
    let bright = smile.replace("smile-dental", "bright-clinic");
    let objects = load_str("x.yaml", &format!("{smile}---\n{bright}")).unwrap();
    assert_eq!(objects.len(), 6);
}

#[test]
fn problems_of_all_files_are_reported_together_sorted_by_place() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "b.yaml",
        &HOST.replace("  platform: linux", "  platform: linux\n  colour: red"),
    );
    write(
        dir.path(),
        "a.yaml",
        &format!("{SITE}---\napiVersion: v2\nkind: Site\n"),
    );
    write(dir.path(), "c.json", "[1, 2]");
    let path = |name: &str| dir.path().join(name).display().to_string();

    let errors = load_paths([dir.path()]).unwrap_err();
    let lines: Vec<String> = errors.to_string().lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            format!(
                "{}:9: apiVersion \"v2\" is not served here; OsirisCare objects use osiriscare.net/v1alpha1",
                path("a.yaml")
            ),
            format!(
                "{}:9:3: Host \"smile-dental/fileserver\": spec: unknown field `colour`, expected one of \
                 `address`, `platform`, `transport`",
                path("b.yaml")
            ),
            format!(
                "{}:1: expected an object (a mapping with apiVersion, kind, metadata and spec), found a \
                 sequence",
                path("c.json")
            ),
        ]
    );
}

#[test]
fn rule_violations_name_the_object_line_and_field() {
    let site = SITE.replace(
        "  partner: acme-msp",
        "  partner: acme-msp\n  deploymentMode: reseller",
    );
    let host = HOST.replace("10.0.0.5", "not an address!");
    let text = format!("{site}---\n{CREDENTIAL}---\n{host}");
    assert_eq!(
        problems(load_str("site.yaml", &text)),
        [
            "site.yaml:1: Site \"smile-dental\": spec.resellerId: Required value: deploymentMode reseller \
             needs the reseller's id in resellerId",
            "site.yaml:19: Host \"smile-dental/fileserver\": spec.address: Invalid value: \"not an address!\": \
             must be an IP address or a DNS host name (letters, digits, '-' and '.'), e.g. ehr01.clinic.local \
             or 10.0.0.5",
        ]
    );
}

#[test]
fn broken_references_are_reported_at_the_referring_object() {
    let host = HOST.replace("credentialRef: admin", "credentialRef: root");
    let text = format!("{SITE}---\n{CREDENTIAL}---\n{host}");
    assert_eq!(
        problems(load_str("site.yaml", &text)),
        [
            "site.yaml:18: Host \"smile-dental/fileserver\": spec.transport.credentialRef: Not found: \
             \"root\": no Credential of this name in site smile-dental"
        ]
    );
}

#[test]
fn references_are_not_checked_when_a_document_failed_to_decode() {
    // The credential fails to decode; its absence must not also be reported as a broken reference.
    let credential = CREDENTIAL.replace("  username:", "  usernme:");
    let text = format!("{SITE}---\n{credential}---\n{HOST}");
    assert_eq!(
        problems(load_str("site.yaml", &text)),
        [
            "site.yaml:16:3: Credential \"smile-dental/admin\": spec: unknown field `usernme`, expected one \
             of `type`, `username`, `data`"
        ]
    );
}

#[test]
fn validation_runs_on_defaults_but_objects_come_back_as_written() {
    let text = format!("{SITE}---\n{CREDENTIAL}---\n{HOST}");
    let objects = load_str("site.yaml", &text).unwrap();
    let AnyObject::Site(site) = &objects[0].object else {
        panic!("first object is the site");
    };
    // `deploymentMode` has a default; it was not written, so it is not in the loaded object.
    assert_eq!(site.spec.deployment_mode, None);
}

/// The same manifest as JSON, for files that must be JSON.
fn yaml_to_json(yaml: &str) -> String {
    let value: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
    serde_json::to_string_pretty(&value).unwrap()
}
