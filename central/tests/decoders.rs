//! Property tests of the request decoders against a real server (SQLite, over TLS): generated
//! bodies of create (POST), update (PUT) and the three patch types, and generated query strings.
//!
//! Each body starts from a valid one (a test below checks that every valid body is accepted)
//! and is broken in one way that no correct server may accept: random bytes, a truncation,
//! invalid UTF-8, a value of the wrong type at a random field path, an unknown field, deep
//! nesting, a number too large for any field. The properties:
//! - the answer is a Kubernetes `Status` whose code is the HTTP status, and it is a 4xx (exactly
//!   400 where the body cannot even be parsed);
//! - the store is unchanged (a snapshot of every kind, resourceVersions included, is equal);
//! - the server goes on answering (a GET right after succeeds).
//!
//! Queries: malformed `limit`, `continue`, `resourceVersion`, `resourceVersionMatch` and watch
//! parameters are 400s; a generated label selector is answered exactly as the selector parser
//! of `osc-crds` decides: 400 when it refuses it, otherwise the objects it matches.

mod common;

use std::collections::BTreeMap;

use common::{Backend, Reply, TestCentral, host, site};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};

const GROUP_VERSION: &str = "/apis/osiriscare.net/v1alpha1";
const HOSTS: &str = "/apis/osiriscare.net/v1alpha1/namespaces/alpha/hosts";
const WEB_1: &str = "/apis/osiriscare.net/v1alpha1/namespaces/alpha/hosts/web-1";

/// Cases per property: enough to reach every generator branch many times, few enough that the
/// file runs in seconds.
const CASES: u32 = 96;

/// A write request whose valid body the mutations start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// POST of a new Site.
    CreateSite,
    /// POST of a new Host.
    CreateHost,
    /// PUT of the stored Site `alpha` with a changed spec.
    UpdateSite,
    /// PUT of the stored Host `web-1` with a changed spec.
    UpdateHost,
    /// PATCH of `web-1` with a JSON merge patch.
    MergePatch,
    /// PATCH of `web-1` with a JSON patch (a `test`, then a `replace` of the spec).
    JsonPatch,
    /// PATCH of `web-1` with a server-side apply configuration (YAML).
    Apply,
}

/// How a valid body is broken.
#[derive(Debug, Clone)]
enum Mutation {
    /// The body is replaced by bytes that are not JSON.
    RandomBytes(Vec<u8>),
    /// The body's JSON text is cut short, at this fraction of its length.
    Truncate(f64),
    /// These bytes (never valid UTF-8) are inserted into the JSON text at this fraction of it.
    InvalidUtf8(f64, Vec<u8>),
    /// The node picked by this index (among all nodes) gets a value of another, non-null type.
    WrongType(usize, WrongValue),
    /// The object node picked by this index (among those where no extra key is allowed) gets an
    /// unknown field.
    UnknownField(usize, String),
    /// The node picked by this index gets arrays (or objects) nested this deep.
    DeepNesting(usize, usize, bool),
}

/// A replacement value; the first of the list whose JSON type differs from the replaced one is
/// used.
#[derive(Debug, Clone)]
enum WrongValue {
    /// A number beyond every integer and float field's range.
    Huge(String),
    /// A string.
    Text(String),
    /// A boolean.
    Flag(bool),
    /// An array.
    List,
    /// An object.
    Map,
}

impl Target {
    const ALL: [Self; 7] = [
        Self::CreateSite,
        Self::CreateHost,
        Self::UpdateSite,
        Self::UpdateHost,
        Self::MergePatch,
        Self::JsonPatch,
        Self::Apply,
    ];

    /// The method, path and `Content-Type` of the request.
    fn request(self) -> (Method, String, &'static str) {
        let json = "application/json";
        match self {
            Self::CreateSite => (Method::POST, format!("{GROUP_VERSION}/sites"), json),
            Self::CreateHost => (Method::POST, HOSTS.to_owned(), json),
            Self::UpdateSite => (Method::PUT, format!("{GROUP_VERSION}/sites/alpha"), json),
            Self::UpdateHost => (Method::PUT, WEB_1.to_owned(), json),
            Self::MergePatch => (
                Method::PATCH,
                WEB_1.to_owned(),
                "application/merge-patch+json",
            ),
            Self::JsonPatch => (
                Method::PATCH,
                WEB_1.to_owned(),
                "application/json-patch+json",
            ),
            Self::Apply => (
                Method::PATCH,
                format!("{WEB_1}?fieldManager=fuzz"),
                "application/apply-patch+yaml",
            ),
        }
    }

