//! The API's one error type: every way a request can fail, each rendered as the Kubernetes
//! `Status` that the API server would send (reason, code and wording), so that `kubectl` and
//! client-go react to it as they would to Kubernetes.

use axum::response::{IntoResponse, Response};
use osc_crds::{FieldError, FieldErrorReason, GROUP, Kind};
use osc_proto::api::{
    CauseType, GroupKind, GroupResource, OPTIMISTIC_LOCK_MESSAGE, Status, StatusCause, StatusReason,
};
use tracing::error;

use crate::keyring::KeyringError;
use crate::store::StoreError;

/// Why a request to the resource API failed.
///
/// Client mistakes carry what the client needs to fix them; [`ApiError::Store`] errors that are
/// not the client's doing are logged in full and answered with a generic 500.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: an undecodable body, a bad query parameter, a body that does
    /// not fit the URL.
    #[error("{0}")]
    BadRequest(String),

    /// No valid credential: a bad enrollment token or proof (bearer tokens are refused by the
    /// authentication layer before any handler).
    #[error("{0}")]
    Unauthorized(String),

    /// The caller may see the target (or the endpoint) but may not do this to it, such as a
    /// person reading a credential's secret data or anyone but an admin creating tokens (403);
    /// the message says who may.
    #[error("{0}")]
    ForbiddenPath(String),

    /// An item of one of central's own endpoints (a token) does not exist.
    #[error("{0}")]
    NotFoundPath(String),

    /// The path names no resource or endpoint this server has.
    #[error("the server could not find the requested resource")]
    NoSuchPath,

    /// The addressed object does not exist.
    #[error("{} {name:?} not found", resource(*kind))]
    NotFound {
        /// The object's kind.
        kind: Kind,
        /// The object's name.
        name: String,
    },

    /// The verb is not served on this path (e.g. POST on a namespaced kind without a
    /// namespace, or DELETE of a whole collection).
    #[error("{action} is not supported on resources of kind \"{}\"", resource(*kind))]
    MethodNotAllowed {
        /// The addressed kind.
        kind: Kind,
        /// The verb, as the message names it (`create`, `deletecollection`).
        action: &'static str,
    },

    /// The request body's media type is not one the endpoint reads.
    #[error("the body of the request was in an unknown format ({content_type}); send {accepted}")]
    UnsupportedMediaType {
        /// The `Content-Type` received (or `none`).
        content_type: String,
        /// The media types the endpoint reads.
        accepted: &'static str,
    },

    /// No representation in `Accept` can be produced.
    #[error("only {produced} can be returned, not {accept}")]
    NotAcceptable {
        /// The `Accept` header received.
        accept: String,
        /// The representations this endpoint produces.
        produced: &'static str,
    },

    /// A create under a name that is taken.
    #[error("{} {name:?} already exists", resource(*kind))]
    AlreadyExists {
        /// The kind.
        kind: Kind,
        /// The taken name.
        name: String,
    },

    /// The write cannot be done in the object's current state: a stale resourceVersion, a
    /// precondition that does not hold, a site that still holds objects.
    #[error("Operation cannot be fulfilled on {} {name:?}: {why}", resource(*kind))]
    Conflict {
        /// The kind.
        kind: Kind,
        /// The object's name.
        name: String,
        /// What conflicts, and what to do about it.
        why: String,
    },

    /// The write is not allowed at all, e.g. creating an object in a site being deleted.
    #[error("{} {name:?} is forbidden: {why}", resource(*kind))]
    Forbidden {
        /// The kind.
        kind: Kind,
        /// The object's name.
        name: String,
        /// Why.
        why: String,
    },

    /// The object fails validation: every problem, each with its field path.
    #[error("{kind}.{GROUP} {name:?} is invalid ({} problems)", errors.len())]
    Invalid {
        /// The kind.
        kind: Kind,
        /// The object's name.
        name: String,
        /// The problems, in the order validation found them.
        errors: Vec<FieldError>,
    },

    /// A read at a resourceVersion the store has not reached.
    #[error("Too large resource version: {requested}, current: {current}")]
    TooLargeResourceVersion {
        /// The resourceVersion asked for.
        requested: i64,
        /// The store's current one.
        current: i64,
    },

    /// A Credential's secret data could not be sealed or opened (a lost master key, a tampered
    /// value); logged in full, answered with a 500 that names the object only.
    #[error(
        "the secret data of {} {name:?} cannot be used: {source}",
        resource(Kind::Credential)
    )]
    Secret {
        /// The Credential's name.
        name: String,
        /// What went wrong (never a secret).
        #[source]
        source: KeyringError,
    },

    /// The master keys could not be changed: 409 with what to do instead when a rotation is not
    /// possible now or here (another is running, the keys come from the configuration), else a
    /// logged 500.
    #[error("master keys: {0}")]
    Keyring(#[source] KeyringError),

    /// The store failed; see [`ApiError::status`] for how each store error is answered.
    #[error("store error")]
    Store(#[source] StoreError),

    /// The evidence log refused an envelope or a proof, or failed (`api/evidence.rs` maps it).
    #[error(transparent)]
    Evidence(#[from] crate::evidence::LogError),
}

impl ApiError {
    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// 409 Conflict for a write based on a stale resourceVersion, in the API server's words.
    pub fn stale(kind: Kind, name: &str) -> Self {
        Self::Conflict {
            kind,
            name: name.to_owned(),
            why: OPTIMISTIC_LOCK_MESSAGE.to_owned(),
        }
    }

    /// The `Status` sent for this error. Store errors that the client did not cause are
    /// answered with a generic message; [`IntoResponse`] logs their details.
    pub fn status(&self) -> Status {
        match self {
            Self::BadRequest(message) => Status::bad_request(message.clone()),
            Self::Unauthorized(message) => Status::unauthorized(message.clone()),
            Self::ForbiddenPath(message) => Status {
                code: 403,
                reason: Some(StatusReason::Forbidden),
                ..Status::bad_request(message.clone())
            },
            Self::NotFoundPath(message) => Status {
                code: 404,
                reason: Some(StatusReason::NotFound),
                ..Status::bad_request(message.clone())
            },
            Self::NoSuchPath => Status {
                code: 404,
                reason: Some(StatusReason::NotFound),
                ..Status::bad_request(self.to_string())
            },
            Self::NotFound { kind, name } => Status::not_found(resource(*kind), name),
            Self::MethodNotAllowed { kind, action } => {
                Status::method_not_allowed(resource(*kind), action)
            }
            Self::UnsupportedMediaType { .. } => Status::unsupported_media_type(self.to_string()),
            Self::NotAcceptable { .. } => Status::not_acceptable(self.to_string()),
            Self::AlreadyExists { kind, name } => Status::already_exists(resource(*kind), name),
            Self::Conflict { kind, name, why } => Status::conflict(resource(*kind), name, why),
            Self::Forbidden { kind, name, why } => Status::forbidden(resource(*kind), name, why),
            Self::Invalid { kind, name, errors } => Status::invalid(
                GroupKind {
                    group: GROUP,
                    kind: kind.as_str(),
                },
                name,
                errors.iter().map(cause).collect(),
            ),
            Self::TooLargeResourceVersion { .. } => {
                let mut status = Status {
                    code: 504,
                    reason: Some(StatusReason::Timeout),
                    message: self.to_string(),
                    ..Status::service_unavailable(String::new())
                };
                // client-go retries a list on exactly this cause.
                status.details = Some(osc_proto::api::StatusDetails {
                    causes: vec![StatusCause::new(
                        CauseType::ResourceVersionTooLarge,
                        "",
                        "Too large resource version",
                    )],
                    retry_after_seconds: Some(1),
                    ..Default::default()
                });
                status
            }
            Self::Secret { name, .. } => Status::internal_error(&format!(
                "the secret data of {} {name:?} cannot be used; the server logged why",
                resource(Kind::Credential)
            )),
            Self::Keyring(error @ (KeyringError::NotRotatable | KeyringError::RotationRunning)) => {
                Status {
                    code: 409,
                    reason: Some(StatusReason::Conflict),
                    ..Status::bad_request(error.to_string())
                }
            }
            Self::Keyring(_) => Status::internal_error(
                "the master keys could not be changed; the server logged why",
            ),
            Self::Store(error) => store_status(error),
            Self::Evidence(error) => super::evidence::log_status(error),
        }
    }
}

impl From<StoreError> for ApiError {
    /// Keys are the store's (`hosts`, namespace, name); the kinds are recovered from the plural.
    fn from(error: StoreError) -> Self {
        let kind_of = |resource: &str| Kind::from_plural(resource);
        match error {
            StoreError::NotFound { key } => match kind_of(&key.resource) {
                Some(kind) => Self::NotFound {
                    kind,
                    name: key.name,
                },
                None => Self::Store(StoreError::NotFound { key }),
            },
            StoreError::AlreadyExists { key } => match kind_of(&key.resource) {
                Some(kind) => Self::AlreadyExists {
                    kind,
                    name: key.name,
                },
                None => Self::Store(StoreError::AlreadyExists { key }),
            },
            StoreError::Conflict {
                key,
                expected,
                current,
            } => match kind_of(&key.resource) {
                Some(kind) => Self::stale(kind, &key.name),
                None => Self::Store(StoreError::Conflict {
                    key,
                    expected,
                    current,
                }),
            },
            StoreError::FutureResourceVersion { requested, current } => {
                Self::TooLargeResourceVersion { requested, current }
            }
            StoreError::InvalidContinue { reason } => Self::BadRequest(format!(
                "invalid continue token: {reason}; list again without it"
            )),
            other => Self::Store(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.code >= 500 && !matches!(self, Self::TooLargeResourceVersion { .. }) {
            // The chain names the object and the database error; the client only sees that the
            // request failed.
            error!(error = %ErrorChain(&self), "request failed");
        }
        status_response(status)
    }
}

/// Renders a `Status` with its `code` as the HTTP status.
pub fn status_response(status: Status) -> Response {
    crate::server::status_response(status)
}

/// The resource of `kind` as messages name it: `sites.osiriscare.net`.
pub fn resource(kind: Kind) -> GroupResource<'static> {
    GroupResource {
        group: GROUP,
        resource: kind.plural(),
    }
}

/// A validation problem as a `StatusCause`: the field path, the reason, and the message without
/// the path (`Invalid value: "25:00": must be HH:MM`), as the API server writes causes.
pub fn cause(error: &FieldError) -> StatusCause {
    let reason = match error.reason {
        FieldErrorReason::Required => CauseType::FieldValueRequired,
        FieldErrorReason::Invalid => CauseType::FieldValueInvalid,
        FieldErrorReason::NotSupported => CauseType::FieldValueNotSupported,
        FieldErrorReason::Duplicate => CauseType::FieldValueDuplicate,
        FieldErrorReason::TooLong => CauseType::FieldValueTooLong,
        FieldErrorReason::Forbidden => CauseType::FieldValueForbidden,
        FieldErrorReason::NotFound => CauseType::FieldValueNotFound,
    };
    let full = error.to_string();
    let message = full
        .strip_prefix(&format!("{}: ", error.path))
        .unwrap_or(&full)
        .to_owned();
    StatusCause::new(reason, error.path.clone(), message)
}

/// The answer to a store error the client did not cause: 503 when the database cannot be
/// reached (the client may retry), else a generic 500.
pub(super) fn store_status(error: &StoreError) -> Status {
    match error {
        StoreError::Gone { requested, oldest } => {
            Status::too_old_resource_version(&requested.to_string(), &oldest.to_string())
        }
        StoreError::Database { .. } | StoreError::Connect { .. } => Status::service_unavailable(
            "the database is not answering; retry in a moment".to_owned(),
        ),
        _ => Status::internal_error("the request could not be completed; the server logged why"),
    }
}

/// Displays an error and its sources, `: `-separated, for the log.
pub(super) struct ErrorChain<'a>(pub(super) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ObjectKey;

    #[test]
    fn errors_render_as_the_api_server_words_them() {
        let cases: Vec<(ApiError, u16, Option<StatusReason>, &str)> = vec![
            (
                ApiError::NotFound {
                    kind: Kind::Host,
                    name: "web-1".into(),
                },
                404,
                Some(StatusReason::NotFound),
                r#"hosts.osiriscare.net "web-1" not found"#,
            ),
            (
                ApiError::stale(Kind::Site, "alpha"),
                409,
                Some(StatusReason::Conflict),
                "Operation cannot be fulfilled on sites.osiriscare.net \"alpha\": the object has \
                 been modified; please apply your changes to the latest version and try again",
            ),
            (
                ApiError::NoSuchPath,
                404,
                Some(StatusReason::NotFound),
                "the server could not find the requested resource",
            ),
            (
                ApiError::from(StoreError::AlreadyExists {
                    key: ObjectKey::cluster("runbooks", "r"),
                }),
                409,
                Some(StatusReason::AlreadyExists),
                r#"runbooks.osiriscare.net "r" already exists"#,
            ),
            (
                ApiError::from(StoreError::FutureResourceVersion {
                    requested: 9,
                    current: 3,
                }),
                504,
                Some(StatusReason::Timeout),
                "Too large resource version: 9, current: 3",
            ),
            (
                ApiError::from(StoreError::Gone {
                    requested: 1,
                    oldest: 5,
                }),
                410,
                Some(StatusReason::Expired),
                "too old resource version: 1 (5)",
            ),
        ];
        for (error, code, reason, message) in cases {
            let status = error.status();
            assert_eq!(status.code, code, "{error:?}");
            assert_eq!(status.reason, reason, "{error:?}");
            assert_eq!(status.message, message, "{error:?}");
        }
    }

    #[test]
    fn internal_errors_do_not_leak_their_details() {
        let error = ApiError::from(StoreError::Corrupt {
            what: "object hosts/secret-site/web-1".into(),
            source: "bad json".into(),
        });
        let status = error.status();
        assert_eq!(status.code, 500);
        let body = serde_json::to_string(&status).unwrap();
        assert!(!body.contains("secret-site"), "{body}");
        assert!(!body.contains("bad json"), "{body}");
    }

    #[test]
    fn a_field_error_becomes_a_cause_without_its_path_in_the_message() {
        let error = FieldError {
            path: "spec.maintenanceWindow.start".into(),
            reason: FieldErrorReason::Invalid,
            value: Some("25:00".into()),
            message: "must be HH:MM".into(),
        };
        let cause = cause(&error);
        assert_eq!(cause.field, "spec.maintenanceWindow.start");
        assert_eq!(cause.reason, Some(CauseType::FieldValueInvalid));
        assert_eq!(cause.message, r#"Invalid value: "25:00": must be HH:MM"#);
    }
}
