//! The example GitOps repo, `desired-state/`, loads and validates with the loader that `oscctl` and
//! central use, and holds what the pilot needs: both sites with their machines, a runbook library whose
//! every runbook evidences HIPAA, no secret anywhere, and shell scripts that parse.
//!
//! A failure here means a manifest in `desired-state/` is wrong (the message names the file and field),
//! or that a change to the model broke the example, which users copy.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use osc_crds::kinds::credential::CredentialType;
use osc_crds::kinds::host::{Host, TransportType};
use osc_crds::kinds::runbook::{Interpreter, Runbook};
use osc_crds::kinds::{Framework, Platform, Site};
use osc_crds::load::{Loaded, load_path};
use osc_crds::{AnyObject, Kind, selector};

/// The pilot sites, by name.
const SITES: [&str; 2] = ["smile-dental", "riverside-family-medicine"];

#[test]
fn the_whole_repo_loads_and_validates_without_a_single_problem() {
    // `load_path` decodes every manifest, validates each one defaulted, and then all of them together
    // (references between objects, duplicates); it returns every problem at once.
    let repo = Repo::load();
    let mut per_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    for loaded in &repo.objects {
        *per_kind.entry(loaded.object.kind()).or_default() += 1;
    }
    assert_eq!(
        per_kind,
        BTreeMap::from([
            (Kind::Site, 2),
            (Kind::Host, 13),
            (Kind::Appliance, 2),
            (Kind::Credential, 6),
            (Kind::Runbook, 23),
            (Kind::Release, 1),
            (Kind::Rollout, 1),
        ])
    );
}

#[test]
fn both_pilot_sites_exist_and_everything_namespaced_belongs_to_one_of_them() {
    let repo = Repo::load();
    let sites: BTreeSet<&str> = repo
        .sites()
        .map(|site| site.metadata.name.as_str())
        .collect();
    assert_eq!(sites, BTreeSet::from(SITES));

    for loaded in &repo.objects {
        let object = &loaded.object;
        if let Some(namespace) = object.namespace() {
            assert!(
                sites.contains(namespace),
                "{} {} at {} names site {namespace:?}, which does not exist",
                object.kind(),
                object.name(),
                loaded.location
            );
        }
    }
    for site in SITES {
        let appliances = repo
            .objects
            .iter()
            .filter(|l| {
                matches!(l.object, AnyObject::Appliance(_)) && l.object.namespace() == Some(site)
            })
            .count();
        assert_eq!(
            appliances, 1,
            "site {site} should have exactly one Appliance"
        );
        let platforms: BTreeSet<Platform> =
            repo.hosts_of(site).map(|host| host.spec.platform).collect();
        assert_eq!(
            platforms,
            BTreeSet::from([Platform::Linux, Platform::Windows, Platform::Appliance]),
            "site {site} should manage Linux servers, Windows machines and its own appliance"
        );
    }
}

#[test]
fn every_host_carries_the_labels_selection_relies_on_and_logs_in_with_a_credential_of_its_site() {
    let repo = Repo::load();
    let credentials: BTreeMap<(&str, &str), _> = repo
        .objects
        .iter()
        .filter_map(|l| match &l.object {
            AnyObject::Credential(c) => Some((
                (
                    c.metadata.namespace.as_deref().unwrap_or(""),
                    c.metadata.name.as_str(),
                ),
                c.spec.type_,
            )),
            _ => None,
        })
        .collect();
    for host in repo.hosts() {
        let name = host_name(host);
        for label in ["role", "os", "criticality"] {
            assert!(
                host.metadata.labels.contains_key(label),
                "host {name} has no {label:?} label"
            );
        }
        let transport = host.spec.transport.clone().unwrap_or_default();
        if host.spec.platform == Platform::Appliance {
            assert_eq!(transport.type_, Some(TransportType::Local), "host {name}");
            continue;
        }
        let reference = transport
            .credential_ref
            .as_deref()
            .unwrap_or_else(|| panic!("host {name} has no credentialRef"));
        let namespace = host.metadata.namespace.as_deref().unwrap_or("");
        let usable: &[CredentialType] = match host.spec.platform {
            Platform::Windows => &[CredentialType::Winrm],
            _ => &[CredentialType::SshKey, CredentialType::Password],
        };
        match credentials.get(&(namespace, reference)) {
            Some(type_) => assert!(
                usable.contains(type_),
                "host {name} logs in with {reference}, a {type_:?} credential"
            ),
            None => panic!("host {name} logs in with {reference}, which its site does not have"),
        }
    }
}

