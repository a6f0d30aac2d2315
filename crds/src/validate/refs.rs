//! Rules across objects: every reference names an object that exists and fits.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{Errors, FieldError, FieldErrorReason, Path};
use crate::kinds::credential::CredentialType;
use crate::kinds::host::TransportType;
use crate::kinds::{AnyObject, Credential, Host, Kind, Runbook, Site};
use crate::selector::{self, Selector};

/// A problem with one object of a set, naming the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectError {
    /// The object's kind.
    pub kind: Kind,
    /// The object's namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
    /// The problem, with its path inside the object.
    pub error: FieldError,
}

impl fmt::Display for ObjectError {
    /// `Host clinic-a/web1: spec.transport.credentialRef: Not found: "ssh": …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}: {}", self.kind, self.name, self.error),
            None => write!(f, "{} {}: {}", self.kind, self.name, self.error),
        }
    }
}

impl std::error::Error for ObjectError {}

/// Checks the references between `objects`, taken as a complete set (a whole GitOps repo, or everything
/// central stores): namespaces name Sites; credentialRefs and webhook secretRefs name Credentials of a
/// fitting type in the same site; rollouts name Releases; selections and exceptions name Runbooks and
/// Hosts that exist; a runbook named for some hosts has their platform; runbook parameters are declared
/// and given; no object appears twice.
///
/// Objects whose own fields are invalid (see [`AnyObject::validate`]) are checked as far as they can be.
pub fn validate_references(objects: &[AnyObject]) -> Vec<ObjectError> {
    let index = Index::new(objects);
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for object in objects {
        let mut errors = Errors::default();
        let identity = (object.kind(), object.namespace(), object.name());
        if !seen.insert(identity) {
            errors.push(
                &Path::root("metadata").field("name"),
                FieldErrorReason::Duplicate,
                Some(object.name()),
                format!(
                    "another {} has the same name{}",
                    object.kind(),
                    in_site(object.namespace())
                ),
            );
        }
        if object.kind().namespaced() {
            check_namespace(&index, object.namespace(), &mut errors);
        }
        match object {
            AnyObject::Site(site) => check_site(&index, site, &mut errors),
            AnyObject::Host(host) => check_host(&index, host, &mut errors),
            AnyObject::Rollout(rollout) => {
                if !rollout.spec.release.is_empty()
                    && !index.releases.contains(rollout.spec.release.as_str())
                {
                    errors.push(
                        &Path::root("spec").field("release"),
                        FieldErrorReason::NotFound,
                        Some(&rollout.spec.release),
                        "no Release has this name; create it first or fix the name",
                    );
                }
            }
            AnyObject::Appliance(_)
            | AnyObject::Credential(_)
            | AnyObject::Runbook(_)
            | AnyObject::Release(_) => {}
        }
        out.extend(errors.0.into_iter().map(|error| ObjectError {
            kind: object.kind(),
            namespace: object.namespace().map(str::to_owned),
            name: object.name().to_owned(),
            error,
        }));
    }
    out
}

/// The objects of a set, by what references look up.
struct Index<'a> {
    sites: BTreeSet<&'a str>,
    /// Hosts by namespace.
    hosts: BTreeMap<&'a str, Vec<&'a Host>>,
    /// Credentials by (namespace, name).
    credentials: BTreeMap<(&'a str, &'a str), &'a Credential>,
    runbooks: BTreeMap<&'a str, &'a Runbook>,
    releases: BTreeSet<&'a str>,
}

impl<'a> Index<'a> {
    fn new(objects: &'a [AnyObject]) -> Self {
        let mut index = Index {
            sites: BTreeSet::new(),
            hosts: BTreeMap::new(),
            credentials: BTreeMap::new(),
            runbooks: BTreeMap::new(),
            releases: BTreeSet::new(),
        };
        for object in objects {
            let namespace = object.namespace().unwrap_or_default();
            match object {
                AnyObject::Site(o) => {
                    index.sites.insert(o.metadata.name.as_str());
                }
                AnyObject::Host(o) => index.hosts.entry(namespace).or_default().push(o),
                AnyObject::Credential(o) => {
                    index
                        .credentials
                        .insert((namespace, o.metadata.name.as_str()), o);
                }
                AnyObject::Runbook(o) => {
                    index.runbooks.insert(o.metadata.name.as_str(), o);
                }
                AnyObject::Release(o) => {
                    index.releases.insert(o.metadata.name.as_str());
                }
                AnyObject::Appliance(_) | AnyObject::Rollout(_) => {}
            }
        }
        index
    }