    /// The valid body, as a value; `stored` holds the objects the server has now.
    fn valid(self, stored: &Stored) -> Value {
        let new_spec = json!({
            "address": "10.9.9.9",
            "platform": "linux",
            "transport": {"type": "ssh", "port": 2222, "credentialRef": "linux-ssh"},
        });
        match self {
            Self::CreateSite => site("beta", json!({"tier": "new"})),
            Self::CreateHost => host("alpha", "web-9", json!({"app": "web"})),
            Self::UpdateSite => {
                let mut site = stored.site.clone();
                site["spec"]["displayName"] = json!("Renamed practice");
                site
            }
            Self::UpdateHost => {
                let mut host = stored.host.clone();
                host["spec"] = new_spec;
                host
            }
            Self::MergePatch => {
                json!({"metadata": {"labels": {"patched": "yes"}}, "spec": new_spec})
            }
            Self::JsonPatch => json!([
                {"op": "test", "path": "/metadata/name", "value": "web-1"},
                {"op": "replace", "path": "/spec", "value": new_spec},
            ]),
            Self::Apply => json!({
                "apiVersion": "osiriscare.net/v1alpha1",
                "kind": "Host",
                "metadata": {"name": "web-1", "namespace": "alpha"},
                "spec": new_spec,
            }),
        }
    }

    /// Serializes a body as the request's media type: YAML for apply, else JSON.
    fn encode(self, value: &Value) -> Vec<u8> {
        match self {
            Self::Apply => serde_yaml::to_string(value).unwrap().into_bytes(),
            _ => serde_json::to_vec(value).unwrap(),
        }
    }

    /// Whether an unknown key may be added to the object node at `path` and still be refused.
    /// Labels and annotations are maps, where any key is allowed; a JSON patch's operations
    /// ignore unknown members (as RFC 6902 lets them), so only its `value` is checked.
    fn refuses_unknown_keys_at(self, path: &[String]) -> bool {
        let in_map = path
            .iter()
            .any(|segment| segment == "labels" || segment == "annotations");
        match self {
            Self::JsonPatch => !in_map && path.len() >= 2 && path[1] == "value",
            _ => !in_map,
        }
    }
}

/// The objects the server starts with, as stored.
struct Stored {
    /// The Site `alpha`.
    site: Value,
    /// The Host `alpha/web-1`.
    host: Value,
}

impl Mutation {
    /// Whether the result cannot even be parsed, so that the answer must be exactly 400.
    fn breaks_syntax(&self) -> bool {
        matches!(
            self,
            Self::RandomBytes(_) | Self::Truncate(_) | Self::InvalidUtf8(..)
        ) || matches!(self, Self::DeepNesting(_, depth, _) if *depth > 128)
    }

