//! Escalation notices for people: when `plan` escalates a pair (L3), one outbox entry per
//! notification target ([`outgoing`]: the Site's `spec.notifications`, then the appliance's own
//! `rmmWebhookUrl` and `syslogTarget`), delivered and retried like everything else in the
//! outbox by [`Notifier`]:
//!
//! - a webhook gets `POST` of the [`Escalation`] as JSON, signed when its target names a
//!   `secretRef`: header [`SIGNATURE_HEADER`] = `sha256=` + hex HMAC-SHA256 of the exact body,
//!   keyed with the `password` of that (pulled) Credential;
//! - a syslog collector gets one RFC 5424 message ([`syslog_message`]): a datagram over UDP
//!   (RFC 5426), or octet-counted over TCP (RFC 6587).

use std::time::Duration as StdDuration;

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, KeyInit as _, Mac as _};
use osc_crds::kinds::site::{NotificationTarget, SyslogFacility, SyslogProtocol, SyslogTarget};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::AsyncWriteExt as _;

use crate::central::Answer;
use crate::credentials::Credentials;
use crate::deliver::Sink;
use crate::outbox::Entry;

/// The system's CA bundle (Debian's and NixOS's path), the roots `https` webhooks are checked
/// against.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The header that carries a webhook body's signature.
pub const SIGNATURE_HEADER: &str = "X-Osiris-Signature";

/// The structured-data ID of syslog messages; 32473 is the private enterprise number RFC 5612
/// reserves for documentation, used until OsirisCare has its own.
pub const SD_ID: &str = "escalation@32473";

/// What a notification tells: a pair needs a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Escalation {
    /// The Site.
    pub site: String,
    /// The appliance that escalated.
    pub appliance: String,
    /// The Host.
    pub host: String,
    /// The Runbook.
    pub runbook: String,
    /// Its digest.
    pub runbook_digest: String,
    /// `AttemptsExhausted` or `Flapping`.
    pub reason: String,
    /// Heal attempts in this drift episode.
    pub attempts: u32,
    /// In words.
    pub message: String,
    /// When it escalated.
    pub at: DateTime<Utc>,
}

/// Where one notification goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Target {
    /// A webhook URL, signed with the secret of Credential `secret_ref` when set.
    Webhook {
        /// The URL.
        url: String,
        /// The Credential whose `password` keys the HMAC.
        secret_ref: Option<String>,
    },
    /// A syslog collector.
    Syslog {
        /// `host:port`.
        address: String,
        /// UDP or TCP.
        protocol: SyslogProtocol,
        /// The facility of the message.
        facility: SyslogFacility,
    },
}

/// One notification as the outbox keeps it (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Outgoing {
    /// Where.
    pub target: Target,
    /// What.
    pub escalation: Escalation,
}

/// The notifications of `escalation`: one per target of the Site, then the appliance's RMM
/// webhook and syslog target.
pub fn outgoing(
    site_targets: &[NotificationTarget],
    rmm_webhook: Option<&url::Url>,
    syslog: Option<&SyslogTarget>,
    escalation: &Escalation,
) -> Vec<Outgoing> {
    let syslog_target = |s: &SyslogTarget| Target::Syslog {
        address: s.address.clone(),
        protocol: s.protocol.unwrap_or(SyslogProtocol::Udp),
        facility: s.facility.unwrap_or(SyslogFacility::Local0),
    };
    site_targets
        .iter()
        .flat_map(|t| {
            let webhook = t.webhook.as_ref().map(|w| Target::Webhook {
                url: w.url.clone(),
                secret_ref: w.secret_ref.clone(),
            });
            webhook
                .into_iter()
                .chain(t.syslog.as_ref().map(syslog_target))
        })
        .chain(rmm_webhook.map(|url| Target::Webhook {
            url: url.to_string(),
            secret_ref: None,
        }))
        .chain(syslog.map(syslog_target))
        .map(|target| Outgoing {
            target,
            escalation: escalation.clone(),
        })
        .collect()
}

