//! The one error type apps see, converted from core's errors in one place, and the guard that
//! keeps panics from crossing the FFI boundary.

use std::panic::{AssertUnwindSafe, catch_unwind};

use doorstep_core::Error;

/// What went wrong, in the five kinds an app can act on. `reason` is meant for the screen or the
/// log and never holds more personal data than the input the app passed in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum ApiError {
    /// The app passed something that cannot be used (a bad unit code, an unknown campaign, an
    /// empty title); fix the input, retrying will not help.
    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },
    /// The write rules refused the action; `reason` is the rule's own words for the user.
    #[error("not allowed: {reason}")]
    NotAllowed { reason: String },
    /// The server could not be reached or answered badly; retry later, nothing local is lost.
    #[error("network: {reason}")]
    Network { reason: String },
    /// The server refused (enrollment code, device token, a document); see `reason`.
    #[error("rejected by server: {reason}")]
    RejectedByServer { reason: String },
    /// The phone's own data could not be read or written (disk, corruption), or doorstep hit an
    /// internal error; the action did not happen.
    #[error("storage: {reason}")]
    Storage { reason: String },
}

/// The one place core errors become app errors.
impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let reason = e.to_string();
        match e {
            Error::Invalid(_) | Error::BadDocId(_) | Error::Import { .. } | Error::NotFound(_) => {
                ApiError::InvalidInput { reason }
            }
            Error::NotAllowed(violation) => ApiError::NotAllowed {
                reason: violation.0,
            },
            Error::Network(_) => ApiError::Network { reason },
            Error::Server(_) => ApiError::RejectedByServer { reason },
            Error::Corrupt(_) | Error::Shape(_) | Error::Automerge(_) | Error::Storage(_) => {
                ApiError::Storage { reason }
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
    use doorstep_core::rules::Violation;

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
        let not_allowed = ApiError::from(Error::NotAllowed(Violation(
            "building 3 is not yours".into(),
        )));
        assert_eq!(
            not_allowed,
            ApiError::NotAllowed {
                reason: "building 3 is not yours".into()
            }
        );
        assert!(matches!(
            ApiError::from(Error::Invalid("x".into())),
            ApiError::InvalidInput { .. }
        ));
        assert!(matches!(
            ApiError::from(Error::NotFound("campaign c9".into())),
            ApiError::InvalidInput { .. }
        ));
        assert!(matches!(
            ApiError::from(Error::Network("timeout".into())),
            ApiError::Network { .. }
        ));
        assert!(matches!(
            ApiError::from(Error::Server("bad code".into())),
            ApiError::RejectedByServer { .. }
        ));
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
