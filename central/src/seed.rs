//! Seeding: at start-up, creating the objects of a GitOps repo's manifests (`--seed`) that the
//! store does not hold yet, so that a fresh Central Command serves a whole fleet at once.
//!
//! Seeding goes through the API's own admission ([`api::create_object`]), never around it, so a
//! seeded object is exactly what a POST of it would have stored. It only ever creates: an object
//! the store already holds is kept as it is, because the store may hold newer changes (status,
//! edits through the API) than the repo. It runs in three steps, and nothing is written unless
//! the first two find no problem:
//!
//! 1. [`load`]: read and validate every manifest with [`osc_crds::load::load_paths`], as one
//!    complete set (so a Host's Site must be among the manifests too); every problem comes back
//!    at once with its file and line.
//! 2. [`apply`] looks up each object and puts the missing ones through admission as a dry run,
//!    collecting every refusal.
//! 3. [`apply`] creates the missing objects: Sites first, then the other cluster-scoped kinds,
//!    then the objects inside sites, each group in manifest order.
//!
//! A failure in step 3 can only come from the database (or from another replica writing at the
//! same moment); what was created stays, and the next start keeps it and creates the rest.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use osc_crds::load::{LoadErrors, Loaded, Location, ObjectName, load_paths};
use osc_crds::{AnyObject, Kind};
use tracing::info;

use crate::api::{self, ApiError, AppState};
use crate::auth::Principal;
use crate::server::Services;
use crate::store::{ObjectKey, StoreError};

/// Validated manifests, in the order they are created; build with [`load`].
#[derive(Debug, Clone)]
pub struct Seed {
    /// The paths they were read from, for messages.
    paths: Vec<PathBuf>,
    /// The objects, Sites first, then other cluster-scoped kinds, then namespaced ones.
    objects: Vec<Loaded>,
}

/// What seeding did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects created.
    pub created: usize,
    /// Objects left as the store held them.
    pub kept: usize,
}

/// One object that admission would refuse, at the place it is written.
#[derive(Debug)]
pub struct Refusal {
    /// The first line of the object's manifest.
    pub at: Location,
    /// The object.
    pub object: ObjectName,
    /// What the API answered, in its words (the `Status` message).
    pub message: String,
}

impl fmt::Display for Refusal {
    /// `sites/a/hosts/web.yaml:1: Host "a/web": hosts.osiriscare.net "web" is forbidden: …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.at, self.object, self.message)
    }
}

/// Why seeding stopped the start.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The manifests do not load: unreadable, malformed or invalid, each problem listed with its
    /// file and line in the source.
    #[error(
        "cannot seed from {}: the manifests have {} problem(s), listed below; nothing was written. \
         Fix them and start again, or drop --seed",
        show_paths(.paths), .source.errors().len()
    )]
    Load {
        /// The `--seed` paths.
        paths: Vec<PathBuf>,
        /// Every problem, sorted by file and line.
        #[source]
        source: LoadErrors,
    },
    /// The manifests load, but the API would refuse some of the objects that are missing from
    /// the store (e.g. a Host of a Site that is being deleted).
    #[error(
        "cannot seed from {}: the API refuses {} object(s); nothing was written:\n{}",
        show_paths(.paths), .refusals.len(), lines(.refusals)
    )]
    Refused {
        /// The `--seed` paths.
        paths: Vec<PathBuf>,
        /// Every refusal, in creation order.
        refusals: Vec<Refusal>,
    },
    /// The store failed while objects were looked up or created.
    #[error(
        "seeding stopped at {at}, {object}; objects created before it stay, and the next start \
         keeps them and creates the rest"
    )]
    Store {
        /// The first line of the object's manifest.
        at: Location,
        /// The object being looked up or created.
        object: ObjectName,
        /// What failed (boxed: it is large, and this variant is rare).
        #[source]
        source: Box<ApiError>,
    },
}

/// Loads and validates the manifests under `paths` as one set, ordered for creation.
pub fn load(paths: &[PathBuf]) -> Result<Seed, SeedError> {
    let mut objects = load_paths(paths).map_err(|source| SeedError::Load {
        paths: paths.to_vec(),
        source,
    })?;
    // A stable sort keeps manifest order within each group.
    objects.sort_by_key(|loaded| creation_rank(loaded.object.kind()));
    Ok(Seed {
        paths: paths.to_vec(),
        objects,
    })
}

