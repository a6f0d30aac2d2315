//! Who may do what: pure decisions over a [`Role`], the addressed kind and the site involved.
//!
//! | role | Sites and their namespaces | Runbooks, Releases | Rollouts |
//! |---|---|---|---|
//! | admin | read, write | read, write | read, write |
//! | operator | read, write where `spec.partner` is one of its partners; others hidden | read | read |
//! | readonly | read | read | read |
//! | appliance | its own site: read, write `/status` of Hosts and of its own Appliance; others hidden | read | hidden |
//!
//! "Hidden" answers exactly as if the object did not exist (404, left out of lists), so nobody
//! learns the names of another tenant's sites; "forbidden" (403) is only for what the caller can
//! see.

use std::collections::{BTreeSet, HashSet};

use osc_crds::Kind;
use serde_json::Value;

use super::Role;

/// What a request does to the object it addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// get, list, watch.
    Read,
    /// create, update, patch, delete of the object.
    Write,
    /// update or patch of the `/status` subresource.
    WriteStatus,
}

/// The site a request concerns: the Site itself, or the namespace of a namespaced object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteRef<'a> {
    /// The site's name.
    pub name: &'a str,
    /// Its `spec.partner`, or `None` when no such Site is stored.
    pub partner: Option<&'a str>,
}

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Answer as if the object did not exist.
    Hidden,
    /// 403, with the reason in words.
    Forbidden(String),
}

/// Decides whether `role` may do `verb` to an object of `kind` named `name` (`None` for a
/// collection) in `site` (`None` for the shared catalogue, and for the every-site collection of
/// a namespaced kind, which is filtered by [`Visibility`] instead).
pub fn decide(
    role: &Role,
    kind: Kind,
    name: Option<&str>,
    site: Option<SiteRef<'_>>,
    verb: Verb,
) -> Decision {
    let site_bound = kind == Kind::Site || kind.namespaced();
    match role {
        Role::Admin => Decision::Allow,
        Role::ReadOnly => match verb {
            Verb::Read => Decision::Allow,
            Verb::Write | Verb::WriteStatus => {
                Decision::Forbidden("readonly tokens cannot change anything".to_owned())
            }
        },
        Role::Operator { partners } => {
            if let Some(SiteRef {
                partner: Some(partner),
                ..
            }) = site
                && site_bound
                && !partners.contains(partner)
            {
                return Decision::Hidden;
            }
            match (site_bound, verb) {
                (true, _) | (false, Verb::Read) => Decision::Allow,
                (false, _) => Decision::Forbidden(format!(
                    "operators cannot change {}; the shared catalogue is changed by admins",
                    kind.plural()
                )),
            }
        }
        Role::Appliance {
            site: own_site,
            appliance,
        } => {
            if kind == Kind::Rollout {
                return Decision::Hidden;
            }
            if site_bound && site.is_some_and(|site| site.name != own_site) {
                return Decision::Hidden;
            }
            match verb {
                Verb::Read => Decision::Allow,
                Verb::WriteStatus
                    if kind == Kind::Host
                        || (kind == Kind::Appliance && name == Some(appliance.as_str())) =>
                {
                    Decision::Allow
                }
                Verb::Write | Verb::WriteStatus => Decision::Forbidden(format!(
                    "appliance {own_site}/{appliance} may write only the status of its site's \
                     hosts and of itself"
                )),
            }
        }
    }
}

/// Which objects of a collection a role sees: the tenancy part of every list and watch filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Everything.
    All,
    /// Sites whose partner is one of `partners`, and the objects in those sites' namespaces
    /// (`sites`: the names of those sites, read when the list or watch started).
    Partners {
        /// The operator's partners.
        partners: BTreeSet<String>,
        /// The names of the Sites of those partners.
        sites: HashSet<String>,
    },
    /// One site and the objects in its namespace.
    Site(String),
    /// Nothing (an appliance listing Rollouts).
    Nothing,
}

