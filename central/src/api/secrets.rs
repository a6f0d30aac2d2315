//! Credential secrets: sealed on the way in, never read back by people.
//!
//! Writes: [`seal_incoming`] seals each plaintext value of `spec.data` under the keyring's
//! primary key (see [`crate::keyring`]) before admission goes on, so the store (objects and
//! watch history alike) only ever holds sealed values. A write whose `spec.data` is absent or
//! empty keeps the stored secret ([`keep_stored_secret`]), so read-modify-write never erases it;
//! a write with data replaces it whole; a value equal to the stored one keeps its stored seal,
//! so writing back what was there changes nothing.
//!
//! Reads: every response that carries objects (get, list, table, create, update, delete, watch
//! events) passes each object through [`redact`], which removes a Credential's `spec.data` and
//! lists the keys that are set in the server-owned annotation [`DATA_KEYS_ANNOTATION`], so people
//! see that a secret is set without seeing it. A marker value in `data` was rejected: a client
//! that reads, edits and writes back (kubectl edit) would store the marker as the secret. Only the
//! site's appliance reads the values, decrypted by [`open_data`], from the credential's `/data`
//! path (`api/credentials.rs`).

use std::collections::BTreeMap;

use osc_crds::Kind;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::error::ApiError;
use crate::keyring::{Binding, KeySet, KeyringError};

/// The annotation that shows which `spec.data` keys a Credential has set (comma-separated, in
/// order), added to every Credential a response carries. The server owns it: a value sent in a
/// write is dropped.
pub const DATA_KEYS_ANNOTATION: &str = "osiriscare.net/data-keys";

/// Removes what a reader must never see from an object of `kind`: a Credential's `spec.data`,
/// replaced by the [`DATA_KEYS_ANNOTATION`] naming its keys. Objects of other kinds are left
/// alone.
pub fn redact(kind: Kind, object: &mut Value) {
    if kind != Kind::Credential {
        return;
    }
    let keys = object
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .and_then(|spec| spec.remove("data"))
        .and_then(|data| match data {
            Value::Object(data) if !data.is_empty() => {
                Some(data.keys().cloned().collect::<Vec<_>>().join(","))
            }
            _ => None,
        });
    let annotations = object
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .map(|metadata| {
            metadata
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()))
        })
        .and_then(Value::as_object_mut);
    if let Some(annotations) = annotations {
        match keys {
            Some(keys) => {
                annotations.insert(DATA_KEYS_ANNOTATION.to_owned(), Value::String(keys));
            }
            None => {
                annotations.remove(DATA_KEYS_ANNOTATION);
            }
        }
        if annotations.is_empty()
            && let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
        {
            metadata.remove("annotations");
        }
    }
}

/// For a write of a Credential without `spec.data` (as a client that read the redacted object
/// sends it back), carries the stored object's data over, so that reading and writing back
/// never erases a secret.
pub fn keep_stored_secret(kind: Kind, incoming: &mut Value, stored: &Value) {
    if kind != Kind::Credential {
        return;
    }
    let given = incoming
        .pointer("/spec/data")
        .is_some_and(|data| data.as_object().is_none_or(|data| !data.is_empty()));
    if given {
        return;
    }
    if let (Some(data), Some(spec)) = (
        stored.pointer("/spec/data"),
        incoming.get_mut("spec").and_then(Value::as_object_mut),
    ) {
        spec.insert("data".to_owned(), data.clone());
    }
}

