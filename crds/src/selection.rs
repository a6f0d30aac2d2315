//! A site's runbook selection, read once: which (host, runbook) pairs its `spec.runbooks` entries
//! select, at which interval, which exceptions cover them, and where a selector that does not parse
//! leaves the answer undecided.
//!
//! Central's compliance roll-up ([`crate::compliance`]) and the appliance's work items share this
//! reading, so the pairs scored are exactly the pairs checked.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};

use crate::defaults::CHECK_INTERVAL;
use crate::kinds::site::{Exception, RunbookSelection};
use crate::kinds::{Host, Runbook, SiteSpec};
use crate::selector::{self, Selector};

/// A site's selection entries and exceptions with their selectors parsed once.
#[derive(Debug)]
pub struct Selection<'a> {
    /// `spec.runbooks`, in order.
    entries: Vec<Entry<'a>>,
    /// `spec.exceptions`, in order.
    waivers: Vec<Waiver<'a>>,
}

/// A selector of the site that does not parse and might cover a pair: the pair's selection, or its
/// waiver, cannot be decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undecided {
    /// The field holding the selector, e.g. `spec.runbooks[1].hosts`.
    pub field: String,
    /// The parser's complaint.
    pub error: String,
}

impl<'a> Selection<'a> {
    /// Reads `site`'s selection entries and exceptions.
    pub fn new(site: &'a SiteSpec) -> Self {
        Self {
            entries: site.runbooks.iter().map(Entry::new).collect(),
            waivers: site.exceptions.iter().map(Waiver::new).collect(),
        }
    }

    /// The entries that put `runbook` on `host`, in order; none when the platforms differ. A selector
    /// that does not parse selects nothing.
    pub fn entries<'s>(
        &'s self,
        host: &'s Host,
        runbook: &'s Runbook,
    ) -> impl Iterator<Item = &'a RunbookSelection> + 's {
        let same_platform = runbook.spec.platform == host.spec.platform;
        self.entries
            .iter()
            .filter(move |entry| same_platform && entry.selects(host, runbook))
            .map(|entry| entry.selection)
    }

    /// The interval in force for the pair, `None` when no entry selects it: the shortest that a
    /// selecting entry asks for (its `interval`, else the runbook's, else [`CHECK_INTERVAL`]), since the
    /// pair is checked as often as the most demanding entry asks.
    pub fn interval(&self, host: &Host, runbook: &Runbook) -> Option<StdDuration> {
        self.entries(host, runbook)
            .map(|entry| interval(entry, runbook))
            .min()
    }

    /// The latest expiry among the exceptions covering the pair, whatever `now` is; an exception
    /// without `expires` waives nothing.
    pub fn waived_until(&self, host: &Host, runbook: &Runbook) -> Option<DateTime<Utc>> {
        self.waivers
            .iter()
            .filter(|waiver| waiver.covers(host, runbook))
            .filter_map(|waiver| waiver.exception.expires)
            .max()
    }

    /// The selectors that do not parse and might cover the pair (same platform only): an entry whose
    /// `hosts` cannot be read but that names or labels the runbook; an entry whose runbook `selector`
    /// cannot be read on a host it matches; an exception of the runbook whose host selector cannot be
    /// read. Empty when the pair's selection and waiver are decided.
    pub fn undecided(&self, host: &Host, runbook: &Runbook) -> Vec<Undecided> {
        if runbook.spec.platform != host.spec.platform {
            return Vec::new();
        }
        let mut found = Vec::new();
        for (i, entry) in self.entries.iter().enumerate() {
            let hosts_broken = entry.hosts.is_none();
            let runbooks_broken = entry.selection.selector.is_some() && entry.runbooks.is_none();
            let may_name = entry.names(runbook) || runbooks_broken || entry.labels(runbook);
            let may_host = hosts_broken || entry.host(host);
            if hosts_broken && may_name {
                found.push(undecided(
                    format!("spec.runbooks[{i}].hosts"),
                    entry.selection.hosts.as_deref(),
                ));
            }
            if runbooks_broken && may_host {
                found.push(undecided(
                    format!("spec.runbooks[{i}].selector"),
                    entry.selection.selector.as_deref(),
                ));
            }
        }
        for (i, waiver) in self.waivers.iter().enumerate() {
            let broken = waiver.exception.hosts.selector.is_some() && waiver.hosts.is_none();
            if broken && waiver.exception.runbook == runbook.metadata.name.as_str() {
                found.push(undecided(
                    format!("spec.exceptions[{i}].hosts.selector"),
                    waiver.exception.hosts.selector.as_deref(),
                ));
            }
        }
        found
    }
}

