//! Credential secrets are write-only: no read path returns `spec.data`.
//!
//! Every response that carries objects (get, list, table, create, update, delete, watch events)
//! passes each object through [`redact`], which removes a Credential's `spec.data` whole, keys
//! and values. A marker value was rejected: a client that reads, edits and writes back (kubectl
//! edit, a controller's update) would store the marker as the secret. Instead, a write whose
//! `spec.data` is absent or empty keeps the stored secret ([`keep_stored_secret`]); a write with
//! data replaces it whole. Encryption at rest and the appliance's credential pull are later work.

use osc_crds::Kind;
use serde_json::Value;

/// Removes what a reader must never see from an object of `kind`: a Credential's `spec.data`.
/// Objects of other kinds are left alone.
pub fn redact(kind: Kind, object: &mut Value) {
    if kind == Kind::Credential
        && let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.remove("data");
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

    #[test]
    fn redaction_removes_credential_data_only() {
        let mut secret = credential(Some(json!({"password": "hunter2"})));
        redact(Kind::Credential, &mut secret);
        assert_eq!(secret, credential(None));
        assert!(!secret.to_string().contains("hunter2"));

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
}
