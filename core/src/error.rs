//! The core's error type: what went wrong, in words an admin or app developer can act on.

use crate::rules::Violation;

/// Everything that can fail inside doorstep-core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A document id string does not name a known document kind.
    #[error("not a document id: {0:?}")]
    BadDocId(String),
    /// Saved bytes could not be loaded completely.
    #[error("stored document is corrupt: {0}")]
    Corrupt(String),
    /// A document does not have the shape its kind requires.
    #[error("document shape: {0}")]
    Shape(String),
    /// The write rules refused a change.
    #[error("not allowed: {0}")]
    NotAllowed(#[from] Violation),
    /// Input from a user, a file or a peer is invalid.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A register import row is wrong; nothing was imported.
    #[error("line {line}, column {column}: {message}")]
    Import {
        line: u64,
        column: String,
        message: String,
    },
    /// Something asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Automerge refused an operation.
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    /// The local SQLite store failed.
    #[error("storage: {0}")]
    Storage(#[from] rusqlite::Error),
    /// The network or the server could not be reached or answered badly.
    #[error("network: {0}")]
    Network(String),
    /// The server answered with a refusal.
    #[error("server: {0}")]
    Server(String),
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
