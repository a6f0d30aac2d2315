//! Escalation notices through the outbox to real receivers on 127.0.0.1: a webhook that checks
//! the HMAC-SHA256 signature (and fails once, so the notice is retried), a UDP syslog listener
//! and a TCP one that parse the RFC 5424 message.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit as _, Mac as _};
use osc_controller::cache::Snapshot;
use osc_controller::credentials::Credentials;
use osc_controller::deliver::{Drained, drain};
use osc_controller::notify::{Escalation, Notifier, SIGNATURE_HEADER, outgoing};
use osc_controller::outbox::{EntryKind, OutboxStore as _, SqliteOutbox};
use osc_crds::kinds::site::{
    NotificationTarget, SyslogFacility, SyslogProtocol, SyslogTarget, WebhookTarget,
};
use serde_json::json;
use sha2::Sha256;
use tokio::io::AsyncReadExt as _;

#[path = "common/receivers.rs"]
mod receivers;
use receivers::{hook_secret, webhook};

const SECRET: &str = "webhook-s3cret";

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn escalation() -> Escalation {
    serde_json::from_value(json!({
        "site": "smile", "appliance": "box1", "host": "ehr", "runbook": "ssh-root",
        "runbookDigest": "sha256:ab", "reason": "AttemptsExhausted", "attempts": 3,
        "message": "ssh-root on ehr needs a person", "at": now(),
    }))
    .unwrap()
}

/// Credentials holding the webhook's secret, pulled as the run loop does.
async fn credentials() -> Credentials {
    let mut snapshot = Snapshot::default();
    snapshot.credentials.insert(
        "hook".into(),
        serde_json::from_value(
            json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": "Credential",
            "metadata": {"name": "hook", "namespace": "smile", "resourceVersion": "1"},
            "spec": {"type": "password", "username": "hook"}}),
        )
        .unwrap(),
    );
    let held = Credentials::default();
    assert!(
        held.refresh(&hook_secret(SECRET), "smile", &snapshot)
            .await
            .is_empty()
    );
    held
}

/// The parts of an RFC 5424 message: PRI, version, timestamp, host, app, procid, msgid,
/// structured data, message.
fn parse_5424(line: &str) -> (u32, Vec<&str>, &str, &str) {
    let rest = line.strip_prefix('<').expect("PRI opens with <");
    let (pri, rest) = rest.split_once('>').expect("PRI closes with >");
    let header: Vec<&str> = rest.splitn(7, ' ').collect();
    assert_eq!(header.len(), 7, "{line}");
    let sd_and_msg = header[6];
    let end = sd_and_msg
        .find("] ")
        .expect("one SD element, then the message");
    (
        pri.parse().unwrap(),
        header[..6].to_vec(),
        &sd_and_msg[..=end],
        &sd_and_msg[end + 2..],
    )
}