    /// The body `target`'s valid `value` becomes.
    fn apply(&self, target: Target, value: &Value) -> Vec<u8> {
        match self {
            Self::RandomBytes(bytes) => bytes.clone(),
            Self::Truncate(fraction) => {
                // JSON text for apply too (YAML reads JSON): any proper prefix of a JSON
                // object's text is broken, whereas a prefix of block YAML may be a smaller,
                // valid configuration.
                let text = serde_json::to_vec(value).unwrap();
                let cut = ((text.len() as f64) * fraction) as usize;
                text[..cut.min(text.len() - 1)].to_vec()
            }
            Self::InvalidUtf8(fraction, bytes) => {
                let mut text = target.encode(value);
                let at = ((text.len() as f64) * fraction) as usize;
                text.splice(
                    at.min(text.len())..at.min(text.len()),
                    bytes.iter().copied(),
                );
                text
            }
            Self::WrongType(index, replacement) => {
                let mut value = value.clone();
                let paths = node_paths(&value);
                let path = &paths[index % paths.len()];
                let node = node_mut(&mut value, path);
                *node = replacement.differing_from(node);
                target.encode(&value)
            }
            Self::UnknownField(index, key) => {
                let mut value = value.clone();
                let paths: Vec<_> = node_paths(&value)
                    .into_iter()
                    .filter(|path| {
                        node_at(value.clone(), path).is_object()
                            && target.refuses_unknown_keys_at(path)
                    })
                    .collect();
                let path = &paths[index % paths.len()];
                let Value::Object(node) = node_mut(&mut value, path) else {
                    unreachable!("only object nodes were kept")
                };
                node.insert(format!("zz{key}"), json!("surprise"));
                target.encode(&value)
            }
            Self::DeepNesting(index, depth, objects) => {
                let (open, close) = if *objects {
                    (r#"{"n":"#, "}")
                } else {
                    ("[", "]")
                };
                let nested = format!("{}1{}", open.repeat(*depth), close.repeat(*depth));
                let mut value = value.clone();
                let paths = node_paths(&value);
                let path = &paths[index % paths.len()];
                // Spliced in as text: a Value that deep would hit serde_json's own limit.
                *node_mut(&mut value, path) = json!("@@NESTED@@");
                let text = serde_json::to_string(&value).unwrap();
                text.replace("\"@@NESTED@@\"", &nested).into_bytes()
            }
        }
    }
}

impl WrongValue {
    /// This value, or another candidate, whichever first has another JSON type than `original`
    /// (never `null`, which means "absent" to optional fields and "delete" to merge patches).
    fn differing_from(&self, original: &Value) -> Value {
        let candidates = [self.value(), json!("a string"), json!(7), json!({"a": 1})];
        candidates
            .into_iter()
            .find(|candidate| json_type(candidate) != json_type(original))
            .expect("four types cannot all equal one")
    }

    /// The value itself.
    fn value(&self) -> Value {
        match self {
            Self::Huge(digits) => serde_json::from_str(digits).unwrap_or(json!(1e300)),
            Self::Text(text) => json!(text),
            Self::Flag(flag) => json!(flag),
            Self::List => json!([1, "two"]),
            Self::Map => json!({"unexpected": true}),
        }
    }
}

/// Every node of `value` as its path of keys and indices (the root is the empty path).
fn node_paths(value: &Value) -> Vec<Vec<String>> {
    let mut paths = vec![Vec::new()];
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map
            .iter()
            .map(|(key, child)| (key.clone(), child))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, child)| (index.to_string(), child))
            .collect(),
        _ => Vec::new(),
    };
    for (segment, child) in children {
        for mut path in node_paths(child) {
            path.insert(0, segment.clone());
            paths.push(path);
        }
    }
    paths
}

/// The node at `path`.
fn node_mut<'a>(value: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(value, |node, segment| match node {
        Value::Array(items) => &mut items[segment.parse::<usize>().unwrap()],
        node => &mut node[segment.as_str()],
    })
}

/// A copy of the node at `path`.
fn node_at(mut value: Value, path: &[String]) -> Value {
    node_mut(&mut value, path).take()
}