/// Creates the objects of `seed` that the store does not hold, through the API's admission of
/// the server's `services`, after checking that admission accepts every one of them.
pub async fn apply(services: &Services, seed: Seed) -> Result<Summary, SeedError> {
    let state = AppState::new(services.clone());
    let mut missing = Vec::new();
    let mut summary = Summary::default();
    for loaded in &seed.objects {
        match state.store.get(&key(&loaded.object)).await {
            Ok(_) => {
                summary.kept += 1;
                info!(
                    object = %name(&loaded.object), at = %loaded.location,
                    "kept: stored already (seeding never overwrites)"
                );
            }
            Err(StoreError::NotFound { .. }) => missing.push(loaded),
            Err(error) => return Err(store_failure(loaded, error.into())),
        }
    }

    let refusals = dry_run(&state, &missing).await?;
    if !refusals.is_empty() {
        return Err(SeedError::Refused {
            paths: seed.paths,
            refusals,
        });
    }

    for loaded in missing {
        match api::create_object(&state, &Principal::system(), &loaded.object, false).await {
            Ok(_) => {
                summary.created += 1;
                info!(object = %name(&loaded.object), at = %loaded.location, "created");
            }
            // Another replica seeding at the same moment got there first.
            Err(ApiError::AlreadyExists { .. }) => {
                summary.kept += 1;
                info!(
                    object = %name(&loaded.object), at = %loaded.location,
                    "kept: created by another writer meanwhile"
                );
            }
            Err(error) => return Err(store_failure(loaded, error)),
        }
    }
    info!(
        created = summary.created,
        kept = summary.kept,
        from = %show_paths(&seed.paths),
        "seeded"
    );
    Ok(summary)
}

/// Puts each missing object through admission without writing, and returns the refusals.
///
/// An object inside a Site that is itself missing cannot be dry-run yet (admission wants its
/// Site stored). For those, the rest of admission (defaults and validation, on the same types)
/// has already passed in [`load`], and their Site's own dry run covers the Site, so skipping them
/// loses no check.
async fn dry_run(state: &AppState, missing: &[&Loaded]) -> Result<Vec<Refusal>, SeedError> {
    let new_sites: BTreeSet<&str> = missing
        .iter()
        .filter(|loaded| loaded.object.kind() == Kind::Site)
        .map(|loaded| loaded.object.name())
        .collect();
    let mut refusals = Vec::new();
    for loaded in missing {
        if loaded
            .object
            .namespace()
            .is_some_and(|site| new_sites.contains(site))
        {
            continue;
        }
        match api::create_object(state, &Principal::system(), &loaded.object, true).await {
            Ok(_) => {}
            Err(error @ ApiError::Store(_)) => return Err(store_failure(loaded, error)),
            Err(error) => refusals.push(Refusal {
                at: loaded.location.clone(),
                object: name(&loaded.object),
                message: error.status().message,
            }),
        }
    }
    Ok(refusals)
}

/// Sites come first because everything else in a site needs its Site; the other cluster-scoped
/// kinds next, so that what sites refer to (runbooks, releases) exists before them.
fn creation_rank(kind: Kind) -> u8 {
    match kind {
        Kind::Site => 0,
        kind if !kind.namespaced() => 1,
        _ => 2,
    }
}

/// The store key of `object`.
fn key(object: &AnyObject) -> ObjectKey {
    ObjectKey::namespaced(
        object.kind().plural(),
        object.namespace().unwrap_or_default(),
        object.name(),
    )
}

/// `object` as messages name it: `Host "smile-dental/front-desk"`.
fn name(object: &AnyObject) -> ObjectName {
    ObjectName {
        kind: object.kind(),
        namespace: object.namespace().map(str::to_owned),
        name: Some(object.name().to_owned()),
    }
}

/// A store failure while handling `loaded`.
fn store_failure(loaded: &Loaded, source: ApiError) -> SeedError {
    SeedError::Store {
        at: loaded.location.clone(),
        object: name(&loaded.object),
        source: Box::new(source),
    }
}

/// The paths, comma-separated.
fn show_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    shown.join(", ")
}

/// One refusal per line.
fn lines(refusals: &[Refusal]) -> String {
    let shown: Vec<String> = refusals.iter().map(ToString::to_string).collect();
    shown.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_come_first_then_cluster_kinds_then_site_objects() {
        let cases = [
            (Kind::Site, 0),
            (Kind::Runbook, 1),
            (Kind::Release, 1),
            (Kind::Rollout, 1),
            (Kind::Host, 2),
            (Kind::Appliance, 2),
            (Kind::Credential, 2),
        ];
        for (kind, rank) in cases {
            assert_eq!(creation_rank(kind), rank, "{kind}");
        }
        assert_eq!(Kind::ALL.len(), cases.len(), "every kind has a rank case");
    }
}