/// `sha256=` + the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The RFC 5424 message of `escalation`: `<PRI>1 TIMESTAMP HOSTNAME osc-controller PROCID
/// escalation [SD] MSG`, severity error (3).
pub fn syslog_message(
    escalation: &Escalation,
    facility: SyslogFacility,
    hostname: &str,
    pid: u32,
) -> String {
    let priority = facility_code(facility) * 8 + 3;
    let hostname: String = hostname
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    let hostname = if hostname.is_empty() {
        "-".to_owned()
    } else {
        hostname
    };
    let params = [
        ("site", escalation.site.as_str()),
        ("appliance", &escalation.appliance),
        ("host", &escalation.host),
        ("runbook", &escalation.runbook),
        ("reason", &escalation.reason),
        ("attempts", &escalation.attempts.to_string()),
    ]
    .iter()
    .map(|(k, v)| format!(" {k}=\"{}\"", sd_escape(v)))
    .collect::<String>();
    format!(
        "<{priority}>1 {} {hostname} osc-controller {pid} escalation [{SD_ID}{params}] {}",
        escalation.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        escalation.message.replace('\n', " "),
    )
}

/// RFC 5424 section 6.3.3: `"`, `\` and `]` are escaped in a PARAM-VALUE.
fn sd_escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace(']', "\\]")
}

fn facility_code(facility: SyslogFacility) -> u32 {
    use SyslogFacility::*;
    match facility {
        Kern => 0,
        User => 1,
        Mail => 2,
        Daemon => 3,
        Auth => 4,
        Syslog => 5,
        Lpr => 6,
        News => 7,
        Uucp => 8,
        Cron => 9,
        Authpriv => 10,
        Ftp => 11,
        Local0 => 16,
        Local1 => 17,
        Local2 => 18,
        Local3 => 19,
        Local4 => 20,
        Local5 => 21,
        Local6 => 22,
        Local7 => 23,
    }
}

/// Delivers notification entries to their targets.
#[derive(Debug)]
pub struct Notifier<'a> {
    /// The pulled secrets, for webhook signatures.
    pub credentials: &'a Credentials,
    /// The HTTP client for webhooks.
    pub client: reqwest::Client,
    /// This appliance's host name, for syslog.
    pub hostname: String,
}

impl<'a> Notifier<'a> {
    /// A notifier signing with `credentials`, naming itself by the system's host name; `https`
    /// webhooks trust the system's CA bundle ([`SYSTEM_CA_BUNDLE`]).
    pub fn new(credentials: &'a Credentials) -> Self {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(StdDuration::from_secs(10))
            .timeout(StdDuration::from_secs(30));
        match std::fs::read(SYSTEM_CA_BUNDLE).map(|pem| reqwest::Certificate::from_pem_bundle(&pem))
        {
            Ok(Ok(roots)) => {
                for root in roots {
                    builder = builder.add_root_certificate(root);
                }
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, file = SYSTEM_CA_BUNDLE, "the CA bundle does not parse; https webhooks will fail")
            }
            Err(error) => {
                tracing::warn!(%error, file = SYSTEM_CA_BUNDLE, "no CA bundle; https webhooks will fail")
            }
        }
        let client = builder.build().expect("an HTTP client builds");
        Self {
            credentials,
            client,
            hostname: gethostname::gethostname().to_string_lossy().into_owned(),
        }
    }

    async fn webhook(&self, url: &str, secret_ref: Option<&str>, body: Vec<u8>) -> Answer {
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(name) = secret_ref {
            let Some(secret) = self.credentials.get(name) else {
                return Answer::Retry(format!(
                    "the webhook's secretRef Credential {name:?} is not pulled (yet)"
                ));
            };
            let Some(password) = secret.data.get("password") else {
                return Answer::Retry(format!(
                    "the webhook's secretRef Credential {name:?} has no password"
                ));
            };
            request = request.header(SIGNATURE_HEADER, signature(password.as_bytes(), &body));
        }
        match request.body(body).send().await {
            Ok(response) if response.status().is_success() => Answer::Accepted,
            Ok(response) => Answer::Retry(format!("webhook {url}: {}", response.status())),
            Err(e) => Answer::Retry(format!("webhook {url}: {e}")),
        }
    }

    async fn syslog(&self, address: &str, protocol: SyslogProtocol, message: String) -> Answer {
        let sent = match protocol {
            SyslogProtocol::Udp => {
                async {
                    let target = tokio::net::lookup_host(address)
                        .await?
                        .next()
                        .ok_or_else(|| std::io::Error::other("resolves to no address"))?;
                    let local = if target.is_ipv4() {
                        "0.0.0.0:0"
                    } else {
                        "[::]:0"
                    };
                    let socket = tokio::net::UdpSocket::bind(local).await?;
                    socket.send_to(message.as_bytes(), target).await.map(drop)
                }
                .await
            }
            SyslogProtocol::Tcp => {
                async {
                    let mut stream = tokio::time::timeout(
                        StdDuration::from_secs(10),
                        tokio::net::TcpStream::connect(address),
                    )
                    .await
                    .map_err(|_| std::io::Error::other("connect timed out"))??;
                    let framed = format!("{} {message}", message.len());
                    stream.write_all(framed.as_bytes()).await?;
                    stream.shutdown().await
                }
                .await
            }
        };
        match sent {
            Ok(()) => Answer::Accepted,
            Err(e) => Answer::Retry(format!("syslog {address}: {e}")),
        }
    }
}

