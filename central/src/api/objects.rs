//! The verbs on objects: get, list, create, update (PUT, also of `/status`) and delete.
//!
//! Writes decide in pure functions ([`prepare_create`], [`prepare_update`],
//! [`prepare_status_update`]) what to store, given the request and the stored object; the async
//! verbs around them read, check preconditions and write. Server-side patch shares the same path:
//! it computes the patched object and calls [`replace`] (or [`create`] for an apply that creates).
//!
//! Rules, as in Kubernetes:
//! - the server owns `uid`, `creationTimestamp`, `deletionTimestamp`, `generation` and
//!   `resourceVersion`; a client's values are replaced (a different `uid` is a 409: the object
//!   was deleted and created again since the client read it);
//! - `generation` starts at 1 and grows by one when `spec` changes, never otherwise;
//! - writes to the object ignore `status`; `/status` writes change only `status`;
//! - a write that changes nothing is not stored (no new resourceVersion, no watch event);
//! - a write carrying `metadata.resourceVersion` happens only if it is still current (409
//!   otherwise, atomically in the store); without one, the server retries on its own;
//! - deleting an object with finalizers only sets `deletionTimestamp`; the update that removes
//!   the last finalizer deletes it. No finalizer may be added once deletion started.
//! - a namespaced object needs its Site (404 otherwise, 403 while the Site is being deleted), and
//!   a Site with objects in its namespace cannot be deleted (409): deletion never cascades, so
//!   removing a practice's hosts is always an explicit act. Both checks read, then write: a create
//!   racing a Site's deletion can leave an object behind, which the Site's next create adopts.

use chrono::{DateTime, SubsecRound, Utc};
use osc_crds::{AnyObject, FieldError, FieldErrorReason, Kind};
use serde_json::Value;

use super::AppState;
use super::error::ApiError;
use super::filter::Filter;
use super::request::{Query, ResourcePath, decode_object};
use super::secrets::{keep_stored_secret, seal_incoming};
use crate::auth::{Principal, Visibility, check_site_partner};
use crate::store::{ListOptions, ObjectKey, ObjectList, StoreError, resource_version_of};

/// How many times a write without a client precondition is retried when another write slips in
/// between its read and its write.
const UNCONDITIONAL_ATTEMPTS: usize = 5;

/// What an update does to the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Nothing changes: answer with the stored object.
    Unchanged,
    /// Store this object.
    Write(Value),
    /// Store this object (its last finalizer removed), then delete it.
    WriteAndDelete(Value),
}

/// What a DELETE asks for, from its `DeleteOptions` body and `?dryRun`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// `preconditions.resourceVersion`: delete only this version.
    pub resource_version: Option<i64>,
    /// `preconditions.uid`: delete only this incarnation.
    pub uid: Option<String>,
    /// Check, but change nothing.
    pub dry_run: bool,
}

/// The stored object at `path`.
pub async fn get(state: &AppState, path: &ResourcePath) -> Result<Value, ApiError> {
    let name = path.require_name("get")?;
    Ok(state.store.get(&path.key_for(name)).await?)
}

/// One page of the objects at `path` that pass the query's selectors.
///
/// `resourceVersion` is served as Kubernetes' `NotOlderThan`: the latest state is returned, and
/// a version the store has not reached yet is a 504 the client retries. `Exact` is refused:
/// the store keeps no past states of objects.
pub async fn list(
    state: &AppState,
    path: &ResourcePath,
    query: &Query,
    tenancy: Visibility,
) -> Result<ObjectList, ApiError> {
    let filter = Filter::from_query(query)?.restricted(path.kind, tenancy);
    let limit = match query.get("limit") {
        Some(text) => Some(text.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "limit={text:?} is not a number; give a positive page size"
            ))
        })?),
        None => None,
    };
    let continue_token = query.get("continue").map(str::to_owned);
    match query.get("resourceVersionMatch") {
        None | Some("NotOlderThan") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch={other:?} is not supported: only \"NotOlderThan\" (the \
                 latest state at or after resourceVersion) is served"
            )));
        }
    }
    if let Some(text) = query.get("resourceVersion").filter(|text| *text != "0") {
        if continue_token.is_some() {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let requested: i64 = text.parse().map_err(|_| {
            ApiError::bad_request(format!("invalid resourceVersion {text:?}: not a number"))
        })?;
        let current = state.store.current_rv().await?;
        if requested > current {
            return Err(ApiError::TooLargeResourceVersion { requested, current });
        }
    }
    let options = ListOptions {
        namespace: path.namespace.clone(),
        limit,
        continue_token,
    };
    Ok(state
        .store
        .list(path.kind.plural(), &options, |object| {
            filter.matches(object)
        })
        .await?)
}

