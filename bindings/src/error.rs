//! The one error type apps see, converted from core's errors in one place, and the guard that
//! keeps panics from crossing the FFI boundary.

use std::panic::{AssertUnwindSafe, catch_unwind};

use doorstep_core::Error;

/// What went wrong, in the five kinds an app can act on. `code` is the stable machine code an
/// app matches on to choose its sentence and next step (a write rule's code such as
/// `not_assigned` or `campaign_closed`, `not_on_phone` for what has not reached this phone yet
/// (sync first), or the server's code for its refusals); `reason` is English for the log and
/// never holds more personal data than the input the app passed in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum ApiError {
    /// The app passed something that cannot be used (a bad unit code, an unknown campaign, an
    /// empty title), or asked for what is not on this phone yet; retrying will not help.
    #[error("invalid input ({code}): {reason}")]
    InvalidInput { code: String, reason: String },
    /// The write rules refused the action; `code` names the rule.
    #[error("not allowed ({code}): {reason}")]
    NotAllowed { code: String, reason: String },
    /// The server could not be reached or answered badly; retry later, nothing local is lost.
    #[error("network: {reason}")]
    Network { reason: String },
    /// The server refused (enrollment code, device token, a document); `code` is its code.
    #[error("rejected by server ({code}): {reason}")]
    RejectedByServer { code: String, reason: String },
    /// The phone's own data could not be read or written (disk, corruption), or doorstep hit an
    /// internal error; the action did not happen.
    #[error("storage: {reason}")]
    Storage { reason: String },
}

/// The one place core errors become app errors.
impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let code = e.code().to_string();
        match e {
            Error::Invalid(_)
            | Error::BadDocId(_)
            | Error::Import { .. }
            | Error::NotFound(_)
            | Error::NotEnrolled
            | Error::WrongKey => ApiError::InvalidInput {
                code,
                reason: e.to_string(),
            },
            Error::NotAllowed(violation) => ApiError::NotAllowed {
                code,
                reason: violation.detail,
            },
            Error::Network(_) => ApiError::Network {
                reason: e.to_string(),
            },
            Error::Server { message, .. } => ApiError::RejectedByServer {
                code,
                reason: message,
            },
            Error::Corrupt(_) | Error::Shape(_) | Error::Automerge(_) | Error::Storage(_) => {
                ApiError::Storage {
                    reason: e.to_string(),
                }
            }
        }
    }
}

/// A foreign transport that throws something other than an `ApiError` is treated like a network
/// failure: the sync is retried later and nothing local is lost.
impl From<uniffi::UnexpectedUniFFICallbackError> for ApiError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        ApiError::Network { reason: e.reason }
    }
}

/// Run one exported call: core errors become `ApiError`s and a panic becomes
/// `ApiError::Storage` instead of unwinding into Kotlin, Swift or Python.
///
/// Unwinding is safe to stop here because every replica action is one SQLite transaction: a
/// panic before its commit leaves nothing behind, and the replica's lock recovers from poisoning.
pub(crate) fn guard<T>(call: impl FnOnce() -> Result<T, Error>) -> Result<T, ApiError> {
    guard_api(|| call().map_err(ApiError::from))
}

/// Like [`guard`] for calls that already speak `ApiError` (e.g. through a foreign transport).
pub(crate) fn guard_api<T>(call: impl FnOnce() -> Result<T, ApiError>) -> Result<T, ApiError> {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        Err(ApiError::Storage {
            reason: format!("internal error in doorstep (please report it): {message}"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_core::rules::{Rule, Violation};

    #[test]
    fn a_panic_arrives_as_a_storage_error() {
        let result: Result<(), ApiError> = guard(|| panic!("the roll is upside down"));
        match result {
            Err(ApiError::Storage { reason }) => {
                assert!(reason.contains("the roll is upside down"))
            }
            other => panic!("expected a storage error, got {other:?}"),
        }
        let formatted: Result<(), ApiError> = guard(|| panic!("unit {} is missing", "3-2-0501"));
        assert!(
            matches!(formatted, Err(ApiError::Storage { reason }) if reason.contains("3-2-0501"))
        );
    }

    #[test]
    fn core_errors_map_to_the_kind_an_app_acts_on() {
        let not_allowed = ApiError::from(Error::NotAllowed(Violation::new(
            Rule::NotAssigned,
            "building 3 is not yours",
        )));
        assert_eq!(
            not_allowed,
            ApiError::NotAllowed {
                code: "not_assigned".into(),
                reason: "building 3 is not yours".into()
            }
        );
        assert!(matches!(
            ApiError::from(Error::Invalid("x".into())),
            ApiError::InvalidInput { .. }
        ));
        assert!(matches!(
            ApiError::from(Error::NotFound("campaign c9".into())),
            ApiError::InvalidInput { code, .. } if code == "not_on_phone"
        ));
        assert!(matches!(
            ApiError::from(Error::Network("timeout".into())),
            ApiError::Network { .. }
        ));
        let refused = ApiError::from(Error::Server {
            code: "invalid_code".into(),
            message: "bad code".into(),
        });
        assert!(
            matches!(refused, ApiError::RejectedByServer { code, .. } if code == "invalid_code")
        );
        assert!(matches!(
            ApiError::from(Error::Corrupt("building/c/3".into())),
            ApiError::Storage { .. }
        ));
    }

    #[test]
    fn successful_calls_pass_through() {
        assert_eq!(guard(|| Ok(7)), Ok(7));
    }
}
