//! What escalation notices are delivered to in tests: a webhook receiver on 127.0.0.1 and the
//! Credential that holds its HMAC secret.
// Each test crate that includes this uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use osc_controller::credentials::MapPull;
use osc_proto::credentials::{CredentialData, CredentialDataMeta};
use zeroize::Zeroizing;

/// The calls a webhook receiver accepted: headers and body.
pub type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A webhook receiver on 127.0.0.1 at `/hook` that answers 503 to its first `refuse` calls and
/// records the others; returns its URL.
pub async fn webhook(refuse: u32) -> (String, Received) {
    let received: Received = Arc::default();
    let calls = Arc::new(Mutex::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let received = received.clone();
            move |headers: HeaderMap, body: axum::body::Bytes| async move {
                let mut calls = calls.lock().unwrap();
                *calls += 1;
                if *calls <= refuse {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                received.lock().unwrap().push((headers, body.to_vec()));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// Central's credential pull answering the `password` Credential `hook` (version 1) of site
/// `smile`, whose password is `secret`.
pub fn hook_secret(secret: &str) -> MapPull {
    let pull = MapPull::default();
    pull.data.lock().unwrap().insert(
        "hook".into(),
        CredentialData {
            api_version: "osiriscare.net/v1alpha1".into(),
            kind: "CredentialData".into(),
            metadata: CredentialDataMeta {
                name: "hook".into(),
                namespace: "smile".into(),
                resource_version: "1".into(),
            },
            type_: "password".into(),
            username: "hook".into(),
            data: BTreeMap::from([("password".into(), Zeroizing::new(secret.to_owned()))]),
        },
    );
    pull
}