/// The interval `entry` asks for `runbook`.
fn interval(entry: &RunbookSelection, runbook: &Runbook) -> StdDuration {
    entry
        .interval
        .as_ref()
        .or(runbook.spec.interval.as_ref())
        .map_or(CHECK_INTERVAL, |d| d.as_std())
}

/// An [`Undecided`] for the selector text at `field`.
fn undecided(field: String, text: Option<&str>) -> Undecided {
    let error = match text.map(selector::parse) {
        Some(Err(error)) => error.to_string(),
        _ => "does not parse".to_owned(),
    };
    Undecided { field, error }
}

/// One selection entry with its selectors parsed once; a selector that does not parse is `None`
/// and selects nothing (validation reports it; the score and the appliance fail closed).
#[derive(Debug)]
struct Entry<'a> {
    /// The entry as written.
    selection: &'a RunbookSelection,
    /// Its `hosts` selector; everything when absent.
    hosts: Option<Selector>,
    /// Its runbook `selector`, if it has one.
    runbooks: Option<Selector>,
}

impl<'a> Entry<'a> {
    fn new(selection: &'a RunbookSelection) -> Self {
        Self {
            selection,
            hosts: parse_or_everything(selection.hosts.as_deref()),
            runbooks: selection
                .selector
                .as_deref()
                .and_then(|s| selector::parse(s).ok()),
        }
    }

    /// Whether the entry puts `runbook` on `host` (platforms are compared by the caller).
    fn selects(&self, host: &Host, runbook: &Runbook) -> bool {
        self.host(host) && (self.names(runbook) || self.labels(runbook))
    }

    /// Whether the entry's `hosts` parses and matches `host`.
    fn host(&self, host: &Host) -> bool {
        self.hosts
            .as_ref()
            .is_some_and(|s| s.matches(&host.metadata.labels))
    }

    /// Whether the entry names `runbook`.
    fn names(&self, runbook: &Runbook) -> bool {
        self.selection
            .names
            .iter()
            .any(|n| n == runbook.metadata.name.as_str())
    }

    /// Whether the entry's runbook `selector` parses and matches `runbook`.
    fn labels(&self, runbook: &Runbook) -> bool {
        self.runbooks
            .as_ref()
            .is_some_and(|s| s.matches(&runbook.metadata.labels))
    }
}

/// One exception with its host selector parsed once.
#[derive(Debug)]
struct Waiver<'a> {
    /// The exception as written.
    exception: &'a Exception,
    /// Its host selector, if it has one that parses.
    hosts: Option<Selector>,
}

impl<'a> Waiver<'a> {
    fn new(exception: &'a Exception) -> Self {
        Self {
            exception,
            hosts: exception
                .hosts
                .selector
                .as_deref()
                .and_then(|s| selector::parse(s).ok()),
        }
    }

    /// Whether the exception names `runbook` and covers `host`, whatever its expiry.
    fn covers(&self, host: &Host, runbook: &Runbook) -> bool {
        self.exception.runbook == runbook.metadata.name.as_str()
            && (self
                .exception
                .hosts
                .names
                .iter()
                .any(|n| n == host.metadata.name.as_str())
                || self
                    .hosts
                    .as_ref()
                    .is_some_and(|s| s.matches(&host.metadata.labels)))
    }
}

/// The parsed selector, the everything selector when absent, `None` when it does not parse.
fn parse_or_everything(selector: Option<&str>) -> Option<Selector> {
    match selector {
        None => Some(Selector::everything()),
        Some(s) => selector::parse(s).ok(),
    }
}