    fn hosts_of(&self, site: &str) -> &[&'a Host] {
        self.hosts.get(site).map_or(&[], Vec::as_slice)
    }
}

fn in_site(namespace: Option<&str>) -> String {
    namespace.map_or_else(String::new, |ns| format!(" in site {ns}"))
}

fn check_namespace(index: &Index, namespace: Option<&str>, errors: &mut Errors) {
    if let Some(namespace) = namespace.filter(|ns| !ns.is_empty())
        && !index.sites.contains(namespace)
    {
        errors.push(
            &Path::root("metadata").field("namespace"),
            FieldErrorReason::NotFound,
            Some(namespace),
            "no Site has this name; the namespace of an object is the name of its Site",
        );
    }
}

/// Looks up a Credential of the site and checks its type is one of `types`.
fn check_credential(
    index: &Index,
    site: &str,
    name: &str,
    types: &[CredentialType],
    purpose: &str,
    path: &Path,
    errors: &mut Errors,
) {
    match index.credentials.get(&(site, name)) {
        None => errors.push(
            path,
            FieldErrorReason::NotFound,
            Some(name),
            format!("no Credential of this name in site {site}"),
        ),
        Some(credential) if !types.contains(&credential.spec.type_) => {
            let allowed: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
            errors.invalid(
                path,
                name,
                format!(
                    "Credential {name} is of type {}; {purpose} needs type {}",
                    credential.spec.type_.as_str(),
                    allowed.join(" or ")
                ),
            );
        }
        Some(_) => {}
    }
}

fn check_host(index: &Index, host: &Host, errors: &mut Errors) {
    let (Some(site), Some(transport)) = (host.metadata.namespace.as_deref(), &host.spec.transport)
    else {
        return;
    };
    let Some(name) = &transport.credential_ref else {
        return;
    };
    let (types, purpose): (&[CredentialType], &str) = match host.spec.transport_type() {
        TransportType::Winrm => (&[CredentialType::Winrm], "the winrm transport"),
        TransportType::Ssh => (
            &[CredentialType::SshKey, CredentialType::Password],
            "the ssh transport",
        ),
        // Validation forbids a credential for the local transport.
        TransportType::Local => return,
    };
    let path = Path::root("spec").field("transport").field("credentialRef");
    check_credential(index, site, name, types, purpose, &path, errors);
}

