//! Model-based test: random sequences of object operations run against the real store and
//! against a map, and every answer must agree, resourceVersions included.

use std::collections::BTreeMap;

use osc_central::store::{ListOptions, ObjectKey, StoreError};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::fixture::{Kind, TestDb};

/// Whether a write carries a resourceVersion precondition, and which.
#[derive(Debug, Clone, Copy)]
enum Precondition {
    None,
    /// The object's current version.
    Current,
    /// A version the object had before (or never had).
    Stale,
}

/// One step of a test run.
#[derive(Debug, Clone)]
enum Op {
    Create(ObjectKey, i64),
    Update(ObjectKey, i64, Precondition),
    Delete(ObjectKey, Precondition),
    Get(ObjectKey),
    /// List a resource (in a namespace), following continue tokens with this page size.
    List {
        resource: &'static str,
        namespace: Option<&'static str>,
        limit: Option<u64>,
    },
}

/// The store as a map, with the version counter it should have.
#[derive(Default)]
struct Model {
    objects: BTreeMap<ObjectKey, Value>,
    resource_version: i64,
}

/// The outcome of an operation, reduced to what must be equal between store and model.
#[derive(Debug, PartialEq)]
enum Outcome {
    Object(Value),
    List(Vec<Value>, i64),
    NotFound,
    AlreadyExists,
    Conflict { expected: i64, current: i64 },
}

impl Model {
    /// Applies `op` and says what the store must answer.
    fn apply(&mut self, op: &Op) -> Outcome {
        match op {
            Op::Create(key, value) => {
                if self.objects.contains_key(key) {
                    return Outcome::AlreadyExists;
                }
                let object = self.stamp(body(key, *value));
                self.objects.insert(key.clone(), object.clone());
                Outcome::Object(object)
            }
            Op::Update(key, value, precondition) => {
                if let Err(outcome) = self.check(key, *precondition) {
                    return outcome;
                }
                let object = self.stamp(body(key, *value));
                self.objects.insert(key.clone(), object.clone());
                Outcome::Object(object)
            }
            Op::Delete(key, precondition) => {
                if let Err(outcome) = self.check(key, *precondition) {
                    return outcome;
                }
                let last = self.objects.remove(key).expect("checked");
                Outcome::Object(self.stamp(last))
            }
            Op::Get(key) => self
                .objects
                .get(key)
                .map_or(Outcome::NotFound, |object| Outcome::Object(object.clone())),
            Op::List {
                resource,
                namespace,
                ..
            } => {
                let mut items: Vec<_> = self
                    .objects
                    .iter()
                    .filter(|(key, _)| {
                        key.resource == *resource
                            && namespace.is_none_or(|namespace| key.namespace == namespace)
                    })
                    .map(|(key, object)| ((key.namespace.clone(), key.name.clone()), object))
                    .collect();
                items.sort_by(|a, b| a.0.cmp(&b.0));
                Outcome::List(
                    items
                        .into_iter()
                        .map(|(_, object)| object.clone())
                        .collect(),
                    self.resource_version,
                )
            }
        }
    }

    /// The existence and precondition checks of update and delete.
    fn check(&self, key: &ObjectKey, precondition: Precondition) -> Result<(), Outcome> {
        let current = self.objects.get(key).ok_or(Outcome::NotFound)?;
        let current = crate::fixture::rv(current);
        match precondition {
            Precondition::Stale => Err(Outcome::Conflict {
                expected: current - 1,
                current,
            }),
            Precondition::None | Precondition::Current => Ok(()),
        }
    }