/// Creates the object in `value` in the collection at `path` and returns it as stored (or as it
/// would be, with `dry_run`).
pub async fn create(
    state: &AppState,
    principal: &Principal,
    path: &ResourcePath,
    value: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    if path.name.is_some() || (path.kind.namespaced() && path.namespace.is_none()) {
        return Err(ApiError::MethodNotAllowed {
            kind: path.kind,
            action: "create",
        });
    }
    let object = decode_for(path, None, with_generated_name(value))?;
    if let Some(site) = object.namespace() {
        require_site(state, object.kind(), site, object.name()).await?;
    }
    // Held until the write is stored, so a rotation never misses a value sealed here.
    let keys = state.keyring.keys().await;
    let mut object = prepare_create(object, Utc::now())?;
    let key = path.key_for(object_name(&object));
    seal_incoming(
        &keys,
        path.kind,
        (&key.namespace, &key.name),
        &mut object,
        None,
    )?;
    check_site_partner(principal, path.kind, &object)?;
    if dry_run {
        return Ok(object);
    }
    let stored = state.store.create(&key, object).await?;
    state.metrics.add_store_objects(path.kind, 1);
    Ok(stored)
}

/// Replaces the object at `path` (or, for a `/status` path, its status) with `value`, and
/// returns it as stored (or as it would be, with `dry_run`).
pub async fn replace(
    state: &AppState,
    principal: &Principal,
    path: &ResourcePath,
    value: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let name = path.require_name("update")?.to_owned();
    let key = path.key_for(&name);
    let precondition = match value.pointer("/metadata/resourceVersion") {
        None | Some(Value::Null) => None,
        Some(given) => Some(resource_version_of(&value).ok_or_else(|| {
            ApiError::bad_request(format!(
                "metadata.resourceVersion {given} is not one this server issued; send back the \
                 value read from the object"
            ))
        })?),
    };
    for _ in 0..UNCONDITIONAL_ATTEMPTS {
        // Held until the write is stored, so a rotation never misses a value sealed here.
        let keys = state.keyring.keys().await;
        let stored = state.store.get(&key).await?;
        let current = stored_version(&key, &stored)?;
        if precondition.is_some_and(|expected| expected != current) {
            return Err(ApiError::stale(path.kind, &name));
        }
        let outcome = if path.status {
            prepare_status_update(path, &name, &stored, value.clone())?
        } else {
            let mut incoming = value.clone();
            let place = (key.namespace.as_str(), name.as_str());
            seal_incoming(&keys, path.kind, place, &mut incoming, Some(&stored))?;
            prepare_update(path, &name, &stored, incoming)?
        };
        if let Outcome::Write(object) | Outcome::WriteAndDelete(object) = &outcome {
            check_site_partner(principal, path.kind, object)?;
        }
        let result = match outcome {
            Outcome::Unchanged => return Ok(stored),
            Outcome::Write(object) | Outcome::WriteAndDelete(object) if dry_run => {
                return Ok(object);
            }
            Outcome::Write(object) => state.store.update(&key, object, Some(current)).await,
            Outcome::WriteAndDelete(object) => {
                finish_deletion(state, path.kind, &key, object, current).await
            }
        };
        match result {
            Err(StoreError::Conflict { .. }) if precondition.is_none() => continue,
            result => return Ok(result?),
        }
    }
    Err(ApiError::stale(path.kind, &name))
}