fn check_site(index: &Index, site: &Site, errors: &mut Errors) {
    let site_name = site.metadata.name.as_str();
    let hosts = index.hosts_of(site_name);
    let spec = Path::root("spec");
    for (i, selection) in site.spec.runbooks.iter().enumerate() {
        let path = spec.field("runbooks").index(i);
        let host_selector = parse_or_everything(selection.hosts.as_deref());
        let selected_hosts: Vec<&Host> = hosts
            .iter()
            .copied()
            .filter(|h| {
                host_selector
                    .as_ref()
                    .is_some_and(|s| s.matches(&h.metadata.labels))
            })
            .collect();
        let mut selected_runbooks: Vec<(&str, &Runbook)> = Vec::new();
        for (j, name) in selection.names.iter().enumerate() {
            let name_path = path.field("names").index(j);
            match index.runbooks.get(name.as_str()) {
                None => errors.push(
                    &name_path,
                    FieldErrorReason::NotFound,
                    Some(name),
                    "no Runbook has this name",
                ),
                Some(runbook) => {
                    check_platforms(runbook, &selected_hosts, &name_path, errors);
                    selected_runbooks.push((name, runbook));
                }
            }
        }
        if let Some(runbook_selector) = selection.selector.as_deref()
            && let Ok(runbook_selector) = selector::parse(runbook_selector)
        {
            for (name, runbook) in &index.runbooks {
                if runbook_selector.matches(&runbook.metadata.labels)
                    && !selected_runbooks.iter().any(|(n, _)| n == name)
                {
                    selected_runbooks.push((name, runbook));
                }
            }
        }
        check_params(selection, &selected_runbooks, &path, errors);
    }
    for (i, exception) in site.spec.exceptions.iter().enumerate() {
        let path = spec.field("exceptions").index(i);
        if !exception.runbook.is_empty() && !index.runbooks.contains_key(exception.runbook.as_str())
        {
            errors.push(
                &path.field("runbook"),
                FieldErrorReason::NotFound,
                Some(&exception.runbook),
                "no Runbook has this name",
            );
        }
        for (j, host) in exception.hosts.names.iter().enumerate() {
            if !hosts.iter().any(|h| h.metadata.name == *host) {
                errors.push(
                    &path.field("hosts").field("names").index(j),
                    FieldErrorReason::NotFound,
                    Some(host),
                    format!("no Host of this name in site {site_name}"),
                );
            }
        }
    }
    for (i, target) in site.spec.notifications.iter().enumerate() {
        if let Some(secret) = target
            .webhook
            .as_ref()
            .and_then(|w| w.secret_ref.as_deref())
        {
            let path = spec
                .field("notifications")
                .index(i)
                .field("webhook")
                .field("secretRef");
            check_credential(
                index,
                site_name,
                secret,
                &[CredentialType::Password],
                "signing webhooks",
                &path,
                errors,
            );
        }
    }
}

/// `None` for a selector that does not parse (validation reports it); the empty selector when absent.
fn parse_or_everything(selector: Option<&str>) -> Option<Selector> {
    match selector {
        None => Some(Selector::everything()),
        Some(s) => selector::parse(s).ok(),
    }
}

/// A runbook named for hosts of another platform would silently never run there: say so.
fn check_platforms(runbook: &Runbook, hosts: &[&Host], path: &Path, errors: &mut Errors) {
    let platform = runbook.spec.platform;
    let mismatched: Vec<&str> = hosts
        .iter()
        .filter(|h| h.spec.platform != platform)
        .map(|h| h.metadata.name.as_str())
        .collect();
    if mismatched.is_empty() {
        return;
    }
    const SHOWN: usize = 5;
    let mut list = mismatched[..mismatched.len().min(SHOWN)].join(", ");
    if mismatched.len() > SHOWN {
        list.push_str(&format!(" and {} more", mismatched.len() - SHOWN));
    }
    errors.invalid(
        path,
        &runbook.metadata.name,
        format!(
            "runbook {} is for {} hosts but this entry's hosts selector also selects host(s) {list} of \
             another platform; narrow hosts (e.g. by a platform label) or name the runbook in an entry \
             for {} hosts only",
            runbook.metadata.name,
            platform.as_str(),
            platform.as_str()
        ),
    );
}

/// Every parameter an entry sets is declared by a runbook it selects, and every parameter without a
/// default is set.
fn check_params(
    selection: &crate::kinds::site::RunbookSelection,
    runbooks: &[(&str, &Runbook)],
    path: &Path,
    errors: &mut Errors,
) {
    let params = path.field("params");
    for key in selection.params.keys() {
        if !runbooks
            .iter()
            .any(|(_, r)| r.spec.params.contains_key(key))
        {
            errors.push(
                &params.key(key),
                FieldErrorReason::NotSupported,
                Some(key),
                "no runbook selected by this entry declares this parameter",
            );
        }
    }
    for (name, runbook) in runbooks {
        for (key, param) in &runbook.spec.params {
            if param.default.is_none() && !selection.params.contains_key(key) {
                errors.required(
                    &params.key(key),
                    format!("runbook {name} has no default for parameter {key}; set it here"),
                );
            }
        }
    }
}
