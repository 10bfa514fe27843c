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
    /// The phone has not enrolled with a server yet (scan the code on the dashboard first).
    #[error("this phone is not enrolled yet")]
    NotEnrolled,
    /// The encrypted store does not open with the key the app gave; nothing was changed.
    #[error("the phone's store does not open with this key")]
    WrongKey,
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
    /// The server answered with a refusal; `code` is its stable machine code (the `code` of
    /// its JSON error, or `bad_reply` when the answer could not be understood).
    #[error("server: {message}")]
    Server { code: String, message: String },
}

impl Error {
    /// The codes [`Error::code`] gives besides the rules' and the server's.
    pub const CODES: &'static [&'static str] = &[
        "bad_doc_id",
        "corrupt",
        "bad_shape",
        "invalid_input",
        "bad_import",
        "not_enrolled",
        "wrong_key",
        "not_on_phone",
        "automerge",
        "storage",
        "network",
        "bad_reply",
    ];

    /// The stable machine code of this error, which apps and tests match on: the rule's code
    /// for a refused change ([`crate::rules::Rule`]), the server's code for its refusals, and
    /// one code per kind otherwise.
    pub fn code(&self) -> &str {
        match self {
            Error::BadDocId(_) => "bad_doc_id",
            Error::Corrupt(_) => "corrupt",
            Error::Shape(_) => "bad_shape",
            Error::NotAllowed(v) => v.code(),
            Error::Invalid(_) => "invalid_input",
            Error::Import { .. } => "bad_import",
            Error::NotEnrolled => "not_enrolled",
            Error::WrongKey => "wrong_key",
            // On the phone: what was asked for has not reached it (sync first), or was removed.
            Error::NotFound(_) => "not_on_phone",
            Error::Automerge(_) => "automerge",
            Error::Storage(_) => "storage",
            Error::Network(_) => "network",
            Error::Server { code, .. } => code,
        }
    }

    /// A reply from the server that the client cannot understand.
    pub fn bad_reply(message: impl Into<String>) -> Error {
        Error::Server {
            code: "bad_reply".into(),
            message: message.into(),
        }
    }
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