/// Deletes the object at `path`, or starts its deletion when it has finalizers, and returns
/// its last state.
pub async fn delete(
    state: &AppState,
    path: &ResourcePath,
    options: &DeleteOptions,
) -> Result<Value, ApiError> {
    let name = path.require_name("deletecollection")?.to_owned();
    let key = path.key_for(&name);
    for _ in 0..UNCONDITIONAL_ATTEMPTS {
        let stored = state.store.get(&key).await?;
        let current = stored_version(&key, &stored)?;
        check_preconditions(path.kind, &name, &stored, current, options)?;
        if path.kind == Kind::Site {
            require_empty_site(state, &name).await?;
        }
        if has_finalizers(&stored) {
            if has_deletion_timestamp(&stored) {
                // Already being deleted: nothing more to do until the finalizers are gone.
                return Ok(stored);
            }
            let marked = mark_for_deletion(&stored, Utc::now());
            if options.dry_run {
                return Ok(marked);
            }
            match state.store.update(&key, marked, Some(current)).await {
                Err(StoreError::Conflict { .. }) if options.resource_version.is_none() => continue,
                result => return Ok(result?),
            }
        }
        if options.dry_run {
            return Ok(stored);
        }
        match state.store.delete(&key, Some(current)).await {
            Err(StoreError::Conflict { .. }) if options.resource_version.is_none() => continue,
            result => {
                let last = result?;
                state.metrics.add_store_objects(path.kind, -1);
                return Ok(last);
            }
        }
    }
    Err(ApiError::stale(path.kind, &name))
}

/// The object to store for a create: defaults applied, validated, server fields set, status
/// dropped (only `/status` writes it).
pub fn prepare_create(mut object: AnyObject, now: DateTime<Utc>) -> Result<Value, ApiError> {
    object.apply_defaults();
    validate(&object)?;
    let metadata = object.metadata_mut();
    metadata.uid = Some(uuid::Uuid::new_v4().to_string());
    metadata.creation_timestamp = Some(now.trunc_subsecs(0));
    metadata.deletion_timestamp = None;
    metadata.generation = Some(1);
    metadata.resource_version = None;
    let mut json = object.to_json();
    set_status(&mut json, None);
    Ok(json)
}

/// What a PUT of `incoming` to the object `name` at `path` stores, given the `stored` object.
pub fn prepare_update(
    path: &ResourcePath,
    name: &str,
    stored: &Value,
    mut incoming: Value,
) -> Result<Outcome, ApiError> {
    keep_stored_secret(path.kind, &mut incoming, stored);
    let mut object = decode_for(path, Some(name), incoming)?;
    object.apply_defaults();
    let old = stored_object(path, name, stored)?;
    let old_meta = old.metadata();

    let given_uid = object.metadata().uid.clone();
    if let (Some(given), Some(actual)) = (&given_uid, &old_meta.uid)
        && given != actual
    {
        return Err(ApiError::Conflict {
            kind: path.kind,
            name: name.to_owned(),
            why: format!(
                "Precondition failed: UID in precondition: {given}, UID in object meta: {actual}"
            ),
        });
    }
    if old_meta.deletion_timestamp.is_some() {
        let added: Vec<&String> = object
            .metadata()
            .finalizers
            .iter()
            .filter(|finalizer| !old_meta.finalizers.contains(finalizer))
            .collect();
        if !added.is_empty() {
            return Err(ApiError::Invalid {
                kind: path.kind,
                name: name.to_owned(),
                errors: vec![FieldError {
                    path: "metadata.finalizers".to_owned(),
                    reason: FieldErrorReason::Forbidden,
                    value: None,
                    message: format!(
                        "no new finalizers can be added if the object is being deleted, found \
                         new finalizers {added:?}"
                    ),
                }],
            });
        }
    }
    validate(&object)?;

    let spec_changed = object.to_json()["spec"] != stored["spec"];
    let old_generation = old_meta.generation.unwrap_or(1);
    let (uid, created, deleting) = (
        old_meta.uid.clone(),
        old_meta.creation_timestamp,
        old_meta.deletion_timestamp,
    );
    let metadata = object.metadata_mut();
    metadata.uid = uid;
    metadata.creation_timestamp = created;
    metadata.deletion_timestamp = deleting;
    metadata.generation = Some(old_generation + i64::from(spec_changed));
    metadata.resource_version = stored["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned);
    let finalized = deleting.is_some() && metadata.finalizers.is_empty();

    let mut json = object.to_json();
    set_status(&mut json, stored.get("status").cloned());
    Ok(if json == *stored {
        Outcome::Unchanged
    } else if finalized {
        Outcome::WriteAndDelete(json)
    } else {
        Outcome::Write(json)
    })
}

/// What a PUT of `incoming` to `/status` of the object `name` stores: the stored object with
/// `incoming`'s status, everything else unchanged.
pub fn prepare_status_update(
    path: &ResourcePath,
    name: &str,
    stored: &Value,
    incoming: Value,
) -> Result<Outcome, ApiError> {
    let status = decode_for(path, Some(name), incoming)?.to_json()["status"].take();
    let mut json = stored.clone();
    set_status(&mut json, Some(status).filter(|status| !status.is_null()));
    // The result must still decode: a status of the wrong shape was refused above, and the
    // rest is the stored object.
    stored_object(path, name, &json)?;
    Ok(if json == *stored {
        Outcome::Unchanged
    } else {
        Outcome::Write(json)
    })
}

/// `stored` with `deletionTimestamp` set: what a DELETE stores for an object with finalizers.
pub fn mark_for_deletion(stored: &Value, now: DateTime<Utc>) -> Value {
    let mut marked = stored.clone();
    marked["metadata"]["deletionTimestamp"] = Value::String(
        now.trunc_subsecs(0)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    marked
}

/// Reads `DeleteOptions` from a DELETE's body (optional JSON; only `preconditions` and `dryRun`
/// matter here) and `?dryRun`.
pub fn delete_options(body: Option<Value>, query: &Query) -> Result<DeleteOptions, ApiError> {
    let mut options = DeleteOptions {
        dry_run: query.dry_run()?,
        ..DeleteOptions::default()
    };
    let Some(body) = body else {
        return Ok(options);
    };
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the DELETE body must be a DeleteOptions object",
        ));
    }
    let preconditions = &body["preconditions"];
    options.resource_version = match &preconditions["resourceVersion"] {
        Value::Null => None,
        given => Some(
            given
                .as_str()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "preconditions.resourceVersion {given} is not one this server issued"
                    ))
                })?,
        ),
    };
    options.uid = preconditions["uid"].as_str().map(str::to_owned);
    match &body["dryRun"] {
        Value::Null => {}
        Value::Array(values) if values.iter().all(|value| value == "All") => {
            options.dry_run |= !values.is_empty();
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: {other}: supported values: \"All\""
            )));
        }
    }
    Ok(options)
}