/// Prepares a Credential being written to `site`/`name` for the store: drops the server-owned
/// [`DATA_KEYS_ANNOTATION`] and seals every `spec.data` value under the primary key. A value
/// that is already sealed for this very place (the stored data, carried over by a patch) is kept
/// as it is, and so is the stored seal of a value written again unchanged. Values that are not
/// strings are left for admission to refuse. Objects of other kinds are left alone.
pub fn seal_incoming(
    keys: &KeySet,
    kind: Kind,
    (site, name): (&str, &str),
    object: &mut Value,
    stored: Option<&Value>,
) -> Result<(), ApiError> {
    if kind != Kind::Credential {
        return Ok(());
    }
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(DATA_KEYS_ANNOTATION);
    }
    let Some(data) = object
        .pointer_mut("/spec/data")
        .and_then(Value::as_object_mut)
    else {
        return Ok(());
    };
    let stored_data = stored.and_then(|stored| stored.pointer("/spec/data"));
    for (field, value) in data.iter_mut() {
        let Value::String(text) = value else {
            continue;
        };
        let binding = Binding {
            site,
            credential: name,
            field,
        };
        if keys.open(&binding, text).is_ok() {
            continue;
        }
        let stored_seal = stored_data
            .and_then(|data| data.get(field.as_str()))
            .and_then(Value::as_str)
            .filter(|sealed| {
                keys.open(&binding, sealed)
                    .is_ok_and(|plain| plain.as_str() == text.as_str())
            });
        let sealed = match stored_seal {
            Some(sealed) => sealed.to_owned(),
            None => keys
                .seal(&binding, text)
                .map_err(|source| ApiError::Secret {
                    name: name.to_owned(),
                    source,
                })?,
        };
        // The plaintext is overwritten, not merely dropped.
        zeroize::Zeroize::zeroize(text);
        *text = sealed;
    }
    Ok(())
}

/// The decrypted `spec.data` of the stored Credential `site`/`name`, each value in a buffer
/// that is wiped when dropped.
pub fn open_data(
    keys: &KeySet,
    (site, name): (&str, &str),
    stored: &Value,
) -> Result<BTreeMap<String, Zeroizing<String>>, KeyringError> {
    let Some(data) = stored.pointer("/spec/data").and_then(Value::as_object) else {
        return Ok(BTreeMap::new());
    };
    data.iter()
        .map(|(field, value)| {
            let sealed = value.as_str().ok_or(KeyringError::Malformed)?;
            let binding = Binding {
                site,
                credential: name,
                field,
            };
            Ok((field.clone(), keys.open(&binding, sealed)?))
        })
        .collect()
}

