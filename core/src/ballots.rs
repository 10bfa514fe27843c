//! ballots (being written).