/// Decodes `value` as an object for `path`: the kind of the URL, in its namespace (set from the
/// URL when absent, 400 when different) and, for a named path, with its name.
fn decode_for(
    path: &ResourcePath,
    name: Option<&str>,
    value: Value,
) -> Result<AnyObject, ApiError> {
    let mut object = decode_object(path.kind, value)?;
    let metadata = object.metadata_mut();
    if let Some(namespace) = &path.namespace {
        match &metadata.namespace {
            None => metadata.namespace = Some(namespace.clone()),
            Some(given) if given != namespace => {
                return Err(ApiError::bad_request(format!(
                    "the namespace of the provided object ({given}) does not match the namespace \
                     sent on the request ({namespace})"
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(name) = name {
        if metadata.name.is_empty() {
            metadata.name = name.to_owned();
        } else if metadata.name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                metadata.name
            )));
        }
    }
    Ok(object)
}

/// Replaces `metadata.generateName` by a name when no name is given: the prefix and five random
/// characters from the alphabet Kubernetes uses (no vowels, no look-alikes). A name that is
/// taken anyway fails as any create would (409); the client retries.
fn with_generated_name(mut value: Value) -> Value {
    let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) else {
        return value;
    };
    let Some(prefix) = metadata.remove("generateName") else {
        return value;
    };
    let named = metadata
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|name| !name.is_empty());
    if let (false, Some(prefix)) = (named, prefix.as_str()) {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let random = uuid::Uuid::new_v4();
        let suffix: String = random.as_bytes()[..5]
            .iter()
            .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
            .collect();
        metadata.insert(
            "name".to_owned(),
            Value::String(format!("{prefix}{suffix}")),
        );
    }
    value
}

/// Validates, turning problems into a 422 with every cause.
fn validate(object: &AnyObject) -> Result<(), ApiError> {
    object.validate().map_err(|errors| ApiError::Invalid {
        kind: object.kind(),
        name: object.name().to_owned(),
        errors: errors.0,
    })
}