#[test]
fn the_runbook_library_has_the_expected_runbooks_per_platform_each_evidencing_hipaa() {
    let repo = Repo::load();
    let mut per_platform: BTreeMap<Platform, usize> = BTreeMap::new();
    for runbook in repo.runbooks() {
        let name = &runbook.metadata.name;
        *per_platform.entry(runbook.spec.platform).or_default() += 1;
        assert!(
            runbook
                .spec
                .controls
                .iter()
                .any(|c| c.framework == Framework::Hipaa && c.id.starts_with("164.")),
            "runbook {name} cites no HIPAA Security Rule control"
        );
        assert!(
            name.starts_with(&format!("{}-", runbook.spec.platform.as_str())),
            "runbook {name} should be named after its platform"
        );
        assert!(
            runbook
                .spec
                .steps()
                .all(|(_, step)| step.interpreter.runs_on(runbook.spec.platform)),
            "runbook {name} uses an interpreter its platform lacks"
        );
    }
    assert_eq!(
        per_platform,
        BTreeMap::from([
            (Platform::Linux, 18),
            (Platform::Windows, 4),
            (Platform::Appliance, 1)
        ])
    );
}

#[test]
fn every_file_is_named_after_the_object_in_it_and_sits_in_its_folder() {
    let repo = Repo::load();
    for loaded in &repo.objects {
        let path = repo.relative(loaded);
        let expected = match &loaded.object {
            AnyObject::Site(site) => format!("sites/{}/site.yaml", site.metadata.name),
            AnyObject::Host(host) => {
                format!(
                    "sites/{}/hosts/{}.yaml",
                    host.metadata.namespace.as_deref().unwrap_or("?"),
                    host.metadata.name
                )
            }
            AnyObject::Appliance(appliance) => {
                format!(
                    "sites/{}/appliance.yaml",
                    appliance.metadata.namespace.as_deref().unwrap_or("?")
                )
            }
            AnyObject::Credential(credential) => {
                format!(
                    "sites/{}/credentials.yaml",
                    credential.metadata.namespace.as_deref().unwrap_or("?")
                )
            }
            AnyObject::Runbook(runbook) => {
                let platform = runbook.spec.platform.as_str();
                let short = runbook
                    .metadata
                    .name
                    .strip_prefix(&format!("{platform}-"))
                    .unwrap_or("?");
                format!("runbooks/{platform}/{short}.yaml")
            }
            AnyObject::Release(release) => format!("releases/{}.yaml", release.metadata.name),
            AnyObject::Rollout(rollout) => format!("releases/{}.yaml", rollout.spec.release),
        };
        assert_eq!(path, expected, "at {}", loaded.location);
    }
}

#[test]
fn no_credential_carries_secret_data() {
    let repo = Repo::load();
    let mut credentials = 0;
    for loaded in &repo.objects {
        if let AnyObject::Credential(credential) = &loaded.object {
            credentials += 1;
            assert!(
                credential.spec.data.is_empty(),
                "Credential {} at {} has secret data: set it through the API, never in git",
                credential.metadata.name,
                loaded.location
            );
        }
    }
    assert_eq!(
        credentials, 6,
        "each site has an SSH, a WinRM and a webhook-signing credential"
    );
}

