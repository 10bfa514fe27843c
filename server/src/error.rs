//! The server's error type and its one JSON shape on the wire: `{"error":{"code","message"}}`.
//!
//! `code` is stable and machine-readable (clients branch on it); `message` is for people. Internal
//! failures are logged with their detail and answered with a generic message, so a response
//! never leaks SQL, file paths or personal data.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use doorstep_core::protocol::{ErrorBody, ErrorDetail};

use crate::storage::StorageError;

/// An error an HTTP handler returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `invalid_token`.
    pub code: &'static str,
    pub message: String,
    /// Seconds the client should wait before trying again (`Retry-After`), for 429 and 503.
    pub retry_after: Option<u64>,
}

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AppError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error under a more precise machine code.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    /// The same error, telling the client to wait `seconds` before trying again.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 400: the request body or parameters are malformed.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: no credentials, or credentials that are wrong, expired or revoked.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403: authenticated, but this role may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 403 for a change the write rules refused: the rule's machine code, unchanged, and its
    /// detail.
    pub fn refused(v: doorstep_core::rules::Violation) -> Self {
        Self::new(StatusCode::FORBIDDEN, v.code(), v.detail)
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: the request conflicts with the current state (e.g. a login already taken).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422: well-formed but semantically invalid input.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
    }

    /// 500: something inside failed. The detail goes to the log, never to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    }

    /// 503: the server is overloaded or shutting down; try again later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// The JSON body, for handlers and middleware that build responses themselves.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
            },
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for AppError {}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<StorageError> for AppError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::NotFound(what) => AppError::not_found(what),
            StorageError::Conflict(what) => AppError::conflict("conflict", what),
            StorageError::Invalid(what) => AppError::invalid(what),
            StorageError::LastAdmin => AppError::conflict(
                "last_admin",
                "the last active admin cannot be disabled or lose the admin role",
            ),
            // The database is away (PostgreSQL restarting) or the document moved on in another
            // server process: nothing was written, and the same request will succeed later.
            StorageError::Unavailable(what) => {
                tracing::warn!(error = %what, "storage unavailable");
                AppError::unavailable("the database is unavailable; try again").with_retry_after(2)
            }
            StorageError::Stale(_) => {
                AppError::unavailable("the document changed meanwhile; try again")
                    .with_retry_after(1)
            }
            other => AppError::internal(other),
        }
    }
}

impl From<doorstep_core::Error> for AppError {
    fn from(err: doorstep_core::Error) -> Self {
        use doorstep_core::Error as E;
        match err {
            E::BadDocId(_) | E::Invalid(_) | E::Import { .. } | E::Shape(_) | E::NotEnrolled => {
                AppError::invalid(err.to_string())
            }
            E::NotAllowed(v) => AppError::refused(v),
            E::NotFound(what) => AppError::not_found(what),
            other => AppError::internal(other),
        }
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(err: tokio::task::JoinError) -> Self {
        AppError::internal(format!("blocking task failed: {err}"))
    }
}

/// Shorthand for handler results.
pub type AppResult<T> = Result<T, AppError>;