impl Visibility {
    /// Whether an object of `kind` (as JSON) is visible.
    pub fn admits(&self, kind: Kind, object: &Value) -> bool {
        let metadata = &object["metadata"];
        let site = if kind == Kind::Site {
            metadata["name"].as_str()
        } else if kind.namespaced() {
            metadata["namespace"].as_str()
        } else {
            return !matches!(self, Self::Nothing);
        };
        match self {
            Self::All => true,
            Self::Nothing => false,
            Self::Site(own) => site == Some(own.as_str()),
            Self::Partners { partners, sites } if kind == Kind::Site => object["spec"]["partner"]
                .as_str()
                .is_some_and(|partner| partners.contains(partner)),
            Self::Partners { sites, .. } => site.is_some_and(|site| sites.contains(site)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn operator(partners: &[&str]) -> Role {
        Role::Operator {
            partners: partners.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    fn appliance(site: &str, name: &str) -> Role {
        Role::Appliance {
            site: site.to_owned(),
            appliance: name.to_owned(),
        }
    }

    fn site<'a>(name: &'a str, partner: &'a str) -> Option<SiteRef<'a>> {
        Some(SiteRef {
            name,
            partner: Some(partner),
        })
    }

    const FORBIDDEN: &str = "forbidden";

    /// One row of the policy table: who, what kind, which object, in which site, doing what,
    /// and the verdict.
    type Case<'a> = (
        &'a Role,
        Kind,
        Option<&'a str>,
        Option<SiteRef<'a>>,
        Verb,
        &'a str,
    );

    /// The verdict as a short word, so that the table below reads as the policy.
    fn verdict(decision: Decision) -> &'static str {
        match decision {
            Decision::Allow => "allow",
            Decision::Hidden => "hidden",
            Decision::Forbidden(_) => FORBIDDEN,
        }
    }

    #[test]
    fn the_policy_table() {
        use Kind::*;
        use Verb::*;
        let acme = operator(&["acme"]);
        let box1 = appliance("smile", "box1");
        let cases: Vec<Case> = vec![
            (&Role::Admin, Runbook, None, None, Write, "allow"),
            (
                &Role::Admin,
                Host,
                Some("h"),
                site("other", "zeta"),
                Write,
                "allow",
            ),
            (
                &Role::ReadOnly,
                Host,
                Some("h"),
                site("smile", "acme"),
                Read,
                "allow",
            ),
            (
                &Role::ReadOnly,
                Host,
                Some("h"),
                site("smile", "acme"),
                Write,
                FORBIDDEN,
            ),
            (
                &Role::ReadOnly,
                Host,
                Some("h"),
                site("smile", "acme"),
                WriteStatus,
                FORBIDDEN,
            ),
            // An operator works inside its partners' sites and reads the catalogue.
            (
                &acme,
                Site,
                Some("smile"),
                site("smile", "acme"),
                Write,
                "allow",
            ),
            (
                &acme,
                Host,
                Some("h"),
                site("smile", "acme"),
                Write,
                "allow",
            ),
            (
                &acme,
                Host,
                Some("h"),
                site("smile", "acme"),
                WriteStatus,
                "allow",
            ),
            (
                &acme,
                Site,
                Some("river"),
                site("river", "zeta"),
                Read,
                "hidden",
            ),
            (
                &acme,
                Host,
                Some("h"),
                site("river", "zeta"),
                Read,
                "hidden",
            ),
            (&acme, Host, None, site("river", "zeta"), Read, "hidden"),
            (
                &acme,
                Credential,
                Some("c"),
                site("river", "zeta"),
                Write,
                "hidden",
            ),
            (&acme, Runbook, Some("r"), None, Read, "allow"),
            (&acme, Runbook, Some("r"), None, Write, FORBIDDEN),
            (&acme, Rollout, None, None, Write, FORBIDDEN),
            // A site not stored yet: admission answers (404 for its objects, partner check on create).
            (
                &acme,
                Site,
                Some("new"),
                Some(SiteRef {
                    name: "new",
                    partner: None,
                }),
                Write,
                "allow",
            ),
            // An appliance sees its own site only and writes status only.
            (
                &box1,
                Site,
                Some("smile"),
                site("smile", "acme"),
                Read,
                "allow",
            ),
            (
                &box1,
                Site,
                Some("smile"),
                site("smile", "acme"),
                Write,
                FORBIDDEN,
            ),
            (
                &box1,
                Site,
                Some("river"),
                site("river", "acme"),
                Read,
                "hidden",
            ),
            (&box1, Host, Some("h"), site("smile", "acme"), Read, "allow"),
            (
                &box1,
                Host,
                Some("h"),
                site("smile", "acme"),
                WriteStatus,
                "allow",
            ),
            (
                &box1,
                Host,
                Some("h"),
                site("smile", "acme"),
                Write,
                FORBIDDEN,
            ),
            (
                &box1,
                Host,
                Some("h"),
                site("river", "acme"),
                WriteStatus,
                "hidden",
            ),
            (
                &box1,
                Appliance,
                Some("box1"),
                site("smile", "acme"),
                WriteStatus,
                "allow",
            ),
            (
                &box1,
                Appliance,
                Some("box2"),
                site("smile", "acme"),
                WriteStatus,
                FORBIDDEN,
            ),
            (
                &box1,
                Credential,
                Some("c"),
                site("smile", "acme"),
                Read,
                "allow",
            ),
            (&box1, Runbook, Some("r"), None, Read, "allow"),
            (&box1, Release, None, None, Read, "allow"),
            (&box1, Rollout, None, None, Read, "hidden"),
        ];
        for (role, kind, name, site, verb, expected) in cases {
            assert_eq!(
                verdict(decide(role, kind, name, site, verb)),
                expected,
                "{role:?} {verb:?} {kind:?} {name:?} in {site:?}"
            );
        }
    }

    #[test]
    fn visibility_filters_sites_by_partner_and_objects_by_namespace() {
        let partners = Visibility::Partners {
            partners: ["acme".to_owned()].into(),
            sites: ["smile".to_owned()].into(),
        };
        let smile = json!({"metadata": {"name": "smile"}, "spec": {"partner": "acme"}});
        let river = json!({"metadata": {"name": "river"}, "spec": {"partner": "zeta"}});
        let host_in = |site: &str| json!({"metadata": {"name": "h", "namespace": site}});
        let runbook = json!({"metadata": {"name": "r"}});

        assert!(partners.admits(Kind::Site, &smile));
        assert!(!partners.admits(Kind::Site, &river));
        assert!(partners.admits(Kind::Host, &host_in("smile")));
        assert!(!partners.admits(Kind::Host, &host_in("river")));
        assert!(partners.admits(Kind::Runbook, &runbook));

        let own = Visibility::Site("river".to_owned());
        assert!(own.admits(Kind::Site, &river));
        assert!(!own.admits(Kind::Site, &smile));
        assert!(own.admits(Kind::Host, &host_in("river")));
        assert!(!own.admits(Kind::Host, &host_in("smile")));

        assert!(!Visibility::Nothing.admits(Kind::Rollout, &runbook));
        assert!(Visibility::All.admits(Kind::Host, &host_in("anything")));
    }
}