/// Moves every value of the stored Credential `site`/`name` that is sealed under an older key
/// to the primary key; says whether anything changed.
pub fn reseal(
    keys: &KeySet,
    (site, name): (&str, &str),
    object: &mut Value,
) -> Result<bool, KeyringError> {
    let Some(data) = object
        .pointer_mut("/spec/data")
        .and_then(Value::as_object_mut)
    else {
        return Ok(false);
    };
    let mut changed = false;
    for (field, value) in data.iter_mut() {
        let sealed = value.as_str().ok_or(KeyringError::Malformed)?;
        if keys.is_current(sealed) {
            continue;
        }
        let binding = Binding {
            site,
            credential: name,
            field,
        };
        let plain = keys.open(&binding, sealed)?;
        *value = Value::String(keys.seal(&binding, &plain)?);
        changed = true;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn credential(data: Option<Value>) -> Value {
        let mut object = json!({
            "kind": "Credential",
            "spec": {"type": "password", "username": "svc"},
        });
        if let Some(data) = data {
            object["spec"]["data"] = data;
        }
        object
    }

    fn keys(byte: u8) -> KeySet {
        let key = crate::keyring::MasterKey::from_base64(&base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            [byte; 32],
        ))
        .unwrap();
        KeySet::new(key, Vec::new())
    }

    const PLACE: (&str, &str) = ("clinic-a", "svc");

    #[test]
    fn redaction_removes_credential_data_only_and_names_the_keys_set() {
        let mut secret = credential(Some(json!({"password": "hunter2", "a": "b"})));
        secret["metadata"] = json!({});
        redact(Kind::Credential, &mut secret);
        let mut expected = credential(None);
        expected["metadata"] = json!({"annotations": {DATA_KEYS_ANNOTATION: "a,password"}});
        assert_eq!(secret, expected);
        assert!(!secret.to_string().contains("hunter2"));

        // No data: no annotation, and a stray one (as written back by a client) goes.
        let mut unset = credential(None);
        unset["metadata"] = json!({"annotations": {DATA_KEYS_ANNOTATION: "forged"}});
        redact(Kind::Credential, &mut unset);
        assert_eq!(unset, {
            let mut bare = credential(None);
            bare["metadata"] = json!({});
            bare
        });

        // Another kind's `spec.data` (if it had one) is not a secret.
        let mut host = json!({"spec": {"data": "kept"}});
        redact(Kind::Host, &mut host);
        assert_eq!(host, json!({"spec": {"data": "kept"}}));
    }

    #[test]
    fn writing_back_a_redacted_credential_keeps_the_stored_secret() {
        let stored = credential(Some(json!({"password": "old"})));
        let cases = [
            (credential(None), Some(json!({"password": "old"}))),
            (
                credential(Some(json!({}))),
                Some(json!({"password": "old"})),
            ),
            (
                credential(Some(json!({"password": "new"}))),
                Some(json!({"password": "new"})),
            ),
        ];
        for (mut incoming, expected) in cases {
            keep_stored_secret(Kind::Credential, &mut incoming, &stored);
            assert_eq!(incoming.pointer("/spec/data").cloned(), expected);
        }
        let mut host = json!({"spec": {}});
        keep_stored_secret(Kind::Host, &mut host, &json!({"spec": {"data": 1}}));
        assert_eq!(host, json!({"spec": {}}));
    }

    #[test]
    fn incoming_values_are_sealed_and_stored_seals_are_kept() {
        let keys = keys(1);
        let mut first = credential(Some(json!({"password": "hunter2"})));
        first["metadata"] = json!({"annotations": {DATA_KEYS_ANNOTATION: "forged"}});
        seal_incoming(&keys, Kind::Credential, PLACE, &mut first, None).unwrap();
        let sealed = first["spec"]["data"]["password"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            sealed.starts_with(crate::keyring::SEALED_PREFIX),
            "{sealed}"
        );
        assert!(!first.to_string().contains("hunter2"));
        assert_eq!(first["metadata"]["annotations"], json!({}));
        let opened = open_data(&keys, PLACE, &first).unwrap();
        assert_eq!(opened["password"].as_str(), "hunter2");

        // The same plaintext again, or the sealed value carried over: the stored seal stays.
        for value in ["hunter2", sealed.as_str()] {
            let mut again = credential(Some(json!({ "password": value })));
            seal_incoming(&keys, Kind::Credential, PLACE, &mut again, Some(&first)).unwrap();
            assert_eq!(again["spec"]["data"]["password"], sealed.as_str());
        }
        // A new value gets a new seal.
        let mut changed = credential(Some(json!({"password": "new"})));
        seal_incoming(&keys, Kind::Credential, PLACE, &mut changed, Some(&first)).unwrap();
        assert_ne!(changed["spec"]["data"]["password"], sealed.as_str());
        // A seal from another credential is not a seal here: it is taken as a (strange)
        // plaintext and sealed, so it can never be moved in to be opened.
        let mut moved = credential(Some(json!({ "password": sealed })));
        seal_incoming(
            &keys,
            Kind::Credential,
            ("clinic-b", "svc"),
            &mut moved,
            None,
        )
        .unwrap();
        let opened = open_data(&keys, ("clinic-b", "svc"), &moved).unwrap();
        assert_eq!(opened["password"].as_str(), sealed);
    }

    #[test]
    fn resealing_moves_values_to_the_primary_key_only_once() {
        let mut object = credential(Some(json!({"password": "hunter2"})));
        seal_incoming(&keys(1), Kind::Credential, PLACE, &mut object, None).unwrap();
        let old = keys(1).primary().clone();
        let rotated = KeySet::new(keys(2).primary().clone(), vec![old]);
        assert!(reseal(&rotated, PLACE, &mut object).unwrap());
        assert!(!reseal(&rotated, PLACE, &mut object).unwrap());
        let opened = open_data(&keys(2), PLACE, &object).unwrap();
        assert_eq!(opened["password"].as_str(), "hunter2");
        assert!(open_data(&keys(1), PLACE, &object).is_err());
    }
}
