//! The write rules: who may change what, decided once for phone and server.

/// Why a change is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Violation(pub String);
