//! Projections: plain tables derived from documents (units, voter keys, visits, ballots,
//! orders), updated inside the same transaction that stores a document change, so the tally
//! and the dashboard read tables. They can be rebuilt from documents at any time
//! (`doorstep-server rebuild-projections`).
//!
//! The storage layer calls [`migrate`] when it opens the database, [`document_changed`] for
//! every document it writes, and [`clear`] before a rebuild.

use automerge::AutoCommit;
use doorstep_core::doc::DocId;
use rusqlite::Transaction;

/// Why a projection could not be updated; the surrounding transaction rolls back.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("document shape: {0}")]
    Shape(String),
}

/// Create the projection tables when missing. Called on every open, inside the migration
/// transaction.
pub fn migrate(_tx: &Transaction<'_>) -> Result<(), ProjectionError> {
    Ok(())
}

/// Bring the projections of one document up to date with `doc` (its state after the change).
pub fn document_changed(
    _tx: &Transaction<'_>,
    _id: &DocId,
    _doc: &AutoCommit,
) -> Result<(), ProjectionError> {
    Ok(())
}

/// Empty every projection table before a rebuild.
pub fn clear(_tx: &Transaction<'_>) -> Result<(), ProjectionError> {
    Ok(())
}
