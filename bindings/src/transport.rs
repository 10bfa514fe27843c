//! The sync transport an app may bring (OkHttp, URLSession, anything that can POST bytes), and
//! its adapter to core's `Transport`. Without one, the replica uses core's Rust HTTP client.

use std::sync::Arc;

use doorstep_core::sync::{self, Transport};

/// Why the app's transport got no usable answer. The app throws this from its transport; the
/// replica turns it into `ApiError.Network` or `ApiError.RejectedByServer` for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum TransportError {
    /// No answer: no connection, DNS, TLS, timeout, a reset mid-body. Safe to retry.
    #[error("network: {reason}")]
    Network { reason: String },
    /// The server answered with a status outside 2xx; `body` is the reply as received (the
    /// server's JSON error body, which the replica reads for the reason).
    #[error("server answered {status}")]
    Http { status: u16, body: Vec<u8> },
}

/// An unexpected exception thrown by the app's transport counts as a network failure.
impl From<uniffi::UnexpectedUniFFICallbackError> for TransportError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TransportError::Network { reason: e.reason }
    }
}

impl From<TransportError> for sync::TransportError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Network { reason } => sync::TransportError::Network(reason),
            TransportError::Http { status, body } => sync::http_error(status, &body),
        }
    }
}

/// An HTTP stack the app provides, bound to the server's base URL. Both calls block and are
/// made off the UI thread (from inside `sync` / `enroll`).
#[uniffi::export(with_foreign)]
pub trait SyncTransport: Send + Sync {
    /// `POST {base}/api/v1/sync` with `Content-Type: application/cbor`, the CBOR `body`, and
    /// `Authorization: Bearer {token}`; return the 2xx reply body.
    fn post_sync(&self, body: Vec<u8>, token: String) -> Result<Vec<u8>, TransportError>;

    /// `POST {base}/api/v1/enroll` with `Content-Type: application/json` and the JSON `body`;
    /// return the 2xx reply body.
    fn post_enroll(&self, body: Vec<u8>) -> Result<Vec<u8>, TransportError>;
}

/// Core's `Transport` over the app's `SyncTransport`.
pub(crate) struct Foreign(pub(crate) Arc<dyn SyncTransport>);

impl Transport for Foreign {
    fn post(&self, body: Vec<u8>, token: &str) -> Result<Vec<u8>, sync::TransportError> {
        Ok(self.0.post_sync(body, token.to_string())?)
    }

    fn enroll(&self, body: Vec<u8>) -> Result<Vec<u8>, sync::TransportError> {
        Ok(self.0.post_enroll(body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiError;

    #[test]
    fn an_http_failure_from_the_app_reads_the_servers_code_and_reason() {
        let body = br#"{"error":{"code":"invalid_enrollment_code","message":"the code is used"}}"#;
        let e = sync::TransportError::from(TransportError::Http {
            status: 401,
            body: body.to_vec(),
        });
        let api = ApiError::from(doorstep_core::Error::from(e));
        assert!(
            matches!(&api, ApiError::RejectedByServer { code, reason }
                if code == "invalid_enrollment_code" && reason.contains("the code is used")),
            "{api:?}"
        );
        let down = sync::TransportError::from(TransportError::Network {
            reason: "airplane mode".into(),
        });
        assert!(matches!(
            ApiError::from(doorstep_core::Error::from(down)),
            ApiError::Network { .. }
        ));
    }
}