/// The JSON type of a value, as a name.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let not_json = prop::collection::vec(any::<u8>(), 0..200).prop_filter(
        "bytes that happen to be JSON or UTF-8 YAML could be a valid body",
        |bytes| {
            std::str::from_utf8(bytes).is_err() || serde_json::from_slice::<Value>(bytes).is_err()
        },
    );
    // Lone continuation bytes, an over-long encoding, a surrogate, bytes never used by UTF-8.
    let invalid_utf8 = prop_oneof![
        Just(vec![0x80]),
        Just(vec![0xC0, 0xAF]),
        Just(vec![0xED, 0xA0, 0x80]),
        Just(vec![0xFF, 0xFE]),
        Just(vec![0xE2, 0x82]),
    ];
    let wrong_value = prop_oneof![
        prop_oneof![
            Just("1e400".to_owned()),
            Just("-1e400".to_owned()),
            "[1-9][0-9]{25,60}",
            "-[1-9][0-9]{25,60}",
        ]
        .prop_map(WrongValue::Huge),
        "[a-z ]{0,12}".prop_map(WrongValue::Text),
        any::<bool>().prop_map(WrongValue::Flag),
        Just(WrongValue::List),
        Just(WrongValue::Map),
    ];
    prop_oneof![
        not_json.prop_map(Mutation::RandomBytes),
        (0.0..1.0f64).prop_map(Mutation::Truncate),
        (0.0..1.0f64, invalid_utf8).prop_map(|(at, bytes)| Mutation::InvalidUtf8(at, bytes)),
        (any::<usize>(), wrong_value).prop_map(|(at, value)| Mutation::WrongType(at, value)),
        (any::<usize>(), "[a-zA-Z0-9_]{1,12}")
            .prop_map(|(at, key)| Mutation::UnknownField(at, key)),
        (any::<usize>(), 1usize..3000, any::<bool>())
            .prop_map(|(at, depth, objects)| Mutation::DeepNesting(at, depth, objects)),
    ]
}

/// A server with the Site `alpha` and the Hosts `web-1`, `db-1` and `bare-1`, on a runtime
/// whose worker threads keep serving between the cases.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    central: TestCentral,
    stored: Stored,
    /// Every kind's list, to compare with after each case.
    snapshot: Value,
}

impl Fixture {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (central, stored, snapshot) = runtime.block_on(async {
            let central = TestCentral::start(Backend::Sqlite).await;
            let site = central
                .create(&site("alpha", json!({"tier": "gold"})))
                .await;
            let web = central
                .create(&host(
                    "alpha",
                    "web-1",
                    json!({"app": "web", "tier": "front"}),
                ))
                .await;
            central
                .create(&host("alpha", "db-1", json!({"app": "db", "tier": "back"})))
                .await;
            central.create(&host("alpha", "bare-1", json!({}))).await;
            let snapshot = central.snapshot().await;
            (central, Stored { site, host: web }, snapshot)
        });
        Self {
            runtime,
            central,
            stored,
            snapshot,
        }
    }

    /// Sends a request and checks the properties every refused request has.
    fn refused(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        exactly_400: bool,
    ) -> Result<Reply, TestCaseError> {
        self.runtime.block_on(async {
            let reply = self.central.send(method, path, None, body).await;
            check_status(&reply, exactly_400)?;
            self.check_unchanged_and_alive().await?;
            Ok(reply)
        })
    }

    /// The store equals the snapshot taken at the start, and the server still answers.
    async fn check_unchanged_and_alive(&self) -> Result<(), TestCaseError> {
        prop_assert_eq!(&self.central.snapshot().await, &self.snapshot);
        prop_assert_eq!(self.central.get(WEB_1).await.status, 200);
        Ok(())
    }

    fn stop(self) {
        self.runtime.block_on(self.central.stop());
    }
}

/// The reply is a Kubernetes `Status` for a 4xx (exactly 400 if `exactly_400`).
fn check_status(reply: &Reply, exactly_400: bool) -> Result<(), TestCaseError> {
    prop_assert!(
        (400..500).contains(&reply.status),
        "status {} is not a client error: {}",
        reply.status,
        reply.body
    );
    if exactly_400 {
        prop_assert_eq!(reply.status, 400, "{}", reply.body);
    }
    prop_assert_eq!(&reply.content_type, "application/json");
    prop_assert_eq!(&reply.body["kind"], "Status");
    prop_assert_eq!(&reply.body["apiVersion"], "v1");
    prop_assert_eq!(&reply.body["status"], "Failure");
    prop_assert_eq!(reply.body["code"].as_u64(), Some(u64::from(reply.status)));
    prop_assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|message| !message.is_empty()),
        "{}",
        reply.body
    );
    Ok(())
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        // The server is shared by the cases; a failure shrinks against the same one.
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn broken_write_bodies_are_refused_with_a_status_and_change_nothing() {
    let fixture = Fixture::start();
    let targets = prop::sample::select(Target::ALL.to_vec());
    runner()
        .run(&(targets, mutation()), |(target, mutation)| {
            let (method, path, content_type) = target.request();
            let body = mutation.apply(target, &target.valid(&fixture.stored));
            fixture.refused(
                method,
                &path,
                Some((content_type, body)),
                mutation.breaks_syntax(),
            )?;
            Ok(())
        })
        .unwrap();
    fixture.stop();
}