    /// Takes the next version and writes it into the object.
    fn stamp(&mut self, mut object: Value) -> Value {
        self.resource_version += 1;
        object["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
        object
    }
}

/// The object the test writes for `key`.
fn body(key: &ObjectKey, value: i64) -> Value {
    json!({"metadata": {"name": key.name, "namespace": key.namespace}, "spec": {"value": value}})
}

/// Runs `ops` against a fresh store and the model; fails at the first disagreement.
async fn run(kind: Kind, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    let mut model = Model::default();
    for (step, op) in ops.iter().enumerate() {
        let precondition = |key: &ObjectKey, precondition: Precondition| {
            let current = model.objects.get(key).map(crate::fixture::rv);
            match precondition {
                Precondition::None => None,
                Precondition::Current => Some(current.unwrap_or(1)),
                Precondition::Stale => Some(current.map_or(1, |rv| rv - 1)),
            }
        };
        let result = match op {
            Op::Create(key, value) => store
                .create(key, body(key, *value))
                .await
                .map(Outcome::Object),
            Op::Update(key, value, pre) => store
                .update(key, body(key, *value), precondition(key, *pre))
                .await
                .map(Outcome::Object),
            Op::Delete(key, pre) => store
                .delete(key, precondition(key, *pre))
                .await
                .map(Outcome::Object),
            Op::Get(key) => store.get(key).await.map(Outcome::Object),
            Op::List {
                resource,
                namespace,
                limit,
            } => {
                let mut items = Vec::new();
                let mut options = ListOptions {
                    namespace: namespace.map(str::to_owned),
                    limit: *limit,
                    continue_token: None,
                };
                loop {
                    let page = store.list(resource, &options, |_| true).await.unwrap();
                    prop_assert!(limit.is_none_or(|limit| page.items.len() as u64 <= limit));
                    items.extend(page.items);
                    options.continue_token = page.continue_token;
                    if options.continue_token.is_none() {
                        break Ok(Outcome::List(items, page.resource_version));
                    }
                }
            }
        };
        let actual = match result {
            Ok(outcome) => outcome,
            Err(StoreError::NotFound { .. }) => Outcome::NotFound,
            Err(StoreError::AlreadyExists { .. }) => Outcome::AlreadyExists,
            Err(StoreError::Conflict {
                expected, current, ..
            }) => Outcome::Conflict { expected, current },
            Err(error) => return Err(TestCaseError::fail(format!("step {step} {op:?}: {error}"))),
        };
        prop_assert_eq!(actual, model.apply(op), "step {} {:?}", step, op);
    }
    prop_assert_eq!(store.current_rv().await.unwrap(), model.resource_version);
    drop(store);
    db.remove().await;
    Ok(())
}

/// Keys from a small space, so that operations often meet the same object.
fn key() -> impl Strategy<Value = ObjectKey> {
    prop_oneof![
        prop::sample::select(vec!["a", "b", "c"])
            .prop_map(|name| ObjectKey::cluster("sites", name)),
        (
            prop::sample::select(vec!["x", "y"]),
            prop::sample::select(vec!["a", "b", "c"])
        )
            .prop_map(|(namespace, name)| ObjectKey::namespaced("hosts", namespace, name)),
    ]
}

fn precondition() -> impl Strategy<Value = Precondition> {
    prop_oneof![
        Just(Precondition::None),
        Just(Precondition::Current),
        Just(Precondition::Stale),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (key(), 0..100i64).prop_map(|(key, value)| Op::Create(key, value)),
        3 => (key(), 0..100i64, precondition())
            .prop_map(|(key, value, pre)| Op::Update(key, value, pre)),
        2 => (key(), precondition()).prop_map(|(key, pre)| Op::Delete(key, pre)),
        1 => key().prop_map(Op::Get),
        1 => (
            prop::sample::select(vec!["sites", "hosts"]),
            prop::option::of(prop::sample::select(vec!["", "x", "y"])),
            prop::option::of(1..4u64),
        )
            .prop_map(|(resource, namespace, limit)| Op::List { resource, namespace, limit }),
    ]
}

/// Runs the model test for `kind` with `cases` random operation sequences.
pub fn check_against_model(kind: Kind, cases: u32) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let result = runner.run(&prop::collection::vec(op(), 1..40), |ops| {
        runtime.block_on(run(kind, ops))
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}