#[test]
fn every_host_is_selected_by_the_baseline_of_its_platform() {
    let repo = Repo::load();
    for site in repo.sites() {
        for host in repo.hosts_of(&site.metadata.name) {
            let selected = repo.selected_runbooks(site, host);
            let baseline: BTreeSet<&str> = repo
                .runbooks()
                .filter(|r| {
                    r.spec.platform == host.spec.platform
                        && r.metadata
                            .labels
                            .get("baseline")
                            .is_some_and(|v| v == "true")
                })
                .map(|r| r.metadata.name.as_str())
                .collect();
            assert!(
                !baseline.is_empty(),
                "no baseline runbook for {:?}",
                host.spec.platform
            );
            let missing: Vec<_> = baseline
                .iter()
                .filter(|name| !selected.contains_key(**name))
                .collect();
            assert!(
                missing.is_empty(),
                "host {} misses baseline runbooks {missing:?}",
                host_name(host)
            );
        }
    }
}

#[test]
fn every_firewall_selection_keeps_the_ssh_port_of_its_hosts_open() {
    // The runbook refuses to close SSH on the host itself; this catches the mistake in review instead.
    let repo = Repo::load();
    let mut firewalled = 0;
    for site in repo.sites() {
        for host in repo.hosts_of(&site.metadata.name) {
            let Some(params) = repo
                .selected_runbooks(site, host)
                .remove("linux-nftables-baseline")
            else {
                continue;
            };
            firewalled += 1;
            let port = host
                .spec
                .transport
                .as_ref()
                .and_then(|t| t.port)
                .unwrap_or(osc_crds::defaults::SSH_PORT);
            let allowed = params
                .get("ALLOW_TCP_PORTS")
                .map(String::as_str)
                .unwrap_or_default();
            assert!(
                allowed.split_whitespace().any(|p| p == port.to_string()),
                "host {} has SSH on {port} but its firewall allows only {allowed:?}",
                host_name(host)
            );
        }
    }
    assert_eq!(
        firewalled, 3,
        "the imaging server, the EHR database and the backup server are firewalled"
    );
}

#[test]
fn the_pilot_rollout_targets_both_pilot_sites_with_an_existing_release() {
    let repo = Repo::load();
    let rollouts: Vec<_> = repo
        .objects
        .iter()
        .filter_map(|l| match &l.object {
            AnyObject::Rollout(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(rollouts.len(), 1);
    let rollout = rollouts[0];
    let release = repo
        .objects
        .iter()
        .find_map(|l| match &l.object {
            AnyObject::Release(r) if r.metadata.name == rollout.spec.release => Some(r),
            _ => None,
        })
        .unwrap_or_else(|| {
            panic!(
                "rollout {} names a release that is not in the repo",
                rollout.metadata.name
            )
        });
    // Appliances refuse an unsigned release, so its rollout waits for the signing ceremony's pull request.
    assert!(
        !release.spec.signatures.is_empty() || rollout.spec.paused,
        "rollout {} delivers release {}, which is not signed yet: set paused: true until it is",
        rollout.metadata.name,
        release.metadata.name
    );
    let sites = selector::parse(rollout.spec.target.sites.as_deref().unwrap_or(""))
        .expect("validated selector");
    let targeted: BTreeSet<&str> = repo
        .sites()
        .filter(|s| sites.matches(&s.metadata.labels))
        .map(|s| s.metadata.name.as_str())
        .collect();
    assert_eq!(targeted, BTreeSet::from(SITES));
    assert!(
        rollout.spec.waves.len() >= 2,
        "a pilot rollout goes in waves"
    );
}

#[test]
fn every_shell_script_parses_and_passes_shellcheck() {
    let repo = Repo::load();
    let mut scripts = 0;
    for runbook in repo.runbooks() {
        for (step, script) in runbook.spec.steps() {
            let shell = match script.interpreter {
                Interpreter::Sh => "sh",
                Interpreter::Bash => "bash",
                // No PowerShell or Python parser on a Debian build machine; reviewers read those.
                Interpreter::Powershell | Interpreter::Python3 => continue,
            };
            scripts += 1;
            let what = format!("{}.{step}", runbook.metadata.name);
            run_on(&what, &[shell, "-n"], &script.script);
            run_on(
                &what,
                &["shellcheck", "--shell", shell, "--severity", "style", "-"],
                &script.script,
            );
        }
    }
    assert!(scripts >= 33, "only {scripts} shell scripts found");
}

/// Runs `command` with `script` on standard input and fails the test, with the tool's findings, unless
/// it exits 0.
fn run_on(what: &str, command: &[&str], script: &str) {
    let mut child = Command::new(command[0])
        .args(&command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); on Debian: apt-get install {}",
                command[0], command[0]
            )
        });
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())
        .expect("write script");
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "{what}: `{}` found problems:\n{}{}",
        command.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The loaded repo and questions about it.