impl Sink for Notifier<'_> {
    async fn send(&self, entry: &Entry) -> Answer {
        let outgoing: Outgoing = match serde_json::from_slice(&entry.body) {
            Ok(outgoing) => outgoing,
            Err(e) => {
                return Answer::Obsolete(format!(
                    "outbox entry {} is not a notification: {e}",
                    entry.id
                ));
            }
        };
        match &outgoing.target {
            Target::Webhook { url, secret_ref } => {
                let body =
                    serde_json::to_vec(&outgoing.escalation).expect("an escalation serializes");
                self.webhook(url, secret_ref.as_deref(), body).await
            }
            Target::Syslog {
                address,
                protocol,
                facility,
            } => {
                let message = syslog_message(
                    &outgoing.escalation,
                    *facility,
                    &self.hostname,
                    std::process::id(),
                );
                self.syslog(address, *protocol, message).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use osc_crds::kinds::site::WebhookTarget;

    use super::*;

    pub(crate) fn escalation() -> Escalation {
        Escalation {
            site: "smile".into(),
            appliance: "box1".into(),
            host: "ehr".into(),
            runbook: "ssh-root".into(),
            runbook_digest: "sha256:ab".into(),
            reason: "AttemptsExhausted".into(),
            attempts: 3,
            message: "escalated: AttemptsExhausted after 3 attempts".into(),
            at: DateTime::from_timestamp(1_800_000_000, 5_000_000).unwrap(),
        }
    }

    #[test]
    fn every_target_gets_one_notification() {
        let site = [
            NotificationTarget {
                webhook: Some(WebhookTarget {
                    url: "https://hooks.example/a".into(),
                    secret_ref: Some("hook".into()),
                }),
                syslog: None,
            },
            NotificationTarget {
                webhook: None,
                syslog: Some(SyslogTarget {
                    address: "10.0.0.5:514".into(),
                    protocol: Some(SyslogProtocol::Tcp),
                    facility: None,
                }),
            },
        ];
        let rmm: url::Url = "https://rmm.example/in".parse().unwrap();
        let all = outgoing(&site, Some(&rmm), None, &escalation());
        let targets: Vec<Target> = all.into_iter().map(|o| o.target).collect();
        assert_eq!(
            targets,
            [
                Target::Webhook {
                    url: "https://hooks.example/a".into(),
                    secret_ref: Some("hook".into())
                },
                Target::Syslog {
                    address: "10.0.0.5:514".into(),
                    protocol: SyslogProtocol::Tcp,
                    facility: SyslogFacility::Local0
                },
                Target::Webhook {
                    url: "https://rmm.example/in".into(),
                    secret_ref: None
                },
            ]
        );
    }

    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_syslog_message_is_rfc_5424_with_escaped_structured_data() {
        let mut e = escalation();
        e.host = r#"we"ird]\"#.into();
        let line = syslog_message(&e, SyslogFacility::Local4, "box 1", 42);
        assert_eq!(
            line,
            "<163>1 2027-01-15T08:00:00.005Z box1 osc-controller 42 escalation \
             [escalation@32473 site=\"smile\" appliance=\"box1\" host=\"we\\\"ird\\]\\\\\" \
             runbook=\"ssh-root\" reason=\"AttemptsExhausted\" attempts=\"3\"] \
             escalated: AttemptsExhausted after 3 attempts"
        );
    }
}
