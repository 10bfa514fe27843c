//! doorstep-core: the shared heart of doorstep that runs on building heads' phones and on the
//! server. Domain model, Automerge documents, the write rules, the roll and the legal tally,
//! register import and the phone's local store. No async runtime, no HTTP server.

pub mod ballots;
pub mod bundle;
pub mod campaign;
pub mod clock;
pub mod conflicts;
pub mod doc;
pub mod encryption;
pub mod error;
pub mod import;
pub mod model;
pub mod protocol;
pub mod replica;
pub mod roll;
pub mod rules;
pub mod store;
pub mod sync;
pub mod tally;
#[cfg(feature = "xlsx")]
pub mod xlsx;

pub use error::{Error, Result};
