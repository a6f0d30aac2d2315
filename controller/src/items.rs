//! Work items: the (host, runbook) pairs a site's selection produces, each with everything the
//! reconcile decision reads from desired state, so that comparing two sets of items tells which
//! pairs a change of desired state affects. Pure: no I/O, no clock.
//!
//! The pairs are those of [`osc_crds::selection::Selection`], the same reading central's
//! compliance roll-up scores, plus the pairs a selector that does not parse might cover: those
//! are items too, marked `undecided`, so the decision refuses them and the Host reports why
//! (fail closed) instead of the pair silently vanishing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use osc_crds::defaults::{self, ApplyDefaults};
use osc_crds::kinds::site::HealingMode;
use osc_crds::kinds::{Host, Runbook, Site};
use osc_crds::selection::{Selection, Undecided};
use osc_crds::window::MaintenanceWindow;

/// Names one work item: a host of the site and a runbook.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemKey {
    /// The Host's name.
    pub host: String,
    /// The Runbook's name.
    pub runbook: String,
}

/// One (host, runbook) pair and the desired state its reconcile decides from.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Which pair.
    pub key: ItemKey,
    /// The Host's `spec.address` (none for a local transport); checked against `allowedHosts`.
    pub address: Option<String>,
    /// How often the pair is checked: the shortest interval the selecting entries ask for.
    pub interval: StdDuration,
    /// The runbook's parameters: its defaults, overridden by the selecting entries in order (a later
    /// entry wins); passed to every script as environment variables.
    pub params: BTreeMap<String, String>,
    /// The content digest of the runbook as cached (verified by the decision, not here).
    pub runbook_digest: String,
    /// The latest expiry of the site's exceptions covering the pair; waived while `now` is before.
    pub waived_until: Option<DateTime<Utc>>,
    /// Why the pair's selection or waiver cannot be decided; the decision refuses the item while
    /// this is not empty.
    pub undecided: Vec<Undecided>,
    /// The site's healing policy in force.
    pub policy: Policy,
}

/// The site-wide settings the decision reads, with defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// `enforce`, `audit` or `off`.
    pub mode: HealingMode,
    /// Remediation attempts per drift episode before escalation.
    pub max_attempts: u32,
    /// The window in which heals count towards flapping.
    pub flap_window: StdDuration,
    /// Heals within `flap_window` that make the pair flap (escalated instead of healed again).
    pub flap_threshold: u32,
    /// When disruptive remediations may run.
    pub window: MaintenanceWindow,
}

/// The work items of `site` over `hosts` (those of other sites are ignored) and `runbooks`,
/// ordered by host, then runbook, as given: every pair the selection puts on a host of the
/// runbook's platform, and every pair of matching platforms that a broken selector might cover.
pub fn items(site: &Site, hosts: &[Host], runbooks: &[Runbook]) -> Vec<Item> {
    let mut spec = site.spec.clone();
    spec.apply_defaults();
    let policy = Policy::of(&spec);
    let selection = Selection::new(&site.spec);
    let mut items = Vec::new();
    let site_hosts = hosts
        .iter()
        .filter(|h| h.metadata.namespace.as_deref() == Some(site.metadata.name.as_str()));
    for host in site_hosts {
        for runbook in runbooks {
            let mut undecided = selection.undecided(host, runbook);
            let interval = selection.interval(host, runbook);
            if interval.is_none() && undecided.is_empty() {
                continue;
            }
            let mut params: BTreeMap<String, String> = runbook
                .spec
                .params
                .iter()
                .filter_map(|(name, p)| Some((name.clone(), p.default.clone()?)))
                .collect();
            for entry in selection.entries(host, runbook) {
                let declared = entry
                    .params
                    .iter()
                    .filter(|(name, _)| runbook.spec.params.contains_key(*name));
                params.extend(declared.map(|(k, v)| (k.clone(), v.clone())));
            }
            if interval.is_some() {
                undecided.extend(
                    runbook
                        .spec
                        .params
                        .keys()
                        .filter(|name| !params.contains_key(*name))
                        .map(|name| Undecided {
                            field: format!("spec.runbooks[].params.{name}"),
                            error: format!(
                                "runbook {} needs parameter {name}, which has no default and no \
                                 selecting entry sets",
                                runbook.metadata.name
                            ),
                        }),
                );
            }
            items.push(Item {
                key: ItemKey {
                    host: host.metadata.name.clone(),
                    runbook: runbook.metadata.name.clone(),
                },
                address: host.spec.address.clone(),
                interval: interval.unwrap_or(defaults::CHECK_INTERVAL),
                params,
                runbook_digest: runbook.spec.content_digest(),
                waived_until: selection.waived_until(host, runbook),
                undecided,
                policy: policy.clone(),
            });
        }
    }
    items
}