/// The bodies the mutations start from are accepted: what makes a mutated one fail is the
/// mutation. (Run on a fixture of its own, since these writes change the store.)
#[test]
fn the_unbroken_bodies_are_accepted() {
    let fixture = Fixture::start();
    fixture.runtime.block_on(async {
        for target in Target::ALL {
            // Each update needs the object as stored now, with its resourceVersion.
            let stored = Stored {
                site: fixture
                    .central
                    .get(&format!("{GROUP_VERSION}/sites/alpha"))
                    .await
                    .body,
                host: fixture.central.get(WEB_1).await.body,
            };
            let (method, path, content_type) = target.request();
            let body = target.encode(&target.valid(&stored));
            let reply = fixture
                .central
                .send(method, &path, None, Some((content_type, body)))
                .await;
            assert!(
                reply.status == 200 || reply.status == 201,
                "{target:?}: {reply:?}"
            );
        }
    });
    fixture.stop();
}

/// A value of a query parameter that is not what the parameter takes.
fn junk() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z!@#$%^&*()=,;:~ ]{1,16}",
        "-[0-9]{1,5}",
        "[0-9]{21,40}",
        "[0-9]+\\.[0-9]+",
        "0x[0-9a-f]{1,6}",
    ]
}

/// A malformed query: (parameters, whether the request is a watch).
fn malformed_query() -> impl Strategy<Value = (Vec<(String, String)>, bool)> {
    let number = |name: &'static str| {
        junk()
            .prop_filter("a number is a valid value", |text| {
                text.trim().parse::<u64>().is_err()
            })
            .prop_map(move |text| vec![(name.to_owned(), text)])
    };
    let boolean = |name: &'static str| {
        junk()
            .prop_filter("a Go boolean is a valid value", |text| {
                !matches!(
                    text.as_str(),
                    "1" | "t"
                        | "T"
                        | "true"
                        | "TRUE"
                        | "True"
                        | "0"
                        | "f"
                        | "F"
                        | "false"
                        | "FALSE"
                        | "False"
                )
            })
            .prop_map(move |text| vec![(name.to_owned(), text)])
    };
    let version = || {
        junk()
            .prop_filter("an integer is a valid resourceVersion", |text| {
                text.parse::<i64>().is_err()
            })
            .prop_map(|text| vec![("resourceVersion".to_owned(), text)])
    };
    let continue_token =
        "[A-Za-z0-9+/=_-]{1,40}".prop_map(|text| vec![("continue".to_owned(), text)]);
    // A resourceVersion beside a continue token is refused whatever both are.
    let version_and_continue = "[A-Za-z0-9]{1,20}".prop_map(|token| {
        vec![
            ("resourceVersion".to_owned(), "5".to_owned()),
            ("continue".to_owned(), token),
        ]
    });
    let list = prop_oneof![
        number("limit"),
        continue_token,
        version(),
        junk()
            .prop_filter("NotOlderThan is served", |text| text != "NotOlderThan")
            .prop_map(|text| vec![("resourceVersionMatch".to_owned(), text)]),
        boolean("watch"),
        version_and_continue,
    ];
    let watch = prop_oneof![
        number("timeoutSeconds"),
        boolean("allowWatchBookmarks"),
        boolean("sendInitialEvents"),
        Just(vec![("sendInitialEvents".to_owned(), "true".to_owned())]),
        junk().prop_map(|text| vec![("resourceVersionMatch".to_owned(), text)]),
        version(),
    ]
    .prop_map(|mut params| {
        params.insert(0, ("watch".to_owned(), "1".to_owned()));
        params
    });
    prop_oneof![
        list.prop_map(|params| (params, false)),
        watch.prop_map(|params| (params, true)),
    ]
}

/// `path?k=v&…`, percent-encoded.
fn with_query(path: &str, params: &[(String, String)]) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{path}?{query}")
}