struct Repo {
    /// Where `desired-state/` is.
    root: PathBuf,
    /// Every object, in file order.
    objects: Vec<Loaded>,
}

impl Repo {
    /// Loads `desired-state/`, failing the test with every problem the loader reports.
    fn load() -> Self {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = crate_dir
            .parent()
            .expect("crds/ is inside the workspace")
            .join("desired-state");
        match load_path(&root) {
            Ok(objects) => Self { root, objects },
            Err(errors) => panic!("desired-state/ has problems:\n{errors}"),
        }
    }

    /// The path of the file `loaded` came from, relative to the repo, with `/` separators.
    fn relative(&self, loaded: &Loaded) -> String {
        let path = Path::new(&loaded.location.source);
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/")
    }

    fn sites(&self) -> impl Iterator<Item = &Site> {
        self.objects.iter().filter_map(|l| match &l.object {
            AnyObject::Site(site) => Some(site),
            _ => None,
        })
    }

    fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.objects.iter().filter_map(|l| match &l.object {
            AnyObject::Host(host) => Some(host),
            _ => None,
        })
    }

    fn hosts_of<'a>(&'a self, site: &'a str) -> impl Iterator<Item = &'a Host> {
        self.hosts()
            .filter(move |host| host.metadata.namespace.as_deref() == Some(site))
    }

    fn runbooks(&self) -> impl Iterator<Item = &Runbook> {
        self.objects.iter().filter_map(|l| match &l.object {
            AnyObject::Runbook(runbook) => Some(runbook),
            _ => None,
        })
    }

    /// The runbooks `site` selects for `host`, each with the parameters its selection entry sets: the
    /// union of the entries whose host selector matches, restricted to runbooks of the host's platform.
    fn selected_runbooks(
        &self,
        site: &Site,
        host: &Host,
    ) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut selected = BTreeMap::new();
        for entry in &site.spec.runbooks {
            let hosts =
                selector::parse(entry.hosts.as_deref().unwrap_or("")).expect("validated selector");
            if !hosts.matches(&host.metadata.labels) {
                continue;
            }
            let runbooks = entry
                .selector
                .as_deref()
                .map(|s| selector::parse(s).expect("validated selector"));
            for runbook in self
                .runbooks()
                .filter(|r| r.spec.platform == host.spec.platform)
            {
                let by_name = entry.names.contains(&runbook.metadata.name);
                let by_label = runbooks
                    .as_ref()
                    .is_some_and(|s| s.matches(&runbook.metadata.labels));
                if by_name || by_label {
                    selected.insert(runbook.metadata.name.clone(), entry.params.clone());
                }
            }
        }
        selected
    }
}

/// `site/host`, for messages.
fn host_name(host: &Host) -> String {
    format!(
        "{}/{}",
        host.metadata.namespace.as_deref().unwrap_or("?"),
        host.metadata.name
    )
}