/// The keys of `new` whose item is new or differs from its `old` one: the pairs to reconcile at
/// once after a change of desired state. Pairs only in `old` are gone; the queue forgets them.
pub fn affected(old: &[Item], new: &[Item]) -> Vec<ItemKey> {
    let old: BTreeMap<&ItemKey, &Item> = old.iter().map(|i| (&i.key, i)).collect();
    new.iter()
        .filter(|item| old.get(&item.key) != Some(item))
        .map(|item| item.key.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

impl Policy {
    /// The policy of a defaulted site spec.
    fn of(spec: &osc_crds::kinds::SiteSpec) -> Self {
        let healing = spec.healing.clone().unwrap_or_default();
        Self {
            mode: healing.mode.unwrap_or(defaults::HEALING_MODE),
            max_attempts: healing.max_attempts.unwrap_or(defaults::MAX_ATTEMPTS),
            flap_window: healing
                .flap_window
                .map_or(defaults::FLAP_WINDOW, |d| d.as_std()),
            flap_threshold: healing.flap_threshold.unwrap_or(defaults::FLAP_THRESHOLD),
            window: spec
                .maintenance_window
                .clone()
                .unwrap_or_else(|| MaintenanceWindow {
                    start: defaults::MAINTENANCE_START.to_owned(),
                    end: defaults::MAINTENANCE_END.to_owned(),
                    timezone: None,
                    days: Vec::new(),
                }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{Value, json};

    use super::*;

    pub(crate) fn site(spec: Value) -> Site {
        let mut base = json!({"displayName": "Smile Dental", "partner": "acme"});
        base.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        serde_json::from_value(json!({
            "apiVersion": "osiriscare.net/v1alpha1", "kind": "Site",
            "metadata": {"name": "smile"}, "spec": base
        }))
        .unwrap()
    }

    pub(crate) fn host(name: &str, platform: &str, labels: Value) -> Host {
        serde_json::from_value(json!({
            "apiVersion": "osiriscare.net/v1alpha1", "kind": "Host",
            "metadata": {"name": name, "namespace": "smile", "labels": labels},
            "spec": {"platform": platform, "address": format!("{name}.smile.local"),
                     "transport": {"credentialRef": "ssh"}}
        }))
        .unwrap()
    }

    pub(crate) fn runbook(name: &str, platform: &str, labels: Value, extra: Value) -> Runbook {
        let script = if platform == "windows" {
            json!({"interpreter": "powershell", "script": "exit 0"})
        } else {
            json!({"interpreter": "sh", "script": "true"})
        };
        let mut spec = json!({"platform": platform, "severity": "high", "check": script});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(json!({
            "apiVersion": "osiriscare.net/v1alpha1", "kind": "Runbook",
            "metadata": {"name": name, "labels": labels}, "spec": spec
        }))
        .unwrap()
    }

    fn fleet() -> (Vec<Host>, Vec<Runbook>) {
        let hosts = vec![
            host("ehr", "linux", json!({"role": "ehr"})),
            host("front", "windows", json!({"role": "desk"})),
            host("files", "linux", json!({"role": "files"})),
        ];
        let runbooks = vec![
            runbook("ssh-root", "linux", json!({"tier": "baseline"}), json!({})),
            runbook(
                "ntp",
                "linux",
                json!({}),
                json!({"interval": "5m", "params": {
                    "SERVER": {"description": "NTP server", "default": "pool.ntp.org"},
                    "MAX": {"description": "max offset", "default": "100"}}}),
            ),
            runbook(
                "bitlocker",
                "windows",
                json!({"tier": "baseline"}),
                json!({}),
            ),
        ];
        (hosts, runbooks)
    }

    /// (host, runbook, interval in seconds, params, undecided fields) of each item.
    type Row = (String, String, u64, Vec<(String, String)>, Vec<String>);

    fn rows(items: &[Item]) -> Vec<Row> {
        items
            .iter()
            .map(|i| {
                (
                    i.key.host.clone(),
                    i.key.runbook.clone(),
                    i.interval.as_secs(),
                    i.params.clone().into_iter().collect(),
                    i.undecided.iter().map(|u| u.field.clone()).collect(),
                )
            })
            .collect()
    }

    fn row(h: &str, r: &str, secs: u64, params: &[(&str, &str)], undecided: &[&str]) -> Row {
        (
            h.to_owned(),
            r.to_owned(),
            secs,
            params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            undecided.iter().map(|s| (*s).to_owned()).collect(),
        )
    }

    #[test]
    fn selection_table() {
        let (hosts, runbooks) = fleet();
        let ntp = [("MAX", "100"), ("SERVER", "pool.ntp.org")];
        let cases: Vec<(&str, Value, Vec<Row>)> = vec![
            (
                "a selector puts each runbook only on hosts of its platform",
                json!([{"selector": "tier=baseline"}]),
                vec![
                    row("ehr", "ssh-root", 900, &[], &[]),
                    row("front", "bitlocker", 900, &[], &[]),
                    row("files", "ssh-root", 900, &[], &[]),
                ],
            ),
            (
                "names with a host selector; the runbook's interval; defaults as params",
                json!([{"names": ["ntp"], "hosts": "role=ehr"}]),
                vec![row("ehr", "ntp", 300, &ntp, &[])],
            ),
            (
                "entries merge params in order, undeclared ones dropped; the shortest interval wins",
                json!([
                    {"names": ["ntp"], "params": {"SERVER": "a.example", "OTHER": "x"}, "interval": "10m"},
                    {"names": ["ntp"], "hosts": "role=files", "params": {"SERVER": "b.example"}, "interval": "1m"}
                ]),
                vec![
                    row(
                        "ehr",
                        "ntp",
                        600,
                        &[("MAX", "100"), ("SERVER", "a.example")],
                        &[],
                    ),
                    row(
                        "files",
                        "ntp",
                        60,
                        &[("MAX", "100"), ("SERVER", "b.example")],
                        &[],
                    ),
                ],
            ),
            (
                "a host selector that does not parse: the pairs it might cover are undecided",
                json!([{"names": ["ssh-root"], "hosts": "role in ("}]),
                vec![
                    row("ehr", "ssh-root", 900, &[], &["spec.runbooks[0].hosts"]),
                    row("files", "ssh-root", 900, &[], &["spec.runbooks[0].hosts"]),
                ],
            ),
            (
                "a runbook selector that does not parse: every runbook of the host's platform is undecided",
                json!([{"selector": "tier in (", "hosts": "role=desk"}]),
                vec![row(
                    "front",
                    "bitlocker",
                    900,
                    &[],
                    &["spec.runbooks[0].selector"],
                )],
            ),
            (
                "nothing selected, nothing to do",
                json!([{"names": ["ntp"], "hosts": "role=none"}]),
                vec![],
            ),
        ];
        for (name, selection, expected) in cases {
            let site = site(json!({"runbooks": selection}));
            assert_eq!(rows(&items(&site, &hosts, &runbooks)), expected, "{name}");
        }
    }

    #[test]
    fn a_parameter_nobody_sets_leaves_the_item_undecided() {
        let hosts = vec![host("ehr", "linux", json!({}))];
        let runbooks = vec![runbook(
            "backup",
            "linux",
            json!({}),
            json!({"params": {"TARGET": {"description": "where"}}}),
        )];
        let site = site(json!({"runbooks": [{"names": ["backup"]}]}));
        let items = items(&site, &hosts, &runbooks);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].undecided[0].field, "spec.runbooks[].params.TARGET");
    }

    #[test]
    fn waivers_policy_and_other_sites() {
        let (mut hosts, runbooks) = fleet();
        let mut elsewhere = host("ehr2", "linux", json!({}));
        elsewhere.metadata.namespace = Some("river".into());
        hosts.push(elsewhere);
        let site = site(json!({
            "runbooks": [{"names": ["ssh-root"]}],
            "healing": {"mode": "audit", "maxAttempts": 5},
            "exceptions": [
                {"runbook": "ssh-root", "hosts": {"names": ["ehr"]}, "justification": "legacy",
                 "expires": "2030-01-01T00:00:00Z", "approvedBy": "officer"},
                {"runbook": "ssh-root", "hosts": {"selector": "role=ehr"}, "justification": "later",
                 "expires": "2031-01-01T00:00:00Z", "approvedBy": "officer"},
                {"runbook": "ssh-root", "hosts": {"selector": "("}, "justification": "broken",
                 "expires": "2031-01-01T00:00:00Z", "approvedBy": "officer"}
            ]
        }));
        let items = items(&site, &hosts, &runbooks);
        assert_eq!(items.len(), 2, "the other site's host is not ours");
        assert_eq!(
            items[0].waived_until.unwrap().to_rfc3339(),
            "2031-01-01T00:00:00+00:00"
        );
        assert_eq!(items[1].waived_until, None);
        for item in &items {
            assert_eq!(item.undecided[0].field, "spec.exceptions[2].hosts.selector");
        }
        assert_eq!(items[0].policy.mode, HealingMode::Audit);
        assert_eq!(items[0].policy.max_attempts, 5);
        assert_eq!(items[0].policy.flap_threshold, defaults::FLAP_THRESHOLD);
        assert_eq!(items[0].policy.window.start, "02:00");
    }

    #[test]
    fn affected_items_are_the_new_and_the_changed() {
        let (hosts, runbooks) = fleet();
        let before = items(
            &site(json!({"runbooks": [{"names": ["ntp", "ssh-root"]}]})),
            &hosts,
            &runbooks,
        );
        let mut changed_runbooks = runbooks.clone();
        changed_runbooks[0].spec.check.script = "false".into();
        let after = items(
            &site(
                json!({"runbooks": [{"names": ["ntp", "ssh-root"]}, {"names": ["ntp"], "hosts": "role=ehr", "interval": "1m"}]}),
            ),
            &hosts,
            &changed_runbooks,
        );
        let keys: Vec<(String, String)> = affected(&before, &after)
            .into_iter()
            .map(|k| (k.host, k.runbook))
            .collect();
        assert_eq!(
            keys,
            [
                ("ehr".into(), "ntp".into()),
                ("ehr".into(), "ssh-root".into()),
                ("files".into(), "ssh-root".into()),
            ]
        );
        assert!(affected(&after, &after).is_empty());
    }
}