#[test]
fn malformed_query_parameters_are_bad_requests() {
    let fixture = Fixture::start();
    runner()
        .run(&malformed_query(), |(params, _watch)| {
            // A refused watch is answered before any stream starts, so the reply is whole.
            fixture.refused(Method::GET, &with_query(HOSTS, &params), None, true)?;
            Ok(())
        })
        .unwrap();
    fixture.stop();
}

/// Label selectors from the pieces selectors are made of, valid or not.
fn selector() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "app",
            "tier",
            "example.com/role",
            "missing",
            "web",
            "db",
            "front",
            "back",
        ])
        .prop_map(str::to_owned),
        prop::sample::select(vec![
            "=",
            "==",
            "!=",
            " in ",
            " notin ",
            "!",
            "(",
            ")",
            ",",
            " ",
            "in",
            "(web, db)",
            "(front)",
            "()",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9./_-]{0,6}",
        "[\\PC]{1,3}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

#[test]
fn label_selectors_are_answered_as_the_selector_parser_decides() {
    let fixture = Fixture::start();
    let hosts: Vec<Value> = fixture.runtime.block_on(async {
        let reply = fixture.central.get(HOSTS).await;
        reply.body["items"].as_array().unwrap().clone()
    });
    runner()
        .run(&(selector(), any::<bool>()), |(text, watch)| {
            let mut params = vec![("labelSelector".to_owned(), text.clone())];
            if watch {
                params.insert(0, ("watch".to_owned(), "1".to_owned()));
            }
            let path = with_query(HOSTS, &params);
            // The server ignores an empty parameter, as Kubernetes does.
            let parsed = if text.is_empty() {
                Ok(osc_crds::selector::Selector::everything())
            } else {
                osc_crds::selector::parse(&text)
            };
            match parsed {
                Err(_) => {
                    fixture.refused(Method::GET, &path, None, true)?;
                }
                Ok(_) if watch => fixture.runtime.block_on(async {
                    // A valid watch streams until the client goes away: read the head only.
                    let response = fixture
                        .central
                        .client
                        .get(fixture.central.url(&path))
                        .send()
                        .await
                        .expect("the server answers");
                    prop_assert_eq!(response.status().as_u16(), 200);
                    drop(response);
                    fixture.check_unchanged_and_alive().await
                })?,
                Ok(selector) => {
                    let reply = fixture.runtime.block_on(fixture.central.get(&path));
                    prop_assert_eq!(reply.status, 200, "{}", reply.body);
                    let names = |items: &[Value]| -> Vec<String> {
                        items
                            .iter()
                            .map(|item| item["metadata"]["name"].as_str().unwrap().to_owned())
                            .collect()
                    };
                    let expected: Vec<Value> = hosts
                        .iter()
                        .filter(|host| selector.matches(&labels_of(host)))
                        .cloned()
                        .collect();
                    prop_assert_eq!(
                        names(reply.body["items"].as_array().unwrap()),
                        names(&expected)
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    fixture.stop();
}

/// An object's labels.
fn labels_of(object: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(object["metadata"]["labels"].clone()).unwrap_or_default()
}

/// Regression: a watch whose `timeoutSeconds` fits a u64 but not a deadline (`Instant + Duration`
/// overflowed) panicked in the handler, and the client saw its stream reset instead of an answer.
/// Such a watch is a valid one that never times out in practice.
#[test]
fn a_huge_watch_timeout_is_a_watch_not_a_dropped_stream() {
    let fixture = Fixture::start();
    fixture.runtime.block_on(async {
        for seconds in [u64::MAX, u64::MAX / 2, i64::MAX as u64, 1 << 40] {
            let path = format!("{HOSTS}?watch=1&timeoutSeconds={seconds}");
            let response = fixture
                .central
                .client
                .get(fixture.central.url(&path))
                .send()
                .await;
            match response {
                Ok(response) => assert_eq!(response.status(), 200, "timeoutSeconds={seconds}"),
                Err(error) => panic!("timeoutSeconds={seconds}: no answer: {error:?}"),
            }
        }
        fixture.check_unchanged_and_alive().await.unwrap();
    });
    fixture.stop();
}