#[tokio::test]
async fn an_escalation_reaches_a_signed_webhook_and_both_syslog_transports() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = SqliteOutbox::open(&dir.path().join("outbox.sqlite3"))
        .await
        .unwrap();
    let (url, received) = webhook(1).await;
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let targets = [
        NotificationTarget {
            webhook: Some(WebhookTarget {
                url,
                secret_ref: Some("hook".into()),
            }),
            syslog: Some(SyslogTarget {
                address: udp.local_addr().unwrap().to_string(),
                protocol: None,
                facility: Some(SyslogFacility::Local4),
            }),
        },
        NotificationTarget {
            webhook: None,
            syslog: Some(SyslogTarget {
                address: tcp.local_addr().unwrap().to_string(),
                protocol: Some(SyslogProtocol::Tcp),
                facility: None,
            }),
        },
    ];
    let escalation = escalation();
    for notice in outgoing(&targets, None, None, &escalation) {
        let body = serde_json::to_vec(&notice).unwrap();
        outbox
            .enqueue(EntryKind::Notification, &body, now())
            .await
            .unwrap();
    }
    let credentials = credentials().await;
    let notifier = Notifier::new(&credentials);
    let tcp_message = tokio::spawn(async move {
        let (mut stream, _) = tcp.accept().await.unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).await.unwrap();
        text
    });

    // The webhook refuses the first delivery: the notice stays in the outbox and is retried.
    let first = drain(&outbox, &notifier, EntryKind::Notification, now)
        .await
        .unwrap();
    assert!(
        matches!(first, Drained::Blocked(ref why) if why.contains("503")),
        "{first:?}"
    );
    assert_eq!(outbox.depth().await.unwrap().notification, 3);
    let second = drain(&outbox, &notifier, EntryKind::Notification, now)
        .await
        .unwrap();
    assert_eq!(second, Drained::Empty);
    assert_eq!(outbox.depth().await.unwrap().notification, 0);

    // The webhook got the escalation, signed over the exact body with the Credential's secret.
    let (headers, body) = received.lock().unwrap().remove(0);
    let signature = headers[SIGNATURE_HEADER].to_str().unwrap();
    let hex = signature.strip_prefix("sha256=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    mac.verify_slice(&hex::decode(hex).unwrap())
        .expect("the signature is the HMAC-SHA256 of the body");
    let sent: Escalation = serde_json::from_slice(&body).unwrap();
    assert_eq!(sent, escalation);

    // UDP: one datagram, one RFC 5424 message, facility local4 (20), severity error (3).
    let mut datagram = vec![0; 4096];
    let (n, _) = udp.recv_from(&mut datagram).await.unwrap();
    let line = String::from_utf8(datagram[..n].to_vec()).unwrap();
    let (pri, header, sd, message) = parse_5424(&line);
    assert_eq!(pri, 20 * 8 + 3);
    assert_eq!(header[0], "1", "version");
    assert!(DateTime::parse_from_rfc3339(header[1]).is_ok(), "{line}");
    assert_eq!(
        (header[3], header[5]),
        ("osc-controller", "escalation"),
        "{line}"
    );
    assert!(sd.starts_with("[escalation@32473 site=\"smile\""), "{sd}");
    assert!(sd.contains("host=\"ehr\" runbook=\"ssh-root\""), "{sd}");
    assert_eq!(message, "ssh-root on ehr needs a person");

    // TCP: octet-counted framing around the same kind of message, facility local0 (16).
    let framed = tcp_message.await.unwrap();
    let (length, line) = framed.split_once(' ').unwrap();
    assert_eq!(length.parse::<usize>().unwrap(), line.len());
    let (pri, _, _, message) = parse_5424(line);
    assert_eq!(pri, 16 * 8 + 3);
    assert_eq!(message, "ssh-root on ehr needs a person");
}

#[tokio::test]
async fn a_webhook_whose_secret_is_not_pulled_waits_instead_of_going_unsigned() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = SqliteOutbox::open(&dir.path().join("outbox.sqlite3"))
        .await
        .unwrap();
    let (url, received) = webhook(1).await;
    let targets = [NotificationTarget {
        webhook: Some(WebhookTarget {
            url,
            secret_ref: Some("missing".into()),
        }),
        syslog: None,
    }];
    for notice in outgoing(&targets, None, None, &escalation()) {
        outbox
            .enqueue(
                EntryKind::Notification,
                &serde_json::to_vec(&notice).unwrap(),
                now(),
            )
            .await
            .unwrap();
    }
    let credentials = Credentials::default();
    let drained = drain(
        &outbox,
        &Notifier::new(&credentials),
        EntryKind::Notification,
        now,
    )
    .await
    .unwrap();
    assert!(
        matches!(drained, Drained::Blocked(ref why) if why.contains("\"missing\" is not pulled")),
        "{drained:?}"
    );
    assert!(received.lock().unwrap().is_empty());
    assert_eq!(outbox.depth().await.unwrap().notification, 1);
}
