//! replica (being written).