/// Sets or removes `status`.
fn set_status(object: &mut Value, status: Option<Value>) {
    if let Some(fields) = object.as_object_mut() {
        match status {
            Some(status) => fields.insert("status".to_owned(), status),
            None => fields.remove("status"),
        };
    }
}

/// The name of a prepared object.
fn object_name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

/// Whether the object has finalizers, which hold its deletion back.
fn has_finalizers(object: &Value) -> bool {
    object["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|finalizers| !finalizers.is_empty())
}

/// Whether the object is being deleted.
fn has_deletion_timestamp(object: &Value) -> bool {
    !object["metadata"]["deletionTimestamp"].is_null()
}

/// Decodes a stored object; one that does not decode was damaged outside the API.
fn stored_object(path: &ResourcePath, name: &str, stored: &Value) -> Result<AnyObject, ApiError> {
    AnyObject::from_json(stored.clone()).map_err(|error| {
        ApiError::Store(StoreError::Corrupt {
            what: format!("object {}", path.key_for(name)),
            source: error.into(),
        })
    })
}

/// The resourceVersion the store wrote into a stored object.
fn stored_version(key: &ObjectKey, stored: &Value) -> Result<i64, ApiError> {
    resource_version_of(stored).ok_or_else(|| {
        ApiError::Store(StoreError::Corrupt {
            what: format!("object {key}"),
            source: "it has no metadata.resourceVersion".into(),
        })
    })
}

/// Checks a DELETE's preconditions against the stored object.
fn check_preconditions(
    kind: Kind,
    name: &str,
    stored: &Value,
    current: i64,
    options: &DeleteOptions,
) -> Result<(), ApiError> {
    if options
        .resource_version
        .is_some_and(|expected| expected != current)
    {
        return Err(ApiError::stale(kind, name));
    }
    let actual = stored["metadata"]["uid"].as_str().unwrap_or_default();
    match &options.uid {
        Some(expected) if expected != actual => Err(ApiError::Conflict {
            kind,
            name: name.to_owned(),
            why: format!(
                "Precondition failed: UID in precondition: {expected}, UID in object meta: {actual}"
            ),
        }),
        _ => Ok(()),
    }
}

/// Stores `object` (its last finalizer gone) and deletes it, so that watchers see the final
/// MODIFIED state, then DELETED.
async fn finish_deletion(
    state: &AppState,
    kind: Kind,
    key: &ObjectKey,
    object: Value,
    current: i64,
) -> Result<Value, StoreError> {
    let written = state.store.update(key, object, Some(current)).await?;
    let version = resource_version_of(&written);
    let deleted = state.store.delete(key, version).await?;
    state.metrics.add_store_objects(kind, -1);
    Ok(deleted)
}

/// The Site that a namespaced object belongs to must exist and not be being deleted.
async fn require_site(
    state: &AppState,
    kind: Kind,
    site: &str,
    name: &str,
) -> Result<(), ApiError> {
    let stored = state
        .store
        .get(&ObjectKey::cluster(Kind::Site.plural(), site))
        .await?;
    if has_deletion_timestamp(&stored) {
        return Err(ApiError::Forbidden {
            kind,
            name: name.to_owned(),
            why: format!(
                "unable to create new content in namespace {site} because it is being terminated"
            ),
        });
    }
    Ok(())
}

/// Refuses to delete a Site whose namespace still holds objects, naming their kinds.
async fn require_empty_site(state: &AppState, site: &str) -> Result<(), ApiError> {
    let mut held = Vec::new();
    for kind in Kind::ALL.into_iter().filter(|kind| kind.namespaced()) {
        let options = ListOptions {
            namespace: Some(site.to_owned()),
            limit: Some(1),
            continue_token: None,
        };
        let page = state.store.list(kind.plural(), &options, |_| true).await?;
        if !page.items.is_empty() {
            held.push(kind.plural());
        }
    }
    if held.is_empty() {
        return Ok(());
    }
    Err(ApiError::Conflict {
        kind: Kind::Site,
        name: site.to_owned(),
        why: format!(
            "the site still holds {} in its namespace; delete them first (deleting a site never \
             deletes its objects)",
            held.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn host_path() -> ResourcePath {
        ResourcePath::parse("namespaces/alpha/hosts/web-1").unwrap()
    }

    fn host(spec: Value) -> Value {
        json!({
            "apiVersion": "osiriscare.net/v1alpha1",
            "kind": "Host",
            "metadata": {"name": "web-1", "namespace": "alpha"},
            "spec": spec,
        })
    }

    fn spec() -> Value {
        json!({
            "platform": "linux",
            "address": "10.0.0.1",
            "transport": {"type": "ssh", "credentialRef": "linux-ssh"},
        })
    }

    /// A host as the store would hold it after a create at resourceVersion 7.
    fn stored_host() -> Value {
        let object = decode_object(Kind::Host, host(spec())).unwrap();
        let mut stored = prepare_create(object, "2025-01-01T00:00:00.5Z".parse().unwrap()).unwrap();
        stored["metadata"]["resourceVersion"] = json!("7");
        stored["status"] = json!({"observedGeneration": 1});
        stored
    }

    #[test]
    fn create_sets_the_server_fields_and_drops_status() {
        let mut value = host(spec());
        value["metadata"]["uid"] = json!("client-uid");
        value["metadata"]["generation"] = json!(9);
        value["metadata"]["resourceVersion"] = json!("3");
        value["status"] = json!({"observedGeneration": 4});
        let object = decode_object(Kind::Host, value).unwrap();
        let created = prepare_create(object, "2025-01-01T00:00:00.5Z".parse().unwrap()).unwrap();
        let metadata = &created["metadata"];
        assert_ne!(metadata["uid"], json!("client-uid"));
        assert!(uuid::Uuid::parse_str(metadata["uid"].as_str().unwrap()).is_ok());
        assert_eq!(metadata["creationTimestamp"], json!("2025-01-01T00:00:00Z"));
        assert_eq!(metadata["generation"], json!(1));
        assert_eq!(metadata.get("resourceVersion"), None);
        assert_eq!(created.get("status"), None);
    }

    #[test]
    fn update_bumps_generation_only_when_the_spec_changes() {
        let stored = stored_host();
        let unchanged = stored.clone();
        assert_eq!(
            prepare_update(&host_path(), "web-1", &stored, unchanged).unwrap(),
            Outcome::Unchanged
        );

        let mut relabelled = stored.clone();
        relabelled["metadata"]["labels"] = json!({"role": "web"});
        let Outcome::Write(written) =
            prepare_update(&host_path(), "web-1", &stored, relabelled).unwrap()
        else {
            panic!("a label change is written");
        };
        assert_eq!(written["metadata"]["generation"], json!(1));

        let mut moved = stored.clone();
        moved["spec"]["address"] = json!("10.0.0.2");
        let Outcome::Write(written) =
            prepare_update(&host_path(), "web-1", &stored, moved).unwrap()
        else {
            panic!("a spec change is written");
        };
        assert_eq!(written["metadata"]["generation"], json!(2));
    }

    #[test]
    fn update_keeps_status_and_server_fields_from_the_stored_object() {
        let stored = stored_host();
        let mut incoming = host(spec());
        incoming["spec"]["address"] = json!("10.0.0.9");
        incoming["status"] = json!({"observedGeneration": 99});
        incoming["metadata"]["creationTimestamp"] = json!("2030-01-01T00:00:00Z");
        incoming["metadata"]["generation"] = json!(50);
        let Outcome::Write(written) =
            prepare_update(&host_path(), "web-1", &stored, incoming).unwrap()
        else {
            panic!("written");
        };
        assert_eq!(written["status"], stored["status"]);
        for field in ["uid", "creationTimestamp"] {
            assert_eq!(
                written["metadata"][field], stored["metadata"][field],
                "{field}"
            );
        }
        assert_eq!(written["metadata"]["generation"], json!(2));
    }

    #[test]
    fn update_refuses_another_uid_a_wrong_name_and_new_finalizers_while_deleting() {
        let stored = stored_host();
        let mut other_uid = stored.clone();
        other_uid["metadata"]["uid"] = json!("another");
        assert!(matches!(
            prepare_update(&host_path(), "web-1", &stored, other_uid),
            Err(ApiError::Conflict { .. })
        ));

        let mut renamed = stored.clone();
        renamed["metadata"]["name"] = json!("web-2");
        assert!(matches!(
            prepare_update(&host_path(), "web-1", &stored, renamed),
            Err(ApiError::BadRequest(message)) if message.contains("does not match the name on the URL")
        ));

        let mut deleting = stored.clone();
        deleting["metadata"]["finalizers"] = json!(["a.example/x"]);
        deleting["metadata"]["deletionTimestamp"] = json!("2025-01-02T00:00:00Z");
        let mut added = deleting.clone();
        added["metadata"]["finalizers"] = json!(["a.example/x", "b.example/y"]);
        match prepare_update(&host_path(), "web-1", &deleting, added) {
            Err(ApiError::Invalid { errors, .. }) => {
                assert_eq!(errors[0].path, "metadata.finalizers");
                assert!(errors[0].message.contains("b.example/y"), "{:?}", errors[0]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn removing_the_last_finalizer_of_a_deleted_object_deletes_it() {
        let mut stored = stored_host();
        stored["metadata"]["finalizers"] = json!(["a.example/x"]);
        let marked = mark_for_deletion(&stored, "2025-01-02T03:04:05.6Z".parse().unwrap());
        assert_eq!(
            marked["metadata"]["deletionTimestamp"],
            json!("2025-01-02T03:04:05Z")
        );

        let mut released = marked.clone();
        released["metadata"]["finalizers"] = json!([]);
        assert!(matches!(
            prepare_update(&host_path(), "web-1", &marked, released).unwrap(),
            Outcome::WriteAndDelete(_)
        ));
        let mut relabelled = marked.clone();
        relabelled["metadata"]["labels"] = json!({"a": "b"});
        assert!(matches!(
            prepare_update(&host_path(), "web-1", &marked, relabelled).unwrap(),
            Outcome::Write(_)
        ));
    }

    #[test]
    fn status_updates_change_only_status() {
        let stored = stored_host();
        let mut incoming = stored.clone();
        incoming["spec"]["address"] = json!("10.9.9.9");
        incoming["metadata"]["labels"] = json!({"sneaky": "yes"});
        incoming["status"] = json!({"observedGeneration": 2});
        let path = ResourcePath::parse("namespaces/alpha/hosts/web-1/status").unwrap();
        let Outcome::Write(written) =
            prepare_status_update(&path, "web-1", &stored, incoming).unwrap()
        else {
            panic!("written");
        };
        let mut expected = stored.clone();
        expected["status"] = json!({"observedGeneration": 2});
        assert_eq!(written, expected);
        assert_eq!(
            prepare_status_update(&path, "web-1", &stored, stored.clone()).unwrap(),
            Outcome::Unchanged
        );
    }

    #[test]
    fn generate_name_makes_a_name_only_when_none_is_given() {
        let generated = with_generated_name(json!({"metadata": {"generateName": "web-"}}));
        let name = generated["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("web-") && name.len() == 9, "{name}");
        assert_eq!(generated["metadata"].get("generateName"), None);
        let named = with_generated_name(json!({"metadata": {"name": "x", "generateName": "web-"}}));
        assert_eq!(named, json!({"metadata": {"name": "x"}}));
    }

    #[test]
    fn delete_options_read_preconditions_and_dry_run() {
        let query = Query::default();
        let cases = [
            (None, Some(DeleteOptions::default())),
            (
                Some(json!({"kind": "DeleteOptions", "apiVersion": "v1",
                    "preconditions": {"resourceVersion": "5", "uid": "u"},
                    "propagationPolicy": "Background"})),
                Some(DeleteOptions {
                    resource_version: Some(5),
                    uid: Some("u".into()),
                    dry_run: false,
                }),
            ),
            (
                Some(json!({"dryRun": ["All"]})),
                Some(DeleteOptions {
                    dry_run: true,
                    ..DeleteOptions::default()
                }),
            ),
            (Some(json!({"dryRun": ["Some"]})), None),
            (
                Some(json!({"preconditions": {"resourceVersion": "x"}})),
                None,
            ),
            (Some(json!([])), None),
        ];
        for (body, expected) in cases {
            assert_eq!(
                delete_options(body.clone(), &query).ok(),
                expected,
                "{body:?}"
            );
        }
    }
}
